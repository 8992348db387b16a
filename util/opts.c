/* opts.c — parser for QEMU's key=value option strings (see opts.h).
 * A string is parsed once into an array of owned key/value copies; typed
 * readers work on that array. Pure, any thread. */
#include "util/opts.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/size.h"

static bool is_key_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

static int add_item(struct opts *o, char *key, char *value)
{
	struct opts_item *items;

	items = realloc(o->items, (o->n + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	o->items = items;
	o->items[o->n++] = (struct opts_item){key, value, false};
	return 0;
}

/* Copies a value up to a single ',' (",," is a literal comma); *pp ends on
 * the terminating ',' or NUL. */
static char *read_value(const char **pp)
{
	const char *p = *pp;
	char *val = malloc(strlen(p) + 1), *q = val;

	if (!val)
		return NULL;
	while (*p) {
		if (*p == ',') {
			if (p[1] != ',')
				break;
			p++;
		}
		*q++ = *p++;
	}
	*q = '\0';
	*pp = p;
	return val;
}

/* Reports a key that is not followed by '='. */
static void key_error(const char *key, size_t keylen, const char *after,
		      struct mig_error **errp)
{
	size_t bad = strcspn(after, ",=");

	if (keylen && (!*after || *after == ','))
		mig_error_setg(errp, "Expected '=' after parameter '%.*s'",
			       (int)keylen, key);
	else
		mig_error_setg(errp, "Invalid parameter '%.*s'",
			       (int)(keylen + bad), key);
}

/* Parses one element at *pp. first/implied_key: the implied-key rule. */
static int parse_element(struct opts *o, const char **pp, bool first,
			 const char *implied_key, struct mig_error **errp)
{
	const char *key = *pp, *p = *pp;
	char *k, *v;
	size_t keylen;

	while (is_key_char(*p))
		p++;
	keylen = (size_t)(p - key);
	if (*p == '=' && keylen) {
		p++;
	} else if (first && implied_key) {
		p = key;
		keylen = 0;
	} else {
		key_error(key, keylen, p, errp);
		return -EINVAL;
	}
	k = keylen ? strndup(key, keylen) : strdup(implied_key);
	v = read_value(&p);
	if (!k || !v || add_item(o, k, v) < 0) {
		free(k);
		free(v);
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	*pp = p;
	return 0;
}

struct opts *opts_parse(const char *str, const char *implied_key,
			struct mig_error **errp)
{
	struct opts *o = calloc(1, sizeof(*o));
	const char *p = str;
	bool first = true;

	if (!o) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	while (p && *p) {
		if (parse_element(o, &p, first, implied_key, errp) < 0)
			goto err_free;
		first = false;
		if (*p == ',')
			p++;
	}
	return o;

err_free:
	opts_free(o);
	return NULL;
}

void opts_free(struct opts *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++) {
		free(o->items[i].key);
		free(o->items[i].value);
	}
	free(o->items);
	free(o);
}

const char *opts_get(struct opts *o, const char *key)
{
	const char *val = NULL;

	for (size_t i = 0; i < o->n; i++) {
		if (strcmp(o->items[i].key, key) == 0) {
			o->items[i].used = true;
			val = o->items[i].value;
		}
	}
	return val;
}

bool opts_has(const struct opts *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->items[i].key, key) == 0)
			return true;
	return false;
}

bool opts_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "yes", "true", "y"};
	static const char *const no[] = {"off", "no", "false", "n"};

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool opts_get_bool(struct opts *o, const char *key, bool *out,
		   struct mig_error **errp)
{
	const char *s = opts_get(o, key);

	if (!s)
		return true;
	if (opts_parse_bool(s, out))
		return true;
	mig_error_setg(errp, "Parameter '%s' expects 'on' or 'off'", key);
	return false;
}

bool opts_get_size(struct opts *o, const char *key, char default_suffix,
		   uint64_t *out, struct mig_error **errp)
{
	const char *s = opts_get(o, key);

	if (!s)
		return true;
	if (size_parse(s, default_suffix, out) == 0)
		return true;
	mig_error_setg(errp, "Parameter '%s' expects size", key);
	return false;
}

bool opts_get_uint(struct opts *o, const char *key, uint64_t *out,
		   struct mig_error **errp)
{
	const char *s = opts_get(o, key);
	unsigned long long v;
	char *end;

	if (!s)
		return true;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (!isdigit((unsigned char)*s) || *end || errno) {
		mig_error_setg(errp, "Parameter '%s' expects a number", key);
		return false;
	}
	*out = v;
	return true;
}

const char *opts_first_unused(const struct opts *o)
{
	for (size_t i = 0; i < o->n; i++)
		if (!o->items[i].used)
			return o->items[i].key;
	return NULL;
}
