/* test_channel.c — the channel helpers (socket/channel.c) and the socket
 * channel ops (socket/socket.c): a scripted channel for exact partial
 * transfers and EINTR, and real socketpairs for large iovecs, end of
 * stream and shutdown from another thread. Connect/listen over real TCP
 * and unix sockets is test_socket.c. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "tests/unit/chan_testutil.h"

/* --- a scripted channel: short transfers and EINTR on demand ------------ */

struct script {
	struct channel ch;
	uint8_t data[4096]; /* reads come from here, writes go here */
	size_t len, pos;
	size_t max_per_call; /* cap on each transfer */
	int eintr_every;     /* every n-th call fails with EINTR */
	int calls;
};

static ssize_t script_xfer(struct channel *ch, const struct iovec *iov,
			   int iovcnt, bool write)
{
	struct script *s = (struct script *)ch;
	size_t budget = s->max_per_call, done = 0;

	if (s->eintr_every && ++s->calls % s->eintr_every == 0)
		return -EINTR;
	for (int i = 0; i < iovcnt && budget; i++) {
		size_t n = iov[i].iov_len;

		size_t room = (write ? sizeof(s->data) : s->len) - s->pos;

		n = n < budget ? n : budget;
		n = n < room ? n : room;
		if (write)
			memcpy(s->data + s->pos, iov[i].iov_base, n);
		else
			memcpy(iov[i].iov_base, s->data + s->pos, n);
		s->pos += n;
		done += n;
		budget -= n;
	}
	return (ssize_t)done;
}

static ssize_t script_writev(struct channel *ch, const struct iovec *iov,
			     int iovcnt)
{
	return script_xfer(ch, iov, iovcnt, true);
}

static ssize_t script_readv(struct channel *ch, const struct iovec *iov,
			    int iovcnt)
{
	return script_xfer(ch, iov, iovcnt, false);
}

static const struct channel_ops script_ops = {
	.name = "script",
	.writev = script_writev,
	.readv = script_readv,
};

static void test_all_helpers_partial(void **state)
{
	struct script s = {
		.ch.ops = &script_ops, .max_per_call = 3, .eintr_every = 4};
	uint8_t a[10], b[1], c[23], out[34];
	struct iovec wv[] = {{a, 10}, {NULL, 0}, {b, 1}, {c, 23}};
	struct iovec rv[] = {{out, 0}, {out, 7}, {out + 7, 27}};

	fill_pattern(a, sizeof(a), 1);
	fill_pattern(b, sizeof(b), 2);
	fill_pattern(c, sizeof(c), 3);
	assert_int_equal(chan_writev_all(&s.ch, wv, 4), 0);
	assert_int_equal(s.pos, 34);
	assert_memory_equal(s.data, a, 10);
	assert_memory_equal(s.data + 10, b, 1);
	assert_memory_equal(s.data + 11, c, 23);

	s.len = s.pos;
	s.pos = 0;
	s.max_per_call = 5;
	assert_int_equal(chan_readv_all(&s.ch, rv, 3), 0);
	assert_memory_equal(out, s.data, 34);

	/* end of stream: before anything (-EPIPE), in the middle (-EPROTO) */
	assert_int_equal(chan_read_all(&s.ch, out, 1), -EPIPE);
	s.pos = 30;
	assert_int_equal(chan_read_all(&s.ch, out, 10), -EPROTO);
	/* nothing to do is success, even at end of stream */
	assert_int_equal(chan_read_all(&s.ch, out, 0), 0);
	assert_int_equal(chan_readv_all(&s.ch, NULL, 0), 0);
	assert_int_equal(chan_readv_all(&s.ch, rv, -1), -EINVAL);
	/* a full sink takes nothing: the write fails instead of spinning */
	s.pos = sizeof(s.data);
	assert_int_equal(chan_write_all(&s.ch, a, 1), -EPIPE);
}

/* --- socketpairs ------------------------------------------------------- */

