/* test_fdset.c — fd sets (fdset.c) and a monitor's named fds (monfd.c)
 * without a QMP server: real fds from pipe()/open(), QEMU's id allocation,
 * removal and query order, and the /dev/fdset/N matching rules. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/fdset.h"
#include "control/monfd.h"

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* A pipe whose ends the test hands to the code under test. */
static void make_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

static void expect_error(struct mig_error **err, const char *desc)
{
	assert_non_null(*err);
	assert_string_equal((*err)->desc, desc);
	mig_error_free(*err);
	*err = NULL;
}

static void expect_query(struct fdsets *sets, const char *json)
{
	json_t *q = fdsets_query(sets);
	char *s;

	assert_non_null(q);
	s = json_dumps(q, JSON_COMPACT);
	assert_string_equal(s, json);
	free(s);
	json_decref(q);
}

static int64_t add(struct fdsets *sets, int fd, bool has_id, int64_t id,
		   const char *opaque)
{
	struct mig_error *err = NULL;
	int64_t out = -1;

	assert_int_equal(
		fdsets_add_fd(sets, fd, has_id, id, opaque, &out, &err), 0);
	assert_null(err);
	return out;
}

static void test_empty(void **state)
{
	struct fdsets *sets = fdsets_new();

	assert_non_null(sets);
	expect_query(sets, "[]");
	fdsets_free(sets);
	fdsets_free(NULL);
}

/* New sets take the lowest free id; explicit ids may leave gaps. */
static void test_ids(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	int p[2], q[2], r[2];
	int64_t out;

	make_pipe(p);
	make_pipe(q);
	make_pipe(r);
	assert_int_equal(add(sets, p[0], false, 0, NULL), 0);
	assert_int_equal(add(sets, p[1], true, 2, NULL), 2);
	assert_int_equal(add(sets, q[0], false, 0, NULL), 1);
	assert_int_equal(add(sets, q[1], false, 0, NULL), 3);
	assert_int_equal(fdsets_remove_fd(sets, 1, false, 0, &err), 0);
	assert_false(fd_is_open(q[0]));
	assert_int_equal(add(sets, r[0], false, 0, NULL), 1);
	/* existing set: joins it */
	assert_int_equal(add(sets, r[1], true, 2, NULL), 2);

	/* a negative id is refused and the fd closed */
	make_pipe(p);
	close(p[1]);
	assert_int_equal(fdsets_add_fd(sets, p[0], true, -1, NULL, &out, &err),
			 -EINVAL);
	expect_error(&err, "Parameter 'fdset-id' expects a non-negative value");
	assert_false(fd_is_open(p[0]));
	assert_int_equal(fdsets_add_fd(sets, -1, false, 0, NULL, &out, &err),
			 -EBADF);
	expect_error(&err, "No file descriptor supplied via SCM_RIGHTS");
	fdsets_free(sets);
}

/* Sets by descending id, fds oldest first, opaque only when given. */
static void test_query_order(void **state)
{
	struct fdsets *sets = fdsets_new();
	char want[256];
	int p[2], q[2];

	make_pipe(p);
	make_pipe(q);
	add(sets, p[0], true, 3, "first");
	add(sets, p[1], true, 3, NULL);
	add(sets, q[0], true, 7, "x");
	add(sets, q[1], true, 0, NULL);
	snprintf(want, sizeof(want),
		 "[{\"fdset-id\":7,\"fds\":[{\"fd\":%d,\"opaque\":\"x\"}]},"
		 "{\"fdset-id\":3,\"fds\":[{\"fd\":%d,\"opaque\":\"first\"},"
		 "{\"fd\":%d}]},"
		 "{\"fdset-id\":0,\"fds\":[{\"fd\":%d}]}]",
		 q[0], p[0], p[1], q[1]);
	expect_query(sets, want);
	fdsets_free(sets);
	assert_false(fd_is_open(p[0]));
	assert_false(fd_is_open(q[1]));
}

