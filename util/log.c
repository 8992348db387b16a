/* log.c — the log sink (see log.h).
 * This file breaks the no-mutable-globals rule on purpose: the log is
 * process-wide like stderr itself, and threading a logger pointer into every
 * worker and codec would buy nothing. The state is two atomics: the sink fd
 * (changed only by main() while no other thread logs) and the level. */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static atomic_int log_fd = STDERR_FILENO; /* -1: discard */
static atomic_int log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

static void close_file_sink(void)
{
	int fd = atomic_exchange(&log_fd, STDERR_FILENO);

	if (fd > STDERR_FILENO)
		close(fd);
}

int log_open(const char *path, struct mig_error **errp)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0) {
		int err = errno;

		mig_error_setg(errp, "could not open log file '%s': %s", path,
			       strerror(err));
		return -err;
	}
	close_file_sink();
	atomic_store(&log_fd, fd);
	return 0;
}

void log_close(void)
{
	close_file_sink();
}

void log_discard(void)
{
	int fd = atomic_exchange(&log_fd, -1);

	if (fd > STDERR_FILENO)
		close(fd);
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

bool log_level_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level) &&
	       atomic_load(&log_fd) >= 0;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]);
	     i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

/* "2024-05-01T12:00:00.123456Z", like QEMU's -msg timestamp=on. */
static size_t format_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, len - n, ".%06ldZ ", ts.tv_nsec / 1000);
	return n < len ? n : len - 1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n;
	va_list ap;
	int fd = atomic_load(&log_fd), ret;

	if (fd < 0 || (int)level > atomic_load(&log_level))
		return;
	n = format_time(line, sizeof(line));
	n += (size_t)snprintf(line + n, sizeof(line) - n,
			      "%s: ", level_names[level]);
	va_start(ap, fmt);
	ret = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (ret < 0)
		return;
	n += (size_t)ret;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	line[n++] = '\n';
	/* One write per line; a short write to a log is not worth a retry. */
	if (write(fd, line, n) < 0) {
	}
}
