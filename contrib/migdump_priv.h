/* migdump_priv.h — what migdump's decoders share: a bounds-checked cursor
 * over the input (every read is checked against the end, every error
 * names the offset of the first bad byte) and the main-stream decoding
 * state. Not part of migdump.h's API. Single-threaded. */
#ifndef MIGD_CONTRIB_MIGDUMP_PRIV_H
#define MIGD_CONTRIB_MIGDUMP_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "contrib/migdump.h"

struct mdump_cur {
	const uint8_t *buf;
	uint64_t size;	/* bytes in buf */
	uint64_t limit; /* readable end: size, or the end of a PACKAGED blob */
	uint64_t pos;
	struct mig_error **errp;
	uint64_t *err_offset;
	bool *truncated;
};

void mdump_cur_init(struct mdump_cur *c, const uint8_t *buf, uint64_t size,
		    struct mig_error **errp, uint64_t *err_offset,
		    bool *truncated);
/* "offset OFF: <fmt>"; returns -EINVAL. The first error wins. */
int mdump_fail(struct mdump_cur *c, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "offset <limit>: stream ends inside <what>"; returns -EPIPE. */
int mdump_short(struct mdump_cur *c, const char *what);
/* "offset <limit>: stream ends before <what>"; returns -EPIPE. */
int mdump_short_before(struct mdump_cur *c, const char *what);
/* "offset <size>: stream ends inside <fmt>", for items elsewhere in the
 * file (mapped-ram bitmaps and pages); returns -EPIPE. */
int mdump_short_file(struct mdump_cur *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline uint64_t mdump_left(const struct mdump_cur *c)
{
	return c->limit - c->pos;
}

/* Each read checks that the item is all there; what names the item for the
 * truncation message. */
int mdump_get_u8(struct mdump_cur *c, const char *what, uint8_t *v);
int mdump_get_be16(struct mdump_cur *c, const char *what, uint16_t *v);
int mdump_get_be32(struct mdump_cur *c, const char *what, uint32_t *v);
int mdump_get_be64(struct mdump_cur *c, const char *what, uint64_t *v);
/* Points *p at the next n bytes (in buf) and moves past them. */
int mdump_get_bytes(struct mdump_cur *c, uint64_t n, const char *what,
		    const uint8_t **p);
/* u8 length + text into out (NUL-terminated; *len gets the length). */
int mdump_get_str8(struct mdump_cur *c, const char *what,
		   char out[MDUMP_NAME_MAX], uint8_t *len);

/* A str8 name of printable ASCII, at least one byte long; field names it
 * in the error ("section idstr expected printable text, found ..."). */
int mdump_get_name(struct mdump_cur *c, const char *what, const char *field,
		   char out[MDUMP_NAME_MAX]);

/* Main-stream decoding state (migdump_stream.c, migdump_ram.c). */
struct mdump_dec {
	struct mdump_cur c;
	const struct mdump_opts *o;
	struct mdump_stream *s;
	bool ignore_shared, mapped_ram; /* options or the configuration */
	uint32_t page_bits;
	uint64_t page_size;
	long last_block; /* CONTINUE: the previous record's block, -1 none */
	unsigned depth;	 /* PACKAGED nesting */
};

/* The body of a ram section at the cursor, up to and including its EOS.
 * ev gets the record counts. */
int mdump_ram_section(struct mdump_dec *d, struct mdump_event *ev);
/* A device section ('timer', 'globalstate', others skipped to their
 * footer) at the cursor. */
int mdump_device_section(struct mdump_dec *d, struct mdump_event *ev,
			 const struct mdump_se *se);
/* Index of the block named name in s->blocks, -1 if none. */
long mdump_find_block(const struct mdump_stream *s, const char *name);
/* A verbose line, "<offset>  <text>", when o->verbose >= lvl. */
void mdump_trace(const struct mdump_opts *o, int lvl, uint64_t off,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Appends a zeroed element to a growing array; NULL when out of memory. */
void *mdump_grow(void **arr, size_t *n, size_t *cap, size_t elem);

/* Sorted indexes: order[0..n) holds indexes into some array, sorted by
 * a key; cmp(ctx, index, key) compares that entry's key with key. */
typedef int mdump_cmp_fn(const void *ctx, uint32_t index, const void *key);
/* The first position whose entry is not below key. */
size_t mdump_lower_bound(const uint32_t *order, size_t n, mdump_cmp_fn *cmp,
			 const void *ctx, const void *key);
/* Inserts index at pos (order grows by one). 0 or -ENOMEM. */
int mdump_order_insert(uint32_t **order, size_t n, size_t pos, uint32_t index);

#endif
