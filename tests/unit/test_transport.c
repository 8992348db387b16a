/* test_transport.c — the fd channel (socket/fdchan.c), exec commands
 * (socket/exec.c) and the transport seam (control/transport.c): large
 * transfers over pipes, end of stream, a closed reader, shutdown waking a
 * blocked reader and writer from another thread, spawning and reaping
 * commands, and QEMU's transport/capability rules and fd-name errors. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/migcfg.h"
#include "control/transport.h"
#include "socket/channel.h"
#include "socket/fdchan.h"
#include "socket/sockaddr.h"
#include "tests/unit/chan_testutil.h"

/* A pipe as two channels: [0] reads, [1] writes. */
static void pipe_chans(struct channel *ch[2])
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	ch[0] = fdchan_new(p[0], -1, 0, "fd:r", NULL);
	ch[1] = fdchan_new(-1, p[1], 0, "fd:w", NULL);
	assert_non_null(ch[0]);
	assert_non_null(ch[1]);
}

static void test_pipe_big_transfer_and_eof(void **state)
{
	struct channel *ch[2];
	uint8_t b;

	pipe_chans(ch);
	transfer_big(ch[1], ch[0]);
	chan_close(ch[1]);
	assert_int_equal(chan_read_all(ch[0], &b, 1), -EPIPE);
	chan_close(ch[0]);
}

static void test_write_to_closed_reader(void **state)
{
	struct channel *ch[2];
	char buf[100] = {0};

	pipe_chans(ch);
	chan_close(ch[0]);
	assert_int_equal(chan_write_all(ch[1], buf, sizeof(buf)), -EPIPE);
	chan_close(ch[1]);
}

static void test_wrong_direction(void **state)
{
	struct channel *ch[2];
	char c = 0;

	pipe_chans(ch);
	assert_int_equal(chan_write_all(ch[0], &c, 1), -EBADF);
	assert_int_equal(chan_read_all(ch[1], &c, 1), -EBADF);
	chan_close(ch[0]);
	chan_close(ch[1]);
}

struct blocked {
	struct channel *ch;
	bool write;
	int ret;
};

static void *blocked_io(void *arg)
{
	struct blocked *b = arg;
	size_t len = 1 << 20; /* more than a pipe holds */
	uint8_t *buf = calloc(1, len);

	b->ret = b->write ? chan_write_all(b->ch, buf, len)
			  : chan_read_all(b->ch, buf, len);
	free(buf);
	return NULL;
}

/* The owner blocks (nothing to read / the pipe is full); shutdown from
 * this thread must wake it at once with -ECANCELED. */
static void shutdown_wakes(bool write)
{
	struct channel *ch[2];
	struct blocked b;
	pthread_t t;
	double t0;

	pipe_chans(ch);
	b = (struct blocked){.ch = ch[write ? 1 : 0], .write = write};
	assert_int_equal(pthread_create(&t, NULL, blocked_io, &b), 0);
	usleep(100 * 1000);
	t0 = now_ms();
	chan_shutdown(b.ch);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, -ECANCELED);
	assert_true(now_ms() - t0 < 1000);
	/* and every later call fails the same way */
	assert_int_equal(chan_write_all(ch[1], "x", 1), write ? -ECANCELED : 0);
	chan_close(ch[0]);
	chan_close(ch[1]);
}

static void test_shutdown_wakes_reader(void **state)
{
	shutdown_wakes(false);
}

static void test_shutdown_wakes_writer(void **state)
{
	shutdown_wakes(true);
}

static void test_read_fd(void **state)
{
	struct channel *ch[2];

	pipe_chans(ch);
	assert_true(fdchan_read_fd(ch[0]) >= 0);
	assert_int_equal(fdchan_read_fd(ch[0]), ch[0]->fd);
	assert_int_equal(transport_stream_read_fd(NULL), -1);
	chan_close(ch[0]);
	chan_close(ch[1]);
}

/* --- exec ----------------------------------------------------------------- */

