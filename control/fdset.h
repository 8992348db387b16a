/* fdset.h — QEMU's fd sets (add-fd, remove-fd, query-fdsets) and the
 * /dev/fdset/N lookup used by file: URIs, plus the getfd/closefd commands
 * (named fds live in each monitor's struct monfd_table, see monfd.h;
 * the commands are in fdset_cmds.c).
 * Threads: fdsets_open() and fdsets_close_dup() may be called from any
 * thread (a mutex inside struct fdsets guards the sets); everything else is
 * control thread only. */
#ifndef MIGD_CONTROL_FDSET_H
#define MIGD_CONTROL_FDSET_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct fdsets;
struct qmp_server;

#define FDSET_PATH_PREFIX "/dev/fdset/"

struct fdsets *fdsets_new(void);
/* Closes every fd held by a set. Duplicates handed out by fdsets_open()
 * belong to their callers and stay open. */
void fdsets_free(struct fdsets *sets);

/* Opens "/dev/fdset/N" the QEMU way: dup()s an fd of set N whose access
 * mode matches flags (O_ACCMODE, O_DIRECT). Returns an fd or -errno. */
int fdsets_open(struct fdsets *sets, const char *path, int flags,
		struct mig_error **errp);
/* Closes fd; when it came from fdsets_open() its set stops counting it (a
 * set lives while it holds fds or outstanding duplicates). 0 or -errno. */
int fdsets_close_dup(struct fdsets *sets, int fd);

/* add-fd without the monitor: adds fd to set id (created if missing), or to
 * a new set with the lowest free id when !has_id. Takes ownership of fd in
 * every case (closed on failure). opaque may be NULL. *out_id gets the set's
 * id. 0 or -errno with *errp set. */
int fdsets_add_fd(struct fdsets *sets, int fd, bool has_id, int64_t id,
		  const char *opaque, int64_t *out_id, struct mig_error **errp);
/* remove-fd: closes fd (or, when !has_fd, every fd) of set id; the set goes
 * away once it holds no fd and no duplicate is outstanding. */
int fdsets_remove_fd(struct fdsets *sets, int64_t id, bool has_fd, int64_t fd,
		     struct mig_error **errp);
/* query-fdsets' return value (new reference; NULL only on ENOMEM). */
json_t *fdsets_query(struct fdsets *sets);

/* Registers getfd, closefd, add-fd, remove-fd, query-fdsets. */
void fdset_register_qmp(struct qmp_server *srv);

#endif
