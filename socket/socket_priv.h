/* socket_priv.h — helpers shared by socket.c (the socket channel) and
 * socket_open.c / socket_vsock.c (connect/listen/accept). Not for use outside
 * socket/. Any thread: they act on one fd the caller owns. */
#ifndef MIGD_SOCKET_SOCKET_PRIV_H
#define MIGD_SOCKET_SOCKET_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "util/error.h"

struct mig_addr;

/* Dead-peer detection for migration TCP sockets (see sock_tune()). */
#define SOCK_KEEPIDLE_S 10
#define SOCK_KEEPINTVL_S 5
#define SOCK_KEEPCNT 3
#define SOCK_USER_TIMEOUT_MS                                                   \
	((SOCK_KEEPIDLE_S + SOCK_KEEPINTVL_S * SOCK_KEEPCNT) * 1000)

/* Applies migd's TCP options to fd (no-op for other sockets): Nagle off,
 * and unless a says keep-alive=off, keepalive probes plus a user timeout.
 * a may be NULL (defaults). 0, or -errno with *errp when keep-alive was
 * asked for explicitly and cannot be set (QEMU's "Unable to set keep-alive
 * option on socket"); other options are best effort. */
int sock_tune(int fd, const struct mig_addr *a, struct mig_error **errp);

/* vsock (socket_vsock.c): a connected (blocking) or listening
 * (non-blocking) socket fd, or -errno with *errp. */
int sock_vsock_connect(const struct mig_addr *a, struct mig_error **errp);
int sock_vsock_listen(const struct mig_addr *a, struct mig_error **errp);

/* "tcp:1.2.3.4:5", "tcp:[::1]:5", "unix:/p", "unix:@abstract",
 * "vsock:3:1024" for a socket address (for channel descriptions). */
void sock_addr_desc(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t n);

#endif
