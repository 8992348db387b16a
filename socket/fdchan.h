/* fdchan.h — byte channels over descriptors that are not sockets: a pipe,
 * FIFO, tty or regular file passed as 'fd:NAME', and the two pipes of an
 * 'exec:' command (exec.c spawns and reaps it). What socket.c is for
 * sockets. Construction: any thread; I/O: the owner thread; shutdown: any
 * thread until close (the owner is woken through an eventfd, since
 * shutdown(2) does not exist for pipes).
 * The process must ignore SIGPIPE (migd's main() does): a write to a pipe
 * whose reader left is then -EPIPE. */
#ifndef MIGD_SOCKET_FDCHAN_H
#define MIGD_SOCKET_FDCHAN_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/error.h"

struct channel;

/* Wraps rfd (read side) and wfd (write side; may equal rfd; either may be
 * -1 when that direction is unused, its I/O then fails with -EBADF) in a
 * channel, taking both in every case (closed on failure). The fds are
 * switched to non-blocking, close-on-exec mode. child > 0: an exec child,
 * reaped after close (exec_reap()). ch->fd is the stream's fd (wfd when
 * set, else rfd), or -1 for a command. NULL with *errp on failure. */
struct channel *fdchan_new(int rfd, int wfd, pid_t child, const char *desc,
			   struct mig_error **errp);

/* The descriptor a channel reads from: rfd for an fd channel, ch->fd for
 * any other (for watching a stream's first bytes). */
int fdchan_read_fd(const struct channel *ch);

/* Spawns argv (argv[0] looked up in PATH) with a pipe on its stdin and
 * another on its stdout and returns the channel: it writes the child's
 * stdin and reads its stdout (QEMU's qio_channel_command with O_RDWR). The
 * child starts with default signal dispositions and an empty signal mask,
 * and inherits only stdin, stdout and stderr. NULL with *errp ("Failed to
 * execute child process \"%s\" (%s)", "Unable to open pipe: %s"). */
struct channel *exec_spawn(char *const *argv, struct mig_error **errp);

/* Reaps child once it exits, without blocking the caller and without
 * signalling it: a command migd started is waited for, never killed (QEMU
 * closes the pipes and waits). Any thread. */
void exec_reap(pid_t child);

#endif
