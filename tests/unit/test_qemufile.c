/* test_qemufile.c — the buffered stream (multifd/qemufile.c) over an
 * in-memory test channel: literal big-endian bytes of every put, put_ram
 * ordering and iovec limits, sticky write errors, reader round trips, EOF
 * codes, direct reads larger than the buffer, read-ahead bounds, str8. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "multifd/qemufile.h"
#include "socket/channel.h"

/* A channel over one growing byte array: writes append, reads consume. */
struct mem_chan {
	struct channel ch; /* first: the ops get &ch */
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t rpos;
	size_t max_io;	/* bytes per call at most (0: no limit) */
	int write_err;	/* writev fails with this when set */
	int read_err;	/* readv fails with this when set */
	size_t overrun; /* readv claims this many bytes too many */
	int writev_calls;
	int readv_calls;
	int max_iovcnt;
};

static struct mem_chan *mem_of(struct channel *ch)
{
	return (struct mem_chan *)ch;
}

static size_t cap_io(const struct mem_chan *m, size_t n)
{
	return m->max_io && n > m->max_io ? m->max_io : n;
}

static ssize_t mem_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	struct mem_chan *m = mem_of(ch);
	size_t total = 0;

	m->writev_calls++;
	if (iovcnt > m->max_iovcnt)
		m->max_iovcnt = iovcnt;
	assert_true(iovcnt <= QFILE_MAX_IOV);
	if (m->write_err)
		return m->write_err;
	for (int i = 0; i < iovcnt; i++) {
		size_t n = cap_io(m, total + iov[i].iov_len) - total;

		if (m->len + n > m->cap) {
			m->cap = (m->len + n) * 2;
			m->data = realloc(m->data, m->cap);
			assert_non_null(m->data);
		}
		memcpy(m->data + m->len, iov[i].iov_base, n);
		m->len += n;
		total += n;
		if (n < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

static ssize_t mem_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct mem_chan *m = mem_of(ch);
	size_t total = 0;

	m->readv_calls++;
	if (m->read_err)
		return m->read_err;
	for (int i = 0; i < iovcnt && m->rpos < m->len; i++) {
		size_t n = iov[i].iov_len;

		if (n > m->len - m->rpos)
			n = m->len - m->rpos;
		n = cap_io(m, total + n) - total;
		memcpy(iov[i].iov_base, m->data + m->rpos, n);
		m->rpos += n;
		total += n;
		if (n < iov[i].iov_len)
			break;
	}
	return (ssize_t)(total + m->overrun);
}

static void mem_shutdown(struct channel *ch)
{
}

static void mem_close(struct channel *ch)
{
}

static const struct channel_ops mem_ops = {
	.name = "mem",
	.writev = mem_writev,
	.readv = mem_readv,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

static struct mem_chan *mem_new(void)
{
	struct mem_chan *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->ch.ops = &mem_ops;
	m->ch.fd = -1;
	return m;
}

static void mem_set(struct mem_chan *m, const void *data, size_t len)
{
	free(m->data);
	m->data = malloc(len ? len : 1);
	assert_non_null(m->data);
	if (len)
		memcpy(m->data, data, len);
	m->len = m->cap = len;
	m->rpos = 0;
}

static void mem_free(struct mem_chan *m)
{
	free(m->data);
	free(m);
}

static void fill_pattern(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

/* ---- writer ---- */

static void test_put_literal_bytes(void **state)
{
	static const uint8_t want[] = {
		0xab,						/* u8 */
		0x12, 0x34,					/* be16 */
		0x11, 0x22, 0x33, 0x44,				/* be32 */
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* be64 */
		'x',  'y',  'z',				/* buffer */
		3,    'r',  'a',  'm',				/* str8 */
		0,						/* empty str8 */
		0xde, 0xad,					/* ram */
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	};
	static const uint8_t ram[] = {0xde, 0xad};
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);

	assert_non_null(f);
	assert_ptr_equal(qfile_channel(f), &m->ch);
	qfile_put_u8(f, 0xab);
	qfile_put_be16(f, 0x1234);
	qfile_put_be32(f, 0x11223344);
	qfile_put_be64(f, 0x0102030405060708ull);
	qfile_put_buffer(f, "xyz", 3);
	qfile_put_str8(f, "ram");
	qfile_put_str8(f, "");
	qfile_put_ram(f, ram, sizeof(ram));
	qfile_put_be64(f, 0xfffffffffffffffeull);
	assert_int_equal(qfile_pos(f), sizeof(want));
	assert_int_equal(m->len, 0); /* nothing sent before the flush */
	assert_int_equal(qfile_flush(f), 0);
	assert_int_equal(m->len, sizeof(want));
	assert_memory_equal(m->data, want, sizeof(want));
	assert_int_equal(m->writev_calls, 1);
	assert_int_equal(qfile_flush(f), 0); /* nothing left: no write */
	assert_int_equal(m->writev_calls, 1);
	qfile_free(f);
	mem_free(m);
}

/* be64 header + page, as the single-stream RAM path puts them. */
static void test_put_ram_interleaved_order(void **state)
{
	enum { PAGES = 5, PAGE = 4096 };
	uint8_t *ram = malloc(PAGES * PAGE);
	uint8_t *want = malloc(PAGES * (PAGE + 8) + 1);
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);
	size_t off = 0;

	fill_pattern(ram, PAGES * PAGE, 1);
	for (int i = 0; i < PAGES; i++) {
		int page = (i * 3) % PAGES; /* not in address order */

		qfile_put_be64(f, (uint64_t)page * PAGE | 0x8);
		qfile_put_ram(f, ram + page * PAGE, PAGE);
		memset(want + off, 0, 8);
		want[off + 6] = (uint8_t)((page * PAGE) >> 8);
		want[off + 7] = 0x08;
		memcpy(want + off + 8, ram + page * PAGE, PAGE);
		off += PAGE + 8;
	}
	qfile_put_u8(f, 0x42);
	want[off++] = 0x42;
	/* By reference: what is sent is what RAM holds at the flush. */
	ram[0] ^= 0xff;
	want[(PAGE + 8) * 0 + 8] ^= 0xff; /* page 0 went first */
	assert_int_equal(qfile_flush(f), 0);
	assert_int_equal(m->len, off);
	assert_memory_equal(m->data, want, off);
	assert_int_equal(qfile_pos(f), off);
	qfile_free(f);
	mem_free(m);
	free(ram);
	free(want);
}

/* Adjacent RAM pieces share one iovec; > 64 separate ones flush early. */
static void test_put_ram_many_iovecs(void **state)
{
	enum { PAGES = 300, PAGE = 4096 };
	uint8_t *ram = malloc(PAGES * PAGE);
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);
	size_t off = 0;

	fill_pattern(ram, PAGES * PAGE, 2);
	for (int i = 0; i < PAGES; i++) {
		qfile_put_be64(f, (uint64_t)i);
		qfile_put_ram(f, ram + i * PAGE, PAGE);
	}
	/* 600 iovecs: at least 10 writes, none above the limit. */
	assert_true(m->writev_calls >= 9);
	assert_int_equal(qfile_flush(f), 0);
	assert_true(m->writev_calls >= 10);
	assert_true(m->max_iovcnt <= QFILE_MAX_IOV);
	assert_int_equal(m->len, (size_t)PAGES * (PAGE + 8));
	for (int i = 0; i < PAGES; i++) {
		const uint8_t *rec = m->data + off;

		assert_int_equal(rec[7], (uint8_t)i);
		assert_memory_equal(rec + 8, ram + i * PAGE, PAGE);
		off += PAGE + 8;
	}
	/* Contiguous pieces without puts between them merge. */
	m->writev_calls = 0;
	m->max_iovcnt = 0;
	for (int i = 0; i < PAGES; i++)
		qfile_put_ram(f, ram + i * PAGE, PAGE);
	assert_int_equal(qfile_flush(f), 0);
	assert_int_equal(m->writev_calls, 1);
	assert_int_equal(m->max_iovcnt, 1);
	qfile_free(f);
	mem_free(m);
	free(ram);
}

