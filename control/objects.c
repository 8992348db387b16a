/* objects.c — the registry of tls-creds-x509, tls-creds-psk and
 * authz-simple objects (see objects.h): QEMU's property handling and
 * messages for object-add / -object / object-del, and the lookups a
 * migration makes. Credentials files are checked when the object is made
 * (as QEMU's complete() does) and read again when a migration starts.
 * Control thread for changes; lookups from any thread (under lock). */
#include "control/objects.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "control/migd.h"
#include "control/qapi.h"
#include "control/qmp.h"
#include "socket/tls.h"
#include "util/opts.h"

#define OBJ_ID_MAX 128
#define OBJECTS_MAX 256

enum obj_type {
	OBJ_TLS_X509,
	OBJ_TLS_PSK,
	OBJ_AUTHZ_SIMPLE,
	OBJ_RESERVED, /* a memory backend's id */
};

static const char *const obj_type_names[] = {
	[OBJ_TLS_X509] = "tls-creds-x509",
	[OBJ_TLS_PSK] = "tls-creds-psk",
	[OBJ_AUTHZ_SIMPLE] = "authz-simple",
	NULL,
};

static const char *const endpoint_names[] = {"client", "server", NULL};

struct mig_object {
	char *id;
	enum obj_type type;
	bool server, verify_peer;
	char *dir, *username, *identity, *priority;
};

struct mig_objects {
	pthread_mutex_t lock; /* guards objs/n against lookups */
	struct mig_object *objs;
	size_t n;
};

struct mig_objects *mig_objects_new(void)
{
	struct mig_objects *o = calloc(1, sizeof(*o));

	if (o)
		pthread_mutex_init(&o->lock, NULL);
	return o;
}

static void obj_fini(struct mig_object *o)
{
	free(o->id);
	free(o->dir);
	free(o->username);
	free(o->identity);
	free(o->priority);
}

void mig_objects_free(struct mig_objects *objs)
{
	if (!objs)
		return;
	for (size_t i = 0; i < objs->n; i++)
		obj_fini(&objs->objs[i]);
	free(objs->objs);
	pthread_mutex_destroy(&objs->lock);
	free(objs);
}

/* Caller holds the lock. */
static struct mig_object *find(struct mig_objects *objs, const char *id)
{
	for (size_t i = 0; i < objs->n; i++)
		if (strcmp(objs->objs[i].id, id) == 0)
			return &objs->objs[i];
	return NULL;
}

