/* qmp.c — the QMP server (see qmp.h): listeners, monitors, request dispatch
 * with QEMU's checks and messages, replies, events, fd passing, and the core
 * commands qmp_capabilities, query-version and query-commands.
 * Control thread only. Monitors that fail are marked dead and freed by a
 * deferred reaper, so no callback ever sees a freed monitor. */
#include "control/qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/migd.h"
#include "control/monfd.h"
#include "control/qapi.h"
#include "control/qmp_json.h"
#include "util/evloop.h"

#define QMP_MAX_MONITORS 512
#define QMP_MAX_PENDING_FDS 16
/* Stop reading a monitor while this much output waits for its client. */
#define QMP_OUT_PAUSE (1u << 20)
/* A client that lets this much output pile up (events) is dropped. */
#define QMP_OUT_DROP (16u << 20)
#define QMP_READ_CHUNK 65536

struct qmp_monitor {
	struct qmp_server *srv;
	struct qmp_monitor *next;
	int fd; /* -1 for the in-process monitor of qmp_server_handle_text */
	bool is_unix;
	bool negotiated;
	bool oob;
	bool dead;
	bool reading_paused;
	struct qmp_json_stream *in;
	char *out;
	size_t out_off, out_len, out_cap;
	int pending_fds[QMP_MAX_PENDING_FDS]; /* received, not yet taken */
	size_t npending;
	struct monfd_table fds;
};

struct qmp_listener {
	struct qmp_listener *next;
	struct qmp_server *srv;
	int fd;
	bool is_unix;
	char *path; /* unix: unlinked at exit */
};

struct qmp_server {
	struct migd *md;
	struct ev_loop *loop;
	struct qmp_listener *listeners;
	struct qmp_monitor *monitors;
	size_t nmonitors;
	struct qmp_monitor *local; /* for qmp_server_handle_text */
	const struct qmp_command **cmds;
	size_t ncmds, capcmds;
	bool reap_pending;
};

static void monitor_io(struct ev_loop *loop, int fd, uint32_t events,
		       void *opaque);

/* ---- output ----------------------------------------------------------------
 */

static void monitor_kill(struct qmp_monitor *mon);

static void update_events(struct qmp_monitor *mon)
{
	uint32_t ev = 0;
	bool want_pause = mon->out_len - mon->out_off > QMP_OUT_PAUSE;

	if (mon->fd < 0 || mon->dead)
		return;
	mon->reading_paused = want_pause;
	if (!want_pause)
		ev |= EPOLLIN;
	if (mon->out_len > mon->out_off)
		ev |= EPOLLOUT;
	ev_loop_mod_fd(mon->srv->loop, mon->fd, ev);
}

static void flush_output(struct qmp_monitor *mon)
{
	while (mon->fd >= 0 && !mon->dead && mon->out_off < mon->out_len) {
		ssize_t n = send(mon->fd, mon->out + mon->out_off,
				 mon->out_len - mon->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			monitor_kill(mon);
			return;
		}
		mon->out_off += (size_t)n;
	}
	if (mon->out_off == mon->out_len)
		mon->out_off = mon->out_len = 0;
	update_events(mon);
}

static void queue_output(struct qmp_monitor *mon, const char *text)
{
	size_t len = strlen(text);

	if (mon->dead)
		return;
	if (mon->out_len - mon->out_off + len > QMP_OUT_DROP) {
		monitor_kill(mon);
		return;
	}
	if (mon->out_off && mon->out_len + len + 2 > mon->out_cap) {
		memmove(mon->out, mon->out + mon->out_off,
			mon->out_len - mon->out_off);
		mon->out_len -= mon->out_off;
		mon->out_off = 0;
	}
	if (mon->out_len + len + 2 > mon->out_cap) {
		size_t cap = mon->out_cap ? mon->out_cap : 4096;
		char *n;

		while (cap < mon->out_len + len + 2)
			cap *= 2;
		n = realloc(mon->out, cap);
		if (!n) {
			monitor_kill(mon);
			return;
		}
		mon->out = n;
		mon->out_cap = cap;
	}
	memcpy(mon->out + mon->out_len, text, len);
	memcpy(mon->out + mon->out_len + len, "\r\n", 2);
	mon->out_len += len + 2;
	if (mon->fd >= 0)
		flush_output(mon);
}

