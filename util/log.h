/* log.h — the daemon's diagnostic log: stderr by default, or the file given
 * with -D (QEMU's option). Levels filter what is written. Any thread may log;
 * log_open()/log_close() are for main() only (before worker threads start,
 * after they are joined). Each message is one write(), so lines from
 * different threads never interleave. */
#ifndef MIGD_UTIL_LOG_H
#define MIGD_UTIL_LOG_H

#include <stdbool.h>

#include "util/error.h"

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sends messages to path (created 0644 if missing, appended to). 0 or
 * -errno with *errp set. */
int log_open(const char *path, struct mig_error **errp);
/* Back to stderr (closing the -D file). */
void log_close(void);
/* Drops everything (for a daemon whose stderr is /dev/null and has no -D). */
void log_discard(void);

void log_set_level(enum log_level level);
bool log_level_enabled(enum log_level level);
/* "error", "warn", "info", "debug" -> level, or -EINVAL. */
int log_level_parse(const char *name);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
