/* socket.c — the socket channel: channel_ops over a connected stream
 * socket (tcp, unix, vsock, or an fd the user passed), migd's TCP options,
 * and socket addresses as text and as QAPI SocketAddress JSON. Opening
 * sockets is socket_open.c. Channel I/O: the owner thread; shutdown: any
 * thread until close. The other functions: any thread. */
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "socket/socket_priv.h"
#include "socket/zerocopy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

struct sock_chan {
	struct channel ch; /* first, so the ops can convert back */
	atomic_bool shut;  /* set by sock_shutdown(), read by the owner */
	struct sock_zc zc; /* MSG_ZEROCOPY state: owner only */
};

static struct sock_chan *to_sock(struct channel *ch)
{
	return (struct sock_chan *)ch;
}

/* Only a passed fd could still be non-blocking (sock_channel_new() clears
 * O_NONBLOCK, but the user shares the file description). */
static int wait_ready(int fd, short events)
{
	struct pollfd p = {.fd = fd, .events = events};

	while (poll(&p, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Once shut down, whatever the kernel said (EOF, EPIPE, ...), the owner
 * learns that it was cancelled rather than that the peer went away. */
static ssize_t sock_fail(struct sock_chan *s, int err)
{
	return atomic_load(&s->shut) ? -ECANCELED : -err;
}

static ssize_t sock_xfer(struct channel *ch, const struct iovec *iov,
			 int iovcnt, bool write)
{
	struct sock_chan *s = to_sock(ch);
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = iovcnt < IOV_MAX ? (size_t)iovcnt : IOV_MAX,
	};
	ssize_t n;

	for (;;) {
		if (atomic_load(&s->shut))
			return -ECANCELED;
		n = write ? sendmsg(ch->fd, &msg, MSG_NOSIGNAL)
			  : recvmsg(ch->fd, &msg, 0);
		if (n > 0)
			return n;
		if (n == 0) /* EOF (read), or nothing asked for */
			return atomic_load(&s->shut) ? -ECANCELED : 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return sock_fail(s, errno);
		n = wait_ready(ch->fd, write ? POLLOUT : POLLIN);
		if (n < 0)
			return sock_fail(s, (int)-n);
	}
}

static ssize_t sock_writev(struct channel *ch, const struct iovec *iov,
			   int iovcnt)
{
	return sock_xfer(ch, iov, iovcnt, true);
}

static ssize_t sock_readv(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	return sock_xfer(ch, iov, iovcnt, false);
}

static int sock_zerocopy_enable(struct channel *ch)
{
	return sock_zc_enable(ch->fd, &to_sock(ch)->zc);
}

/* sock_xfer() for one zero-copy send. */
static ssize_t sock_writev_zerocopy(struct channel *ch, const struct iovec *iov,
				    int iovcnt)
{
	struct sock_chan *s = to_sock(ch);
	ssize_t n;

	for (;;) {
		if (atomic_load(&s->shut))
			return -ECANCELED;
		n = sock_zc_send(ch->fd, &s->zc, iov, iovcnt);
		if (n >= 0)
			return n;
		if (n != -EAGAIN && n != -EWOULDBLOCK)
			return sock_fail(s, (int)-n);
		n = wait_ready(ch->fd, POLLOUT);
		if (n < 0)
			return sock_fail(s, (int)-n);
	}
}

static int sock_flush(struct channel *ch, struct mig_error **errp)
{
	struct sock_chan *s = to_sock(ch);

	return sock_zc_flush(ch->fd, &s->zc, &s->shut, errp);
}

/* shutdown(2) is safe against a concurrent blocked recvmsg/sendmsg on the
 * same fd and wakes it; the fd itself stays open until sock_close(). */
static void sock_shutdown(struct channel *ch)
{
	atomic_store(&to_sock(ch)->shut, true);
	shutdown(ch->fd, SHUT_RDWR);
}

static void sock_close(struct channel *ch)
{
	close(ch->fd);
	free(to_sock(ch));
}

static const struct channel_ops sock_ops = {
	.name = "socket",
	.writev = sock_writev,
	.readv = sock_readv,
	.shutdown = sock_shutdown,
	.close = sock_close,
	.zerocopy_enable = sock_zerocopy_enable,
	.writev_zerocopy = sock_writev_zerocopy,
	.flush = sock_flush,
};

struct channel *sock_channel_new(int fd, const char *desc)
{
	struct sock_chan *s;
	int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;

	if (fl < 0)
		goto err_fd;
	if ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto err_fd;
	/* exec: children must not inherit migration streams */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		goto err_fd;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto err_fd;
	s->ch.ops = &sock_ops;
	s->ch.fd = fd;
	s->ch.priv = s;
	snprintf(s->ch.desc, sizeof(s->ch.desc), "%s", desc ? desc : "");
	atomic_init(&s->shut, false);
	return &s->ch;
err_fd:
	if (fd >= 0)
		close(fd);
	return NULL;
}

bool sock_fd_is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

/* --- TCP options ---------------------------------------------------------- */

static bool sock_is_tcp(int fd)
{
	int dom = 0, proto = 0;
	socklen_t len = sizeof(dom);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) < 0)
		return false;
	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return false;
	return (dom == AF_INET || dom == AF_INET6) &&
	       (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP);
}

static void set_int_opt(int fd, int level, int name, int val)
{
	(void)setsockopt(fd, level, name, &val, sizeof(val));
}

