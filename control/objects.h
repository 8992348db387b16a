/* objects.h — migd's user-creatable objects other than memory backends:
 * tls-creds-x509, tls-creds-psk and authz-simple, created by -object and
 * object-add, removed by object-del, and looked up by id when a migration
 * needs its TLS credentials (tls-creds) or authorization (tls-authz).
 * The registry has its own lock: the control thread adds and removes, any
 * thread may look up (the migration thread connects). */
#ifndef MIGD_CONTROL_OBJECTS_H
#define MIGD_CONTROL_OBJECTS_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

struct mig_objects;
struct qmp_server;
struct tls_ctx;

struct mig_objects *mig_objects_new(void);
void mig_objects_free(struct mig_objects *objs);

/* Marks id as taken by an object migd made elsewhere (a memory backend):
 * later objects may not reuse it and object-del refuses it. 0 or -errno
 * with *errp (QEMU's duplicate message). */
int mig_objects_reserve_id(struct mig_objects *objs, const char *id,
			   struct mig_error **errp);
/* object-add's arguments (qom-type, id, properties). 0 or -errno. */
int mig_objects_add_json(struct mig_objects *objs, json_t *args,
			 struct mig_error **errp);
/* One -object argument ("tls-creds-x509,id=x,dir=...") of one of our
 * types. 0 or -errno. */
int mig_objects_add_opts(struct mig_objects *objs, const char *arg,
			 struct mig_error **errp);
/* True when -object TYPE belongs here rather than to the memory backends. */
bool mig_objects_handles_type(const char *type);

/* The credentials named id, loaded now for a server or a client endpoint,
 * with QEMU's messages ("No TLS credentials with id '%s'", "Expected TLS
 * credentials for a %s endpoint", file errors). NULL with *errp. */
struct tls_ctx *mig_objects_load_tls(struct mig_objects *objs, const char *id,
				     bool server, struct mig_error **errp);
/* The identity of authz-simple object id (malloc'd), or NULL with *errp. */
char *mig_objects_authz_identity(struct mig_objects *objs, const char *id,
				 struct mig_error **errp);

/* Registers object-add and object-del. */
void objects_register_qmp(struct qmp_server *srv);

#endif