/* More than the buffer in small puts and in one put_buffer; short writes
 * from the transport are retried. */
static void test_put_buffer_wraps(void **state)
{
	enum { LEN = 3 * QFILE_BUF_SIZE + 123 };
	uint8_t *src = malloc(LEN);
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);

	m->max_io = 1000;
	fill_pattern(src, LEN, 3);
	qfile_put_buffer(f, src, LEN);
	assert_true(m->len >= 3 * QFILE_BUF_SIZE);
	for (int i = 0; i < 5000; i++)
		qfile_put_be64(f, (uint64_t)i << 32 | (uint64_t)i);
	assert_int_equal(qfile_flush(f), 0);
	assert_int_equal(m->len, LEN + 5000 * 8);
	assert_memory_equal(m->data, src, LEN);
	for (int i = 0; i < 5000; i++) {
		const uint8_t *p = m->data + LEN + 8 * i;

		/* be32(i) twice: 00 00 hi lo 00 00 hi lo */
		assert_int_equal(p[0] | p[1] | p[4] | p[5], 0);
		assert_int_equal(p[2], (uint8_t)(i >> 8));
		assert_int_equal(p[3], (uint8_t)i);
		assert_int_equal(p[6], (uint8_t)(i >> 8));
		assert_int_equal(p[7], (uint8_t)i);
	}
	assert_int_equal(qfile_pos(f), LEN + 5000 * 8);
	qfile_free(f);
	mem_free(m);
	free(src);
}

