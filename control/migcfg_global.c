/* migcfg_global.c — -global migration.PROP=VALUE: finds PROP among the
 * knobs, parameters and capabilities of QEMU's migration object and parses
 * VALUE the way QEMU's string input visitor does (bools on/off/yes/no/
 * true/false, integers in any C base, sizes as util/size.h), with
 * QEMU's messages. Validation of the whole set is mig_config_check().
 * Control thread only (called while parsing the command line). */
#include "control/migcfg_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/size.h"

static bool parse_bool(const char *prop, const char *s, uint64_t *out,
		       struct mig_error **errp)
{
	if (!strcasecmp(s, "on") || !strcasecmp(s, "yes") ||
	    !strcasecmp(s, "true")) {
		*out = 1;
		return true;
	}
	if (!strcasecmp(s, "off") || !strcasecmp(s, "no") ||
	    !strcasecmp(s, "false")) {
		*out = 0;
		return true;
	}
	mig_error_setg(errp, "Invalid parameter type for '%s', expected: %s",
		       prop, "boolean");
	return false;
}

/* qemu_strtou64(s, NULL, 0): whole string, any base, '-' wraps. */
static bool parse_uint(const char *prop, const char *s, uint64_t max,
		       const char *type, uint64_t *out, struct mig_error **errp)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (end == s || *end || errno) {
		mig_error_setg(errp, "Parameter '%s' expects %s", prop,
			       "uint64");
		return false;
	}
	if (v > max) {
		mig_error_setg(errp, "Parameter '%s' expects %s", prop, type);
		return false;
	}
	*out = v;
	return true;
}

static bool parse_size(const char *prop, const char *s, uint64_t *out,
		       struct mig_error **errp)
{
	int ret = size_parse(s, 'B', out);

	if (ret == -ERANGE)
		mig_error_setg(errp,
			       "Value '%s' is out of range for parameter "
			       "'%s'",
			       s, prop);
	else if (ret < 0)
		mig_error_setg(errp, "Parameter '%s' expects %s", prop,
			       "a non-negative number below 2^64");
	return ret == 0;
}

static bool parse_enum(const char *prop, const char *s,
		       const char *const *values, uint64_t *out,
		       struct mig_error **errp)
{
	for (size_t i = 0; values[i]; i++) {
		if (!strcmp(values[i], s)) {
			*out = i;
			return true;
		}
	}
	mig_error_setg(errp, "Parameter '%s' does not accept value '%s'", prop,
		       s);
	return false;
}

static bool is_utf8(const char *s)
{
	json_t *probe = json_string(s); /* NULL for invalid UTF-8 */
	bool ok = probe != NULL;

	json_decref(probe);
	return ok;
}

static int set_param(struct mig_config *cfg, enum mig_param id, const char *s,
		     struct mig_error **errp)
{
	const struct mig_param_desc *d = &mig_param_table[id];
	const char *prop = d->prop;
	uint64_t v = 0;
	bool ok = false;
	char *copy;

	switch (d->type) {
	case MIG_PT_SIZE:
		ok = parse_size(prop, s, &v, errp);
		break;
	case MIG_PT_U8:
		ok = parse_uint(prop, s, UINT8_MAX, "uint8_t", &v, errp);
		break;
	case MIG_PT_U32:
		ok = parse_uint(prop, s, UINT32_MAX, "uint32_t", &v, errp);
		break;
	case MIG_PT_U64:
		ok = parse_uint(prop, s, UINT64_MAX, "uint64", &v, errp);
		break;
	case MIG_PT_BOOL:
		ok = parse_bool(prop, s, &v, errp);
		break;
	case MIG_PT_ENUM:
		ok = parse_enum(prop, s, d->enum_values, &v, errp);
		break;
	case MIG_PT_STR:
		if (!is_utf8(s)) { /* it must be printable in QMP replies */
			mig_error_setg(errp, "Parameter '%s' expects %s", prop,
				       "a UTF-8 string");
			return -EINVAL;
		}
		copy = strdup(s);
		if (!copy)
			return -ENOMEM;
		free(cfg->params.str[id]);
		cfg->params.str[id] = copy;
		return 0;
	case MIG_PT_BITMAP_MAP:
		break; /* has no property */
	}
	if (!ok)
		return -EINVAL;
	cfg->params.num[id] = v;
	return 0;
}

static int set_knob(struct mig_config *cfg, enum mig_knob id, const char *s,
		    struct mig_error **errp)
{
	const struct mig_knob_desc *d = &mig_knob_table[id];
	uint64_t v;
	bool ok;

	if (d->type == MIG_KT_BOOL)
		ok = parse_bool(d->prop, s, &v, errp);
	else if (d->type == MIG_KT_U32)
		ok = parse_uint(d->prop, s, UINT32_MAX, "uint32_t", &v, errp);
	else
		ok = parse_uint(d->prop, s, UINT8_MAX, "uint8_t", &v, errp);
	if (!ok)
		return -EINVAL;
	cfg->knobs[id] = v;
	return 0;
}

/* Looks PROP up in the three tables, like QEMU's property list. */
static int set_prop(struct mig_config *cfg, const char *prop, const char *s,
		    struct mig_error **errp)
{
	uint64_t v;

	for (int i = 0; i < MIG_KNOB__MAX; i++)
		if (!strcmp(mig_knob_table[i].prop, prop))
			return set_knob(cfg, i, s, errp);
	for (int i = 0; i < MIG_PARAM__MAX; i++)
		if (mig_param_table[i].prop &&
		    !strcmp(mig_param_table[i].prop, prop))
			return set_param(cfg, i, s, errp);
	for (int i = 0; i < MIG_CAP__MAX; i++) {
		if (!mig_cap_table[i].prop ||
		    strcmp(mig_cap_table[i].prop, prop))
			continue;
		if (!parse_bool(prop, s, &v, errp))
			return -EINVAL;
		cfg->caps[i] = v;
		return 0;
	}
	mig_error_setg(errp, "Property 'migration.%s' not found", prop);
	return -EINVAL;
}

int mig_config_set_global(struct mig_config *cfg, const char *prop,
			  const char *value, struct mig_error **errp)
{
	int ret;

	if (!prop || !value) {
		mig_error_setg(errp, "Invalid -global migration property");
		return -EINVAL;
	}
	ret = set_prop(cfg, prop, value, errp);
	if (ret == -ENOMEM)
		mig_error_setg(errp, "Out of memory");
	if (ret < 0) {
		mig_error_prepend(errp,
				  "can't apply global migration.%s=%s: ", prop,
				  value);
		return ret == -ENOMEM ? ret : -EINVAL;
	}
	return 0;
}
