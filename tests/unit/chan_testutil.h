/* chan_testutil.h — helpers shared by test_channel.c and test_socket.c:
 * a clock, a byte pattern, and a large multi-iovec transfer between two
 * channels (writer thread, differently cut reader iovecs). Test code only:
 * the functions are static, each test program gets its own copy. */
#ifndef MIGD_TESTS_CHAN_TESTUTIL_H
#define MIGD_TESTS_CHAN_TESTUTIL_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "socket/channel.h"

static inline double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + seed + (i >> 12));
}

#define BIG_IOVS 300
#define BIG_CHUNK 4099 /* odd sizes: transfers end mid-iovec */

struct big_writer {
	struct channel *ch;
	uint8_t *buf;
	int ret;
};

/* Writes buf (BIG_IOVS * BIG_CHUNK bytes) as one iovec per chunk. */
static inline void *big_write(void *arg)
{
	struct big_writer *w = arg;
	struct iovec *iov = calloc(BIG_IOVS, sizeof(*iov));

	for (int i = 0; i < BIG_IOVS; i++)
		iov[i] = (struct iovec){w->buf + (size_t)i * BIG_CHUNK,
					BIG_CHUNK};
	w->ret = chan_writev_all(w->ch, iov, BIG_IOVS);
	free(iov);
	return NULL;
}

/* Reads the same bytes into differently cut iovecs (sizes 1..4096). */
static inline void read_big(struct channel *ch, const uint8_t *expect,
			    size_t len)
{
	uint8_t *in = calloc(1, len);
	struct iovec iov[1024];
	size_t off = 0;
	int n = 0;

	while (off < len && n < 1024) {
		size_t k = 1 + (size_t)(n * 977) % 4096;

		k = k < len - off ? k : len - off;
		iov[n++] = (struct iovec){in + off, k};
		off += k;
	}
	assert_int_equal(chan_readv_all(ch, iov, n), 0);
	if (off < len)
		assert_int_equal(chan_read_all(ch, in + off, len - off), 0);
	assert_memory_equal(in, expect, len);
	free(in);
}

static inline void transfer_big(struct channel *from, struct channel *to)
{
	size_t len = (size_t)BIG_IOVS * BIG_CHUNK;
	struct big_writer w = {.ch = from, .buf = malloc(len)};
	pthread_t t;

	fill_pattern(w.buf, len, 7);
	assert_int_equal(pthread_create(&t, NULL, big_write, &w), 0);
	read_big(to, w.buf, len);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, 0);
	free(w.buf);
}

#endif