static void test_flush_error_sticky(void **state)
{
	static const uint8_t page[4096];
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);

	assert_int_equal(qfile_error(f), 0);
	qfile_put_be32(f, 1);
	m->write_err = -ECONNRESET;
	assert_int_equal(qfile_flush(f), -ECONNRESET);
	assert_int_equal(qfile_error(f), -ECONNRESET);
	/* The transport recovers, the writer does not; a later error does
	 * not replace the first, and puts keep counting and flushing. */
	m->write_err = 0;
	for (int i = 0; i < 200; i++) {
		qfile_put_be64(f, i);
		qfile_put_ram(f, page, sizeof(page));
	}
	qfile_put_buffer(f, page, sizeof(page));
	assert_int_equal(qfile_flush(f), -ECONNRESET);
	assert_int_equal(m->len, 0);
	qfile_put_str8(f, NULL);
	assert_int_equal(qfile_error(f), -ECONNRESET);
	assert_int_equal(qfile_pos(f), 4 + 200 * (8 + 4096) + 4096);
	qfile_free(f);
	mem_free(m);
}

static void test_str8_too_long(void **state)
{
	char s[257];
	struct mem_chan *m = mem_new();
	struct qfile *f = qfile_writer_new(&m->ch);

	memset(s, 'a', 256);
	s[256] = '\0';
	qfile_put_u8(f, 7);
	qfile_put_str8(f, s); /* 256: too long, nothing put */
	assert_int_equal(qfile_error(f), -EINVAL);
	assert_int_equal(qfile_pos(f), 1);
	assert_int_equal(qfile_flush(f), -EINVAL);
	assert_int_equal(m->len, 0);
	qfile_free(f);
	mem_free(m);
}

/* ---- reader ---- */

static struct qfile *reader_on(struct mem_chan *m, const void *data, size_t len)
{
	struct qfile *f;

	mem_set(m, data, len);
	f = qfile_reader_new(&m->ch);
	assert_non_null(f);
	return f;
}

