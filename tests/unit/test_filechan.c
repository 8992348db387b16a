/* test_filechan.c — the file channel (file/filechan.c) on real files in a
 * temporary directory: QEMU's open/truncate/seek sequence for both sides,
 * the multifd re-opens with and without O_DIRECT (and the error where a
 * filesystem refuses it), passed fds, positioned all-or-error loops on
 * truncated files, shutdown from another thread, and QEMU's messages. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file/filechan.h"
#include "socket/channel.h"

static char tmpdir[64];

static int setup_dir(void **state)
{
	/* /var/tmp: a disk filesystem, where O_DIRECT normally works */
	snprintf(tmpdir, sizeof(tmpdir), "/var/tmp/test_filechan.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* The whole file as a NUL-terminated string (small files only). */
static char *read_text(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void expect_error(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

static struct channel *open_ok(const char *path, enum filechan_role role,
			       uint64_t offset)
{
	struct mig_error *err = NULL;
	struct channel *ch = filechan_open(path, role, offset, &err);

	if (!ch)
		fail_msg("open %s: %s", path, err ? err->desc : "?");
	assert_null(err);
	return ch;
}

/* --- the main channel ----------------------------------------------------- */

static void test_source_truncates_to_offset(void **state)
{
	char path[256];
	struct stat st;
	struct channel *ch;
	uint64_t pos;

	path_of(path, sizeof(path), "src");
	write_file(path, "userdata-and-an-old-migration-stream");
	ch = open_ok(path, FILECHAN_SOURCE, 8);
	assert_true(filechan_is_file(ch));
	assert_true(filechan_is_seekable(ch));
	assert_false(filechan_is_direct(ch));
	assert_string_equal(ch->ops->name, "file");
	assert_int_equal(filechan_tell(ch, &pos), 0);
	assert_int_equal(pos, 8);
	assert_int_equal(chan_write_all(ch, "NEW", 3), 0);
	chan_close(ch);
	assert_string_equal(read_text(path), "userdataNEW");

	/* offset 0 truncates everything; a new file gets mode 0600 */
	ch = open_ok(path, FILECHAN_SOURCE, 0);
	chan_close(ch);
	assert_string_equal(read_text(path), "");
	path_of(path, sizeof(path), "fresh");
	ch = open_ok(path, FILECHAN_SOURCE, 0);
	chan_close(ch);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_dest_seeks_to_offset(void **state)
{
	char path[256], buf[8] = {0};
	struct channel *ch;
	uint64_t size;

	path_of(path, sizeof(path), "dst");
	write_file(path, "skipme:STREAM");
	ch = open_ok(path, FILECHAN_DEST, 7);
	assert_int_equal(filechan_size(ch, &size), 0);
	assert_int_equal(size, 13);
	assert_int_equal(chan_read_all(ch, buf, 6), 0);
	assert_string_equal(buf, "STREAM");
	/* end of file on a boundary, then inside an item */
	assert_int_equal(chan_read_all(ch, buf, 1), -EPIPE);
	assert_int_equal(filechan_seek(ch, 10, NULL), 0);
	assert_int_equal(chan_read_all(ch, buf, 5), -EPROTO);
	chan_close(ch);
}

static void test_open_errors(void **state)
{
	char path[256], msg[512];
	struct mig_error *err = NULL;

	path_of(path, sizeof(path), "missing");
	assert_null(filechan_open(path, FILECHAN_DEST, 0, &err));
	snprintf(msg, sizeof(msg),
		 "Could not open '%s': No such file or directory", path);
	expect_error(&err, msg);

	path_of(path, sizeof(path), "nodir/file");
	assert_null(filechan_open(path, FILECHAN_SOURCE, 0, &err));
	snprintf(msg, sizeof(msg),
		 "Could not create '%s': No such file or directory", path);
	expect_error(&err, msg);

	path_of(path, sizeof(path), "missing");
	assert_null(filechan_open_extra(path, FILECHAN_SOURCE, false, &err));
	snprintf(msg, sizeof(msg),
		 "Could not open '%s': No such file or directory", path);
	expect_error(&err, msg);

	/* an offset past off_t: QEMU's seek message with the value it saw */
	path_of(path, sizeof(path), "dst");
	write_file(path, "x");
	assert_null(filechan_open(path, FILECHAN_DEST, UINT64_MAX, &err));
	expect_error(&err, "Unable to seek to offset -1 whence 0 in file: "
			   "Invalid argument");
	assert_null(filechan_open(path, FILECHAN_SOURCE, UINT64_MAX, &err));
	expect_error(&err, "failed to truncate migration file to offset "
			   "ffffffffffffffff: Invalid argument");
}

/* --- multifd channels ------------------------------------------------------
 */

static void test_extra_channels_positioned(void **state)
{
	char path[256], got[16] = {0};
	struct mig_error *err = NULL;
	struct channel *main_ch, *w, *r;
	struct iovec iov[2];

	path_of(path, sizeof(path), "mfd");
	main_ch = open_ok(path, FILECHAN_SOURCE, 0);
	w = filechan_open_extra(path, FILECHAN_SOURCE, false, &err);
	assert_non_null(w);
	/* positioned writes leave the main stream's position alone */
	iov[0] = (struct iovec){.iov_base = "ab", .iov_len = 2};
	iov[1] = (struct iovec){.iov_base = "cd", .iov_len = 2};
	assert_int_equal(filechan_pwritev_all(w, iov, 2, 4), 0);
	assert_int_equal(chan_write_all(main_ch, "HDR:", 4), 0);
	chan_close(w);
	chan_close(main_ch);
	assert_string_equal(read_text(path), "HDR:abcd");

	r = filechan_open_extra(path, FILECHAN_DEST, false, &err);
	assert_non_null(r);
	iov[0] = (struct iovec){.iov_base = got, .iov_len = 1};
	iov[1] = (struct iovec){.iov_base = got + 1, .iov_len = 2};
	assert_int_equal(filechan_preadv_all(r, iov, 2, 5), 0);
	assert_string_equal(got, "bcd");
	/* a truncated file: nothing there, or only part of it */
	iov[0] = (struct iovec){.iov_base = got, .iov_len = 4};
	assert_int_equal(filechan_preadv_all(r, iov, 1, 8), -EPIPE);
	iov[0] = (struct iovec){.iov_base = got, .iov_len = 4};
	assert_int_equal(filechan_preadv_all(r, iov, 1, 6), -EPROTO);
	filechan_set_io_error(&err, -EPROTO, false);
	expect_error(&err, "Unable to read from file: unexpected end of file");
	filechan_set_io_error(&err, -ENOSPC, true);
	expect_error(&err, "Unable to write to file: No space left on device");
	iov[0] = (struct iovec){.iov_base = got, .iov_len = 4};
	assert_int_equal(filechan_preadv_all(r, iov, 1, INT64_MAX - 1),
			 -EOVERFLOW);
	chan_close(r);
}

/* O_DIRECT where the filesystem has it: aligned positioned I/O works. */
static void test_direct_io_works(void **state)
{
	char path[256];
	struct mig_error *err = NULL;
	struct channel *main_ch, *w, *r;
	struct iovec iov;
	void *buf = NULL, *back = NULL;

	path_of(path, sizeof(path), "dio");
	main_ch = open_ok(path, FILECHAN_SOURCE, 0);
	w = filechan_open_extra(path, FILECHAN_SOURCE, true, &err);
	if (!w) {
		/* not every disk filesystem has O_DIRECT (overlay, 9p) */
		mig_error_free(err);
		chan_close(main_ch);
		skip();
	}
	assert_true(filechan_is_direct(w));
	assert_int_equal(posix_memalign(&buf, 4096, 8192), 0);
	assert_int_equal(posix_memalign(&back, 4096, 8192), 0);
	memset(buf, 0x5a, 8192);
	iov = (struct iovec){.iov_base = buf, .iov_len = 8192};
	assert_int_equal(filechan_pwritev_all(w, &iov, 1, 1 << 20), 0);
	r = filechan_open_extra(path, FILECHAN_DEST, true, &err);
	assert_non_null(r);
	iov = (struct iovec){.iov_base = back, .iov_len = 8192};
	assert_int_equal(filechan_preadv_all(r, &iov, 1, 1 << 20), 0);
	assert_memory_equal(buf, back, 8192);
	chan_close(r);
	chan_close(w);
	chan_close(main_ch);
	free(buf);
	free(back);
}

/* A file where O_DIRECT is refused: a tmpfs file on kernels before 6.6,
 * or a procfs file (refused everywhere) for the destination's read-only
 * open. The message is QEMU 9.1+'s qemu_open() hint. */
static void test_direct_io_refused(void **state)
{
	static const char *const candidates[] = {
		"/dev/shm/test_filechan_dio", /* tmpfs */
		"/proc/version",
	};
	char msg[512];
	int checked = 0;

	write_file(candidates[0], "x");
	for (size_t i = 0; i < 2; i++) {
		struct mig_error *err = NULL;
		struct channel *ch = filechan_open_extra(
			candidates[i], FILECHAN_DEST, true, &err);

		if (ch) { /* this filesystem has O_DIRECT */
			assert_true(filechan_is_direct(ch));
			chan_close(ch);
			continue;
		}
		snprintf(msg, sizeof(msg),
			 "Could not open '%s': filesystem does not support "
			 "O_DIRECT",
			 candidates[i]);
		expect_error(&err, msg);
		checked++;
	}
	unlink(candidates[0]);
	assert_true(checked >= 1);
}

/* --- passed fds
 * ---------------------------------------------------------------- */

static void test_from_fd(void **state)
{
	char path[256], buf[4] = {0};
	struct mig_error *err = NULL;
	struct channel *ch;
	int fd;

	path_of(path, sizeof(path), "fdset");
	write_file(path, "0123456789");
	/* file:/dev/fdset/N: the path treatment (truncate, seek) */
	fd = open(path, O_WRONLY);
	ch = filechan_from_fd(fd, "file:/dev/fdset/1", FILECHAN_SOURCE, true, 4,
			      &err);
	assert_non_null(ch);
	assert_string_equal(ch->desc, "file:/dev/fdset/1");
	assert_int_equal(fcntl(ch->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(chan_write_all(ch, "ab", 2), 0);
	chan_close(ch);
	assert_string_equal(read_text(path), "0123ab");

	/* fd:NAME: wherever the fd stands */
	fd = open(path, O_RDONLY);
	assert_int_equal(lseek(fd, 2, SEEK_SET), 2);
	ch = filechan_from_fd(fd, "fd:mig", FILECHAN_DEST, false, 0, &err);
	assert_non_null(ch);
	assert_int_equal(chan_read_all(ch, buf, 3), 0);
	assert_string_equal(buf, "23a");
	chan_close(ch);

	assert_null(
		filechan_from_fd(-1, "fd:x", FILECHAN_DEST, false, 0, &err));
	expect_error(&err,
		     "Could not use file descriptor -1: Bad file descriptor");
}

static void test_pipe_fd(void **state)
{
	struct mig_error *err = NULL;
	struct channel *ch;
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	int p[2];

	assert_int_equal(pipe(p), 0);
	/* QEMU truncates even for an fdset fd: a pipe cannot be */
	assert_null(filechan_from_fd(p[1], "file:/dev/fdset/2", FILECHAN_SOURCE,
				     true, 0, &err));
	expect_error(&err, "failed to truncate migration file to offset 0: "
			   "Invalid argument");
	ch = filechan_from_fd(p[0], "fd:p", FILECHAN_DEST, false, 0, &err);
	assert_non_null(ch);
	assert_false(filechan_is_seekable(ch));
	assert_int_equal(filechan_preadv_all(ch, &iov, 1, 0), -ESPIPE);
	chan_close(ch);
}

/* --- shutdown
 * -------------------------------------------------------------------- */

struct writer {
	struct channel *ch;
	int ret;
};

/* Writes until the channel is shut down (each write succeeds at once). */
static void *write_forever(void *arg)
{
	struct writer *w = arg;
	static char block[65536];
	struct iovec iov;

	do {
		iov = (struct iovec){.iov_base = block,
				     .iov_len = sizeof(block)};
		w->ret = filechan_pwritev_all(w->ch, &iov, 1, 0);
	} while (!w->ret);
	return NULL;
}

static void test_shutdown(void **state)
{
	char path[256], c;
	struct iovec iov = {.iov_base = &c, .iov_len = 1};
	struct writer w = {0};
	pthread_t t;
	struct channel *ch;

	path_of(path, sizeof(path), "shut");
	w.ch = open_ok(path, FILECHAN_SOURCE, 0);
	assert_int_equal(pthread_create(&t, NULL, write_forever, &w), 0);
	usleep(20000);
	chan_shutdown(w.ch); /* from this thread, while the other writes */
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.ret, -ECANCELED);
	/* every later transfer fails the same way */
	assert_int_equal(chan_write_all(w.ch, "x", 1), -ECANCELED);
	assert_int_equal(w.ch->ops->pwritev(w.ch, &iov, 1, 0), -ECANCELED);
	assert_int_equal(filechan_seek(w.ch, 0, NULL), -ECANCELED);
	chan_close(w.ch);

	ch = open_ok(path, FILECHAN_DEST, 0);
	chan_shutdown(ch);
	assert_int_equal(chan_read_all(ch, &c, 1), -ECANCELED);
	assert_int_equal(filechan_preadv_all(ch, &iov, 1, 0), -ECANCELED);
	chan_close(ch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_truncates_to_offset),
		cmocka_unit_test(test_dest_seeks_to_offset),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_extra_channels_positioned),
		cmocka_unit_test(test_direct_io_works),
		cmocka_unit_test(test_direct_io_refused),
		cmocka_unit_test(test_from_fd),
		cmocka_unit_test(test_pipe_fd),
		cmocka_unit_test(test_shutdown),
	};

	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
