/* socket_open.c — opening migration sockets (see sockaddr.h): connect and
 * listen for tcp (getaddrinfo, QEMU's ipv4/ipv6 rules, port ranges, mptcp)
 * and unix (path or abstract), and accept, with QEMU's error messages;
 * vsock is socket_vsock.c. Any thread: connect blocks (cancellable through
 * a cancel fd); listening sockets are non-blocking. */
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "socket/socket_priv.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* A unix connect to a full backlog fails with EAGAIN on a non-blocking
 * socket; we retry at this period, watching the cancel fd meanwhile. */
#define UNIX_RETRY_MS 20

/* Waits for events on fd (fd < 0: just the timeout) unless cancel_fd
 * (< 0: none) becomes readable first: 0 or -ECANCELED/-errno. */
static int wait_or_cancel(int fd, short events, int cancel_fd, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = events},
			      {.fd = cancel_fd, .events = POLLIN}};
	int n;

	do
		n = poll(p, 2, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return p[1].revents ? -ECANCELED : 0;
}

static int cancelled(struct mig_error **errp)
{
	mig_error_setg(errp, "Connection cancelled");
	return -ECANCELED;
}

/* --- tcp ------------------------------------------------------------------ */

/* QEMU's ipv4/ipv6 matrix (inet_ai_family_from_address). */
static int inet_family(const struct mig_addr *a, struct mig_error **errp)
{
	bool v4_on = a->has_ipv4 && a->ipv4, v4_off = a->has_ipv4 && !a->ipv4;
	bool v6_on = a->has_ipv6 && a->ipv6, v6_off = a->has_ipv6 && !a->ipv6;

	if (v4_off && v6_off) {
		mig_error_setg(errp,
			       "Cannot disable IPv4 and IPv6 at same time");
		return -EINVAL;
	}
	if (v4_on && v6_on) /* one dual-stack socket for the "any" host */
		return (!a->host || !a->host[0]) ? AF_INET6 : AF_UNSPEC;
	if (v6_on || v4_off)
		return AF_INET6;
	if (v4_on || v6_off)
		return AF_INET;
	return AF_UNSPEC;
}

static int inet_resolve(const struct mig_addr *a, bool passive,
			struct addrinfo **res, struct mig_error **errp)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	const char *host = a->host ? a->host : "";
	const char *port = a->port ? a->port : "";
	int fam = inet_family(a, errp), rc;

	if (fam < 0)
		return fam;
	hints.ai_family = fam;
	if (passive) {
		hints.ai_flags = AI_PASSIVE;
		if (a->has_numeric && a->numeric)
			hints.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
		rc = getaddrinfo(host[0] ? host : NULL, port[0] ? port : NULL,
				 &hints, res);
	} else {
		hints.ai_flags = AI_ADDRCONFIG | AI_V4MAPPED;
		rc = getaddrinfo(host, port, &hints, res);
	}
	if (rc) {
		mig_error_setg(errp, "address resolution failed for %s:%s: %s",
			       host, port, gai_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static int inet_protocol(const struct mig_addr *a, const struct addrinfo *ai)
{
	return a->has_mptcp && a->mptcp ? IPPROTO_MPTCP : ai->ai_protocol;
}

/* Completes a non-blocking connect: 0 or -errno. */
static int finish_connect(int fd, int cancel_fd)
{
	int err = wait_or_cancel(fd, POLLOUT, cancel_fd, -1);
	socklen_t len = sizeof(err);

	if (err < 0)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

static int inet_connect_one(const struct mig_addr *a, const struct addrinfo *ai,
			    int cancel_fd, struct mig_error **errp)
{
	int fd = socket(ai->ai_family,
			SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			inet_protocol(a, ai));
	int ret = 0;

	if (fd < 0)
		return mig_error_setg_errno(errp, errno,
					    "Failed to create socket family %d",
					    ai->ai_family);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		ret = errno == EINPROGRESS ? finish_connect(fd, cancel_fd)
					   : -errno;
	if (!ret)
		return fd;
	close(fd);
	if (ret == -ECANCELED)
		return cancelled(errp);
	return mig_error_setg_errno(errp, -ret, "Failed to connect to '%s:%s'",
				    a->host, a->port);
}

/* Tries every resolved address; reports the last failure, as QEMU. */
static int inet_connect(const struct mig_addr *a, int cancel_fd,
			struct mig_error **errp)
{
	struct mig_error *last = NULL;
	struct addrinfo *res;
	int fd = inet_resolve(a, false, &res, errp);

	if (fd < 0)
		return fd;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		mig_error_free(last);
		last = NULL;
		fd = inet_connect_one(a, ai, cancel_fd, &last);
		if (fd >= 0 || fd == -ECANCELED)
			break;
	}
	freeaddrinfo(res);
	mig_error_propagate(errp, last);
	return fd;
}

static int ai_port(const struct addrinfo *ai)
{
	if (ai->ai_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)ai->ai_addr)->sin6_port);
	return ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port);
}

static void ai_set_port(struct addrinfo *ai, int port)
{
	if (ai->ai_family == AF_INET6)
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(port);
}

