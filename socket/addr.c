/* addr.c — migration addresses (see sockaddr.h): QEMU 9.0's URI syntax
 * (migrate_uri_parse, socket_parse, inet_parse, vsock_parse,
 * file_parse_offset) and the QAPI MigrationAddress union, parsed into
 * struct mig_addr; plus formatting back to URI text. Opens nothing.
 * Pure functions on caller-owned data: any thread. */
#include "socket/sockaddr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/qapi.h"
#include "util/size.h"

/* QEMU scans host and port with sscanf("%64[^:]:%32[^,]"): longer hosts
 * fail to parse, longer ports are cut and the rest is taken as options. */
#define HOST_MAX 64
#define PORT_MAX 32

static int oom(struct mig_error **errp)
{
	mig_error_setg(errp, "Out of memory");
	return -ENOMEM;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* How many chars sscanf's "%<max>[^<stop>]" takes from s (0 = no match). */
static size_t span_until(const char *s, char stop, size_t max)
{
	size_t n = 0;

	while (n < max && s[n] && s[n] != stop)
		n++;
	return n;
}

static int dup_n(char **out, const char *s, size_t n, struct mig_error **errp)
{
	*out = strndup(s, n);
	return *out ? 0 : oom(errp);
}

/* --- URI form ------------------------------------------------------------- */

/* One ",name[=on|=off]" flag; text is what follows the name. Like QEMU, a
 * flag ends at the next comma, ",," is refused, and the message quotes the
 * whole rest of the string. */
static int parse_flag(const char *name, const char *text, bool *has, bool *val,
		      struct mig_error **errp)
{
	const char *comma = strchr(text, ',');
	size_t len = comma ? (size_t)(comma - text) : strlen(text);

	if (comma && comma[1] == ',')
		goto bad;
	if (len == 0 || (len == 3 && !strncmp(text, "=on", 3)))
		*val = true;
	else if (len == 4 && !strncmp(text, "=off", 4))
		*val = false;
	else
		goto bad;
	*has = true;
	return 0;
bad:
	mig_error_setg(errp, "error parsing '%s' flag '%s'", name, text);
	return -EINVAL;
}

/* ",to=N" anywhere in the options: a decimal int (sscanf "%d": blanks and
 * a sign allowed) ending the string or followed by a comma. QEMU stores
 * it in a uint16_t, so it wraps the same way here. */
static int parse_to(const char *opts, struct mig_addr *a,
		    struct mig_error **errp)
{
	const char *h = strstr(opts, ",to=");
	char *end;
	long v;

	if (!h)
		return 0;
	h += strlen(",to=");
	v = strtol(h, &end, 10);
	if (end == h || (*end && *end != ',')) {
		mig_error_setg(errp, "error parsing to= argument");
		return -EINVAL;
	}
	a->has_to = true;
	a->to = (uint16_t)v;
	return 0;
}

/* Options after "host:port". Unknown ones are ignored, as in QEMU 9.0. */
static int parse_inet_opts(const char *opts, struct mig_addr *a,
			   struct mig_error **errp)
{
	const char *const names[] = {"ipv4", "ipv6", "keep-alive", "mptcp"};
	bool *has[] = {&a->has_ipv4, &a->has_ipv6, &a->has_keep_alive,
		       &a->has_mptcp};
	bool *val[] = {&a->ipv4, &a->ipv6, &a->keep_alive, &a->mptcp};
	char key[16];

	if (parse_to(opts, a, errp) < 0)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *at;

		snprintf(key, sizeof(key), ",%s", names[i]);
		at = strstr(opts, key);
		if (at && parse_flag(names[i], at + strlen(key), has[i], val[i],
				     errp) < 0)
			return -EINVAL;
	}
	return 0;
}

/* "host:port", "[v6host]:port" or ":port", then options (inet_parse). */
static int parse_inet(const char *str, struct mig_addr *a,
		      struct mig_error **errp)
{
	const char *host = str, *port;
	size_t hlen = 0, plen = 0;
	const char *msg = "error parsing address '%s'";

