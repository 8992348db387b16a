/* migdump_cur.c — migdump's bounds-checked input cursor and its error
 * messages ("offset N: ..."), plus a growing-array helper. Every length
 * is compared with what is left before anything is touched.
 * Single-threaded (one cursor per decode). */
#include "contrib/migdump_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multifd/byteorder.h"

void mdump_cur_init(struct mdump_cur *c, const uint8_t *buf, uint64_t size,
		    struct mig_error **errp, uint64_t *err_offset,
		    bool *truncated)
{
	memset(c, 0, sizeof(*c));
	c->buf = buf;
	c->size = size;
	c->limit = size;
	c->errp = errp;
	c->err_offset = err_offset;
	c->truncated = truncated;
}

static void set_error(struct mdump_cur *c, uint64_t off, bool truncated,
		      const char *fmt, va_list ap)
{
	char *msg;

	if (*c->errp)
		return; /* the first error is the one that matters */
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	mig_error_setg(c->errp, "offset %llu: %s", (unsigned long long)off,
		       msg);
	free(msg);
	*c->err_offset = off;
	*c->truncated = truncated;
}

int mdump_fail(struct mdump_cur *c, uint64_t off, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(c, off, false, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int short_msg(struct mdump_cur *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_error(c, c->limit, true, fmt, ap);
	va_end(ap);
	return -EPIPE;
}

int mdump_short(struct mdump_cur *c, const char *what)
{
	if (c->limit < c->size)
		return short_msg(c, "packaged data ends inside %s", what);
	return short_msg(c, "stream ends inside %s", what);
}

int mdump_short_before(struct mdump_cur *c, const char *what)
{
	return short_msg(c, "stream ends before %s", what);
}

int mdump_short_file(struct mdump_cur *c, const char *fmt, ...)
{
	char *what;
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (ret < 0)
		abort();
	if (!*c->errp) {
		mig_error_setg(c->errp, "offset %llu: stream ends inside %s",
			       (unsigned long long)c->size, what);
		*c->err_offset = c->size;
		*c->truncated = true;
	}
	free(what);
	return -EPIPE;
}

void mdump_trace(const struct mdump_opts *o, int lvl, uint64_t off,
		 const char *fmt, ...)
{
	va_list ap;

	if (!o->trace || o->verbose < lvl)
		return;
	fprintf(o->trace, "%10llu  ", (unsigned long long)off);
	va_start(ap, fmt);
	vfprintf(o->trace, fmt, ap);
	va_end(ap);
	fputc('\n', o->trace);
}

int mdump_get_bytes(struct mdump_cur *c, uint64_t n, const char *what,
		    const uint8_t **p)
{
	if (n > mdump_left(c)) {
		c->pos = c->limit;
		return mdump_short(c, what);
	}
	*p = c->buf + c->pos;
	c->pos += n;
	return 0;
}

int mdump_get_u8(struct mdump_cur *c, const char *what, uint8_t *v)
{
	const uint8_t *p = NULL;
	int ret = mdump_get_bytes(c, 1, what, &p);

	if (!ret)
		*v = p[0];
	return ret;
}

int mdump_get_be16(struct mdump_cur *c, const char *what, uint16_t *v)
{
	const uint8_t *p = NULL;
	int ret = mdump_get_bytes(c, 2, what, &p);

	if (!ret)
		*v = mfd_load_be16(p);
	return ret;
}

int mdump_get_be32(struct mdump_cur *c, const char *what, uint32_t *v)
{
	const uint8_t *p = NULL;
	int ret = mdump_get_bytes(c, 4, what, &p);

	if (!ret)
		*v = mfd_load_be32(p);
	return ret;
}

int mdump_get_be64(struct mdump_cur *c, const char *what, uint64_t *v)
{
	const uint8_t *p = NULL;
	int ret = mdump_get_bytes(c, 8, what, &p);

	if (!ret)
		*v = mfd_load_be64(p);
	return ret;
}

int mdump_get_str8(struct mdump_cur *c, const char *what,
		   char out[MDUMP_NAME_MAX], uint8_t *len)
{
	const uint8_t *p = NULL;
	uint8_t n;
	int ret;

	out[0] = '\0';
	ret = mdump_get_u8(c, what, &n);
	if (!ret)
		ret = mdump_get_bytes(c, n, what, &p);
	if (ret)
		return ret;
	memcpy(out, p, n);
	out[n] = '\0';
	if (len)
		*len = n;
	return 0;
}

int mdump_get_name(struct mdump_cur *c, const char *what, const char *field,
		   char out[MDUMP_NAME_MAX])
{
	char esc[4 * MDUMP_NAME_MAX];
	uint64_t off = c->pos;
	uint8_t len;
	int ret = mdump_get_str8(c, what, out, &len);

	if (ret)
		return ret;
	for (unsigned i = 0; i < len; i++) {
		if ((uint8_t)out[i] >= 0x20 && (uint8_t)out[i] < 0x7f)
			continue;
		mdump_escape((const uint8_t *)out, len, esc, sizeof(esc));
		out[0] = '\0';
		return mdump_fail(c, off + 1 + i,
				  "%s expected printable text, found '%s'",
				  field, esc);
	}
	if (!len) {
		return mdump_fail(c, off,
				  "%s expected a non-empty name, found length "
				  "0",
				  field);
	}
	return 0;
}

void *mdump_grow(void **arr, size_t *n, size_t *cap, size_t elem)
{
	void *p;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		p = reallocarray(*arr, ncap, elem);
		if (!p)
			return NULL;
		*arr = p;
		*cap = ncap;
	}
	p = (char *)*arr + *n * elem;
	memset(p, 0, elem);
	(*n)++;
	return p;
}

size_t mdump_lower_bound(const uint32_t *order, size_t n, mdump_cmp_fn *cmp,
			 const void *ctx, const void *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp(ctx, order[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int mdump_order_insert(uint32_t **order, size_t n, size_t pos, uint32_t index)
{
	uint32_t *p = reallocarray(*order, n + 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	memmove(p + pos + 1, p + pos, (n - pos) * sizeof(*p));
	p[pos] = index;
	*order = p;
	return 0;
}
