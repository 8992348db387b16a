/* daemon.c — -daemonize and -pidfile, the QEMU way (see daemon.h).
 * The launcher blocks on a pipe; the daemon writes one byte when its QMP
 * sockets listen, so "migd -daemonize && connect" never races. Main thread
 * only, before any other thread exists (fork() would lose them). */
#include "control/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void daemon_state_init(struct daemon_state *ds)
{
	ds->ready_fd = -1;
	ds->pid_fd = -1;
	ds->pid_path = NULL;
}

/* The launcher: exit with the daemon's verdict. */
static void __attribute__((noreturn)) wait_for_daemon(int fd)
{
	char status;
	ssize_t n;

	do {
		n = read(fd, &status, 1);
	} while (n < 0 && errno == EINTR);
	_exit(n == 1 && status == 0 ? 0 : 1);
}

int daemon_start(struct daemon_state *ds, struct mig_error **errp)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		mig_error_setg(errp, "cannot daemonize: %s", strerror(errno));
		return -errno;
	}
	if (pid > 0) {
		close(fds[1]);
		wait_for_daemon(fds[0]);
	}
	close(fds[0]);
	setsid();
	pid = fork();
	if (pid < 0)
		_exit(1); /* the launcher sees EOF and exits 1 */
	if (pid > 0)
		_exit(0);
	umask(027);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	ds->ready_fd = fds[1];
	return 0;
}

void daemon_ready(struct daemon_state *ds, bool keep_stderr)
{
	char ok = 0;
	int null_fd;
	ssize_t n;

	if (ds->ready_fd < 0)
		return;
	if (chdir("/") < 0) {
		/* "/" always exists; nothing useful to do otherwise */
	}
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	do {
		n = write(ds->ready_fd, &ok, 1);
	} while (n < 0 && errno == EINTR);
	close(ds->ready_fd);
	ds->ready_fd = -1;
	if (null_fd < 0)
		return;
	dup2(null_fd, STDIN_FILENO);
	dup2(null_fd, STDOUT_FILENO);
	if (!keep_stderr)
		dup2(null_fd, STDERR_FILENO);
	close(null_fd);
}

static int pidfile_fail(struct mig_error **errp, const char *what, int err)
{
	mig_error_setg(errp, "cannot create PID file: %s: %s", what,
		       strerror(err));
	return -err;
}

/* Locks and fills an open pidfile. */
static int fill_pidfile(int fd, struct mig_error **errp)
{
	char text[32];
	int len;

	if (lockf(fd, F_TLOCK, 0) < 0)
		return pidfile_fail(errp, "Cannot lock pid file", errno);
	if (ftruncate(fd, 0) < 0)
		return pidfile_fail(errp, "Failed to truncate pid file", errno);
	len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (write(fd, text, (size_t)len) != len)
		return pidfile_fail(errp, "Failed to write pid file", EIO);
	return 0;
}

int daemon_write_pidfile(struct daemon_state *ds, const char *path,
			 struct mig_error **errp)
{
	char resolved[PATH_MAX];
	int fd, ret;

	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return pidfile_fail(errp, "Cannot open pid file", errno);
	ret = fill_pidfile(fd, errp);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ds->pid_fd = fd;
	/* Unlinked at exit by absolute path: the daemon chdir()s to "/". */
	ds->pid_path = strdup(realpath(path, resolved) ? resolved : path);
	return 0;
}

void daemon_fini(struct daemon_state *ds)
{
	if (ds->pid_path)
		unlink(ds->pid_path);
	free(ds->pid_path);
	ds->pid_path = NULL;
	if (ds->pid_fd >= 0)
		close(ds->pid_fd);
	ds->pid_fd = -1;
	if (ds->ready_fd >= 0)
		close(ds->ready_fd);
	ds->ready_fd = -1;
}