/* As QEMU: without ipv4/ipv6 flags (or with both on) an IPv6 listener
 * also takes IPv4; if the IPv4 port is already taken, it falls back to
 * IPv6 only. 0 or -errno. */
static int inet_bind(int fd, const struct addrinfo *ai,
		     const struct mig_addr *a)
{
	bool no_flags = !a->has_ipv4 && !a->has_ipv6;
	bool both_on = a->has_ipv4 && a->ipv4 && a->has_ipv6 && a->ipv6;
	int v6only = !(no_flags || both_on);

	for (;;) {
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
				   sizeof(v6only));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return 0;
		if (ai->ai_family != AF_INET6 || errno != EADDRINUSE || v6only)
			return -errno;
		v6only = 1;
	}
}

/* Binds and listens: 0 or -errno; *step names the call that failed. */
static int bind_and_listen(int fd, const struct addrinfo *ai,
			   const struct mig_addr *a, const char **step)
{
	int ret = inet_bind(fd, ai, a);

	*step = "Failed to bind socket";
	if (ret < 0)
		return ret;
	*step = "Failed to listen on socket";
	return listen(fd, SOMAXCONN) < 0 ? -errno : 0;
}

/* A listener on one resolved address, on the first free port of
 * first..last (QEMU's inet_listen_saddr for one address). */