/* QEMU's id_wellformed(). */
static bool id_ok(const char *id)
{
	if (!isalpha((unsigned char)id[0]) || strlen(id) > OBJ_ID_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
			return false;
	return true;
}

/* Takes *o (finalised on failure). */
static int insert(struct mig_objects *objs, struct mig_object *o,
		  struct mig_error **errp)
{
	struct mig_object *arr;
	int ret = 0;

	pthread_mutex_lock(&objs->lock);
	if (find(objs, o->id)) {
		mig_error_setg(errp,
			       "attempt to add duplicate property '%s' to "
			       "object (type 'container')",
			       o->id);
		ret = -EEXIST;
	} else if (objs->n == OBJECTS_MAX ||
		   !(arr = realloc(objs->objs, (objs->n + 1) * sizeof(*arr)))) {
		mig_error_setg(errp, "Out of memory");
		ret = -ENOMEM;
	} else {
		objs->objs = arr;
		objs->objs[objs->n++] = *o;
	}
	pthread_mutex_unlock(&objs->lock);
	if (ret)
		obj_fini(o);
	return ret;
}

int mig_objects_reserve_id(struct mig_objects *objs, const char *id,
			   struct mig_error **errp)
{
	struct mig_object o = {.type = OBJ_RESERVED, .id = strdup(id)};

	if (!o.id) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return insert(objs, &o, errp);
}

bool mig_objects_handles_type(const char *type)
{
	return qapi_enum_lookup(obj_type_names, type) >= 0;
}

/* ---- properties from QMP (typed) or -object (strings) ----------------------
 */

struct obj_in {
	struct qapi_in *q; /* object-add */
	struct opts *o;	   /* -object */
};

static bool in_has(struct obj_in *in, const char *name)
{
	return in->q ? qapi_has(in->q, name) : opts_has(in->o, name);
}

static bool in_str(struct obj_in *in, const char *name, char **out,
		   struct mig_error **errp)
{
	const char *s;

	if (!in_has(in, name))
		return true;
	if (in->q) {
		if (!qapi_read_str(in->q, name, &s, errp))
			return false;
	} else {
		s = opts_get(in->o, name);
	}
	free(*out);
	*out = strdup(s);
	if (!*out)
		mig_error_setg(errp, "Out of memory");
	return *out != NULL;
}

static bool in_bool(struct obj_in *in, const char *name, bool *out,
		    struct mig_error **errp)
{
	if (!in_has(in, name))
		return true;
	if (in->q)
		return qapi_read_bool(in->q, name, out, errp);
	return opts_get_bool(in->o, name, out, errp);
}

static bool in_endpoint(struct obj_in *in, bool *server,
			struct mig_error **errp)
{
	int v;

	if (!in_has(in, "endpoint"))
		return true;
	if (in->q) {
		if (!qapi_read_enum(in->q, "endpoint", endpoint_names, &v,
				    errp))
			return false;
	} else {
		v = qapi_enum_lookup(endpoint_names,
				     opts_get(in->o, "endpoint"));
		if (v < 0) {
			mig_error_setg(errp,
				       "Parameter 'endpoint' does not accept "
				       "value '%s'",
				       opts_get(in->o, "endpoint"));
			return false;
		}
	}
	*server = v == 1;
	return true;
}

static bool in_done(struct obj_in *in, struct mig_error **errp)
{
	const char *bad;

	if (in->q)
		return qapi_check_struct(in->q, errp);
	bad = opts_first_unused(in->o);
	if (bad)
		mig_error_setg(errp, "Parameter '%s' is unexpected", bad);
	return !bad;
}

/* TlsCredsProperties and its x509 / psk extensions, in QAPI order. */
static int read_creds(struct obj_in *in, struct mig_object *o,
		      struct mig_error **errp)
{
	bool sanity = true;
	char *passwordid = NULL;
	int ret = -EINVAL;

	o->verify_peer = true;
	if (!in_bool(in, "verify-peer", &o->verify_peer, errp) ||
	    !in_str(in, "dir", &o->dir, errp) ||
	    !in_endpoint(in, &o->server, errp) ||
	    !in_str(in, "priority", &o->priority, errp))
		goto out;
	if (o->type == OBJ_TLS_X509 &&
	    (!in_bool(in, "sanity-check", &sanity, errp) ||
	     !in_str(in, "passwordid", &passwordid, errp)))
		goto out;
	if (o->type == OBJ_TLS_PSK &&
	    !in_str(in, "username", &o->username, errp))
		goto out;
	if (!in_done(in, errp))
		goto out;
	if (passwordid) {
		mig_error_setg(errp, "migd does not support encrypted private "
				     "keys (passwordid)");
		goto out;
	}
	ret = 0;
out:
	free(passwordid);
	return ret;
}

static int read_props(struct obj_in *in, struct mig_object *o,
		      struct mig_error **errp)
{
	struct tls_creds_spec s;

	if (o->type == OBJ_AUTHZ_SIMPLE) {
		if (!in_has(in, "identity")) {
			mig_error_setg(errp, "Parameter 'identity' is missing");
			return -EINVAL;
		}
		return in_str(in, "identity", &o->identity, errp) &&
				       in_done(in, errp)
			       ? 0
			       : -EINVAL;
	}
	if (read_creds(in, o, errp))
		return -EINVAL;
	s = (struct tls_creds_spec){
		.kind = o->type == OBJ_TLS_X509 ? TLS_CREDS_X509
						: TLS_CREDS_PSK,
		.server = o->server,
		.verify_peer = o->verify_peer,
		.dir = o->dir,
		.username = o->username,
	};
	return tls_creds_check(&s, errp);
}

static int check_id(const char *id, struct mig_error **errp)
{
	if (!id_ok(id)) {
		mig_error_setg(errp, "Parameter 'id' expects an identifier");
		return -EINVAL;
	}
	return 0;
}

int mig_objects_add_json(struct mig_objects *objs, json_t *args,
			 struct mig_error **errp)
{
	struct qapi_in q;
	struct obj_in in = {.q = &q};
	struct mig_object o = {0};
	const char *id;
	int type, ret = -EINVAL;

	qapi_in_init(&q, args);
	if (!qapi_read_enum(&q, "qom-type", obj_type_names, &type, errp) ||
	    !qapi_read_str(&q, "id", &id, errp) || check_id(id, errp))
		goto out;
	o.type = (enum obj_type)type;
	o.id = strdup(id);
	if (!o.id) {
		mig_error_setg(errp, "Out of memory");
		goto out;
	}
	ret = read_props(&in, &o, errp);
	if (ret)
		obj_fini(&o);
	else
		ret = insert(objs, &o, errp);
out:
	qapi_in_fini(&q);
	return ret;
}

int mig_objects_add_opts(struct mig_objects *objs, const char *arg,
			 struct mig_error **errp)
{
	struct opts *op = opts_parse(arg, "qom-type", errp);
	struct obj_in in = {.o = op};
	struct mig_object o = {0};
	const char *type, *id;
	int ret = -EINVAL;

	if (!op)
		return -EINVAL;
	type = opts_get(op, "qom-type");
	id = opts_get(op, "id");
	if (!type || qapi_enum_lookup(obj_type_names, type) < 0) {
		mig_error_setg(errp, "Parameter 'qom-type' is missing");
		goto out;
	}
	if (!id) {
		mig_error_setg(errp, "Parameter 'id' is missing");
		goto out;
	}
	if (check_id(id, errp))
		goto out;
	o.type = (enum obj_type)qapi_enum_lookup(obj_type_names, type);
	o.id = strdup(id);
	ret = o.id ? read_props(&in, &o, errp) : -ENOMEM;
	if (ret)
		obj_fini(&o);
	else
		ret = insert(objs, &o, errp);
out:
	opts_free(op);
	return ret;
}

static int del(struct mig_objects *objs, const char *id,
	       struct mig_error **errp)
{
	struct mig_object *o;
	int ret = 0;

	pthread_mutex_lock(&objs->lock);
	o = find(objs, id);
	if (!o) {
		mig_error_setg(errp, "object '%s' not found", id);
		ret = -ENOENT;
	} else if (o->type == OBJ_RESERVED) {
		mig_error_setg(errp, "object '%s' can't be deleted", id);
		ret = -EBUSY;
	} else {
		/* a running migration holds its own loaded credentials */
		obj_fini(o);
		*o = objs->objs[--objs->n];
	}
	pthread_mutex_unlock(&objs->lock);
	return ret;
}

/* ---- lookups for migrations ------------------------------------------------
 */

struct tls_ctx *mig_objects_load_tls(struct mig_objects *objs, const char *id,
				     bool server, struct mig_error **errp)
{
	struct tls_creds_spec s = {0};
	struct mig_object *o;
	struct tls_ctx *c = NULL;

	pthread_mutex_lock(&objs->lock);
	o = find(objs, id);
	if (!o)
		mig_error_setg(errp, "No TLS credentials with id '%s'", id);
	else if (o->type != OBJ_TLS_X509 && o->type != OBJ_TLS_PSK)
		mig_error_setg(
			errp, "Object with id '%s' is not TLS credentials", id);
	else if (o->server != server)
		mig_error_setg(errp,
			       "Expected TLS credentials for a %s endpoint",
			       server ? "server" : "client");
	else {
		s.kind = o->type == OBJ_TLS_X509 ? TLS_CREDS_X509
						 : TLS_CREDS_PSK;
		s.server = o->server;
		s.verify_peer = o->verify_peer;
		s.dir = o->dir;
		s.username = o->username;
		c = tls_ctx_new(&s, errp);
	}
	pthread_mutex_unlock(&objs->lock);
	return c;
}

char *mig_objects_authz_identity(struct mig_objects *objs, const char *id,
				 struct mig_error **errp)
{
	struct mig_object *o;
	char *ret = NULL;

	pthread_mutex_lock(&objs->lock);
	o = find(objs, id);
	if (!o)
		mig_error_setg(errp, "Cannot find QAuthZ object ID %s", id);
	else if (o->type != OBJ_AUTHZ_SIMPLE)
		mig_error_setg(errp, "Object '%s' is not a QAuthZ subclass",
			       id);
	else if (!(ret = strdup(o->identity)))
		mig_error_setg(errp, "Out of memory");
	pthread_mutex_unlock(&objs->lock);
	return ret;
}

/* ---- QMP -------------------------------------------------------------------
 */

static json_t *cmd_object_add(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp)
{
	if (!md->objects) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	if (mig_objects_add_json(md->objects, args, errp))
		return NULL;
	return json_object();
}

static json_t *cmd_object_del(struct migd *md, struct qmp_monitor *mon,
			      json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	const char *id;
	json_t *ret = NULL;

	qapi_in_init(&in, args);
	if (!qapi_read_str(&in, "id", &id, errp) ||
	    !qapi_check_struct(&in, errp))
		goto out;
	if (!md->objects) {
		mig_error_setg(errp, "object '%s' not found", id);
		goto out;
	}
	if (del(md->objects, id, errp) == 0)
		ret = json_object();
out:
	qapi_in_fini(&in);
	return ret;
}

static const struct qmp_command object_commands[] = {
	{"object-add", cmd_object_add, 0},
	{"object-del", cmd_object_del, 0},
};

void objects_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, object_commands,
		     sizeof(object_commands) / sizeof(object_commands[0]));
}