static void test_remove(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	char want[128];
	int p[2];

	make_pipe(p);
	add(sets, p[0], true, 4, NULL);
	add(sets, p[1], true, 4, NULL);
	assert_int_equal(fdsets_remove_fd(sets, 4, true, 9999, &err), -ENOENT);
	expect_error(&err,
		     "File descriptor named 'fdset-id:4, fd:9999' not found");
	assert_int_equal(fdsets_remove_fd(sets, 5, true, p[0], &err), -ENOENT);
	snprintf(want, sizeof(want),
		 "File descriptor named 'fdset-id:5, fd:%d' not found", p[0]);
	expect_error(&err, want);
	assert_int_equal(fdsets_remove_fd(sets, 5, false, 0, &err), -ENOENT);
	expect_error(&err, "File descriptor named 'fdset-id:5' not found");

	assert_int_equal(fdsets_remove_fd(sets, 4, true, p[0], &err), 0);
	assert_false(fd_is_open(p[0]));
	assert_true(fd_is_open(p[1]));
	snprintf(want, sizeof(want), "[{\"fdset-id\":4,\"fds\":[{\"fd\":%d}]}]",
		 p[1]);
	expect_query(sets, want);
	assert_int_equal(fdsets_remove_fd(sets, 4, true, p[1], &err), 0);
	assert_false(fd_is_open(p[1]));
	expect_query(sets, "[]");
	assert_int_equal(fdsets_remove_fd(sets, 4, false, 0, &err), -ENOENT);
	expect_error(&err, "File descriptor named 'fdset-id:4' not found");
	fdsets_free(sets);
}

static void test_open_bad_paths(void **state)
{
	static const char *const unparsable[] = {
		"/dev/fdset/",	 "/dev/fdset/abc",	  "/dev/fdset/1x",
		"/dev/fdset/-1", "/dev/fdset/2147483648",
	};
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	char want[128];

	assert_int_equal(fdsets_open(sets, "/tmp/x", O_RDONLY, &err), -EINVAL);
	assert_non_null(err);
	mig_error_free(err);
	err = NULL;
	for (size_t i = 0; i < sizeof(unparsable) / sizeof(*unparsable); i++) {
		assert_int_equal(fdsets_open(sets, unparsable[i], 0, &err),
				 -EINVAL);
		snprintf(want, sizeof(want), "Could not parse fdset %s",
			 unparsable[i]);
		expect_error(&err, want);
	}
	/* strtol syntax, as QEMU: leading blanks and '+' are accepted */
	assert_int_equal(fdsets_open(sets, "/dev/fdset/+9", 0, &err), -ENOENT);
	expect_error(&err, "Failed to find fdset /dev/fdset/9");
	assert_int_equal(fdsets_open(sets, "/dev/fdset/ 9", 0, &err), -ENOENT);
	expect_error(&err, "Failed to find fdset /dev/fdset/9");
	fdsets_free(sets);
}

/* The dup refers to the chosen member: write through it, read the pipe. */
static void expect_dup_of_write_end(int dupfd, int read_end)
{
	char c = 0;

	assert_int_equal(write(dupfd, "k", 1), 1);
	assert_int_equal(read(read_end, &c, 1), 1);
	assert_int_equal(c, 'k');
}

