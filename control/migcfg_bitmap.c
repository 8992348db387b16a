/* migcfg_bitmap.c — validation of the block-bitmap-mapping parameter with
 * QEMU's rules and messages (alias syntax, name lengths, one-to-one in both
 * directions). migd migrates no bitmaps; the parameter is validated and
 * stored so that clients see QEMU's behaviour. Duplicates are found by
 * sorting, so a hostile list cannot make the check quadratic.
 * Control thread only. */
#include "control/migcfg_priv.h"

#include <stdlib.h>
#include <string.h>

#define ALIAS_MAX 255u	      /* aliases travel as one-byte counted strings */
#define NODE_NAME_MAX 31u     /* QEMU's BlockDriverState.node_name[32] */
#define BITMAP_NAME_MAX 1023u /* BDRV_BITMAP_MAX_NAME_SIZE */

struct keyed {
	const char *key;
	size_t idx;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* dup[i] is true when some j < i has the same key. NULL on OOM. */
static bool *dup_flags(const char *const *keys, size_t n)
{
	struct keyed *v = calloc(n ? n : 1, sizeof(*v));
	bool *dup = calloc(n ? n : 1, sizeof(*dup));

	if (!v || !dup) {
		free(v);
		free(dup);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = (struct keyed){keys[i], i};
	qsort(v, n, sizeof(*v), keyed_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcmp(v[i].key, v[i - 1].key))
			dup[v[i].idx] = true;
	free(v);
	return dup;
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'. */
static bool id_wellformed(const char *id)
{
	if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z')))
		return false;
	for (size_t i = 1; id[i]; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr("-._", c)))
			return false;
	}
	return true;
}

static const char *member_str(const json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));

	return s ? s : "";
}

/* Collects member `name` of every object in arr (arrays are validated). */
static const char **collect_keys(const json_t *arr, const char *name)
{
	size_t n = json_array_size(arr);
	const char **keys = calloc(n ? n : 1, sizeof(*keys));

	if (!keys)
		return NULL;
	for (size_t i = 0; i < n; i++)
		keys[i] = member_str(json_array_get(arr, i), name);
	return keys;
}

static bool *dup_of_member(const json_t *arr, const char *name)
{
	const char **keys = collect_keys(arr, name);
	bool *dup = keys ? dup_flags(keys, json_array_size(arr)) : NULL;

	free(keys);
	return dup;
}

static bool check_bitmaps(const json_t *node, bool name_to_alias,
			  struct mig_error **errp)
{
	const json_t *bitmaps = json_object_get(node, "bitmaps");
	bool *dup = dup_of_member(bitmaps, name_to_alias ? "name" : "alias");
	bool ok = false;

	if (!dup) {
		mig_error_setg(errp, "Out of memory");
		return false;
	}
	for (size_t i = 0; i < json_array_size(bitmaps); i++) {
		const json_t *b = json_array_get(bitmaps, i);
		const char *name = member_str(b, "name");
		const char *alias = member_str(b, "alias");

		if (strlen(alias) > ALIAS_MAX) {
			mig_error_setg(errp,
				       "The bitmap alias '%s' is longer "
				       "than %u bytes",
				       alias, ALIAS_MAX);
		} else if (strlen(name) > BITMAP_NAME_MAX) {
			mig_error_setg(errp,
				       "The bitmap name '%s' is longer "
				       "than %u bytes",
				       name, BITMAP_NAME_MAX);
		} else if (dup[i] && name_to_alias) {
			mig_error_setg(errp,
				       "The bitmap '%s'/'%s' is mapped "
				       "twice",
				       member_str(node, "node-name"), name);
		} else if (dup[i]) {
			mig_error_setg(errp,
				       "The bitmap alias '%s'/'%s' is "
				       "used twice",
				       member_str(node, "alias"), alias);
		} else {
			continue;
		}
		goto out;
	}
	ok = true;
out:
	free(dup);
	return ok;
}

static bool check_node(const json_t *node, bool dup, bool name_to_alias,
		       struct mig_error **errp)
{
	const char *name = member_str(node, "node-name");
	const char *alias = member_str(node, "alias");

	if (!id_wellformed(alias))
		mig_error_setg(errp, "The node alias '%s' is not well-formed",
			       alias);
	else if (strlen(alias) > ALIAS_MAX)
		mig_error_setg(errp,
			       "The node alias '%s' is longer than %u "
			       "bytes",
			       alias, ALIAS_MAX);
	else if (strlen(name) > NODE_NAME_MAX)
		mig_error_setg(errp,
			       "The node name '%s' is longer than %u "
			       "bytes",
			       name, NODE_NAME_MAX);
	else if (dup && name_to_alias)
		mig_error_setg(errp, "The node name '%s' is mapped twice",
			       name);
	else if (dup)
		mig_error_setg(errp, "The node alias '%s' is used twice",
			       alias);
	else
		return check_bitmaps(node, name_to_alias, errp);
	return false;
}

/* One direction of QEMU's alias map construction. */
static bool check_direction(const json_t *map, bool name_to_alias,
			    struct mig_error **errp)
{
	bool *dup = dup_of_member(map, name_to_alias ? "node-name" : "alias");
	bool ok = true;

	if (!dup) {
		mig_error_setg(errp, "Out of memory");
		return false;
	}
	for (size_t i = 0; ok && i < json_array_size(map); i++)
		ok = check_node(json_array_get(map, i), dup[i], name_to_alias,
				errp);
	free(dup);
	return ok;
}

bool migcfg_bitmap_map_check(const json_t *map, struct mig_error **errp)
{
	return check_direction(map, true, errp) &&
	       check_direction(map, false, errp);
}