static void test_exec_roundtrip(void **state)
{
	char *argv[] = {"/bin/sh", "-c", "head -c 5; echo done", NULL};
	struct mig_error *err = NULL;
	struct channel *ch = exec_spawn(argv, &err);
	char out[10] = {0};

	assert_non_null(ch);
	assert_null(err);
	assert_int_equal(ch->fd, -1); /* nothing to wait for on it */
	assert_int_equal(chan_write_all(ch, "hello", 5), 0);
	assert_int_equal(chan_read_all(ch, out, 10), 0);
	assert_memory_equal(out, "hellodone\n", 10);
	assert_int_equal(chan_read_all(ch, out, 1), -EPIPE);
	chan_close(ch);
}

static void test_exec_path_lookup_and_stdin_eof(void **state)
{
	char *argv[] = {"cat", NULL};
	struct channel *ch = exec_spawn(argv, NULL);
	int rfd;
	char c;

	assert_non_null(ch);
	rfd = fdchan_read_fd(ch);
	assert_true(rfd >= 0);
	assert_int_equal(chan_write_all(ch, "x", 1), 0);
	assert_int_equal(chan_read_all(ch, &c, 1), 0);
	assert_int_equal(c, 'x');
	chan_close(ch); /* cat sees EOF, exits, is reaped */
}

static void test_exec_not_found(void **state)
{
	char *argv[] = {"/nonexistent/x", NULL}, *empty[] = {NULL};
	struct mig_error *err = NULL;

	assert_null(exec_spawn(argv, &err));
	assert_non_null(err);
	assert_string_equal(err->desc, "Failed to execute child process "
				       "\"/nonexistent/x\" (No such file or "
				       "directory)");
	mig_error_free(err);
	err = NULL;
	assert_null(exec_spawn(empty, &err));
	assert_non_null(err);
	mig_error_free(err);
}

