/* exec.c — 'exec:' commands (see fdchan.h): spawning a command with pipes
 * on its stdin and stdout, and reaping it after its channel is closed.
 * posix_spawn, not fork: the caller is multi-threaded and may map many GiB
 * of guest RAM (glibc spawns with a vfork-like clone, no page-table copy).
 * Any thread. */
#include "socket/channel.h"
#include "socket/fdchan.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the child must not inherit from migd: blocked termination signals
 * (main() blocks them for its signalfd) and an ignored SIGPIPE. */
static int spawn_attr_init(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;
	int ret = posix_spawnattr_init(attr);

	if (ret)
		return ret;
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGCHLD);
	ret = posix_spawnattr_setsigmask(attr, &none);
	if (!ret)
		ret = posix_spawnattr_setsigdefault(attr, &dfl);
	if (!ret)
		ret = posix_spawnattr_setflags(
			attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (ret)
		posix_spawnattr_destroy(attr);
	return ret;
}

/* stdin <- in_rd, stdout <- out_wr, stderr kept (as QEMU), rest closed. */
static int spawn_files_init(posix_spawn_file_actions_t *fa, int in_rd,
			    int out_wr)
{
	int ret = posix_spawn_file_actions_init(fa);

	if (ret)
		return ret;
	ret = posix_spawn_file_actions_adddup2(fa, in_rd, STDIN_FILENO);
	if (!ret)
		ret = posix_spawn_file_actions_adddup2(fa, out_wr,
						       STDOUT_FILENO);
	if (!ret)
		ret = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	if (ret)
		posix_spawn_file_actions_destroy(fa);
	return ret;
}

static int spawn(char *const *argv, int in_rd, int out_wr, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int ret = spawn_attr_init(&attr);

	if (ret)
		return ret;
	ret = spawn_files_init(&fa, in_rd, out_wr);
	if (!ret) {
		ret = posix_spawnp(pid, argv[0], &fa, &attr, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	posix_spawnattr_destroy(&attr);
	return ret;
}

/* "exec:ARGV..." for messages, cut to fit. */
static void describe(char *const *argv, char *buf, size_t len)
{
	size_t pos = (size_t)snprintf(buf, len, "exec:");

	for (size_t i = 0; argv[i] && pos < len; i++)
		pos += (size_t)snprintf(buf + pos, len - pos, "%s%s",
					i ? " " : "", argv[i]);
}

struct channel *exec_spawn(char *const *argv, struct mig_error **errp)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, ret;
	char desc[128];
	pid_t pid = 0;

	if (!argv || !argv[0]) {
		mig_error_setg(errp, "Failed to execute child process: empty "
				     "argument list");
		return NULL;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		ret = errno;
		mig_error_setg(errp, "Unable to open pipe: %s", strerror(ret));
		goto err;
	}
	ret = spawn(argv, in[0], out[1], &pid);
	if (ret) {
		mig_error_setg(errp,
			       "Failed to execute child process \"%s\" (%s)",
			       argv[0], strerror(ret));
		goto err;
	}
	close(in[0]);
	close(out[1]);
	describe(argv, desc, sizeof(desc));
	return fdchan_new(out[0], in[1], pid, desc, errp);
err:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return NULL;
}

static void *reaper(void *opaque)
{
	pid_t pid = (pid_t)(intptr_t)opaque;

	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

/* A detached thread per command: it blocks in waitpid() for as long as
 * the command runs (a command that ignores the end of its input runs on,
 * as under QEMU, but never blocks migd). */
void exec_reap(pid_t child)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (child <= 0)
		return;
	if (waitpid(child, NULL, WNOHANG) == child)
		return;
	ret = pthread_attr_init(&attr);
	if (!ret) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&t, &attr, reaper,
				     (void *)(intptr_t)child);
		pthread_attr_destroy(&attr);
	}
	if (ret) /* no thread: wait here rather than leave a zombie */
		reaper((void *)(intptr_t)child);
}
