/* test_zerocopy.c — MSG_ZEROCOPY for real over loopback TCP: socket/
 * zerocopy.c (send, completion counting, flush), the socket channel's
 * zero-copy ops, multifd's use of them (mfd_zerocopy.c: header copied,
 * pages zero-copy, dirty-sync-missed-zero-copy) and QEMU's messages.
 * Loopback always copies (the receiving socket cannot keep the sender's
 * pages), so every completion here is a "copied" one. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <cmocka.h>

#include "multifd/mfd_zerocopy.h"
#include "multifd/migstats.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "socket/zerocopy.h"

#define CHUNK (512u << 10) /* one multifd packet's payload */

/* A connected loopback TCP pair: fds[0] writes, fds[1] reads. */
static void tcp_pair(int fds[2])
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof(a)), 0);
	fds[1] = accept(l, NULL, NULL);
	assert_true(fds[1] >= 0);
	close(l);
}

struct reader {
	int fd;
	uint8_t *buf;
	size_t len;
	int ret;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	size_t got = 0;

	while (got < r->len) {
		ssize_t n = read(r->fd, r->buf + got, r->len - got);

		if (n <= 0) {
			r->ret = n < 0 ? -errno : -EPIPE;
			return NULL;
		}
		got += (size_t)n;
	}
	return NULL;
}

static void start_reader(struct reader *r, pthread_t *t, int fd, size_t len)
{
	*r = (struct reader){.fd = fd, .buf = malloc(len), .len = len};
	assert_non_null(r->buf);
	assert_int_equal(pthread_create(t, NULL, read_all, r), 0);
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 131 + seed + (i >> 12));
	return p;
}

/* --- socket/zerocopy.c on raw fds --------------------------------------- */

static void test_send_and_count(void **state)
{
	const int nsend = 16;
	struct sock_zc zc = {0};
	atomic_bool shut = false;
	struct reader r;
	pthread_t t;
	uint8_t *src = pattern(CHUNK * nsend, 1);
	int fds[2];

	tcp_pair(fds);
	assert_int_equal(sock_zc_send(fds[0], &zc, NULL, 0), -EOPNOTSUPP);
	assert_int_equal(sock_zc_enable(fds[0], &zc), 0);
	start_reader(&r, &t, fds[1], CHUNK * nsend);
	for (int i = 0; i < nsend; i++) {
		struct iovec iov = {src + (size_t)i * CHUNK, CHUNK};

		while (iov.iov_len) { /* partial sends: one number each */
			ssize_t n = sock_zc_send(fds[0], &zc, &iov, 1);

			assert_true(n > 0);
			iov.iov_base = (uint8_t *)iov.iov_base + n;
			iov.iov_len -= (size_t)n;
		}
	}
	assert_true(zc.queued >= (uint64_t)nsend);
	/* loopback: the kernel copied every one of them */
	assert_int_equal(sock_zc_flush(fds[0], &zc, &shut, NULL), 1);
	assert_int_equal(zc.completed, zc.queued);
	assert_int_equal(zc.copied, zc.queued);
	pthread_join(t, NULL);
	assert_int_equal(r.ret, 0);
	assert_memory_equal(r.buf, src, CHUNK * nsend);
	/* nothing outstanding: returns at once, no miss */
	assert_int_equal(sock_zc_flush(fds[0], &zc, &shut, NULL), 0);
	free(r.buf);
	free(src);
	close(fds[0]);
	close(fds[1]);
}

static void test_flush_with_nothing_sent(void **state)
{
	struct sock_zc zc = {0};
	atomic_bool shut = false;
	int fds[2];

	tcp_pair(fds);
	assert_int_equal(sock_zc_flush(fds[0], &zc, &shut, NULL), 0);
	assert_int_equal(sock_zc_enable(fds[0], &zc), 0);
	assert_int_equal(sock_zc_flush(fds[0], &zc, &shut, NULL), 0);
	close(fds[0]);
	close(fds[1]);
}

