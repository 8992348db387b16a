/* migctl_args.c — command-line words to a QMP arguments object (see
 * migctl_args.h). Pure functions, any thread. */
#include "contrib/migctl_args.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* True for text shaped like a JSON number ("-12", "3.5e9"): such text must
 * not silently become a string when jansson cannot represent it. */
static bool looks_numeric(const char *s)
{
	if (*s == '-')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	return strspn(s, "0123456789.eE+-") == strlen(s);
}

json_t *mctl_value_parse(const char *text, struct mig_error **errp)
{
	json_error_t jerr;
	json_t *v;

	if (!*text)
		return json_string("");
	v = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (v)
		return v;
	if (looks_numeric(text)) {
		mig_error_setg(errp, "number '%s' is out of range", text);
		return NULL;
	}
	v = json_string(text);
	if (!v)
		mig_error_setg(errp, "value '%s' is not valid UTF-8", text);
	return v;
}

static json_t *parse_json_object(const char *text, struct mig_error **errp)
{
	json_error_t jerr;
	json_t *obj;

	obj = json_loads(text, 0, &jerr);
	if (!obj) {
		mig_error_setg(errp, "invalid JSON arguments: %s (column %d)",
			       jerr.text, jerr.column);
		return NULL;
	}
	if (!json_is_object(obj)) {
		mig_error_setg(errp, "JSON arguments must be an object");
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* Returns the object member name of parent, creating {} if absent. */
static json_t *child_object(json_t *parent, const char *name, const char *key,
			    size_t keylen, struct mig_error **errp)
{
	json_t *child = json_object_get(parent, name);

	if (child) {
		if (json_is_object(child))
			return child;
		mig_error_setg(errp,
			       "argument '%.*s' conflicts with an "
			       "earlier value for '%s'",
			       (int)keylen, key, name);
		return NULL;
	}
	child = json_object();
	if (!child || json_object_set_new(parent, name, child) < 0) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	return child;
}

/* Sets root[a][b][c] = value for key "a.b.c", stealing value. */
static int set_dotted(json_t *root, const char *key, size_t keylen,
		      json_t *value, struct mig_error **errp)
{
	char *path = strndup(key, keylen), *name, *dot;
	json_t *obj = root;
	int err = -EINVAL;

	if (!path)
		goto out;
	for (name = path; (dot = strchr(name, '.')); name = dot + 1) {
		*dot = '\0';
		if (!*name)
			break;
		obj = child_object(obj, name, key, keylen, errp);
		if (!obj)
			goto out;
		*dot = '.';
	}
	if (dot || !*name) {
		mig_error_setg(errp, "invalid argument name '%.*s'",
			       (int)keylen, key);
	} else if (json_object_get(obj, name)) {
		mig_error_setg(errp, "argument '%s' given twice", path);
	} else if (json_object_set(obj, name, value) == 0) {
		err = 0;
	}
out:
	if (err && errp && !*errp)
		mig_error_setg(errp, "out of memory");
	json_decref(value);
	free(path);
	return err;
}

static int add_key_value(json_t *root, const char *word,
			 struct mig_error **errp)
{
	const char *eq = strchr(word, '=');
	json_t *value;

	if (!eq) {
		mig_error_setg(errp, "argument '%s' is not KEY=VALUE%s", word,
			       word[0] == '{' ? " (JSON arguments must be "
						"the only argument)"
					      : "");
		return -EINVAL;
	}
	value = mctl_value_parse(eq + 1, errp);
	if (!value)
		return -EINVAL;
	return set_dotted(root, word, eq - word, value, errp);
}

json_t *mctl_args_parse(int argc, char *const argv[], struct mig_error **errp)
{
	json_t *root;
	int i;

	if (argc == 1 && argv[0][strspn(argv[0], " \t\n")] == '{')
		return parse_json_object(argv[0], errp);
	root = json_object();
	if (!root) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	for (i = 0; i < argc; i++) {
		if (add_key_value(root, argv[i], errp) < 0) {
			json_decref(root);
			return NULL;
		}
	}
	return root;
}