/* The child starts with SIGTERM deliverable even though we block it. */
static void test_exec_signal_mask_reset(void **state)
{
	char *argv[] = {"/bin/sh", "-c",
			"grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status "
			"&& echo y || echo n",
			NULL};
	sigset_t set, old;
	struct channel *ch;
	char c;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ch = exec_spawn(argv, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	assert_non_null(ch);
	assert_int_equal(chan_read_all(ch, &c, 1), 0);
	assert_int_equal(c, 'y');
	chan_close(ch);
}

/* --- the seam ------------------------------------------------------------- */

static void check_compat(struct mig_config *cfg, const char *uri,
			 const char *want)
{
	struct mig_addr a;
	struct mig_error *err = NULL;

	assert_int_equal(mig_addr_parse_uri(uri, &a, NULL), 0);
	assert_int_equal(transport_check_compatible(cfg, &a, &err),
			 want ? -EINVAL : 0);
	if (want)
		assert_string_equal(err->desc, want);
	else
		assert_null(err);
	mig_error_free(err);
	mig_addr_clear(&a);
}

static void test_compatible(void **state)
{
	const char *multi = "Migration requires multi-channel URIs (e.g. tcp)";
	const char *seek = "Migration requires seekable transport (e.g. file)";
	struct mig_config *cfg = mig_config_new();

	check_compat(cfg, "fd:x", NULL);
	check_compat(cfg, "exec:cat", NULL);
	check_compat(cfg, "vsock:1:1234", NULL);
	assert_int_equal(mig_config_set_cap(cfg, MIG_CAP_MULTIFD, true, NULL),
			 0);
	check_compat(cfg, "tcp:h:1", NULL);
	check_compat(cfg, "unix:/p", NULL);
	check_compat(cfg, "vsock:1:1234", NULL);
	check_compat(cfg, "fd:x", multi);
	check_compat(cfg, "exec:cat", multi);
	check_compat(cfg, "file:/f", multi);
	assert_int_equal(
		mig_config_set_cap(cfg, MIG_CAP_MAPPED_RAM, true, NULL), 0);
	check_compat(cfg, "file:/f", NULL);
	check_compat(cfg, "tcp:h:1", seek);
	check_compat(cfg, "fd:x", seek);
	mig_config_free(cfg);
}

static int open_fd_uri(const char *uri, bool incoming, struct channel **ch,
		       struct mig_error **err)
{
	struct mig_addr a;
	int ret;

	assert_int_equal(mig_addr_parse_uri(uri, &a, NULL), 0);
	ret = transport_open_stream(NULL, NULL, &a, incoming, ch, err);
	mig_addr_clear(&a);
	return ret;
}

static void expect_open_error(const char *uri, bool incoming, const char *want)
{
	struct mig_error *err = NULL;
	struct channel *ch = NULL;

	assert_true(open_fd_uri(uri, incoming, &ch, &err) < 0);
	assert_null(ch);
	assert_non_null(err);
	assert_string_equal(err->desc, want);
	mig_error_free(err);
}

static void test_fd_numbers(void **state)
{
	struct channel *ch = NULL, *w;
	char uri[32], c;
	int p[2];

	expect_open_error("fd:12x", true,
			  "Invalid file descriptor number "
			  "'12x'");
	expect_open_error("fd:-1", true,
			  "Invalid file descriptor number "
			  "'-1'");
	expect_open_error("fd:99999", true,
			  "Unable to stat file descriptor: "
			  "Bad file descriptor");
	/* the source only takes monitor names */
	expect_open_error("fd:3", false,
			  "File descriptor named '3' has not "
			  "been found");
	assert_int_equal(pipe(p), 0);
	snprintf(uri, sizeof(uri), "fd:%d", p[0]);
	assert_int_equal(open_fd_uri(uri, true, &ch, NULL), 0);
	assert_non_null(ch);
	w = fdchan_new(-1, p[1], 0, "w", NULL);
	assert_int_equal(chan_write_all(w, "z", 1), 0);
	assert_int_equal(chan_read_all(ch, &c, 1), 0);
	assert_int_equal(c, 'z');
	chan_close(w);
	chan_close(ch);
	/* taken: the number is closed with the channel */
	assert_int_equal(fcntl(p[0], F_GETFD), -1);
}

static void test_socket_kinds_open_nothing(void **state)
{
	struct channel *ch = (struct channel *)1;
	struct mig_error *err = NULL;

	assert_int_equal(open_fd_uri("tcp:127.0.0.1:1", false, &ch, &err), 0);
	assert_null(ch);
	assert_null(err);
}

static void test_connect_stream_once(void **state)
{
	struct channel *ch[2], *opened;
	struct mig_error *err = NULL;
	struct mig_addr a;

	pipe_chans(ch);
	opened = ch[1];
	assert_int_equal(mig_addr_parse_uri("fd:x", &a, NULL), 0);
	assert_ptr_equal(transport_connect(&a, &opened, &err), ch[1]);
	assert_null(opened);
	assert_null(transport_connect(&a, &opened, &err));
	assert_string_equal(err->desc,
			    "Migration requires multi-channel URIs (e.g. tcp)");
	mig_error_free(err);
	mig_addr_clear(&a);
	chan_close(ch[0]);
	chan_close(ch[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipe_big_transfer_and_eof),
		cmocka_unit_test(test_write_to_closed_reader),
		cmocka_unit_test(test_wrong_direction),
		cmocka_unit_test(test_shutdown_wakes_reader),
		cmocka_unit_test(test_shutdown_wakes_writer),
		cmocka_unit_test(test_read_fd),
		cmocka_unit_test(test_exec_roundtrip),
		cmocka_unit_test(test_exec_path_lookup_and_stdin_eof),
		cmocka_unit_test(test_exec_not_found),
		cmocka_unit_test(test_exec_signal_mask_reset),
		cmocka_unit_test(test_compatible),
		cmocka_unit_test(test_fd_numbers),
		cmocka_unit_test(test_socket_kinds_open_nothing),
		cmocka_unit_test(test_connect_stream_once),
	};

	signal(SIGPIPE, SIG_IGN); /* as migd's main() */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