static void roundtrip_all(size_t max_io)
{
	static const uint8_t ram[3] = {9, 8, 7};
	struct mem_chan *m = mem_new();
	struct qfile *w = qfile_writer_new(&m->ch);
	struct qfile *r = qfile_reader_new(&m->ch);
	uint8_t u8, buf[3];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	char s[256];

	qfile_put_u8(w, 0xfe);
	qfile_put_be16(w, 0xbeef);
	qfile_put_be32(w, 0xdeadbeef);
	qfile_put_be64(w, 0x8000000000000001ull);
	qfile_put_str8(w, "timer");
	qfile_put_ram(w, ram, sizeof(ram));
	qfile_put_buffer(w, "abc", 3);
	assert_int_equal(qfile_flush(w), 0);
	m->max_io = max_io;
	assert_int_equal(qfile_peek_u8(r, &u8), 0);
	assert_int_equal(u8, 0xfe);
	assert_int_equal(qfile_pos(r), 0);
	assert_int_equal(qfile_get_u8(r, &u8), 0);
	assert_int_equal(u8, 0xfe);
	assert_int_equal(qfile_get_be16(r, &u16), 0);
	assert_int_equal(u16, 0xbeef);
	assert_int_equal(qfile_get_be32(r, &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(qfile_get_be64(r, &u64), 0);
	assert_true(u64 == 0x8000000000000001ull);
	assert_int_equal(qfile_get_str8(r, s), 0);
	assert_string_equal(s, "timer");
	assert_int_equal(qfile_get_buffer(r, buf, 3), 0);
	assert_memory_equal(buf, ram, 3);
	assert_int_equal(qfile_skip(r, 2), 0);
	assert_int_equal(qfile_get_u8(r, &u8), 0);
	assert_int_equal(u8, 'c');
	assert_int_equal(qfile_pos(r), qfile_pos(w));
	assert_int_equal(qfile_get_u8(r, &u8), -EPIPE);
	assert_int_equal(qfile_flush(r), -EINVAL);
	qfile_free(w);
	qfile_free(r);
	mem_free(m);
}

static void test_get_roundtrip(void **state)
{
	roundtrip_all(0);
}

/* A transport that returns one byte per call still decodes. */
static void test_get_roundtrip_bytewise(void **state)
{
	roundtrip_all(1);
}

/* End of stream before the first byte of an item: -EPIPE. */
static void test_get_eof_clean(void **state)
{
	struct mem_chan *m = mem_new();
	struct qfile *f = reader_on(m, NULL, 0);
	uint8_t u8, buf[10];
	uint16_t u16;
	uint64_t u64;
	char s[256];

	assert_int_equal(qfile_get_u8(f, &u8), -EPIPE);
	assert_int_equal(qfile_peek_u8(f, &u8), -EPIPE);
	assert_int_equal(qfile_get_be16(f, &u16), -EPIPE);
	assert_int_equal(qfile_get_be64(f, &u64), -EPIPE);
	assert_int_equal(qfile_get_buffer(f, buf, 10), -EPIPE);
	assert_int_equal(qfile_get_buffer(f, NULL, 0), 0);
	assert_int_equal(qfile_skip(f, 1), -EPIPE);
	assert_int_equal(qfile_get_str8(f, s), -EPIPE);
	qfile_free(f);
	mem_free(m);
}

enum eof_op {
	EOF_BE16_AFTER_U8,
	EOF_BE32,
	EOF_BE64,
	EOF_BUF3,
	EOF_SKIP3,
	EOF_PEEK_BUF100
};

/* Two bytes, then the end of the stream, inside the item: -EPROTO. */
static int eof_after_two(struct mem_chan *m, enum eof_op op)
{
	static const uint8_t two[] = {0x12, 0x34};
	struct qfile *f = reader_on(m, two, sizeof(two));
	uint8_t u8, buf[100];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	int ret = -1;

	switch (op) {
	case EOF_BE16_AFTER_U8:
		assert_int_equal(qfile_get_u8(f, &u8), 0);
		ret = qfile_get_be16(f, &u16);
		break;
	case EOF_BE32:
		ret = qfile_get_be32(f, &u32);
		break;
	case EOF_BE64:
		ret = qfile_get_be64(f, &u64);
		break;
	case EOF_BUF3:
		ret = qfile_get_buffer(f, buf, 3);
		break;
	case EOF_SKIP3:
		ret = qfile_skip(f, 3);
		break;
	case EOF_PEEK_BUF100: /* part buffered, rest missing on direct read */
		assert_int_equal(qfile_peek_u8(f, &u8), 0);
		ret = qfile_get_buffer(f, buf, 100);
		break;
	}
	qfile_free(f);
	return ret;
}

static void test_get_eof_inside_item(void **state)
{
	static const uint8_t str_len_only[] = {5, 'a', 'b'};
	struct mem_chan *m = mem_new();
	struct qfile *f;
	char s[256];

	for (int op = EOF_BE16_AFTER_U8; op <= EOF_PEEK_BUF100; op++)
		assert_int_equal(eof_after_two(m, op), -EPROTO);
	f = reader_on(m, str_len_only, sizeof(str_len_only));
	assert_int_equal(qfile_get_str8(f, s), -EPROTO);
	assert_string_equal(s, "");
	qfile_free(f);
	f = reader_on(m, str_len_only, 1); /* the length alone */
	assert_int_equal(qfile_get_str8(f, s), -EPROTO);
	qfile_free(f);
	mem_free(m);
}

static void test_get_transport_errors(void **state)
{
	static const uint8_t data[16] = {1, 2, 3};
	struct mem_chan *m = mem_new();
	struct qfile *f = reader_on(m, data, sizeof(data));
	uint8_t buf[64];
	uint64_t u64;

	m->read_err = -ECONNRESET;
	assert_int_equal(qfile_get_be64(f, &u64), -ECONNRESET);
	assert_int_equal(qfile_get_buffer(f, buf, 64), -ECONNRESET);
	m->read_err = 0; /* not sticky: the caller decides */
	assert_int_equal(qfile_get_be64(f, &u64), 0);
	assert_true(u64 == 0x0102030000000000ull);
	qfile_free(f);
	/* A transport claiming more than it was asked for is refused. */
	f = reader_on(m, data, sizeof(data));
	m->overrun = 2 * QFILE_BUF_SIZE;
	assert_int_equal(qfile_get_u8(f, buf), -EIO);
	qfile_free(f);
	f = reader_on(m, data, sizeof(data));
	m->overrun = 2 * QFILE_BUF_SIZE;
	assert_int_equal(qfile_get_buffer(f, buf, 64), -EIO);
	qfile_free(f);
	mem_free(m);
}

/* A get_buffer larger than the buffer reads straight into the
 * destination; the data after it is read ahead by at most one buffer. */
static void test_get_buffer_large(void **state)
{
	enum { BIG = 5 * QFILE_BUF_SIZE + 17, TOTAL = 1 << 20 };
	uint8_t *src = malloc(TOTAL), *dst = malloc(BIG);
	struct mem_chan *m = mem_new();
	struct qfile *f = reader_on(m, NULL, 0);
	uint64_t u64, want;
	uint8_t u8;

	fill_pattern(src, TOTAL, 4);
	mem_set(m, src, TOTAL);
	assert_int_equal(qfile_get_u8(f, &u8), 0);
	assert_int_equal(u8, src[0]);
	assert_int_equal(m->rpos, QFILE_BUF_SIZE); /* one refill */
	assert_int_equal(qfile_get_buffer(f, dst, BIG), 0);
	assert_memory_equal(dst, src + 1, BIG);
	/* 1 refill + the direct read (which also refills the buffer). */
	assert_int_equal(m->readv_calls, 2);
	assert_true(m->rpos <= 1 + (size_t)BIG + QFILE_BUF_SIZE);
	assert_int_equal(qfile_get_be64(f, &u64), 0);
	want = 0;
	for (int i = 0; i < 8; i++)
		want = want << 8 | src[1 + BIG + i];
	assert_true(u64 == want);
	assert_int_equal(qfile_pos(f), 1 + BIG + 8);
	assert_int_equal(m->readv_calls, 2); /* came from the read-ahead */
	/* The same with a transport that returns 3000 bytes per call. */
	qfile_free(f);
	f = reader_on(m, src, TOTAL);
	m->max_io = 3000;
	assert_int_equal(qfile_skip(f, 10), 0);
	assert_int_equal(qfile_get_buffer(f, dst, BIG), 0);
	assert_memory_equal(dst, src + 10, BIG);
	assert_true(m->rpos <= 10 + (size_t)BIG + QFILE_BUF_SIZE);
	assert_int_equal(qfile_skip(f, TOTAL - 10 - BIG), 0);
	assert_int_equal(qfile_get_u8(f, &u8), -EPIPE);
	qfile_free(f);
	mem_free(m);
	free(src);
	free(dst);
}

/* A small get never reads more than one buffer ahead. */
static void test_get_readahead_bound(void **state)
{
	enum { TOTAL = 4 * QFILE_BUF_SIZE };
	uint8_t *src = calloc(1, TOTAL);
	struct mem_chan *m = mem_new();
	struct qfile *f = reader_on(m, src, TOTAL);
	uint32_t u32;
	uint8_t u8;

	assert_int_equal(qfile_get_be32(f, &u32), 0);
	assert_int_equal(m->rpos, QFILE_BUF_SIZE);
	assert_int_equal(qfile_skip(f, QFILE_BUF_SIZE - 6), 0);
	assert_int_equal(m->rpos, QFILE_BUF_SIZE);
	/* 2 bytes left in the buffer: be32 moves them and refills. */
	assert_int_equal(qfile_get_be32(f, &u32), 0);
	assert_int_equal(m->rpos, 2 * QFILE_BUF_SIZE - 2);
	assert_int_equal(qfile_peek_u8(f, &u8), 0);
	assert_int_equal(m->readv_calls, 2);
	qfile_free(f);
	mem_free(m);
	free(src);
}

static void test_str8_bounds(void **state)
{
	char longest[256], got[256];
	struct mem_chan *m = mem_new();
	struct qfile *w = qfile_writer_new(&m->ch);
	struct qfile *r = qfile_reader_new(&m->ch);

	memset(longest, 'z', 255);
	longest[255] = '\0';
	qfile_put_str8(w, longest);
	qfile_put_str8(w, "");
	qfile_put_str8(w, "ram");
	assert_int_equal(qfile_flush(w), 0);
	assert_int_equal(m->len, 1 + 255 + 1 + 1 + 3);
	assert_int_equal(m->data[0], 255);
	memset(got, 'x', sizeof(got));
	assert_int_equal(qfile_get_str8(r, got), 0);
	assert_string_equal(got, longest);
	assert_int_equal(qfile_get_str8(r, got), 0);
	assert_string_equal(got, "");
	assert_int_equal(qfile_get_str8(r, got), 0);
	assert_string_equal(got, "ram");
	assert_int_equal(qfile_get_str8(r, got), -EPIPE);
	qfile_free(w);
	qfile_free(r);
	mem_free(m);
}

static void test_new_without_channel(void **state)
{
	assert_null(qfile_writer_new(NULL));
	assert_null(qfile_reader_new(NULL));
	qfile_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_literal_bytes),
		cmocka_unit_test(test_put_ram_interleaved_order),
		cmocka_unit_test(test_put_ram_many_iovecs),
		cmocka_unit_test(test_put_buffer_wraps),
		cmocka_unit_test(test_flush_error_sticky),
		cmocka_unit_test(test_str8_too_long),
		cmocka_unit_test(test_get_roundtrip),
		cmocka_unit_test(test_get_roundtrip_bytewise),
		cmocka_unit_test(test_get_eof_clean),
		cmocka_unit_test(test_get_eof_inside_item),
		cmocka_unit_test(test_get_transport_errors),
		cmocka_unit_test(test_get_buffer_large),
		cmocka_unit_test(test_get_readahead_bound),
		cmocka_unit_test(test_str8_bounds),
		cmocka_unit_test(test_new_without_channel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
