/* sockaddr.h — migration addresses: QEMU's URI forms ("tcp:HOST:PORT",
 * "unix:PATH", "vsock:CID:PORT", "fd:NAME", "exec:CMD", "rdma:HOST:PORT",
 * "file:PATH[,offset=N]") and the QAPI MigrationAddress of the 'channels'
 * argument, parsed into one typed struct (addr.c); plus socket connect,
 * listen and accept for tcp/unix/vsock (socket_open.c).
 * Parsing: control thread. Connect/listen/accept: any thread (connect
 * blocks; listening sockets are non-blocking). */
#ifndef MIGD_SOCKET_SOCKADDR_H
#define MIGD_SOCKET_SOCKADDR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct channel;
struct qapi_in;

enum mig_addr_kind {
	MIG_ADDR_TCP,	/* socket/inet */
	MIG_ADDR_UNIX,	/* socket/unix */
	MIG_ADDR_VSOCK, /* socket/vsock */
	MIG_ADDR_FD,	/* socket/fd: a monitor fd name or number */
	MIG_ADDR_EXEC,
	MIG_ADDR_RDMA,
	MIG_ADDR_FILE,
};

/* Everything is owned by the struct (mig_addr_clear() frees it). Strings
 * are kept as given: QEMU resolves hosts, services and cids only when it
 * connects or listens, and so do we. */
struct mig_addr {
	enum mig_addr_kind kind;
	char *host;   /* TCP, RDMA (brackets stripped from IPv6); "" = any */
	char *port;   /* TCP, RDMA, VSOCK (as given: service names allowed) */
	char *path;   /* UNIX path, FILE filename */
	char *cid;    /* VSOCK */
	char *fdname; /* FD */
	char **argv;  /* EXEC, NULL-terminated (argv[0] NULL: QAPI "[]") */
	uint64_t offset; /* FILE */
	/* InetSocketAddress options (TCP, RDMA), QEMU's has_X/X pairs. The
	 * URI form sets to/ipv4/ipv6/keep-alive/mptcp ("tcp:h:p,ipv4=on");
	 * numeric only comes from the QAPI form. */
	bool has_ipv4, ipv4, has_ipv6, ipv6;
	bool has_numeric, numeric; /* listen: numeric host and port only */
	bool has_to;		   /* listen: first free of port..to */
	uint16_t to;
	/* absent = on, with short timeouts (see sock_tune() in socket.c) */
	bool has_keep_alive, keep_alive;
	bool has_mptcp, mptcp; /* IPPROTO_MPTCP instead of TCP */
	/* UnixSocketAddress options (QAPI form only): Linux abstract
	 * namespace; tight (default true) = address length without padding. */
	bool abstract;
	bool has_tight, tight;
};

/* Parses a migrate/migrate-incoming URI exactly as QEMU 9.0's
 * migrate_uri_parse(). 0, -EINVAL with QEMU's message in *errp ("unknown
 * migration protocol: %s", "error parsing address '%s'", "file URI has bad
 * offset %s: %s", ...) or -ENOMEM. *out is zeroed first and left empty on
 * failure. */
int mig_addr_parse_uri(const char *uri, struct mig_addr *out,
		       struct mig_error **errp);
/* Reads a MigrationAddress object (member name of in, e.g. the "addr"
 * member of a MigrationChannel) with QAPI semantics: QEMU's messages for
 * missing, mistyped and unexpected members, "Parameter 'transport' does not
 * accept value 'x'". 0 or -EINVAL/-ENOMEM; *out is empty on failure. */
int mig_addr_read_qapi(struct qapi_in *in, const char *name,
		       struct mig_addr *out, struct mig_error **errp);
/* Frees the members and zeroes *a. Safe on a zeroed struct. */
void mig_addr_clear(struct mig_addr *a);
/* URI text for logs and channel descriptions ("tcp:[::1]:4444,ipv6=on",
 * "unix:/p", "file:/f,offset=4096"). For every address the URI syntax can
 * express, mig_addr_parse_uri() of the result gives the address back. */
void mig_addr_format(const struct mig_addr *a, char *buf, size_t len);

/* Connects a TCP/UNIX/VSOCK address (blocking) and returns a socket
 * channel, or NULL with *errp (QEMU's "Failed to connect to '%s:%s': %s",
 * "address resolution failed for %s:%s: %s", ...). */
struct channel *sock_connect(const struct mig_addr *a, struct mig_error **errp);
/* The same, abandoned with "Connection cancelled" as soon as cancel_fd
 * (an eventfd or pipe read end; -1 for none) becomes readable, so cancel
 * does not wait for TCP's SYN retries (minutes). cancel_fd is only polled,
 * never read. */
struct channel *sock_connect_cancellable(const struct mig_addr *a,
					 int cancel_fd,
					 struct mig_error **errp);
/* Listening socket(s) for a TCP/UNIX/VSOCK address: non-blocking,
 * close-on-exec. As QEMU, a TCP host that resolves to several addresses
 * gets a listener on each that can be bound (fds[0..*nfds), at most max);
 * it fails only when none can. Port 0 picks a free port (the same one for
 * every listener when possible); "to" tries port..to. A unix path is
 * unlinked first, as QEMU does. 0 or -errno with *errp. */
int sock_listen(const struct mig_addr *a, int *fds, int *nfds, int max,
		struct mig_error **errp);
/* Accepts one connection from a listening socket and wraps it in a
 * channel (blocking I/O, TCP tuned as in sock_connect()). 0, -EAGAIN when
 * none is pending (no error set), or -errno with *errp ("Unable to accept
 * connection: %s"). */
int sock_accept(int listen_fd, struct channel **out, struct mig_error **errp);
/* Unlinks a listening unix socket's file (path from getsockname(); call
 * before closing fd). No-op for other sockets. */
void sock_listen_cleanup(int fd);
/* The bound address of a socket as a QAPI SocketAddress object, as QEMU
 * reports it in query-migrate's socket-address: {"type": "inet", "host":
 * "0.0.0.0", "port": "4444", "ipv4": true} (or "ipv6": true), {"type":
 * "unix", "path": ...} (abstract: plus "abstract"/"tight"), {"type":
 * "vsock", "cid": ..., "port": ...}. New reference, NULL on error. */
json_t *sock_local_address_json(int fd);
/* Wraps a connected socket fd in a channel (takes ownership: closes fd on
 * failure too). The fd is switched to blocking mode. desc is copied (may
 * be truncated). NULL only on ENOMEM. */
struct channel *sock_channel_new(int fd, const char *desc);
/* True when fd is a socket (QEMU's fd_is_socket()). */
bool sock_fd_is_socket(int fd);

#endif
