/* opts.h — QEMU's "key=value,key=value" option strings (keyval syntax):
 * ",," stands for a literal comma inside a value, and the first element may
 * omit "key=" when the option has an implied key ("-m 2G" = "-m size=2G").
 * Owns parsing and typed reading of one string; knows nothing about which
 * keys an option accepts. Any thread; an opts value is owned by its caller. */
#ifndef MIGD_UTIL_OPTS_H
#define MIGD_UTIL_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct opts_item {
	char *key;
	char *value;
	bool used; /* read by an opts_get*() call */
};

struct opts {
	struct opts_item *items; /* in input order; duplicates kept */
	size_t n;
};

/* Parses str. implied_key may be NULL. Returns NULL with *errp set on a
 * syntax error, using QEMU's messages ("Expected '=' after parameter 'x'",
 * "Invalid parameter 'x'"). */
struct opts *opts_parse(const char *str, const char *implied_key,
			struct mig_error **errp);
void opts_free(struct opts *o);

/* The value of key (the last one wins when repeated, as in QEMU), or NULL.
 * Marks every occurrence as used. */
const char *opts_get(struct opts *o, const char *key);
bool opts_has(const struct opts *o, const char *key);

/* Typed readers. Each returns true and leaves *out alone when key is absent
 * (so callers preset defaults), true with *out set when valid, and false
 * with *errp set ("Parameter 'key' expects ...") otherwise. */
bool opts_get_bool(struct opts *o, const char *key, bool *out,
		   struct mig_error **errp);
bool opts_get_size(struct opts *o, const char *key, char default_suffix,
		   uint64_t *out, struct mig_error **errp);
bool opts_get_uint(struct opts *o, const char *key, uint64_t *out,
		   struct mig_error **errp);

/* First key nobody read, or NULL: the caller reports it with its own
 * wording ("Property 'memory-backend-ram.x' not found"). */
const char *opts_first_unused(const struct opts *o);

/* QEMU's boolean spellings: on/yes/true/y and off/no/false/n. */
bool opts_parse_bool(const char *s, bool *out);

#endif