static void test_open_access_mode(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	int p[2], q[2], d, rd_q;
	struct stat a, b;

	make_pipe(p);
	make_pipe(q);
	rd_q = dup(q[0]);
	add(sets, p[1], true, 1, NULL); /* O_WRONLY */
	add(sets, p[0], true, 1, NULL); /* O_RDONLY */
	add(sets, q[0], true, 1, NULL); /* O_RDONLY, newest */

	d = fdsets_open(sets, "/dev/fdset/1", O_WRONLY, &err);
	assert_true(d >= 0);
	assert_null(err);
	assert_int_not_equal(d, p[1]);
	assert_true(fcntl(d, F_GETFD) & FD_CLOEXEC);
	expect_dup_of_write_end(d, p[0]);
	assert_int_equal(fdsets_close_dup(sets, d), 0);

	/* two read-only members: the newest wins, as in QEMU */
	d = fdsets_open(sets, "/dev/fdset/1", O_RDONLY, &err);
	assert_true(d >= 0);
	assert_int_equal(fstat(d, &a), 0);
	assert_int_equal(fstat(rd_q, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(fdsets_close_dup(sets, d), 0);

	assert_int_equal(fdsets_open(sets, "/dev/fdset/1", O_RDWR, &err),
			 -EACCES);
	expect_error(&err,
		     "Failed to find file descriptor with matching flags=0x2");
	/* O_NONBLOCK is applied to the duplicate (and its description) */
	d = fdsets_open(sets, "/dev/fdset/1", O_WRONLY | O_NONBLOCK, &err);
	assert_true(d >= 0);
	assert_true(fcntl(d, F_GETFL) & O_NONBLOCK);
	assert_int_equal(fdsets_close_dup(sets, d), 0);
	close(rd_q);
	close(q[1]);
	fdsets_free(sets);
}

static char *temp_file(const char *content)
{
	char *path = strdup("/tmp/migd-test-fdset-XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
			 (ssize_t)strlen(content));
	close(fd);
	return path;
}

/* O_TRUNC truncates the shared file, O_SYNC must already match. */
static void test_open_trunc_sync(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	char *path = temp_file("hello");
	char want[128];
	struct stat st;
	int fd, d;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	add(sets, fd, true, 0, NULL);
	d = fdsets_open(sets, "/dev/fdset/0", O_WRONLY | O_SYNC, &err);
	assert_int_equal(d, -EINVAL);
	snprintf(want, sizeof(want),
		 "Failed to dup() given file descriptor fd=%d", fd);
	expect_error(&err, want);
	d = fdsets_open(sets, "/dev/fdset/0", O_WRONLY | O_TRUNC, &err);
	assert_true(d >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(fdsets_close_dup(sets, d), 0);
	fdsets_free(sets);
	unlink(path);
	free(path);
}

/* One fd with O_DIRECT and one without: each request gets its twin. */
static void test_open_direct(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	char *path = temp_file("");
	int plain, direct, d;

	direct = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (direct < 0) {
		print_message("O_DIRECT not supported on /tmp (%s): skipped\n",
			      strerror(errno));
		unlink(path);
		free(path);
		fdsets_free(sets);
		skip();
	}
	plain = open(path, O_RDWR | O_CLOEXEC);
	assert_true(plain >= 0);
	add(sets, direct, true, 0, NULL);
	assert_int_equal(fdsets_open(sets, "/dev/fdset/0", O_RDWR, &err),
			 -EACCES);
	expect_error(&err,
		     "Failed to find file descriptor with matching flags=0x2");
	add(sets, plain, true, 0, NULL);

	d = fdsets_open(sets, "/dev/fdset/0", O_RDWR | O_DIRECT, &err);
	assert_true(d >= 0);
	assert_true(fcntl(d, F_GETFL) & O_DIRECT);
	assert_int_equal(fdsets_close_dup(sets, d), 0);
	d = fdsets_open(sets, "/dev/fdset/0", O_RDWR, &err);
	assert_true(d >= 0);
	assert_false(fcntl(d, F_GETFL) & O_DIRECT);
	/* the O_DIRECT member was not touched by either dup */
	assert_true(fcntl(direct, F_GETFL) & O_DIRECT);
	assert_int_equal(fdsets_close_dup(sets, d), 0);
	fdsets_free(sets);
	unlink(path);
	free(path);
}

/* A set whose fds were removed lives on while a duplicate is open. */
static void test_dup_keeps_set(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	int p[2], d, d2;

	make_pipe(p);
	add(sets, p[1], true, 6, NULL);
	d = fdsets_open(sets, "/dev/fdset/6", O_WRONLY, &err);
	d2 = fdsets_open(sets, "/dev/fdset/6", O_WRONLY, &err);
	assert_true(d >= 0 && d2 >= 0);
	assert_int_equal(fdsets_remove_fd(sets, 6, false, 0, &err), 0);
	assert_false(fd_is_open(p[1]));
	expect_query(sets, "[{\"fdset-id\":6,\"fds\":[]}]");
	/* removing from an fd-less set succeeds; naming an fd does not */
	assert_int_equal(fdsets_remove_fd(sets, 6, false, 0, &err), 0);
	assert_int_equal(fdsets_remove_fd(sets, 6, true, d, &err), -ENOENT);
	mig_error_free(err);
	err = NULL;
	assert_int_equal(fdsets_close_dup(sets, d), 0);
	expect_query(sets, "[{\"fdset-id\":6,\"fds\":[]}]");
	assert_int_equal(fdsets_close_dup(sets, d2), 0);
	expect_query(sets, "[]");
	/* an fd that no set handed out is simply closed */
	assert_int_equal(fdsets_close_dup(sets, p[0]), 0);
	assert_false(fd_is_open(p[0]));
	assert_int_equal(fdsets_close_dup(sets, -1), -EBADF);
	fdsets_free(sets);
}

/* fdsets_free closes members, never the callers' duplicates. */
static void test_free_leaves_dups(void **state)
{
	struct fdsets *sets = fdsets_new();
	struct mig_error *err = NULL;
	int p[2], d;

	make_pipe(p);
	add(sets, p[1], false, 0, NULL);
	d = fdsets_open(sets, "/dev/fdset/0", O_WRONLY, &err);
	assert_true(d >= 0);
	fdsets_free(sets);
	assert_false(fd_is_open(p[1]));
	expect_dup_of_write_end(d, p[0]);
	close(d);
	close(p[0]);
}

static void test_monfd(void **state)
{
	struct monfd_table t;
	int p[2], q[2], d;

	monfd_table_init(&t);
	make_pipe(p);
	make_pipe(q);
	assert_int_equal(monfd_add(&t, "a", p[0]), 0);
	assert_int_equal(monfd_add(&t, "b", p[1]), 0);
	assert_int_equal(monfd_count(&t), 2);
	/* same name: the old fd is closed and replaced */
	assert_int_equal(monfd_add(&t, "a", q[0]), 0);
	assert_false(fd_is_open(p[0]));
	assert_int_equal(monfd_peek(&t, "a"), q[0]);
	assert_int_equal(monfd_count(&t), 2);

	d = monfd_dup(&t, "b");
	assert_true(d >= 0 && d != p[1]);
	assert_true(fcntl(d, F_GETFD) & FD_CLOEXEC);
	close(d);
	assert_int_equal(monfd_dup(&t, "zz"), -ENOENT);
	assert_int_equal(monfd_close(&t, "zz"), -ENOENT);
	assert_int_equal(monfd_take(&t, "b"), p[1]);
	assert_int_equal(monfd_take(&t, "b"), -ENOENT);
	assert_true(fd_is_open(p[1]));
	close(p[1]);
	assert_int_equal(monfd_close(&t, "a"), 0);
	assert_false(fd_is_open(q[0]));
	assert_int_equal(monfd_count(&t), 0);

	assert_int_equal(monfd_add(&t, "c", q[1]), 0);
	assert_int_equal(monfd_add(&t, "bad", -1), -EINVAL);
	for (int i = 0; i < 40; i++) { /* growth */
		char name[16];

		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(monfd_add(&t, name, dup(1)), 0);
	}
	assert_int_equal(monfd_count(&t), 41);
	monfd_table_fini(&t);
	assert_false(fd_is_open(q[1]));
	assert_int_equal(monfd_count(&t), 0);
	monfd_table_fini(&t); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_query_order),
		cmocka_unit_test(test_remove),
		cmocka_unit_test(test_open_bad_paths),
		cmocka_unit_test(test_open_access_mode),
		cmocka_unit_test(test_open_trunc_sync),
		cmocka_unit_test(test_open_direct),
		cmocka_unit_test(test_dup_keeps_set),
		cmocka_unit_test(test_free_leaves_dups),
		cmocka_unit_test(test_monfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