/* Steals msg. */
static void send_json(struct qmp_monitor *mon, json_t *msg)
{
	char *text = json_dumps(msg, JSON_ENSURE_ASCII | JSON_ENCODE_ANY |
					     JSON_REAL_PRECISION(17));

	json_decref(msg);
	if (!text) {
		monitor_kill(mon);
		return;
	}
	queue_output(mon, text);
	free(text);
}

static json_t *version_json(void)
{
	return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "major",
			 MIGD_QEMU_MAJOR, "minor", MIGD_QEMU_MINOR, "micro",
			 MIGD_QEMU_MICRO, "package", "migd " MIGD_VERSION);
}

static void send_greeting(struct qmp_monitor *mon)
{
	send_json(mon, json_pack("{s:{s:o,s:[s]}}", "QMP", "version",
				 version_json(), "capabilities", "oob"));
}

void qmp_event(struct qmp_server *srv, const char *name, json_t *data)
{
	int64_t us = ev_wall_us();
	json_t *ev = json_pack("{s:s}", "event", name);

	if (data)
		json_object_set_new(ev, "data", data);
	json_object_set_new(
		ev, "timestamp",
		json_pack("{s:I,s:I}", "seconds", (json_int_t)(us / 1000000),
			  "microseconds", (json_int_t)(us % 1000000)));
	for (struct qmp_monitor *m = srv->monitors; m; m = m->next)
		if (m->negotiated && !m->dead)
			send_json(m, json_incref(ev));
	json_decref(ev);
}

/* ---- monitor lifetime
 * -------------------------------------------------------- */

static void close_pending_fds(struct qmp_monitor *mon)
{
	for (size_t i = 0; i < mon->npending; i++)
		close(mon->pending_fds[i]);
	mon->npending = 0;
}

static void monitor_free(struct qmp_monitor *mon)
{
	if (mon->fd >= 0)
		close(mon->fd);
	close_pending_fds(mon);
	monfd_table_fini(&mon->fds);
	qmp_json_stream_free(mon->in);
	free(mon->out);
	free(mon);
}

static void reap_dead(struct ev_loop *loop, void *opaque)
{
	struct qmp_server *srv = opaque;
	struct qmp_monitor **pp = &srv->monitors;

	srv->reap_pending = false;
	while (*pp) {
		struct qmp_monitor *m = *pp;

		if (!m->dead) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		srv->nmonitors--;
		monitor_free(m);
	}
}

static void monitor_kill(struct qmp_monitor *mon)
{
	struct qmp_server *srv = mon->srv;

	if (mon->dead || mon->fd < 0)
		return;
	mon->dead = true;
	ev_loop_del_fd(srv->loop, mon->fd);
	if (!srv->reap_pending && ev_loop_post(srv->loop, reap_dead, srv) == 0)
		srv->reap_pending = true;
}

/* ---- dispatch --------------------------------------------------------------
 */

static json_t *error_json(const struct mig_error *err)
{
	json_t *e =
		json_pack("{s:{s:s,s:s}}", "error", "class",
			  mig_error_class_name(err->cls), "desc", err->desc);
	char safe[1024];

	if (e)
		return e;
	/* A message quoting bytes that are not UTF-8 is still answered. */
	qmp_json_utf8_sanitize(err->desc, strlen(err->desc), safe,
			       sizeof(safe));
	return json_pack("{s:{s:s,s:s}}", "error", "class",
			 mig_error_class_name(err->cls), "desc", safe);
}

/* QEMU walks a request's members in its QDict's hash order (tdb hash,
 * 512 buckets, newest first within a bucket), which decides which error a
 * request with several faults gets. Same hash, same order here. */
#define QDICT_BUCKETS 512

static unsigned qdict_bucket(const char *key)
{
	unsigned value = 0x238F13AFu * (unsigned)strlen(key);

	for (unsigned i = 0; key[i]; i++)
		value += (unsigned)(unsigned char)key[i] << (i * 5 % 24);
	return (1103515243u * value + 12345u) % QDICT_BUCKETS;
}

