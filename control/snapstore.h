/* snapstore.h — snapshot stores: the block nodes declared with
 * `-blockdev driver=file,node-name=NAME,filename=DIR`. A node is a
 * directory; snapshot TAG in it is the file DIR/TAG.migd-snap (the vmstate
 * node's holds the guest as a mapped-ram migration stream, the other
 * listed devices' an empty marker: migd has no disks). A save writes
 * DIR/.TAG.migd-snap.part and renames it into place when complete, so a
 * tag never names a half-written file.
 * Tags are hostile input: snapstore_check_tag() bounds them before any
 * path is built. Control thread only (the job's worker thread only uses
 * paths built here). */
#ifndef MIGD_CONTROL_SNAPSTORE_H
#define MIGD_CONTROL_SNAPSTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define SNAPSTORE_SUFFIX ".migd-snap"
#define SNAPSTORE_PART_SUFFIX ".part"
/* Longest tag: ".TAG.migd-snap.part" must fit NAME_MAX (255). */
#define SNAPSTORE_TAG_MAX 200
#define SNAPSTORE_NODE_NAME_MAX 31 /* QEMU's node names: 31 chars */

struct snapstore;

struct snapstore_node {
	char *name;
	char *dir;
};

struct snapstore *snapstore_new(void);
void snapstore_free(struct snapstore *s);

/* Declares node name with directory dir: the name must be a well-formed
 * id, unused, and dir an existing directory. 0 or -errno with *errp. */
int snapstore_add(struct snapstore *s, const char *name, const char *dir,
		  struct mig_error **errp);
const struct snapstore_node *snapstore_find(const struct snapstore *s,
					    const char *name);

/* A tag of len bytes (len from the JSON string: an embedded NUL is
 * refused): 1..SNAPSTORE_TAG_MAX bytes, no '/', no control characters,
 * not "." or "..". 0 or -EINVAL with *errp. */
int snapstore_check_tag(const char *tag, size_t len, struct mig_error **errp);

/* Paths of a checked tag in node n (malloc'd; NULL on out of memory). */
char *snapstore_path(const struct snapstore_node *n, const char *tag);
char *snapstore_part_path(const struct snapstore_node *n, const char *tag);

/* True when tag exists in n. */
bool snapstore_has(const struct snapstore_node *n, const char *tag);
/* Creates the empty marker of tag in n (exclusive). 0 or -errno. */
int snapstore_mark(const struct snapstore_node *n, const char *tag,
		   struct mig_error **errp);
/* Removes tag from n; a missing tag is fine (QEMU's delete). 0/-errno. */
int snapstore_remove(const struct snapstore_node *n, const char *tag,
		     struct mig_error **errp);

#endif