static void make_pair(struct channel **x, struct channel **y)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	*x = sock_channel_new(sv[0], "pair:x");
	*y = sock_channel_new(sv[1], "pair:y");
	assert_non_null(*x);
	assert_non_null(*y);
	assert_string_equal((*x)->desc, "pair:x");
	assert_string_equal((*x)->ops->name, "socket");
}

static void test_pair_large_iovecs(void **state)
{
	struct channel *x, *y;

	make_pair(&x, &y);
	transfer_big(x, y);
	transfer_big(y, x);
	chan_close(x);
	chan_close(y);
	chan_close(NULL);
}

static void test_pair_eof(void **state)
{
	struct channel *x, *y;
	uint8_t buf[16] = "0123456789";

	make_pair(&x, &y);
	assert_int_equal(chan_write_all(x, buf, 10), 0);
	shutdown(x->fd, SHUT_WR);
	assert_int_equal(chan_read_all(y, buf, 10), 0);
	assert_int_equal(chan_read_all(y, buf, 1), -EPIPE);
	chan_close(x);
	chan_close(y);

	make_pair(&x, &y);
	assert_int_equal(chan_write_all(x, buf, 5), 0);
	chan_close(x);
	assert_int_equal(chan_read_all(y, buf, 10), -EPROTO);
	/* writing to a closed peer: an error, not SIGPIPE */
	assert_int_equal(chan_write_all(y, buf, 10), -EPIPE);
	chan_close(y);
}

struct blocked {
	struct channel *ch;
	bool write;
	int ret;
	double done_ms;
};

static void *blocked_io(void *arg)
{
	struct blocked *b = arg;
	size_t len = 64 << 20; /* more than any socket buffer */
	uint8_t *buf = calloc(1, len);

	b->ret = b->write ? chan_write_all(b->ch, buf, len)
			  : chan_read_all(b->ch, buf, len);
	b->done_ms = now_ms();
	free(buf);
	return NULL;
}

/* Another thread's chan_shutdown() gets a blocked owner out at once. */
static void shutdown_unblocks(bool write)
{
	struct channel *x, *y;
	struct blocked b = {.write = write};
	pthread_t t;
	double t0;
	uint8_t c;

	make_pair(&x, &y);
	b.ch = x;
	assert_int_equal(pthread_create(&t, NULL, blocked_io, &b), 0);
	usleep(100 * 1000);
	t0 = now_ms();
	chan_shutdown(x);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	assert_true(b.done_ms - t0 < 100.0); /* typically < 1 ms */
	/* and everything after fails the same way */
	assert_int_equal(chan_read_all(x, &c, 1), -ECANCELED);
	assert_int_equal(chan_write_all(x, &c, 1), -ECANCELED);
	chan_close(x);
	chan_close(y);
}

static void test_shutdown_unblocks_reader(void **state)
{
	shutdown_unblocks(false);
}

static void test_shutdown_unblocks_writer(void **state)
{
	shutdown_unblocks(true);
}

static void test_channel_new_fd(void **state)
{
	int sv[2], p[2];
	struct channel *ch;

	/* a non-blocking fd becomes blocking and close-on-exec */
	assert_int_equal(
		socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ch = sock_channel_new(sv[0], NULL);
	assert_non_null(ch);
	assert_false(fcntl(ch->fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(ch->fd, F_GETFD) & FD_CLOEXEC);
	assert_string_equal(ch->desc, "");
	chan_close(ch);
	assert_true(sock_fd_is_socket(sv[1]));
	close(sv[1]);
	assert_null(sock_channel_new(-1, "x"));

	assert_int_equal(pipe(p), 0);
	assert_false(sock_fd_is_socket(p[0]));
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_helpers_partial),
		cmocka_unit_test(test_pair_large_iovecs),
		cmocka_unit_test(test_pair_eof),
		cmocka_unit_test(test_shutdown_unblocks_reader),
		cmocka_unit_test(test_shutdown_unblocks_writer),
		cmocka_unit_test(test_channel_new_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