struct keyed {
	const char *key;
	unsigned bucket, seq;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->seq > y->seq ? -1 : 1; /* later insertions first */
}

static struct keyed *qdict_order(json_t *obj, unsigned *n)
{
	struct keyed *order = calloc(json_object_size(obj) + 1, sizeof(*order));
	const char *key;
	json_t *val;

	*n = 0;
	if (!order)
		return NULL;
	json_object_foreach(obj, key, val) {
		order[*n] = (struct keyed){key, qdict_bucket(key), *n};
		(*n)++;
	}
	qsort(order, *n, sizeof(order[0]), keyed_cmp);
	return order;
}

/* QEMU's check of the request object: which keys are allowed. Returns the
 * command name, with *oob telling which key carried it. */
static const char *check_request(json_t *req, bool allow_oob, bool *oob,
				 struct mig_error **errp)
{
	const char *key, *exec_key = NULL, *name = NULL;
	unsigned n;
	struct keyed *order = qdict_order(req, &n);
	json_t *val;

	if (!order) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		key = order[i].key;
		val = json_object_get(req, key);
		if (!strcmp(key, "execute") ||
		    (allow_oob && !strcmp(key, "exec-oob"))) {
			if (!json_is_string(val)) {
				mig_error_setg(errp,
					       "QMP input member '%s' must be "
					       "a string",
					       key);
				goto fail;
			}
			if (exec_key) {
				mig_error_setg(errp,
					       "QMP input member '%s' clashes "
					       "with '%s'",
					       key, exec_key);
				goto fail;
			}
			exec_key = key;
			name = json_string_value(val);
		} else if (!strcmp(key, "arguments")) {
			if (!json_is_object(val)) {
				mig_error_setg(errp,
					       "QMP input member 'arguments' "
					       "must be an object");
				goto fail;
			}
		} else if (strcmp(key, "id")) {
			mig_error_setg(errp,
				       "QMP input member '%s' is unexpected",
				       key);
			goto fail;
		}
	}
	free(order);
	if (!exec_key) {
		mig_error_setg(errp, "QMP input lacks member 'execute'");
		return NULL;
	}
	*oob = !strcmp(exec_key, "exec-oob");
	return name;
fail:
	free(order);
	return NULL;
}

static json_t *run_command(struct qmp_monitor *mon, json_t *req,
			   struct mig_error **errp)
{
	struct qmp_server *srv = mon->srv;
	const struct qmp_command *cmd;
	json_t *args, *empty = NULL, *ret;
	const char *name;
	bool oob = false;

	name = check_request(req, mon->oob, &oob, errp);
	if (!name)
		return NULL;
	cmd = qmp_find_command(srv, name);
	if (!mon->negotiated && (!cmd || strcmp(name, "qmp_capabilities"))) {
		mig_error_set(errp, MIG_ERR_COMMAND_NOT_FOUND,
			      "Expecting capabilities negotiation with "
			      "'qmp_capabilities'");
		return NULL;
	}
	if (!cmd) {
		mig_error_set(errp, MIG_ERR_COMMAND_NOT_FOUND,
			      "The command %s has not been found", name);
		return NULL;
	}
	if (oob && !(cmd->flags & QMP_CMD_ALLOW_OOB)) {
		mig_error_setg(errp, "The command %s does not support OOB",
			       name);
		return NULL;
	}
	args = json_object_get(req, "arguments");
	if (!args)
		args = empty = json_object();
	ret = cmd->fn(srv->md, mon, args, errp);
	json_decref(empty);
	return ret;
}

static void handle_request(struct qmp_monitor *mon, json_t *req)
{
	struct mig_error *err = NULL;
	json_t *id = NULL, *ret = NULL, *rsp;

	if (!json_is_object(req))
		mig_error_setg(&err, "QMP input must be a JSON object");
	else
		id = json_object_get(req, "id");
	if (!err)
		ret = run_command(mon, req, &err);
	if (err) {
		rsp = error_json(err);
		json_decref(ret);
	} else {
		rsp = json_pack("{s:o}", "return", ret ? ret : json_object());
	}
	if (id)
		json_object_set(rsp, "id", id);
	mig_error_free(err);
	send_json(mon, rsp);
}