	if (str[0] == ':') {
		port = str + 1;
		plen = span_until(port, ',', PORT_MAX);
		msg = "error parsing port in address '%s'";
	} else if (str[0] == '[') {
		host = str + 1;
		hlen = span_until(host, ']', HOST_MAX);
		port = host + hlen;
		if (hlen && port[0] == ']' && port[1] == ':')
			plen = span_until(port += 2, ',', PORT_MAX);
		msg = "error parsing IPv6 address '%s'";
	} else {
		hlen = span_until(host, ':', HOST_MAX);
		port = host + hlen;
		if (hlen && port[0] == ':')
			plen = span_until(++port, ',', PORT_MAX);
	}
	if (!plen) {
		mig_error_setg(errp, msg, str);
		return -EINVAL;
	}
	if (dup_n(&a->host, host, hlen, errp) ||
	    dup_n(&a->port, port, plen, errp))
		return -ENOMEM;
	return parse_inet_opts(port + plen, a, errp);
}

/* "cid:port" with nothing after it (vsock_parse). */
static int parse_vsock(const char *str, struct mig_addr *a,
		       struct mig_error **errp)
{
	size_t clen = span_until(str, ':', PORT_MAX), plen = 0;
	const char *port = str + clen + 1;

	if (clen && str[clen] == ':')
		plen = span_until(port, ',', PORT_MAX);
	if (!plen) {
		mig_error_setg(errp, "error parsing address '%s'", str);
		return -EINVAL;
	}
	if (port[plen]) {
		mig_error_setg(errp, "trailing characters in address '%s'",
			       str);
		return -EINVAL;
	}
	if (dup_n(&a->cid, str, clen, errp) ||
	    dup_n(&a->port, port, plen, errp))
		return -ENOMEM;
	return 0;
}

/* "PATH[,offset=N]": the first ",offset=" ends the path (file_parse_offset). */
static int parse_file(const char *spec, struct mig_addr *a,
		      struct mig_error **errp)
{
	const char *opt = strstr(spec, ",offset=");
	int ret;

	if (opt) {
		const char *num = opt + strlen(",offset=");

		ret = size_parse(num, 'B', &a->offset);
		if (ret < 0) {
			mig_error_setg(errp, "file URI has bad offset %s: %s",
				       num, strerror(-ret));
			return -EINVAL;
		}
	}
	return dup_n(&a->path, spec, opt ? (size_t)(opt - spec) : strlen(spec),
		     errp);
}

/* QEMU runs the whole rest of the URI with "/bin/sh -c". */
static int parse_exec(const char *cmd, struct mig_addr *a,
		      struct mig_error **errp)
{
	const char *const parts[] = {"/bin/sh", "-c", cmd};

	a->argv = calloc(4, sizeof(*a->argv));
	if (!a->argv)
		return oom(errp);
	for (int i = 0; i < 3; i++)
		if (dup_n(&a->argv[i], parts[i], strlen(parts[i]), errp))
			return -ENOMEM;
	return 0;
}

/* "unix:PATH" and "fd:NAME": anything non-empty. */
static int parse_rest(const char *rest, const char *empty_msg, char **out,
		      struct mig_error **errp)
{
	if (!rest[0]) {
		mig_error_setg(errp, "%s", empty_msg);
		return -EINVAL;
	}
	return dup_n(out, rest, strlen(rest), errp);
}

static int parse_uri(const char *uri, struct mig_addr *a,
		     struct mig_error **errp)
{
	if (starts_with(uri, "exec:")) {
		a->kind = MIG_ADDR_EXEC;
		return parse_exec(uri + 5, a, errp);
	}
	if (starts_with(uri, "rdma:")) {
		a->kind = MIG_ADDR_RDMA;
		return parse_inet(uri + 5, a, errp);
	}
	if (starts_with(uri, "tcp:")) {
		a->kind = MIG_ADDR_TCP;
		return parse_inet(uri + 4, a, errp);
	}
	if (starts_with(uri, "unix:")) {
		a->kind = MIG_ADDR_UNIX;
		return parse_rest(uri + 5, "invalid Unix socket address",
				  &a->path, errp);
	}
	if (starts_with(uri, "vsock:")) {
		a->kind = MIG_ADDR_VSOCK;
		return parse_vsock(uri + 6, a, errp);
	}
	if (starts_with(uri, "fd:")) {
		a->kind = MIG_ADDR_FD;
		return parse_rest(uri + 3, "invalid file descriptor address",
				  &a->fdname, errp);
	}
	if (starts_with(uri, "file:")) {
		a->kind = MIG_ADDR_FILE;
		return parse_file(uri + 5, a, errp);
	}
	mig_error_setg(errp, "unknown migration protocol: %s", uri);
	return -EINVAL;
}

int mig_addr_parse_uri(const char *uri, struct mig_addr *out,
		       struct mig_error **errp)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = parse_uri(uri ? uri : "", out, errp);
	if (ret < 0)
		mig_addr_clear(out);
	return ret;
}