static int inet_listen_one(const struct mig_addr *a, struct addrinfo *ai,
			   int first, int last, struct mig_error **errp)
{
	const char *step = "";
	int one = 1, ret = -EINVAL;

	for (int port = first; port <= last; port++) {
		int fd = socket(ai->ai_family,
				SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
				inet_protocol(a, ai));

		if (fd < 0)
			return mig_error_setg_errno(
				errp, errno, "Failed to create a socket");
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ai_set_port(ai, port);
		ret = bind_and_listen(fd, ai, a, &step);
		if (!ret)
			return fd;
		close(fd);
		if (ret != -EADDRINUSE)
			return mig_error_setg_errno(errp, -ret, "%s", step);
	}
	return mig_error_setg_errno(errp, -ret,
				    "Failed to find an available port");
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Every resolved address gets a listener if it can (QEMU's
 * qio_net_listener_open_sync); the first error is reported when none
 * can. Port 0 reuses the port the first listener got, so "tcp::0" is one
 * port on both 0.0.0.0 and :: (QEMU picks one per address). */
static int inet_listen(const struct mig_addr *a, int *fds, int *nfds, int max,
		       struct mig_error **errp)
{
	struct mig_error *first_err = NULL;
	struct addrinfo *res;
	int shared = 0, first_ret = 0, ret = inet_resolve(a, true, &res, errp);

	if (ret < 0)
		return ret;
	for (struct addrinfo *ai = res; ai && *nfds < max; ai = ai->ai_next) {
		int first = ai_port(ai), last = a->has_to ? a->to : first;

		ret = -1;
		if (first == 0 && shared)
			ret = inet_listen_one(a, ai, shared, shared, NULL);
		if (ret < 0)
			ret = inet_listen_one(a, ai, first, last, &first_err);
		if (ret >= 0 && sock_tune(ret, a, &first_err) < 0) {
			close(ret);
			ret = -EINVAL;
		}
		if (ret < 0) {
			first_ret = first_ret ? first_ret : ret;
			continue;
		}
		fds[(*nfds)++] = ret;
		if (first == 0 && !shared)
			shared = bound_port(ret);
	}
	freeaddrinfo(res);
	if (!*nfds) {
		mig_error_propagate(errp, first_err);
		return first_ret ? first_ret : -EADDRNOTAVAIL;
	}
	mig_error_free(first_err);
	return 0;
}

/* --- unix ----------------------------------------------------------------- */

static bool unix_is_tight(const struct mig_addr *a)
{
	return !a->has_tight || a->tight;
}

static int unix_sockaddr(const struct mig_addr *a, const char *path,
			 struct sockaddr_un *un, socklen_t *len,
			 struct mig_error **errp)
{
	size_t n = strlen(path);

	/* A path may fill sun_path without a terminating NUL, as in QEMU. */
	if (n > sizeof(un->sun_path) ||
	    (a->abstract && n > sizeof(un->sun_path) - 1)) {
		mig_error_setg(errp, "UNIX socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	*len = sizeof(*un);
	if (a->abstract) {
		memcpy(un->sun_path + 1, path, n);
		if (unix_is_tight(a))
			*len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	} else {
		memcpy(un->sun_path, path, n);
	}
	return 0;
}

/* An empty path listens on a fresh name in $TMPDIR, as QEMU does. */
static int unix_temp_path(char *buf, size_t len, struct mig_error **errp)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(buf, len, "%s/migd-socket-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(buf);
	if (fd < 0)
		return mig_error_setg_errno(
			errp, errno, "Failed to make a temporary socket %s",
			buf);
	close(fd);
	return 0;
}

static int unix_listen(const struct mig_addr *a, struct mig_error **errp)
{
	const char *path = a->path ? a->path : "";
	char tmp[PATH_MAX];
	struct sockaddr_un un;
	socklen_t len;
	int fd, ret;

	if (!path[0] && !a->abstract) {
		ret = unix_temp_path(tmp, sizeof(tmp), errp);
		if (ret < 0)
			return ret;
		path = tmp;
	}
	ret = unix_sockaddr(a, path, &un, &len, errp);
	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return mig_error_setg_errno(errp, errno,
					    "Failed to create Unix socket");
	if (!a->abstract && unlink(path) < 0 && errno != ENOENT)
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to unlink socket %s", path);
	else if (bind(fd, (struct sockaddr *)&un, len) < 0)
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to bind socket to %s", path);
	else if (listen(fd, SOMAXCONN) < 0)
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to listen on socket");
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

static int unix_connect(const struct mig_addr *a, int cancel_fd,
			struct mig_error **errp)
{
	const char *path = a->path ? a->path : "";
	struct sockaddr_un un;
	socklen_t len;
	int fd, ret = unix_sockaddr(a, path, &un, &len, errp);

	if (ret < 0)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return mig_error_setg_errno(errp, errno,
					    "Failed to create socket");
	while (connect(fd, (struct sockaddr *)&un, len) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			ret = mig_error_setg_errno(
				errp, errno, "Failed to connect to '%s'", path);
			break;
		}
		ret = wait_or_cancel(-1, 0, cancel_fd, UNIX_RETRY_MS);
		if (ret < 0) {
			ret = ret == -ECANCELED
				      ? cancelled(errp)
				      : mig_error_setg_errno(
						errp, -ret,
						"Failed to connect to '%s'",
						path);
			break;
		}
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

/* --- public --------------------------------------------------------------- */

static int not_a_socket(const struct mig_addr *a, struct mig_error **errp)
{
	char desc[128];

	mig_addr_format(a, desc, sizeof(desc));
	mig_error_setg(errp, "'%s' is not a tcp, unix or vsock address", desc);
	return -EINVAL;
}

struct channel *sock_connect_cancellable(const struct mig_addr *a,
					 int cancel_fd, struct mig_error **errp)
{
	struct channel *ch;
	char desc[128];
	int fd;

	if (a->kind == MIG_ADDR_TCP)
		fd = inet_connect(a, cancel_fd, errp);
	else if (a->kind == MIG_ADDR_UNIX)
		fd = unix_connect(a, cancel_fd, errp);
	else if (a->kind == MIG_ADDR_VSOCK)
		fd = sock_vsock_connect(a, errp);
	else
		fd = not_a_socket(a, errp);
	if (fd < 0)
		return NULL;
	if (sock_tune(fd, a, errp) < 0) {
		close(fd);
		return NULL;
	}
	mig_addr_format(a, desc, sizeof(desc));
	ch = sock_channel_new(fd, desc);
	if (!ch)
		mig_error_setg(errp, "Out of memory");
	return ch;
}

struct channel *sock_connect(const struct mig_addr *a, struct mig_error **errp)
{
	return sock_connect_cancellable(a, -1, errp);
}

int sock_listen(const struct mig_addr *a, int *fds, int *nfds, int max,
		struct mig_error **errp)
{
	int fd;

	*nfds = 0;
	if (max < 1) {
		mig_error_setg(errp, "No room for a listening socket");
		return -EINVAL;
	}
	if (a->kind == MIG_ADDR_TCP)
		return inet_listen(a, fds, nfds, max, errp);
	if (a->kind == MIG_ADDR_UNIX)
		fd = unix_listen(a, errp);
	else if (a->kind == MIG_ADDR_VSOCK)
		fd = sock_vsock_listen(a, errp);
	else
		fd = not_a_socket(a, errp);
	if (fd < 0)
		return fd;
	fds[(*nfds)++] = fd;
	return 0;
}

/* Accepted sockets inherit the listener's TCP options (sock_tune() ran on
 * it), including keep-alive=off. A unix peer is usually unnamed, so its
 * channel is described by the listening path. */
int sock_accept(int listen_fd, struct channel **out, struct mig_error **errp)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char desc[128];
	int fd;

	*out = NULL;
	do
		fd = accept4(listen_fd, (struct sockaddr *)&ss, &len,
			     SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK ||
		    errno == ECONNABORTED)
			return -EAGAIN;
		return mig_error_setg_errno(errp, errno,
					    "Unable to accept connection");
	}
	if (ss.ss_family == AF_UNIX) {
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			len = 0;
	}
	sock_addr_desc((struct sockaddr *)&ss, len, desc, sizeof(desc));
	*out = sock_channel_new(fd, desc);
	if (!*out) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

void sock_listen_cleanup(int fd)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);
	size_t off = offsetof(struct sockaddr_un, sun_path);
	char path[sizeof(un.sun_path) + 1];

	memset(&un, 0, sizeof(un));
	if (getsockname(fd, (struct sockaddr *)&un, &len) < 0 ||
	    un.sun_family != AF_UNIX || len <= off || !un.sun_path[0])
		return;
	memcpy(path, un.sun_path, sizeof(un.sun_path));
	path[sizeof(un.sun_path)] = '\0';
	unlink(path);
}