static void on_json(void *opaque, json_t *value, struct mig_error *err)
{
	struct qmp_monitor *mon = opaque;

	if (mon->dead) {
		json_decref(value);
		mig_error_free(err);
		return;
	}
	if (err) {
		send_json(mon, error_json(err));
		mig_error_free(err);
		return;
	}
	handle_request(mon, value);
	json_decref(value);
}

/* ---- input -----------------------------------------------------------------
 */

/* fds travel with the first bytes of the request they belong to. They stay
 * pending while requests from the same read are dispatched (so a getfd
 * pipelined behind other requests finds its fd) and are closed once the
 * read is fully processed and no request is half-received; a read that
 * brings new fds also replaces older untaken ones, as QEMU's chardev. */
static void keep_fds(struct qmp_monitor *mon, struct msghdr *msg)
{
	bool replaced = false;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c;
	     c = CMSG_NXTHDR(msg, c)) {
		size_t n;
		int *fds;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(c);
		if (!replaced) {
			close_pending_fds(mon);
			replaced = true;
		}
		for (size_t i = 0; i < n; i++) {
			int fl;

			if (mon->npending >= QMP_MAX_PENDING_FDS) {
				close(fds[i]);
				continue;
			}
			/* O_NONBLOCK travels with the open file description;
			 * hand commands a blocking fd, as QEMU does. */
			fl = fcntl(fds[i], F_GETFL);
			if (fl >= 0 && (fl & O_NONBLOCK))
				fcntl(fds[i], F_SETFL, fl & ~O_NONBLOCK);
			mon->pending_fds[mon->npending++] = fds[i];
		}
	}
}

