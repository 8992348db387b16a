/* qapi.c — QMP argument readers with QEMU's input-visitor semantics and
 * messages (see qapi.h). Control thread only. */
#include "control/qapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MISSING "Parameter '%s' is missing"
#define MSG_TYPE "Invalid parameter type for '%s', expected: %s"
#define MSG_VALUE "Parameter '%s' expects %s"

void qapi_in_init(struct qapi_in *in, json_t *root)
{
	memset(in, 0, sizeof(*in));
	in->node = root;
}

void qapi_in_fini(struct qapi_in *in)
{
	free(in->consumed);
	in->consumed = NULL;
	in->nconsumed = in->capconsumed = 0;
}

int qapi_enum_lookup(const char *const *values, const char *s)
{
	for (int i = 0; values[i]; i++)
		if (!strcmp(values[i], s))
			return i;
	return -1;
}

/* Builds "a.b[2].c" by walking up the reader chain, as QEMU's full_name(). */
const char *qapi_full_name(struct qapi_in *in, const char *name, char *buf,
			   size_t len)
{
	char tmp[512];
	const char *cur = name;

	buf[0] = '\0';
	for (struct qapi_in *r = in; r; r = r->parent) {
		if (json_is_object(r->node))
			snprintf(tmp, sizeof(tmp), ".%s%s",
				 cur ? cur : "<anonymous>", buf);
		else
			snprintf(tmp, sizeof(tmp), "[%zu]%s",
				 r->index ? r->index - 1 : 0, buf);
		snprintf(buf, len, "%s", tmp);
		cur = r->name;
	}
	if (cur) {
		snprintf(tmp, sizeof(tmp), "%s%s", cur, buf);
		snprintf(buf, len, "%s", tmp);
	} else if (buf[0] == '.') {
		memmove(buf, buf + 1, strlen(buf));
	} else if (!buf[0]) {
		snprintf(buf, len, "<anonymous>");
	}
	return buf;
}

static bool mark_consumed(struct qapi_in *in, const char *key)
{
	for (size_t i = 0; i < in->nconsumed; i++)
		if (!strcmp(in->consumed[i], key))
			return true;
	if (in->nconsumed == in->capconsumed) {
		size_t cap = in->capconsumed ? in->capconsumed * 2 : 16;
		const char **n = realloc(in->consumed, cap * sizeof(*n));

		if (!n)
			return false;
		in->consumed = n;
		in->capconsumed = cap;
	}
	in->consumed[in->nconsumed++] = key;
	return true;
}

bool qapi_has(struct qapi_in *in, const char *name)
{
	if (json_is_array(in->node))
		return in->index < json_array_size(in->node);
	return json_object_get(in->node, name) != NULL;
}

/* Fetches (and consumes) the value for name, or the next list element. */
static json_t *get_value(struct qapi_in *in, const char *name,
			 struct mig_error **errp)
{
	char buf[512];
	json_t *v;

	if (json_is_array(in->node)) {
		v = json_array_get(in->node, in->index);
		in->index++;
		if (!v)
			mig_error_setg(
				errp, MSG_MISSING,
				qapi_full_name(in, NULL, buf, sizeof(buf)));
		return v;
	}
	if (!in->parent && !name) /* the root itself */
		return in->node;
	v = json_object_get(in->node, name);
	if (!v) {
		mig_error_setg(errp, MSG_MISSING,
			       qapi_full_name(in, name, buf, sizeof(buf)));
		return NULL;
	}
	/* Remember the JSON object's own key string: it outlives the reader. */
	{
		const char *key;
		json_t *val;

		json_object_foreach(in->node, key, val) {
			if (val == v && !strcmp(key, name)) {
				mark_consumed(in, key);
				break;
			}
		}
	}
	return v;
}

static bool type_error(struct qapi_in *in, const char *name,
		       const char *expected, struct mig_error **errp)
{
	char buf[512];

	mig_error_setg(errp, MSG_TYPE,
		       qapi_full_name(in, name, buf, sizeof(buf)), expected);
	return false;
}

bool qapi_read_str(struct qapi_in *in, const char *name, const char **out,
		   struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (!json_is_string(v))
		return type_error(in, name, "string", errp);
	*out = json_string_value(v);
	return true;
}

bool qapi_read_bool(struct qapi_in *in, const char *name, bool *out,
		    struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (!json_is_boolean(v))
		return type_error(in, name, "boolean", errp);
	*out = json_is_true(v);
	return true;
}

bool qapi_read_int(struct qapi_in *in, const char *name, int64_t *out,
		   struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (!json_is_integer(v))
		return type_error(in, name, "integer", errp);
	*out = json_integer_value(v);
	return true;
}

/* QEMU accepts negative integers for uint64 members (they wrap), and reports
 * any non-integer as "expects uint64". */
