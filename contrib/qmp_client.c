/* qmp_client.c — migctl's QMP connection: sockets, line framing with
 * deadlines, greeting and negotiation, request/reply matching by id.
 * Single-threaded (see qmp_client.h). */
#include "contrib/qmp_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct qmpc {
	int fd;
	int timeout_ms; /* < 0: wait forever */
	char *addr;	/* as given, for messages */
	char *buf;	/* received bytes not yet returned as lines */
	size_t len;
	size_t cap;
	unsigned next_id;
	qmpc_event_fn event_fn;
	void *event_opaque;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

/* Milliseconds left until deadline for poll(): -1 forever, 0 expired. */
static int time_left(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Waits for events on fd until deadline. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	for (;;) {
		n = poll(&pfd, 1, time_left(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

static int connect_unix(const char *path, struct mig_error **errp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		mig_error_setg(errp, "invalid unix socket path '%s'", path);
		return -EINVAL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	close(fd);
err:
	mig_error_setg(errp, "cannot connect to %s: %s", path, strerror(errno));
	return -errno;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into host and port (both malloc'd). */
static int split_host_port(const char *hp, char **host, char **port)
{
	const char *colon = strrchr(hp, ':');
	size_t hlen;

	if (!colon || colon == hp || !colon[1])
		return -EINVAL;
	hlen = colon - hp;
	if (hp[0] == '[') {
		if (hlen < 3 || hp[hlen - 1] != ']')
			return -EINVAL;
		hp++;
		hlen -= 2;
	}
	*host = strndup(hp, hlen);
	*port = strdup(colon + 1);
	if (!*host || !*port) {
		free(*host);
		free(*port);
		return -ENOMEM;
	}
	return 0;
}

/* Non-blocking connect to one address, bounded by deadline. fd or -errno. */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
	socklen_t elen = sizeof(int);
	int fd, err = 0;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		err = -errno;
		goto err_close;
	}
	err = wait_fd(fd, POLLOUT, deadline);
	if (err)
		goto err_close;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	err = -err;
	if (!err)
		return fd;
err_close:
	close(fd);
	return err;
}

static int connect_tcp(const char *hp, int timeout_ms, struct mig_error **errp)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int64_t deadline = deadline_after(timeout_ms);
	char *host = NULL, *port = NULL;
	int fd = -EINVAL, gai;

	if (split_host_port(hp, &host, &port) < 0) {
		mig_error_setg(errp,
			       "invalid address 'tcp:%s': expected "
			       "tcp:HOST:PORT",
			       hp);
		return -EINVAL;
	}
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai) {
		mig_error_setg(errp, "cannot resolve %s: %s", hp,
			       gai_strerror(gai));
		goto out;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = connect_addr(ai, deadline);
		if (fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		mig_error_setg(errp, "cannot connect to tcp:%s: %s", hp,
			       fd == -ETIMEDOUT ? "connection timed out"
						: strerror(-fd));
out:
	free(host);
	free(port);
	return fd;
}

struct qmpc *qmpc_connect(const char *addr, int timeout_ms,
			  struct mig_error **errp)
{
	struct qmpc *c;
	int fd;

	if (!strncmp(addr, "tcp:", 4))
		fd = connect_tcp(addr + 4, timeout_ms, errp);
	else
		fd = connect_unix(strncmp(addr, "unix:", 5) ? addr : addr + 5,
				  errp);
	if (fd < 0)
		return NULL;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto err_close;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto err_close;
	c->addr = strdup(addr);
	if (!c->addr) {
		free(c);
		goto err_close;
	}
	c->fd = fd;
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	return c;
err_close:
	mig_error_setg(errp, "cannot set up connection to %s: %s", addr,
		       strerror(errno));
	close(fd);
	return NULL;
}

void qmpc_close(struct qmpc *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c->addr);
	free(c->buf);
	free(c);
}

void qmpc_set_event_fn(struct qmpc *c, qmpc_event_fn fn, void *opaque)
{
	c->event_fn = fn;
	c->event_opaque = opaque;
}

static int send_all(struct qmpc *c, const char *data, size_t len,
		    int64_t deadline, struct mig_error **errp)
{
	ssize_t n;
	int err;

	while (len) {
		n = send(c->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN) {
			err = -errno;
			goto fail;
		}
		err = wait_fd(c->fd, POLLOUT, deadline);
		if (err)
			goto fail;
	}
	return 0;
fail:
	mig_error_setg(errp, "cannot send to %s: %s", c->addr,
		       err == -ETIMEDOUT ? "timed out" : strerror(-err));
	return err == -EPIPE ? -ECONNRESET : err;
}

/* Receives more bytes into c->buf. 0, -ECONNRESET at EOF, or -errno. */
static int fill_buffer(struct qmpc *c, int64_t deadline)
{
	size_t want = 65536;
	ssize_t n;
	char *nb;
	int err;

	if (c->cap - c->len < want) {
		nb = realloc(c->buf, c->len + want);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = c->len + want;
	}
	for (;;) {
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n > 0) {
			c->len += n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		err = wait_fd(c->fd, POLLIN, deadline);
		if (err)
			return err;
	}
}

/* Takes the first complete line out of the buffer (CR/LF stripped). */
static char *take_line(struct qmpc *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t used, n;
	char *line;

	if (!nl)
		return NULL;
	used = nl - c->buf + 1;
	n = used - 1;
	if (n && c->buf[n - 1] == '\r')
		n--;
	line = strndup(c->buf, n);
	if (!line)
		return NULL;
	memmove(c->buf, c->buf + used, c->len - used);
	c->len -= used;
	return line;
}

static void set_read_error(struct qmpc *c, int err, struct mig_error **errp)
{
	if (err == -ECONNRESET)
		mig_error_setg(errp, "%s closed the connection", c->addr);
	else if (err == -ETIMEDOUT)
		mig_error_setg(errp, "timed out waiting for %s", c->addr);
	else if (err == -EPROTO)
		mig_error_setg(errp, "%s sent a line longer than %u bytes",
			       c->addr, QMPC_MAX_LINE);
	else
		mig_error_setg(errp, "cannot read from %s: %s", c->addr,
			       strerror(-err));
}

static int read_line(struct qmpc *c, int64_t deadline, char **line,
		     struct mig_error **errp)
{
	int err;

	for (;;) {
		if (c->len && memchr(c->buf, '\n', c->len)) {
			*line = take_line(c);
			if (*line)
				return 0;
			err = -ENOMEM;
			break;
		}
		if (c->len >= QMPC_MAX_LINE) {
			err = -EPROTO;
			break;
		}
		err = fill_buffer(c, deadline);
		if (err)
			break;
	}
	set_read_error(c, err, errp);
	return err;
}

/* Reads the next message: one JSON object on one line. Blank lines are
 * skipped. */
static int read_message(struct qmpc *c, int64_t deadline, json_t **msg,
			char **line, struct mig_error **errp)
{
	json_error_t jerr;
	char *text;
	int err;

	do {
		err = read_line(c, deadline, &text, errp);
		if (err)
			return err;
		if (strspn(text, " \t\r") == strlen(text)) {
			free(text);
			text = NULL;
		}
	} while (!text);
	*msg = json_loads(text, 0, &jerr);
	if (!*msg || !json_is_object(*msg)) {
		mig_error_setg(errp, "%s sent something that is not QMP: %s",
			       c->addr, *msg ? "not a JSON object" : jerr.text);
		json_decref(*msg);
		free(text);
		return -EPROTO;
	}
	*line = text;
	return 0;
}

int qmpc_handshake(struct qmpc *c, struct mig_error **errp)
{
	json_t *greeting = NULL, *reply = NULL;
	char *line = NULL, *what;
	int err;

	err = read_message(c, deadline_after(c->timeout_ms), &greeting, &line,
			   errp);
	if (err)
		return err;
	free(line);
	if (!json_is_object(json_object_get(greeting, "QMP"))) {
		mig_error_setg(errp, "%s did not greet with QMP", c->addr);
		err = -EPROTO;
		goto out;
	}
	err = qmpc_execute(c, "qmp_capabilities", NULL, &reply, NULL, errp);
	if (err)
		goto out;
	what = qmpc_error_string(reply);
	if (what) {
		mig_error_setg(errp, "%s refused qmp_capabilities: %s", c->addr,
			       what);
		free(what);
		err = -EPROTO;
	}
out:
	json_decref(reply);
	json_decref(greeting);
	return err;
}

static char *build_request(const char *cmd, json_t *args, const char *id)
{
	json_t *req;
	char *text;

	req = json_pack("{s:s, s:s}", "execute", cmd, "id", id);
	if (!req)
		return NULL;
	if (args && json_object_set(req, "arguments", args) < 0) {
		json_decref(req);
		return NULL;
	}
	text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(req);
	return text;
}

/* True for a reply to request id (replies without an id, such as JSON
 * parse errors, are taken as ours: only one request is ever in flight). */
static bool is_reply_to(json_t *msg, const char *id)
{
	json_t *mid = json_object_get(msg, "id");

	if (!json_object_get(msg, "return") && !json_object_get(msg, "error"))
		return false;
	return !mid ||
	       (json_is_string(mid) && !strcmp(json_string_value(mid), id));
}

static int wait_reply(struct qmpc *c, const char *id, int64_t deadline,
		      json_t **reply, char **line, struct mig_error **errp)
{
	json_t *msg;
	char *text;
	int err;

	for (;;) {
		err = read_message(c, deadline, &msg, &text, errp);
		if (err)
			return err;
		if (is_reply_to(msg, id))
			break;
		if (json_object_get(msg, "event") && c->event_fn)
			c->event_fn(c->event_opaque, msg, text);
		json_decref(msg);
		free(text);
	}
	*reply = msg;
	if (line)
		*line = text;
	else
		free(text);
	return 0;
}

int qmpc_execute(struct qmpc *c, const char *cmd, json_t *args, json_t **reply,
		 char **line, struct mig_error **errp)
{
	int64_t deadline = deadline_after(c->timeout_ms);
	char id[32], *req;
	size_t len;
	int err;

	snprintf(id, sizeof(id), "migctl-%u", c->next_id++);
	req = build_request(cmd, args, id);
	if (!req) {
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	len = strlen(req);
	req[len] = '\n'; /* replaces the NUL; req is not used as a string */
	err = send_all(c, req, len + 1, deadline, errp);
	free(req);
	if (err)
		return err;
	return wait_reply(c, id, deadline, reply, line, errp);
}

char *qmpc_error_string(const json_t *reply)
{
	json_t *err = json_object_get(reply, "error");
	const char *cls, *desc;
	char *s;

	if (!err)
		return NULL;
	cls = json_string_value(json_object_get(err, "class"));
	desc = json_string_value(json_object_get(err, "desc"));
	if (asprintf(&s, "%s: %s", cls ? cls : "GenericError",
		     desc ? desc : "(no description)") < 0)
		return NULL;
	return s;
}