static ssize_t read_some(struct qmp_monitor *mon, char *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * QMP_MAX_PENDING_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {buf, len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (mon->is_unix) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
	}
	do {
		n = recvmsg(mon->fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n > 0 && mon->is_unix)
		keep_fds(mon, &msg);
	return n;
}

static void monitor_read(struct qmp_monitor *mon)
{
	char buf[QMP_READ_CHUNK];
	ssize_t n = read_some(mon, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		monitor_kill(mon);
		return;
	}
	qmp_json_stream_feed(mon->in, buf, (size_t)n);
	if (mon->npending && qmp_json_stream_is_idle(mon->in))
		close_pending_fds(mon);
}

static void monitor_io(struct ev_loop *loop, int fd, uint32_t events,
		       void *opaque)
{
	struct qmp_monitor *mon = opaque;

	if (events & EPOLLOUT)
		flush_output(mon);
	if (!mon->dead && !mon->reading_paused &&
	    (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		monitor_read(mon);
	else if (!mon->dead && (events & (EPOLLHUP | EPOLLERR)))
		monitor_kill(mon);
}

static struct qmp_monitor *monitor_new(struct qmp_server *srv, int fd,
				       bool is_unix)
{
	struct qmp_monitor *mon = calloc(1, sizeof(*mon));

	if (!mon)
		return NULL;
	mon->srv = srv;
	mon->fd = fd;
	mon->is_unix = is_unix;
	monfd_table_init(&mon->fds);
	mon->in = qmp_json_stream_new(on_json, mon);
	if (!mon->in) {
		free(mon);
		return NULL;
	}
	return mon;
}

static void add_client(struct qmp_server *srv, int fd, bool is_unix)
{
	struct qmp_monitor *mon;

	if (srv->nmonitors >= QMP_MAX_MONITORS) {
		close(fd);
		return;
	}
	mon = monitor_new(srv, fd, is_unix);
	if (!mon) {
		close(fd);
		return;
	}
	if (ev_loop_add_fd(srv->loop, fd, EPOLLIN, monitor_io, mon) < 0) {
		mon->fd = -1;
		close(fd);
		monitor_free(mon);
		return;
	}
	mon->next = srv->monitors;
	srv->monitors = mon;
	srv->nmonitors++;
	send_greeting(mon);
}

static void listener_io(struct ev_loop *loop, int fd, uint32_t events,
			void *opaque);

static void listener_rearm(struct ev_loop *loop, void *opaque)
{
	struct qmp_listener *l = opaque;

	ev_loop_add_fd(loop, l->fd, EPOLLIN, listener_io, l);
}

static void listener_io(struct ev_loop *loop, int fd, uint32_t events,
			void *opaque)
{
	struct qmp_listener *l = opaque;

	/* Accept everything pending; a listener is level-triggered. */
	for (int i = 0; i < 64; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c >= 0) {
			add_client(l->srv, c, l->is_unix);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			/* Out of descriptors: the pending connection would
			 * wake us at once forever. Stop listening a while. */
			ev_loop_del_fd(loop, fd);
			ev_loop_add_timer(loop, 100, listener_rearm, l);
		}
		return;
	}
}

/* ---- listeners
 * --------------------------------------------------------------- */

struct listen_opts {
	bool is_unix;
	char *path;	   /* unix */
	char *host, *port; /* tcp */
	bool server, wait;
};

static void listen_opts_free(struct listen_opts *o)
{
	free(o->path);
	free(o->host);
	free(o->port);
}

static int parse_onoff(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

static int parse_listen_flag(struct listen_opts *o, const char *opt,
			     struct mig_error **errp)
{
	const char *eq = strchr(opt, '=');
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	bool *dst = NULL, val = true;

	if (klen == 6 && !strncmp(opt, "server", 6))
		dst = &o->server;
	else if (klen == 4 && !strncmp(opt, "wait", 4))
		dst = &o->wait;
	else if (!strcmp(opt, "nowait")) {
		o->wait = false;
		return 0;
	}
	if (!dst) {
		mig_error_setg(errp, "Invalid parameter '%.*s'", (int)klen,
			       opt);
		return -EINVAL;
	}
	if (eq && parse_onoff(eq + 1, &val) < 0) {
		mig_error_setg(errp, "Parameter '%.*s' expects 'on' or 'off'",
			       (int)klen, opt);
		return -EINVAL;
	}
	*dst = val;
	return 0;
}

/* "unix:PATH[,opts]" or "tcp:HOST:PORT[,opts]"; wait defaults to on and
 * server to off, as in QEMU. */
static int parse_listen_spec(const char *spec, struct listen_opts *o,
			     struct mig_error **errp)
{
	char *copy = strdup(spec), *save = NULL, *addr, *opt;
	int ret = 0;

	memset(o, 0, sizeof(*o));
	o->wait = true;
	if (!copy)
		return -ENOMEM;
	addr = strtok_r(copy, ",", &save);
	if (addr && !strncmp(addr, "unix:", 5) && addr[5]) {
		o->is_unix = true;
		o->path = strdup(addr + 5);
	} else if (addr && !strncmp(addr, "tcp:", 4) &&
		   strrchr(addr + 4, ':')) {
		char *colon = strrchr(addr + 4, ':');
		char *h = addr + 4;

		*colon = '\0';
		if (h[0] == '[' && colon > h && colon[-1] == ']') {
			h++;
			colon[-1] = '\0';
		}
		o->host = strdup(*h ? h : "127.0.0.1");
		o->port = strdup(colon + 1);
	} else {
		mig_error_setg(errp,
			       "'%s' is not a valid QMP socket address "
			       "(expected unix:PATH or tcp:HOST:PORT)",
			       spec);
		ret = -EINVAL;
	}
	while (!ret && (opt = strtok_r(NULL, ",", &save)))
		ret = parse_listen_flag(o, opt, errp);
	if (!ret && !o->server) {
		mig_error_setg(errp,
			       "'%s': migd only serves QMP: add server=on",
			       spec);
		ret = -EINVAL;
	}
	free(copy);
	return ret;
}

static int listen_unix(const char *path, struct mig_error **errp)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, ret;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		mig_error_setg(errp, "UNIX socket path '%s' is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto err;
	/* A stale socket from an earlier run is replaced, as QEMU does. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	old = umask(0177); /* the socket is the operator's: 0600 */
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || listen(fd, 64) < 0)
		goto err_close;
	return fd;

err_close:
	close(fd);
err:
	ret = -errno;
	mig_error_setg(errp, "Failed to bind socket to %s: %s", path,
		       strerror(errno));
	return ret;
}

static int listen_tcp(const char *host, const char *port,
		      struct mig_error **errp)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE};
	struct addrinfo *res, *ai;
	int fd = -1, rc, one = 1, saved = 0;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		mig_error_setg(errp, "address resolution failed for %s:%s: %s",
			       host, port, gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		mig_error_setg(errp, "Failed to bind socket: %s",
			       strerror(saved ? saved : EADDRNOTAVAIL));
		return -(saved ? saved : EADDRNOTAVAIL);
	}
	return fd;
}

