/* migcfg_qmp.c — the QMP commands over the migration configuration:
 * migrate-set-capabilities, query-migrate-capabilities,
 * migrate-set-parameters and query-migrate-parameters
 * (query-migrate is control/migration.c's). Reads arguments with control/qapi.h
 * so type errors match QEMU's input visitor, then hands typed values to the
 * model (migcfg.c). Links without the QMP server; registration is in
 * migcfg_register.c. Control thread only. */
#include "control/migcfg_priv.h"

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"

static json_t *out_of_memory(struct mig_error **errp)
{
	mig_error_setg(errp, "Out of memory");
	return NULL;
}

/* ---- capabilities --------------------------------------------------- */

static bool read_cap_status(struct qapi_in *list, bool caps[MIG_CAP__MAX],
			    struct mig_error **errp)
{
	struct qapi_in item;
	bool state = false;
	int cap = 0;
	bool ok;

	ok = qapi_start_struct(list, NULL, &item, errp) &&
	     qapi_read_enum(&item, "capability", mig_cap_names, &cap, errp) &&
	     qapi_read_bool(&item, "state", &state, errp) &&
	     qapi_check_struct(&item, errp);
	qapi_in_fini(&item);
	if (ok)
		caps[cap] = state;
	return ok;
}

static bool read_cap_list(struct qapi_in *in, bool caps[MIG_CAP__MAX],
			  struct mig_error **errp)
{
	struct qapi_in list;
	bool ok = qapi_start_list(in, "capabilities", &list, errp);

	while (ok && qapi_has(&list, NULL))
		ok = read_cap_status(&list, caps, errp);
	qapi_in_fini(&list);
	return ok && qapi_check_struct(in, errp);
}

static json_t *qmp_migrate_set_capabilities(struct migd *md,
					    struct qmp_monitor *mon,
					    json_t *args,
					    struct mig_error **errp)
{
	bool caps[MIG_CAP__MAX];
	struct qapi_in in;
	bool ok;

	for (int i = 0; i < MIG_CAP__MAX; i++)
		caps[i] = mig_config_cap(md->config, i);
	qapi_in_init(&in, args);
	ok = read_cap_list(&in, caps, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (mig_status_is_running(md->mig_status) ||
	    md->mig_status == MIG_STATUS_COLO) {
		mig_error_setg(errp, "There's a migration process in progress");
		return NULL;
	}
	if (mig_config_set_caps(md->config, caps, errp) < 0)
		return NULL;
	return json_object();
}

static json_t *qmp_query_migrate_capabilities(struct migd *md,
					      struct qmp_monitor *mon,
					      json_t *args,
					      struct mig_error **errp)
{
	json_t *list;

	if (!qapi_no_args(args, errp))
		return NULL;
	list = json_array();

	for (int i = 0; list && i < MIG_CAP__MAX; i++) {
		json_t *st =
			json_pack("{s:s, s:b}", "capability", mig_cap_names[i],
				  "state", mig_config_cap(md->config, i));

		if (json_array_append_new(list, st) < 0) {
			json_decref(list);
			list = NULL;
		}
	}
	return list ? list : out_of_memory(errp);
}

/* ---- block-bitmap-mapping input ----------------------------------------- */

/* Appends v (stolen) to arr. v == NULL means its reader failed and has
 * already set *errp. */
static bool append_item(json_t *arr, json_t *v, struct mig_error **errp)
{
	if (!v)
		return false;
	if (json_array_append_new(arr, v) < 0) {
		out_of_memory(errp);
		return false;
	}
	return true;
}

/* Optional BitmapMigrationBitmapAliasTransform of one bitmap entry. */
static bool read_transform(struct qapi_in *bitmap, json_t *out,
			   struct mig_error **errp)
{
	struct qapi_in t;
	bool has_persistent, persistent = false, ok;
	json_t *tr;