/* --- QAPI form ------------------------------------------------------------ */

enum { TRANSPORT_SOCKET, TRANSPORT_EXEC, TRANSPORT_RDMA, TRANSPORT_FILE };
static const char *const transport_names[] = {"socket", "exec", "rdma", "file",
					      NULL};
/* SocketAddressType, in mig_addr_kind order. */
static const char *const socket_type_names[] = {"inet", "unix", "vsock", "fd",
						NULL};
_Static_assert(MIG_ADDR_TCP == 0 && MIG_ADDR_UNIX == 1 && MIG_ADDR_VSOCK == 2 &&
		       MIG_ADDR_FD == 3,
	       "socket_type_names follows enum mig_addr_kind");

static int read_dup(struct qapi_in *in, const char *name, char **out,
		    struct mig_error **errp)
{
	const char *s;

	if (!qapi_read_str(in, name, &s, errp))
		return -EINVAL;
	return dup_n(out, s, strlen(s), errp);
}

static int read_opt_bool(struct qapi_in *in, const char *name, bool *has,
			 bool *val, struct mig_error **errp)
{
	if (!qapi_has(in, name))
		return 0;
	if (!qapi_read_bool(in, name, val, errp))
		return -EINVAL;
	*has = true;
	return 0;
}

/* InetSocketAddress, members in QEMU's visiting order (first error wins). */
static int read_inet(struct qapi_in *in, struct mig_addr *a,
		     struct mig_error **errp)
{
	int ret = read_dup(in, "host", &a->host, errp);

	if (!ret)
		ret = read_dup(in, "port", &a->port, errp);
	if (!ret)
		ret = read_opt_bool(in, "numeric", &a->has_numeric, &a->numeric,
				    errp);
	if (!ret && qapi_has(in, "to")) {
		if (!qapi_read_uint16(in, "to", &a->to, errp))
			return -EINVAL;
		a->has_to = true;
	}
	if (!ret)
		ret = read_opt_bool(in, "ipv4", &a->has_ipv4, &a->ipv4, errp);
	if (!ret)
		ret = read_opt_bool(in, "ipv6", &a->has_ipv6, &a->ipv6, errp);
	if (!ret)
		ret = read_opt_bool(in, "keep-alive", &a->has_keep_alive,
				    &a->keep_alive, errp);
	if (!ret)
		ret = read_opt_bool(in, "mptcp", &a->has_mptcp, &a->mptcp,
				    errp);
	return ret;
}

static int read_unix(struct qapi_in *in, struct mig_addr *a,
		     struct mig_error **errp)
{
	bool has_abstract = false;
	int ret = read_dup(in, "path", &a->path, errp);

	if (!ret)
		ret = read_opt_bool(in, "abstract", &has_abstract, &a->abstract,
				    errp);
	if (!ret)
		ret = read_opt_bool(in, "tight", &a->has_tight, &a->tight,
				    errp);
	return ret;
}

static int read_socket(struct qapi_in *in, struct mig_addr *a,
		       struct mig_error **errp)
{
	int type, ret;

	if (!qapi_read_enum(in, "type", socket_type_names, &type, errp))
		return -EINVAL;
	a->kind = (enum mig_addr_kind)type;
	switch (a->kind) {
	case MIG_ADDR_TCP:
		return read_inet(in, a, errp);
	case MIG_ADDR_UNIX:
		return read_unix(in, a, errp);
	case MIG_ADDR_VSOCK:
		ret = read_dup(in, "cid", &a->cid, errp);
		return ret ? ret : read_dup(in, "port", &a->port, errp);
	default:
		return read_dup(in, "str", &a->fdname, errp);
	}
}

/* MigrationExecCommand: "args", a list of strings. */
static int read_exec(struct qapi_in *in, struct mig_addr *a,
		     struct mig_error **errp)
{
	struct qapi_in list;
	size_t n = 0;
	int ret = 0;

	if (!qapi_start_list(in, "args", &list, errp))
		return -EINVAL;
	a->argv = calloc(json_array_size(list.node) + 1, sizeof(*a->argv));
	if (!a->argv)
		ret = oom(errp);
	while (!ret && qapi_has(&list, NULL)) {
		const char *s;

		if (!qapi_read_str(&list, NULL, &s, errp))
			ret = -EINVAL;
		else
			ret = dup_n(&a->argv[n++], s, strlen(s), errp);
	}
	qapi_in_fini(&list);
	return ret;
}

