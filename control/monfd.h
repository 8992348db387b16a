/* monfd.h — a monitor's named file descriptors (QMP getfd/closefd, used by
 * 'fd:NAME' URIs). One struct monfd_table is embedded in each QMP monitor and
 * dies with it; it does not own fd passing itself (qmp.c) nor fd sets
 * (fdset.c). Control thread only: no locking. */
#ifndef MIGD_CONTROL_MONFD_H
#define MIGD_CONTROL_MONFD_H

#include <stddef.h>

struct qmp_monitor;

struct monfd_entry {
	char *name; /* unique within the table */
	int fd;	    /* owned by the table */
};

/* Zero-initialised is a valid empty table. */
struct monfd_table {
	struct monfd_entry *v;
	size_t n, cap;
};

void monfd_table_init(struct monfd_table *t);
/* Closes every fd and frees the table's memory (the struct itself is the
 * caller's). The table is empty and reusable afterwards. */
void monfd_table_fini(struct monfd_table *t);

/* Stores fd under name, taking ownership of fd in every case: an older fd of
 * the same name is closed and replaced; on failure (-ENOMEM, -EINVAL for a
 * negative fd or NULL name) fd is closed. Returns 0 or -errno. Name rules
 * (QEMU refuses names starting with a digit) are the caller's. */
int monfd_add(struct monfd_table *t, const char *name, int fd);
/* Closes and forgets the fd named name: 0, or -ENOENT when absent. */
int monfd_close(struct monfd_table *t, const char *name);
/* A new close-on-exec duplicate of the fd named name (the table keeps its
 * own): fd >= 0, -ENOENT when absent, or -errno from dup. */
int monfd_dup(struct monfd_table *t, const char *name);
/* Removes the fd named name from the table and hands it to the caller, as
 * QEMU's monitor_get_fd() does for 'fd:NAME' (whose message when absent is
 * "File descriptor named '%s' has not been found"). fd or -ENOENT. */
int monfd_take(struct monfd_table *t, const char *name);
/* The fd stored under name (still owned by the table), or -ENOENT. */
int monfd_peek(const struct monfd_table *t, const char *name);
size_t monfd_count(const struct monfd_table *t);

/* Implemented by the QMP server (control/qmp.c): the named-fd table of a
 * monitor. Never NULL for a live monitor; valid while the monitor is. */
struct monfd_table *qmp_monitor_fds(struct qmp_monitor *mon);

#endif