/* wait=on: block until the first client connects, as QEMU does. */
static void wait_first_client(struct qmp_listener *l)
{
	int fl = fcntl(l->fd, F_GETFL), c;

	fprintf(stderr, "migd: waiting for connection on %s\n",
		l->is_unix ? l->path : "tcp");
	fcntl(l->fd, F_SETFL, fl & ~O_NONBLOCK);
	do {
		c = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (c < 0 && errno == EINTR);
	fcntl(l->fd, F_SETFL, fl);
	if (c >= 0)
		add_client(l->srv, c, l->is_unix);
}

int qmp_server_listen(struct qmp_server *srv, const char *spec,
		      struct mig_error **errp)
{
	struct listen_opts o;
	struct qmp_listener *l;
	int fd, ret;

	ret = parse_listen_spec(spec, &o, errp);
	if (ret < 0)
		goto out;
	fd = o.is_unix ? listen_unix(o.path, errp)
		       : listen_tcp(o.host, o.port, errp);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (!l || ev_loop_add_fd(srv->loop, fd, EPOLLIN, listener_io, l) < 0) {
		free(l);
		close(fd);
		ret = -ENOMEM;
		mig_error_setg(errp, "cannot watch the QMP socket");
		goto out;
	}
	l->srv = srv;
	l->fd = fd;
	l->is_unix = o.is_unix;
	l->path = o.path;
	o.path = NULL;
	l->next = srv->listeners;
	srv->listeners = l;
	if (o.wait)
		wait_first_client(l);
out:
	listen_opts_free(&o);
	return ret;
}

/* ---- server
 * ------------------------------------------------------------------ */

struct qmp_server *qmp_server_new(struct migd *md, struct ev_loop *loop)
{
	struct qmp_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->md = md;
	srv->loop = loop;
	return srv;
}

void qmp_server_free(struct qmp_server *srv)
{
	if (!srv)
		return;
	while (srv->listeners) {
		struct qmp_listener *l = srv->listeners;

		srv->listeners = l->next;
		ev_loop_del_fd(srv->loop, l->fd);
		close(l->fd);
		if (l->path)
			unlink(l->path);
		free(l->path);
		free(l);
	}
	while (srv->monitors) {
		struct qmp_monitor *m = srv->monitors;

		srv->monitors = m->next;
		if (m->fd >= 0 && !m->dead) {
			flush_output(m); /* last replies, best effort */
			ev_loop_del_fd(srv->loop, m->fd);
		}
		monitor_free(m);
	}
	if (srv->local)
		monitor_free(srv->local);
	free(srv->cmds);
	free(srv);
}

int qmp_register(struct qmp_server *srv, const struct qmp_command *cmds,
		 size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (qmp_find_command(srv, cmds[i].name))
			return -EEXIST;
	for (size_t i = 0; i < n; i++) {
		if (srv->ncmds == srv->capcmds) {
			size_t cap = srv->capcmds ? srv->capcmds * 2 : 64;
			const struct qmp_command **v =
				realloc(srv->cmds, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			srv->cmds = v;
			srv->capcmds = cap;
		}
		srv->cmds[srv->ncmds++] = &cmds[i];
	}
	return 0;
}

const struct qmp_command *qmp_find_command(struct qmp_server *srv,
					   const char *name)
{
	for (size_t i = 0; i < srv->ncmds; i++)
		if (!strcmp(srv->cmds[i]->name, name))
			return srv->cmds[i];
	return NULL;
}

void qmp_foreach_command(struct qmp_server *srv,
			 void (*fn)(const struct qmp_command *cmd,
				    void *opaque),
			 void *opaque)
{
	for (size_t i = 0; i < srv->ncmds; i++)
		fn(srv->cmds[i], opaque);
}

/* ---- fd passing
 * ---------------------------------------------------------------- */

int qmp_monitor_take_fd(struct qmp_monitor *mon)
{
	int fd;

	if (!mon->npending)
		return -1;
	fd = mon->pending_fds[0];
	memmove(mon->pending_fds, mon->pending_fds + 1,
		(mon->npending - 1) * sizeof(int));
	mon->npending--;
	return fd;
}

struct monfd_table *qmp_monitor_fds(struct qmp_monitor *mon)
{
	return &mon->fds;
}

int qmp_monitor_dup_named_fd(struct qmp_monitor *mon, const char *name)
{
	return monfd_dup(&mon->fds, name);
}

/* ---- in-process requests (tests, fuzzing)
 * ---------------------------------------- */

char *qmp_server_handle_text(struct qmp_server *srv, const char *text,
			     size_t len)
{
	struct qmp_monitor *mon = srv->local;
	char *out;

	if (!mon) {
		mon = srv->local = monitor_new(srv, -1, false);
		if (!mon)
			return NULL;
		mon->negotiated = true;
	}
	qmp_json_stream_feed(mon->in, text, len);
	qmp_json_stream_flush(mon->in);
	if (!mon->out_len)
		return NULL;
	out = strndup(mon->out, mon->out_len);
	mon->out_len = 0;
	return out;
}

/* ---- core commands
 * -------------------------------------------------------------- */

static const char *const qmp_capability_names[] = {"oob", NULL};

static json_t *cmd_qmp_capabilities(struct migd *md, struct qmp_monitor *mon,
				    json_t *args, struct mig_error **errp)
{
	struct qapi_in in, list;
	bool oob = false, ok = true;

	/* Arguments are checked first, as QEMU's generated marshaller does. */
	qapi_in_init(&in, args);
	if (qapi_has(&in, "enable")) {
		ok = qapi_start_list(&in, "enable", &list, errp);
		while (ok && qapi_has(&list, NULL)) {
			int cap;

			ok = qapi_read_enum(&list, NULL, qmp_capability_names,
					    &cap, errp);
			oob |= ok;
		}
		qapi_in_fini(&list);
	}
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	if (!ok)
		return NULL;
	if (mon->negotiated) {
		mig_error_set(errp, MIG_ERR_COMMAND_NOT_FOUND,
			      "Capabilities negotiation is already complete, "
			      "command ignored");
		return NULL;
	}
	mon->oob = oob;
	mon->negotiated = true;
	return json_object();
}

static json_t *cmd_query_version(struct migd *md, struct qmp_monitor *mon,
				 json_t *args, struct mig_error **errp)
{
	return qapi_no_args(args, errp) ? version_json() : NULL;
}

static void add_command_name(const struct qmp_command *cmd, void *opaque)
{
	json_array_append_new(opaque, json_pack("{s:s}", "name", cmd->name));
}

static json_t *cmd_query_commands(struct migd *md, struct qmp_monitor *mon,
				  json_t *args, struct mig_error **errp)
{
	json_t *list;

	if (!qapi_no_args(args, errp))
		return NULL;
	list = json_array();
	qmp_foreach_command(mon->srv, add_command_name, list);
	return list;
}

static const struct qmp_command core_commands[] = {
	{"qmp_capabilities", cmd_qmp_capabilities, 0},
	{"query-version", cmd_query_version, 0},
	{"query-commands", cmd_query_commands, 0},
};

void qmp_core_register(struct qmp_server *srv)
{
	qmp_register(srv, core_commands,
		     sizeof(core_commands) / sizeof(core_commands[0]));
}