static int read_address(struct qapi_in *in, struct mig_addr *a,
			struct mig_error **errp)
{
	int transport, ret;

	if (!qapi_read_enum(in, "transport", transport_names, &transport, errp))
		return -EINVAL;
	switch (transport) {
	case TRANSPORT_SOCKET:
		return read_socket(in, a, errp);
	case TRANSPORT_EXEC:
		a->kind = MIG_ADDR_EXEC;
		return read_exec(in, a, errp);
	case TRANSPORT_RDMA:
		a->kind = MIG_ADDR_RDMA;
		return read_inet(in, a, errp);
	default:
		a->kind = MIG_ADDR_FILE;
		ret = read_dup(in, "filename", &a->path, errp);
		if (!ret && !qapi_read_uint64(in, "offset", &a->offset, errp))
			ret = -EINVAL;
		return ret;
	}
}

int mig_addr_read_qapi(struct qapi_in *in, const char *name,
		       struct mig_addr *out, struct mig_error **errp)
{
	struct qapi_in obj;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!qapi_start_struct(in, name, &obj, errp))
		return -EINVAL;
	ret = read_address(&obj, out, errp);
	if (!ret && !qapi_check_struct(&obj, errp))
		ret = -EINVAL;
	qapi_in_fini(&obj);
	if (ret)
		mig_addr_clear(out);
	return ret;
}

void mig_addr_clear(struct mig_addr *a)
{
	if (!a)
		return;
	free(a->host);
	free(a->port);
	free(a->path);
	free(a->cid);
	free(a->fdname);
	for (size_t i = 0; a->argv && a->argv[i]; i++)
		free(a->argv[i]);
	free(a->argv);
	memset(a, 0, sizeof(*a));
}

/* --- formatting ----------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, pos;
};

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->pos >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

static void put_flag(struct out *o, const char *name, bool has, bool val)
{
	if (has)
		put(o, ",%s=%s", name, val ? "on" : "off");
}

static void format_inet(struct out *o, const char *scheme,
			const struct mig_addr *a)
{
	const char *host = a->host ? a->host : "";
	bool v6 = strchr(host, ':') != NULL;

	put(o, "%s:%s%s%s:%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
	    a->port ? a->port : "");
	if (a->has_to)
		put(o, ",to=%u", a->to);
	put_flag(o, "ipv4", a->has_ipv4, a->ipv4);
	put_flag(o, "ipv6", a->has_ipv6, a->ipv6);
	put_flag(o, "keep-alive", a->has_keep_alive, a->keep_alive);
	put_flag(o, "mptcp", a->has_mptcp, a->mptcp);
}

/* "exec:CMD" for QEMU's own /bin/sh -c form, else the argv joined. */
static void format_exec(struct out *o, char *const *argv)
{
	size_t n = 0;

	while (argv && argv[n])
		n++;
	put(o, "exec:");
	if (n == 3 && !strcmp(argv[0], "/bin/sh") && !strcmp(argv[1], "-c")) {
		put(o, "%s", argv[2]);
		return;
	}
	for (size_t i = 0; i < n; i++)
		put(o, "%s%s", i ? " " : "", argv[i]);
}

void mig_addr_format(const struct mig_addr *a, char *buf, size_t len)
{
	struct out o = {buf, len, 0};

	if (!len)
		return;
	buf[0] = '\0';
	switch (a->kind) {
	case MIG_ADDR_TCP:
		format_inet(&o, "tcp", a);
		break;
	case MIG_ADDR_RDMA:
		format_inet(&o, "rdma", a);
		break;
	case MIG_ADDR_UNIX: /* "@" marks the abstract namespace, as ss(8) */
		put(&o, "unix:%s%s", a->abstract ? "@" : "",
		    a->path ? a->path : "");
		break;
	case MIG_ADDR_VSOCK:
		put(&o, "vsock:%s:%s", a->cid ? a->cid : "",
		    a->port ? a->port : "");
		break;
	case MIG_ADDR_FD:
		put(&o, "fd:%s", a->fdname ? a->fdname : "");
		break;
	case MIG_ADDR_EXEC:
		format_exec(&o, a->argv);
		break;
	case MIG_ADDR_FILE:
		put(&o, "file:%s", a->path ? a->path : "");
		if (a->offset)
			put(&o, ",offset=%llu", (unsigned long long)a->offset);
		break;
	}
}
