/* stream_testutil.h — a byte-stream builder for tests that craft QEMU
 * migration streams (test_ram_load.c, test_loadvm_postcopy.c): append raw
 * bytes, u8, big-endian 16/32/64-bit values and u8-length strings. Test code
 * only: the functions are static, each test program gets its own copy. */
#ifndef MIGD_TESTS_STREAM_TESTUTIL_H
#define MIGD_TESTS_STREAM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multifd/byteorder.h"

struct sb {
	uint8_t *p;
	size_t len, cap;
};

static inline void sb_put(struct sb *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	if (n) /* d may be NULL for an empty payload */
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static inline void sb_u8(struct sb *b, uint8_t v)
{
	sb_put(b, &v, 1);
}

static inline void sb_be16(struct sb *b, uint16_t v)
{
	uint8_t t[2];

	mfd_store_be16(t, v);
	sb_put(b, t, 2);
}

static inline void sb_be32(struct sb *b, uint32_t v)
{
	uint8_t t[4];

	mfd_store_be32(t, v);
	sb_put(b, t, 4);
}

static inline void sb_be64(struct sb *b, uint64_t v)
{
	uint8_t t[8];

	mfd_store_be64(t, v);
	sb_put(b, t, 8);
}

static inline void sb_str8(struct sb *b, const char *s)
{
	sb_u8(b, (uint8_t)strlen(s));
	sb_put(b, s, strlen(s));
}

/* RAM records of the 'ram' section: a page filled with fill, or a ZERO
 * record; block NULL sets RAM_SAVE_FLAG_CONTINUE (same block as before). */
static inline void sb_page(struct sb *b, uint64_t off, const char *block,
			   uint8_t fill)
{
	uint8_t data[4096];

	memset(data, fill, sizeof(data));
	sb_be64(b, off | 0x08 | (block ? 0 : 0x20));
	if (block)
		sb_str8(b, block);
	sb_put(b, data, sizeof(data));
}

static inline void sb_zero(struct sb *b, uint64_t off, const char *block)
{
	sb_be64(b, off | 0x02 | (block ? 0 : 0x20));
	if (block)
		sb_str8(b, block);
	sb_u8(b, 0);
}

#endif
