/* qapi.h — typed reading of QMP arguments with QEMU's error messages.
 * A struct qapi_in walks one JSON object or array the way QEMU's QObject
 * input visitor does: members are read by name (consuming them), nested
 * structs and lists push a child reader, and qapi_check_struct() reports the
 * first member nobody read as "Parameter 'x' is unexpected". Error messages
 * name members by their full path ("channels[0].addr.transport").
 * Control thread only (no shared state; readers borrow the JSON). */
#ifndef MIGD_CONTROL_QAPI_H
#define MIGD_CONTROL_QAPI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct qapi_in {
	struct qapi_in *parent;
	json_t *node;	  /* object or array being read (borrowed) */
	const char *name; /* this node's name in its parent, NULL at root */
	size_t index;	  /* arrays: index of the next element to read */
	const char **consumed; /* objects: keys read so far */
	size_t nconsumed, capconsumed;
};

/* Starts reading the root object (a command's "arguments"). */
void qapi_in_init(struct qapi_in *in, json_t *root);
/* Releases what a reader allocated (not the JSON). Safe on a zeroed reader. */
void qapi_in_fini(struct qapi_in *in);

/* True when member name exists (even as null): QEMU's "present" test for
 * optional members. For a list reader, name is ignored and the result says
 * whether another element remains. */
bool qapi_has(struct qapi_in *in, const char *name);

/* Readers of one member (name) of an object, or of the next element of a
 * list (name NULL). Each returns false with *errp set on a missing member or
 * a wrong type, using QEMU's messages. */
bool qapi_read_str(struct qapi_in *in, const char *name, const char **out,
		   struct mig_error **errp);
bool qapi_read_bool(struct qapi_in *in, const char *name, bool *out,
		    struct mig_error **errp);
bool qapi_read_int(struct qapi_in *in, const char *name, int64_t *out,
		   struct mig_error **errp);
bool qapi_read_uint64(struct qapi_in *in, const char *name, uint64_t *out,
		      struct mig_error **errp);
/* Range-checked integers: "Parameter 'x' expects uint8_t" etc. */
bool qapi_read_uint8(struct qapi_in *in, const char *name, uint8_t *out,
		     struct mig_error **errp);
bool qapi_read_uint16(struct qapi_in *in, const char *name, uint16_t *out,
		      struct mig_error **errp);
bool qapi_read_uint32(struct qapi_in *in, const char *name, uint32_t *out,
		      struct mig_error **errp);
bool qapi_read_int32(struct qapi_in *in, const char *name, int32_t *out,
		     struct mig_error **errp);
bool qapi_read_number(struct qapi_in *in, const char *name, double *out,
		      struct mig_error **errp);
/* values is a NULL-terminated table; *out gets the index. */
bool qapi_read_enum(struct qapi_in *in, const char *name,
		    const char *const *values, int *out,
		    struct mig_error **errp);
/* StrOrNull alternate: *out is the string, or NULL for JSON null. */
bool qapi_read_str_or_null(struct qapi_in *in, const char *name,
			   const char **out, struct mig_error **errp);
/* Any JSON value (borrowed). */
bool qapi_read_any(struct qapi_in *in, const char *name, json_t **out,
		   struct mig_error **errp);

/* Nested containers: child must be finished with qapi_in_fini(). */
bool qapi_start_struct(struct qapi_in *in, const char *name,
		       struct qapi_in *child, struct mig_error **errp);
bool qapi_start_list(struct qapi_in *in, const char *name,
		     struct qapi_in *child, struct mig_error **errp);
/* Reports the first unread member of an object reader. */
bool qapi_check_struct(struct qapi_in *in, struct mig_error **errp);

/* Full name of member name as QEMU prints it (static buffer per reader
 * chain; valid until the next call). */
const char *qapi_full_name(struct qapi_in *in, const char *name, char *buf,
			   size_t len);

/* For commands without arguments: false with "Parameter 'x' is
 * unexpected" if args has any member. */
bool qapi_no_args(json_t *args, struct mig_error **errp);

/* Index of s in a NULL-terminated table, or -1. */
int qapi_enum_lookup(const char *const *values, const char *s);

#endif