/* Nagle off: every writer already batches (the main stream through its
 * buffer, multifd one writev per packet), so Nagle only delays the small
 * tail write of a sync point or of the switchover by up to a delayed-ACK
 * round (~40 ms) — straight into downtime.
 * Dead peers: keepalive notices an idle dead peer (the destination waiting
 * for data) within KEEPIDLE + KEEPINTVL * KEEPCNT = 25 s. Keepalive is not
 * sent while data is unacknowledged, so a source writing into a dead peer
 * would wait for TCP's retransmission limit (~15 min); TCP_USER_TIMEOUT
 * bounds that at the same 25 s. It also drops a live peer that reads
 * nothing for that long (zero window; checked on Linux 6.x: ETIMEDOUT): a
 * migration peer stuck that long is treated as dead. QEMU sets none of
 * this by default; keep-alive=off gives its kernel-default behaviour.
 * Buffer sizes are left to Linux's autotuning, which beats a fixed size. */
int sock_tune(int fd, const struct mig_addr *a, struct mig_error **errp)
{
	bool explicit_on = a && a->has_keep_alive && a->keep_alive;
	int one = 1;

	if (!sock_is_tcp(fd))
		return 0;
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (a && a->has_keep_alive && !a->keep_alive)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0) {
		int err = errno;

		if (!explicit_on)
			return 0;
		mig_error_setg(errp,
			       "Unable to set keep-alive option on socket: %s",
			       strerror(err));
		return -err;
	}
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, SOCK_KEEPIDLE_S);
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, SOCK_KEEPINTVL_S);
	set_int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, SOCK_KEEPCNT);
	set_int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, SOCK_USER_TIMEOUT_MS);
	return 0;
}

/* --- addresses ------------------------------------------------------------ */

/* A unix socket's name: abstract names drop their leading NUL (and may
 * hold NULs); path names end at the first NUL. Returns the length. */
static size_t unix_name(const struct sockaddr *sa, socklen_t salen,
			const char **name, bool *abstract, size_t *rawlen)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	size_t n = salen > off ? salen - off : 0;

	if (n > sizeof(un->sun_path))
		n = sizeof(un->sun_path);
	*rawlen = n;
	*abstract = n > 0 && un->sun_path[0] == '\0';
	if (*abstract) {
		*name = un->sun_path + 1;
		return n - 1;
	}
	*name = un->sun_path;
	return strnlen(un->sun_path, n);
}

static bool inet_numeric(const struct sockaddr *sa, socklen_t len,
			 char host[NI_MAXHOST], char port[NI_MAXSERV])
{
	return getnameinfo(sa, len, host, NI_MAXHOST, port, NI_MAXSERV,
			   NI_NUMERICHOST | NI_NUMERICSERV) == 0;
}

void sock_addr_desc(const struct sockaddr *sa, socklen_t len, char *buf,
		    size_t n)
{
	const struct sockaddr_vm *vm = (const struct sockaddr_vm *)sa;
	char host[NI_MAXHOST], port[NI_MAXSERV];
	const char *name;
	bool abstract, v6 = sa->sa_family == AF_INET6;
	size_t raw, nlen;

	switch (sa->sa_family) {
	case AF_INET:
	case AF_INET6:
		if (!inet_numeric(sa, len, host, port))
			break;
		snprintf(buf, n, "tcp:%s%s%s:%s", v6 ? "[" : "", host,
			 v6 ? "]" : "", port);
		return;
	case AF_UNIX:
		nlen = unix_name(sa, len, &name, &abstract, &raw);
		snprintf(buf, n, "unix:%s%.*s", abstract ? "@" : "", (int)nlen,
			 name);
		return;
	case AF_VSOCK:
		snprintf(buf, n, "vsock:%u:%u", vm->svm_cid, vm->svm_port);
		return;
	}
	snprintf(buf, n, "socket");
}

/* JSON strings must be UTF-8; a path that is not gets '?' for each byte
 * above 0x7f rather than failing the whole query. */
static json_t *json_string_lossy(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j)
		return j;
	copy = malloc(n + 1);
	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	j = json_stringn(copy, n);
	free(copy);
	return j;
}

static json_t *unix_json(const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
	const char *name;
	bool abstract;
	size_t raw, nlen = unix_name(sa, len, &name, &abstract, &raw);
	json_t *path = json_string_lossy(name, nlen);
	json_t *o;

	if (!path)
		return NULL;
	o = json_pack("{s:s, s:o}", "type", "unix", "path", path);
	if (o && abstract) {
		json_object_set_new(o, "abstract", json_true());
		json_object_set_new(o, "tight",
				    json_boolean(raw < sizeof(un->sun_path)));
	}
	return o;
}

json_t *sock_local_address_json(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	const struct sockaddr_vm *vm = (const struct sockaddr_vm *)&ss;
	char host[NI_MAXHOST], port[NI_MAXSERV];

	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return NULL;
	switch (ss.ss_family) {
	case AF_INET:
	case AF_INET6:
		if (!inet_numeric(sa, len, host, port))
			return NULL;
		return json_pack("{s:s, s:s, s:s, s:b}", "type", "inet", "host",
				 host, "port", port,
				 ss.ss_family == AF_INET ? "ipv4" : "ipv6", 1);
	case AF_UNIX:
		return unix_json(sa, len);
	case AF_VSOCK:
		snprintf(host, sizeof(host), "%u", vm->svm_cid);
		snprintf(port, sizeof(port), "%u", vm->svm_port);
		return json_pack("{s:s, s:s, s:s}", "type", "vsock", "cid",
				 host, "port", port);
	}
	return NULL;
}