bool qapi_read_uint64(struct qapi_in *in, const char *name, uint64_t *out,
		      struct mig_error **errp)
{
	char buf[512];
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (!json_is_integer(v)) {
		mig_error_setg(errp, MSG_VALUE,
			       qapi_full_name(in, name, buf, sizeof(buf)),
			       "uint64");
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static bool read_uint_max(struct qapi_in *in, const char *name, uint64_t max,
			  const char *type, uint64_t *out,
			  struct mig_error **errp)
{
	if (!qapi_read_uint64(in, name, out, errp))
		return false;
	if (*out > max) {
		mig_error_setg(errp, MSG_VALUE, name ? name : "null", type);
		return false;
	}
	return true;
}

bool qapi_read_uint8(struct qapi_in *in, const char *name, uint8_t *out,
		     struct mig_error **errp)
{
	uint64_t v = 0;

	if (!read_uint_max(in, name, UINT8_MAX, "uint8_t", &v, errp))
		return false;
	*out = (uint8_t)v;
	return true;
}

bool qapi_read_uint16(struct qapi_in *in, const char *name, uint16_t *out,
		      struct mig_error **errp)
{
	uint64_t v = 0;

	if (!read_uint_max(in, name, UINT16_MAX, "uint16_t", &v, errp))
		return false;
	*out = (uint16_t)v;
	return true;
}

bool qapi_read_uint32(struct qapi_in *in, const char *name, uint32_t *out,
		      struct mig_error **errp)
{
	uint64_t v = 0;

	if (!read_uint_max(in, name, UINT32_MAX, "uint32_t", &v, errp))
		return false;
	*out = (uint32_t)v;
	return true;
}

bool qapi_read_int32(struct qapi_in *in, const char *name, int32_t *out,
		     struct mig_error **errp)
{
	int64_t v = 0;

	if (!qapi_read_int(in, name, &v, errp))
		return false;
	if (v < INT32_MIN || v > INT32_MAX) {
		mig_error_setg(errp, MSG_VALUE, name ? name : "null",
			       "int32_t");
		return false;
	}
	*out = (int32_t)v;
	return true;
}

bool qapi_read_number(struct qapi_in *in, const char *name, double *out,
		      struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (!json_is_number(v))
		return type_error(in, name, "number", errp);
	*out = json_number_value(v);
	return true;
}

bool qapi_read_enum(struct qapi_in *in, const char *name,
		    const char *const *values, int *out,
		    struct mig_error **errp)
{
	const char *s = NULL;
	int idx;

	if (!qapi_read_str(in, name, &s, errp))
		return false;
	idx = qapi_enum_lookup(values, s);
	if (idx < 0) {
		mig_error_setg(errp,
			       "Parameter '%s' does not accept value '%s'",
			       name ? name : "null", s);
		return false;
	}
	*out = idx;
	return true;
}

bool qapi_read_str_or_null(struct qapi_in *in, const char *name,
			   const char **out, struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	if (json_is_null(v)) {
		*out = NULL;
		return true;
	}
	if (!json_is_string(v)) { /* QEMU's alternates print the bare name */
		mig_error_setg(errp, MSG_TYPE, name ? name : "null",
			       "StrOrNull");
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool qapi_read_any(struct qapi_in *in, const char *name, json_t **out,
		   struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	if (!v)
		return false;
	*out = v;
	return true;
}

static bool start_container(struct qapi_in *in, const char *name,
			    struct qapi_in *child, bool want_object,
			    struct mig_error **errp)
{
	json_t *v = get_value(in, name, errp);

	memset(child, 0, sizeof(*child));
	if (!v)
		return false;
	if (want_object ? !json_is_object(v) : !json_is_array(v))
		return type_error(in, name, want_object ? "object" : "array",
				  errp);
	child->parent = in;
	child->node = v;
	child->name = name;
	return true;
}

bool qapi_start_struct(struct qapi_in *in, const char *name,
		       struct qapi_in *child, struct mig_error **errp)
{
	return start_container(in, name, child, true, errp);
}

bool qapi_start_list(struct qapi_in *in, const char *name,
		     struct qapi_in *child, struct mig_error **errp)
{
	return start_container(in, name, child, false, errp);
}

bool qapi_check_struct(struct qapi_in *in, struct mig_error **errp)
{
	char buf[512];
	const char *key;
	json_t *val;

	json_object_foreach(in->node, key, val) {
		bool seen = false;

		(void)val;
		for (size_t i = 0; i < in->nconsumed && !seen; i++)
			seen = !strcmp(in->consumed[i], key);
		if (!seen) {
			mig_error_setg(
				errp, "Parameter '%s' is unexpected",
				qapi_full_name(in, key, buf, sizeof(buf)));
			return false;
		}
	}
	return true;
}

bool qapi_no_args(json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	bool ok;

	qapi_in_init(&in, args);
	ok = qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok;
}