static void test_unix_socket_has_no_zero_copy(void **state)
{
	struct sock_zc zc = {0};
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(sock_zc_enable(sv[0], &zc), -EOPNOTSUPP);
	assert_false(zc.enabled);
	close(sv[0]);
	close(sv[1]);
}

/* --- the socket channel's ops ------------------------------------------- */

static void test_channel_round_trip(void **state)
{
	const size_t len = 8 * CHUNK;
	struct mig_error *err = NULL;
	struct channel *w, *rd;
	struct iovec iov[8];
	struct reader r;
	pthread_t t;
	uint8_t *src = pattern(len, 2);
	int fds[2];

	tcp_pair(fds);
	w = sock_channel_new(fds[0], "tcp:w");
	rd = sock_channel_new(fds[1], "tcp:r");
	iov[0] = (struct iovec){src, 1}; /* not enabled yet */
	assert_int_equal(chan_writev_zerocopy_all(w, iov, 1), -EOPNOTSUPP);
	assert_int_equal(chan_flush(w, &err), 0);
	assert_int_equal(chan_zerocopy_enable(w), 0);
	start_reader(&r, &t, rd->fd, len + 5);
	assert_int_equal(chan_write_all(w, "head:", 5), 0); /* copied */
	for (int i = 0; i < 8; i++)
		iov[i] = (struct iovec){src + (size_t)i * CHUNK, CHUNK};
	assert_int_equal(chan_writev_zerocopy_all(w, iov, 8), 0);
	assert_int_equal(chan_flush(w, &err), 1);
	assert_null(err);
	assert_int_equal(chan_flush(w, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(r.ret, 0);
	assert_memory_equal(r.buf, "head:", 5);
	assert_memory_equal(r.buf + 5, src, len);
	free(r.buf);
	free(src);
	chan_close(w);
	chan_close(rd);
}

static void test_channel_cancelled(void **state)
{
	struct channel *w;
	struct iovec iov = {"x", 1};
	int fds[2];

	tcp_pair(fds);
	w = sock_channel_new(fds[0], "tcp:w");
	assert_int_equal(chan_zerocopy_enable(w), 0);
	chan_shutdown(w);
	assert_int_equal(chan_writev_zerocopy_all(w, &iov, 1), -ECANCELED);
	assert_int_equal(chan_flush(w, NULL), 0); /* nothing outstanding */
	chan_close(w);
	close(fds[1]);
}

/* --- multifd: mfd_zerocopy.c -------------------------------------------- */

/* Sends one packet: the header and n chunks of pages from p. */
static void send_packet(struct channel *ch, uint8_t *hdr, uint8_t *p, int n)
{
	struct iovec iov[3] = {{hdr, 1344}};

	for (int i = 0; i < n; i++)
		iov[1 + i] = (struct iovec){p + (size_t)i * CHUNK, CHUNK};
	assert_int_equal(mfd_zc_send_packet(ch, iov, 1 + n), 0);
}

static void test_mfd_packet_and_missed_count(void **state)
{
	struct mig_counters ctr = {0};
	uint8_t hdr[1344];
	uint8_t *pages = pattern(4 * CHUNK, 3);
	struct channel *chans[1], *rd;
	struct reader r;
	pthread_t t;
	int fds[2];

	memset(hdr, 0x5a, sizeof(hdr));
	tcp_pair(fds);
	chans[0] = sock_channel_new(fds[0], "tcp:w");
	rd = sock_channel_new(fds[1], "tcp:r");
	assert_int_equal(mfd_zc_enable(chans, 1, NULL), 0);
	start_reader(&r, &t, rd->fd, 3 * sizeof(hdr) + 4 * CHUNK);
	/* a header-only packet (all zero pages) sends nothing zero-copy:
	 * its flush has nothing to wait for and is no miss */
	send_packet(chans[0], hdr, pages, 0);
	assert_int_equal(mfd_zc_flush(chans[0], &ctr), 0);
	assert_int_equal(mig_read(&ctr.dirty_sync_missed_zero_copy), 0);
	/* two sync rounds with pages: loopback copied them, two misses */
	send_packet(chans[0], hdr, pages, 2);
	assert_int_equal(mfd_zc_flush(chans[0], &ctr), 0);
	send_packet(chans[0], hdr, pages + 2 * CHUNK, 2);
	assert_int_equal(mfd_zc_flush(chans[0], &ctr), 0);
	assert_int_equal(mig_read(&ctr.dirty_sync_missed_zero_copy), 2);
	assert_int_equal(mfd_zc_flush(chans[0], &ctr), 0);
	assert_int_equal(mig_read(&ctr.dirty_sync_missed_zero_copy), 2);
	pthread_join(t, NULL);
	assert_int_equal(r.ret, 0);
	assert_memory_equal(r.buf, hdr, sizeof(hdr));
	assert_memory_equal(r.buf + 2 * sizeof(hdr), pages, 2 * CHUNK);
	assert_memory_equal(r.buf + 3 * sizeof(hdr) + 2 * CHUNK,
			    pages + 2 * CHUNK, 2 * CHUNK);
	free(r.buf);
	free(pages);
	chan_close(chans[0]);
	chan_close(rd);
}

static void test_mfd_enable_fails_qemu_message(void **state)
{
	struct mig_error *err = NULL;
	struct channel *chans[2];
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	chans[0] = sock_channel_new(sv[0], "unix:a");
	chans[1] = sock_channel_new(sv[1], "unix:b");
	assert_int_equal(mfd_zc_enable(chans, 2, &err), -EOPNOTSUPP);
	assert_non_null(err);
	assert_string_equal(err->desc, "Zero copy send feature not detected "
				       "in host kernel");
	mig_error_free(err);
	chan_close(chans[0]);
	chan_close(chans[1]);
}

static void test_mfd_error_messages(void **state)
{
	struct mig_error *err = NULL;

	assert_true(mfd_zc_error(&err, -ENOBUFS));
	assert_string_equal(err->desc,
			    "Process can't lock enough memory for using "
			    "MSG_ZEROCOPY: No buffer space available");
	mig_error_free(err);
	err = NULL;
	assert_true(mfd_zc_error(&err, -EOPNOTSUPP));
	assert_string_equal(err->desc, "Requested Zero Copy feature is not "
				       "available: Invalid argument");
	mig_error_free(err);
	err = NULL;
	assert_false(mfd_zc_error(&err, -EPIPE));
	assert_null(err);
}

/* --- memlock: ENOBUFS ---------------------------------------------------- */

/* Drops CAP_IPC_LOCK from this (child) process's effective set, which
 * otherwise exempts root from RLIMIT_MEMLOCK. */
static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/* In a child: memlock limit 16 KiB, then a 2 MiB zero-copy send. Exit
 * status 0 when it failed with ENOBUFS (and flush then has nothing to
 * wait for), 2 when the capability could not be dropped. */
static int enobufs_child(void)
{
	struct rlimit rl = {16 << 10, 16 << 10};
	struct sock_zc zc = {0};
	atomic_bool shut = false;
	size_t len = 2u << 20;
	uint8_t *buf = calloc(1, len);
	struct iovec iov = {buf, len};
	int fds[2];

	tcp_pair(fds);
	if (!buf || drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &rl))
		return 2;
	if (sock_zc_enable(fds[0], &zc))
		return 3;
	if (sock_zc_send(fds[0], &zc, &iov, 1) != -ENOBUFS)
		return 4;
	return sock_zc_flush(fds[0], &zc, &shut, NULL) == 0 ? 0 : 5;
}

static void test_memlock_enobufs(void **state)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(enobufs_child());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 2)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_and_count),
		cmocka_unit_test(test_flush_with_nothing_sent),
		cmocka_unit_test(test_unix_socket_has_no_zero_copy),
		cmocka_unit_test(test_channel_round_trip),
		cmocka_unit_test(test_channel_cancelled),
		cmocka_unit_test(test_mfd_packet_and_missed_count),
		cmocka_unit_test(test_mfd_enable_fails_qemu_message),
		cmocka_unit_test(test_mfd_error_messages),
		cmocka_unit_test(test_memlock_enobufs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