	if (!qapi_start_struct(bitmap, "transform", &t, errp))
		return false;
	has_persistent = qapi_has(&t, "persistent");
	ok = (!has_persistent ||
	      qapi_read_bool(&t, "persistent", &persistent, errp)) &&
	     qapi_check_struct(&t, errp);
	qapi_in_fini(&t);
	if (!ok)
		return false;
	tr = has_persistent ? json_pack("{s:b}", "persistent", persistent)
			    : json_object();
	if (!tr || json_object_set_new(out, "transform", tr) < 0) {
		out_of_memory(errp);
		return false;
	}
	return true;
}

static json_t *read_bitmap_alias(struct qapi_in *list, struct mig_error **errp)
{
	const char *name = NULL, *alias = NULL;
	struct qapi_in b;
	json_t *out = NULL;
	bool ok;

	ok = qapi_start_struct(list, NULL, &b, errp) &&
	     qapi_read_str(&b, "name", &name, errp) &&
	     qapi_read_str(&b, "alias", &alias, errp);
	if (ok) {
		out = json_pack("{s:s, s:s}", "name", name, "alias", alias);
		if (!out) {
			out_of_memory(errp);
			ok = false;
		}
	}
	if (ok && qapi_has(&b, "transform"))
		ok = read_transform(&b, out, errp);
	ok = ok && qapi_check_struct(&b, errp);
	qapi_in_fini(&b);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Reads the list member `name` of `in` with read_item into a new array. */
static json_t *read_list(struct qapi_in *in, const char *name,
			 json_t *(*read_item)(struct qapi_in *list,
					      struct mig_error **errp),
			 struct mig_error **errp)
{
	struct qapi_in list;
	json_t *out = json_array();
	bool ok;

	if (!out)
		return out_of_memory(errp);
	ok = qapi_start_list(in, name, &list, errp);
	while (ok && qapi_has(&list, NULL))
		ok = append_item(out, read_item(&list, errp), errp);
	qapi_in_fini(&list);
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *read_node_alias(struct qapi_in *list, struct mig_error **errp)
{
	const char *name = NULL, *alias = NULL;
	struct qapi_in n;
	json_t *bitmaps = NULL, *out = NULL;
	bool ok;

	ok = qapi_start_struct(list, NULL, &n, errp) &&
	     qapi_read_str(&n, "node-name", &name, errp) &&
	     qapi_read_str(&n, "alias", &alias, errp) &&
	     (bitmaps = read_list(&n, "bitmaps", read_bitmap_alias, errp)) !=
		     NULL &&
	     qapi_check_struct(&n, errp);
	qapi_in_fini(&n);
	if (ok) {
		out = json_pack("{s:s, s:s, s:O}", "node-name", name, "alias",
				alias, "bitmaps", bitmaps);
		if (!out)
			out_of_memory(errp);
	}
	json_decref(bitmaps);
	return out;
}

/* ---- parameters -------------------------------------------------------- */

static bool read_small_uint(struct qapi_in *in, const char *name,
			    enum mig_ptype type, uint64_t *out,
			    struct mig_error **errp)
{
	uint8_t v8;
	uint32_t v32;

	if (type == MIG_PT_U8) {
		if (!qapi_read_uint8(in, name, &v8, errp))
			return false;
		*out = v8;
		return true;
	}
	if (!qapi_read_uint32(in, name, &v32, errp))
		return false;
	*out = v32;
	return true;
}

static bool read_param(struct qapi_in *in, enum mig_param id,
		       struct mig_param_update *upd, struct mig_error **errp)
{
	const struct mig_param_desc *d = &mig_param_table[id];
	bool b;
	int e;

	if (!qapi_has(in, d->name))
		return true;
	upd->has[id] = true;
	switch (d->type) {
	case MIG_PT_SIZE:
	case MIG_PT_U64:
		return qapi_read_uint64(in, d->name, &upd->num[id], errp);
	case MIG_PT_U8:
	case MIG_PT_U32:
		return read_small_uint(in, d->name, d->type, &upd->num[id],
				       errp);
	case MIG_PT_BOOL:
		if (!qapi_read_bool(in, d->name, &b, errp))
			return false;
		upd->num[id] = b;
		return true;
	case MIG_PT_STR: /* JSON null means "" (QEMU's rewrite) */
		return qapi_read_str_or_null(in, d->name, &upd->str[id], errp);
	case MIG_PT_ENUM:
		if (!qapi_read_enum(in, d->name, d->enum_values, &e, errp))
			return false;
		upd->num[id] = (uint64_t)e;
		return true;
	case MIG_PT_BITMAP_MAP:
		upd->bitmap_mapping =
			read_list(in, d->name, read_node_alias, errp);
		return upd->bitmap_mapping != NULL;
	}
	return false;
}

static json_t *qmp_migrate_set_parameters(struct migd *md,
					  struct qmp_monitor *mon, json_t *args,
					  struct mig_error **errp)
{
	struct mig_param_update upd = {{false}};
	struct qapi_in in;
	bool ok = true;

	qapi_in_init(&in, args);
	for (int i = 0; ok && i < MIG_PARAM__MAX; i++)
		ok = read_param(&in, i, &upd, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (ok && mig_config_set_params(md->config, &upd, errp) < 0)
		ok = false;
	json_decref(upd.bitmap_mapping);
	return ok ? json_object() : NULL;
}

static json_t *param_value(const struct mig_config *cfg, enum mig_param id)
{
	const struct mig_param_desc *d = &mig_param_table[id];
	uint64_t v = mig_config_param(cfg, id);
	const json_t *map;

	switch (d->type) {
	case MIG_PT_BOOL:
		return json_boolean(v);
	case MIG_PT_STR:
		return json_string(mig_config_param_str(cfg, id));
	case MIG_PT_ENUM:
		return json_string(d->enum_values[v]);
	case MIG_PT_BITMAP_MAP:
		map = mig_config_block_bitmap_mapping(cfg);
		return map ? json_deep_copy(map) : NULL;
	default:
		/* jansson integers are signed: values above INT64_MAX (only
		 * reachable by sending negative numbers) print negative. */
		return json_integer((json_int_t)v);
	}
}

static json_t *qmp_query_migrate_parameters(struct migd *md,
					    struct qmp_monitor *mon,
					    json_t *args,
					    struct mig_error **errp)
{
	json_t *out;

	if (!qapi_no_args(args, errp))
		return NULL;
	out = json_object();

	for (int i = 0; out && i < MIG_PARAM__MAX; i++) {
		json_t *v;

		if (i == MIG_PARAM_BLOCK_BITMAP_MAPPING &&
		    !mig_config_block_bitmap_mapping(md->config))
			continue; /* QEMU omits it until it is set */
		v = param_value(md->config, i);
		if (json_object_set_new(out, mig_param_table[i].name, v) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out ? out : out_of_memory(errp);
}

static const struct qmp_command migcfg_cmds[] = {
	{"migrate-set-capabilities", qmp_migrate_set_capabilities, 0},
	{"query-migrate-capabilities", qmp_query_migrate_capabilities, 0},
	{"migrate-set-parameters", qmp_migrate_set_parameters, 0},
	{"query-migrate-parameters", qmp_query_migrate_parameters, 0},
};

const struct qmp_command *migcfg_qmp_commands(size_t *n)
{
	*n = sizeof(migcfg_cmds) / sizeof(migcfg_cmds[0]);
	return migcfg_cmds;
}
