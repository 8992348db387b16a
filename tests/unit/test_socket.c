/* test_socket.c — opening migration sockets (socket/socket_open.c,
 * socket_vsock.c) for real over loopback: TCP (IPv4, IPv6, any address,
 * port ranges, mptcp when the kernel has it) and unix (path, abstract)
 * connect/listen/accept, the TCP options, cancellable connect, QEMU's error
 * messages and sock_local_address_json(). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/qapi.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"
#include "tests/unit/chan_testutil.h"

/* --- TCP and unix over loopback ----------------------------------------- */

static void parse(const char *uri, struct mig_addr *a)
{
	struct mig_error *err = NULL;

	assert_int_equal(mig_addr_parse_uri(uri, a, &err), 0);
	assert_null(err);
}

static int listen_uri(const char *uri, int *fds, int max, int *nfds,
		      char **errdesc)
{
	struct mig_error *err = NULL;
	struct mig_addr a;
	int ret;

	parse(uri, &a);
	ret = sock_listen(&a, fds, nfds, max, &err);
	mig_addr_clear(&a);
	if (errdesc)
		*errdesc = err ? strdup(err->desc) : NULL;
	else if (ret)
		fail_msg("listen %s: %s", uri, err ? err->desc : "?");
	mig_error_free(err);
	return ret;
}

static struct channel *connect_uri(const char *uri, char **errdesc)
{
	struct mig_error *err = NULL;
	struct channel *ch;
	struct mig_addr a;

	parse(uri, &a);
	ch = sock_connect(&a, &err);
	mig_addr_clear(&a);
	if (errdesc)
		*errdesc = err ? strdup(err->desc) : NULL;
	else if (!ch)
		fail_msg("connect %s: %s", uri, err ? err->desc : "?");
	mig_error_free(err);
	return ch;
}

static struct channel *accept_one(int lfd)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	struct mig_error *err = NULL;
	struct channel *ch = NULL;

	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(sock_accept(lfd, &ch, &err), 0);
	assert_null(err);
	assert_non_null(ch);
	return ch;
}

static char *local_json(int fd)
{
	json_t *j = sock_local_address_json(fd);
	char *s;

	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}

static const char *json_port(int fd, char *buf, size_t len)
{
	json_t *j = sock_local_address_json(fd);

	assert_non_null(j);
	snprintf(buf, len, "%s", json_string_value(json_object_get(j, "port")));
	json_decref(j);
	return buf;
}

static int int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void assert_tuned(int fd, bool keepalive)
{
	assert_true(int_opt(fd, IPPROTO_TCP, TCP_NODELAY) != 0);
	assert_int_equal(int_opt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0, keepalive);
	if (!keepalive)
		return;
	assert_int_equal(int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE), 10);
	assert_int_equal(int_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
	assert_int_equal(int_opt(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
	assert_int_equal(int_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 25000);
}

/* Listens on uri (port 0), connects to host:port, moves data both ways. */
static void tcp_round(const char *listen, const char *host, bool keepalive)
{
	struct channel *c, *s;
	char uri[128], port[16], *json;
	int lfd, n;

	listen_uri(listen, &lfd, 1, &n, NULL);
	assert_int_equal(n, 1);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	json_port(lfd, port, sizeof(port));
	assert_int_not_equal(atoi(port), 0);
	snprintf(uri, sizeof(uri), "tcp:%s:%s%s", host, port,
		 keepalive ? "" : ",keep-alive=off");
	c = connect_uri(uri, NULL);
	s = accept_one(lfd);
	json = local_json(s->fd);
	assert_non_null(strstr(json, port));
	free(json);
	assert_tuned(c->fd, keepalive);
	assert_tuned(s->fd, keepalive); /* inherited from the listener */
	assert_string_equal(c->desc, uri);
	assert_int_equal(strncmp(s->desc, "tcp:", 4), 0);
	transfer_big(c, s);
	transfer_big(s, c);
	chan_close(c);
	chan_close(s);
	close(lfd);
}

static void test_tcp_ipv4(void **state)
{
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	char *json, expect[128], port[16];
	int lfd, n;

	tcp_round("tcp:127.0.0.1:0", "127.0.0.1", true);
	tcp_round("tcp:127.0.0.1:0,keep-alive=off", "localhost", false);

	listen_uri("tcp:127.0.0.1:0", &lfd, 1, &n, NULL);
	json = local_json(lfd);
	snprintf(expect, sizeof(expect),
		 "{\"type\":\"inet\",\"host\":\"127.0.0.1\",\"port\":\"%s\","
		 "\"ipv4\":true}",
		 json_port(lfd, port, sizeof(port)));
	assert_string_equal(json, expect);
	free(json);
	/* nothing pending: -EAGAIN without an error */
	assert_int_equal(sock_accept(lfd, &ch, &err), -EAGAIN);
	assert_null(err);
	assert_null(ch);
	close(lfd);
}

static void test_tcp_ipv6(void **state)
{
	char *err = NULL, *json, port[16], expect[128];
	int lfd, n;

	if (listen_uri("tcp:[::1]:0", &lfd, 1, &n, &err) != 0) {
		print_message("IPv6 loopback unavailable (%s): skipped\n", err);
		free(err);
		skip();
	}
	json = local_json(lfd);
	snprintf(expect, sizeof(expect),
		 "{\"type\":\"inet\",\"host\":\"::1\",\"port\":\"%s\","
		 "\"ipv6\":true}",
		 json_port(lfd, port, sizeof(port)));
	assert_string_equal(json, expect);
	free(json);
	close(lfd);
	tcp_round("tcp:[::1]:0", "[::1]", true);
	tcp_round("tcp:[::1]:0,ipv6=on", "[::1]", true);
}

/* Accepts from whichever of fds gets the connection. */
static struct channel *accept_any(const int *fds, int n)
{
	struct pollfd p[4];

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	assert_true(poll(p, n, 5000) > 0);
	for (int i = 0; i < n; i++)
		if (p[i].revents)
			return accept_one(fds[i]);
	return NULL;
}

static void connect_and_say_hi(const char *host, const char *port,
			       const int *fds, int n)
{
	struct channel *c, *s;
	char uri[64], buf[2];

	snprintf(uri, sizeof(uri), "tcp:%s:%s", host, port);
	c = connect_uri(uri, NULL);
	s = accept_any(fds, n);
	assert_int_equal(chan_write_all(c, "hi", 2), 0);
	assert_int_equal(chan_read_all(s, buf, 2), 0);
	assert_memory_equal(buf, "hi", 2);
	chan_close(c);
	chan_close(s);
}

/* "tcp::0" listens on every local address (0.0.0.0 and :: here), all on
 * one port, so both families reach it. */
static void test_tcp_any_address(void **state)
{
	char port[16], port2[16];
	int fds[4], n;

	listen_uri("tcp::0", fds, 4, &n, NULL);
	assert_true(n >= 1);
	json_port(fds[0], port, sizeof(port));
	for (int i = 1; i < n; i++)
		assert_string_equal(json_port(fds[i], port2, sizeof(port2)),
				    port);
	connect_and_say_hi("127.0.0.1", port, fds, n);
	if (n > 1)
		connect_and_say_hi("[::1]", port, fds, n);
	else
		print_message("only one listener for tcp::0\n");
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void test_tcp_port_range(void **state)
{
	char port[16], uri[96], port2[16];
	int busy, lfd, n, p;

	listen_uri("tcp:127.0.0.1:0", &busy, 1, &n, NULL);
	p = atoi(json_port(busy, port, sizeof(port)));
	if (p > 65530)
		skip();
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d,to=%d", p, p + 5);
	listen_uri(uri, &lfd, 1, &n, NULL);
	json_port(lfd, port2, sizeof(port2));
	assert_true(atoi(port2) > p && atoi(port2) <= p + 5);
	close(lfd);
	close(busy);
}

static void expect_prefix(const char *got, const char *prefix)
{
	if (!got || strncmp(got, prefix, strlen(prefix)))
		fail_msg("'%s' does not start with '%s'", got, prefix);
}

static void test_tcp_errors(void **state)
{
	char port[16], uri[64], expect[128], *err;
	int lfd, n, busy;

	/* connection refused, with QEMU's message */
	listen_uri("tcp:127.0.0.1:0", &lfd, 1, &n, NULL);
	json_port(lfd, port, sizeof(port));
	close(lfd);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%s", port);
	assert_null(connect_uri(uri, &err));
	snprintf(expect, sizeof(expect),
		 "Failed to connect to '127.0.0.1:%s': Connection refused",
		 port);
	assert_string_equal(err, expect);
	free(err);

	/* port in use */
	listen_uri("tcp:127.0.0.1:0", &busy, 1, &n, NULL);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%s",
		 json_port(busy, port, sizeof(port)));
	assert_int_equal(listen_uri(uri, &lfd, 1, &n, &err), -EADDRINUSE);
	assert_string_equal(err, "Failed to find an available port: "
				 "Address already in use");
	assert_int_equal(n, 0);
	free(err);
	close(busy);

	assert_null(connect_uri("tcp:127.0.0.1:1,ipv4=off,ipv6=off", &err));
	assert_string_equal(err, "Cannot disable IPv4 and IPv6 at same time");
	free(err);
	assert_null(connect_uri("tcp:no-such-host.invalid:1", &err));
	expect_prefix(err, "address resolution failed for "
			   "no-such-host.invalid:1: ");
	free(err);
	assert_int_not_equal(
		listen_uri("tcp:127.0.0.1:nosuchservice", &lfd, 1, &n, &err),
		0);
	expect_prefix(err, "address resolution failed for "
			   "127.0.0.1:nosuchservice: ");
	free(err);
	assert_null(connect_uri("fd:3", &err));
	assert_string_equal(err, "'fd:3' is not a tcp, unix or vsock address");
	free(err);
}

/* A connect stuck in SYN retries gives up as soon as cancel_fd fires. */
static void *cancel_later(void *arg)
{
	uint64_t one = 1;

	usleep(100 * 1000);
	assert_int_equal(write(*(int *)arg, &one, sizeof(one)), 8);
	return NULL;
}

static void test_tcp_connect_cancel(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	struct mig_error *err = NULL;
	int lfd, efd, fill[4];
	struct mig_addr a;
	pthread_t t;
	char uri[64];
	double t0;

	/* a listener with a full accept queue drops further SYNs */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	usleep(50 * 1000);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", ntohs(sin.sin_port));
	parse(uri, &a);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(pthread_create(&t, NULL, cancel_later, &efd), 0);
	t0 = now_ms();
	assert_null(sock_connect_cancellable(&a, efd, &err));
	assert_true(now_ms() - t0 < 1000.0);
	assert_non_null(err);
	assert_string_equal(err->desc, "Connection cancelled");
	pthread_join(t, NULL);
	mig_error_free(err);
	mig_addr_clear(&a);
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(efd);
	close(lfd);
}

static void test_mptcp(void **state)
{
	char *err = NULL, port[16], uri[96];
	struct channel *c, *s;
	int lfd, n;

	if (listen_uri("tcp:127.0.0.1:0,mptcp=on", &lfd, 1, &n, &err) != 0) {
		print_message("no MPTCP here (%s): skipped\n", err);
		free(err);
		skip();
	}
	assert_int_equal(int_opt(lfd, SOL_SOCKET, SO_PROTOCOL), IPPROTO_MPTCP);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%s,mptcp",
		 json_port(lfd, port, sizeof(port)));
	c = connect_uri(uri, NULL);
	assert_int_equal(int_opt(c->fd, SOL_SOCKET, SO_PROTOCOL),
			 IPPROTO_MPTCP);
	s = accept_one(lfd);
	transfer_big(c, s);
	chan_close(c);
	chan_close(s);
	close(lfd);
}

static void test_unix(void **state)
{
	char dir[] = "/tmp/migd-test-XXXXXX", path[128], uri[160];
	char expect[256], *json, *err;
	struct channel *c, *s;
	struct stat st;
	int lfd, n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mig.sock", dir);
	snprintf(uri, sizeof(uri), "unix:%s", path);
	/* a stale file is replaced, as QEMU does */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	listen_uri(uri, &lfd, 1, &n, NULL);
	assert_int_equal(n, 1);
	json = local_json(lfd);
	snprintf(expect, sizeof(expect), "{\"type\":\"unix\",\"path\":\"%s\"}",
		 path);
	assert_string_equal(json, expect);
	free(json);
	c = connect_uri(uri, NULL);
	s = accept_one(lfd);
	assert_string_equal(s->desc, uri);
	assert_string_equal(c->desc, uri);
	transfer_big(c, s);
	transfer_big(s, c);
	chan_close(c);
	chan_close(s);
	sock_listen_cleanup(lfd);
	close(lfd);
	assert_int_not_equal(stat(path, &st), 0);

	assert_null(connect_uri(uri, &err));
	snprintf(expect, sizeof(expect),
		 "Failed to connect to '%s': No such file or directory", path);
	assert_string_equal(err, expect);
	free(err);
	rmdir(dir);
}

static void test_unix_abstract_and_long(void **state)
{
	char name[64], json[160], expect[320], uri[256], *j, *err;
	struct qapi_in in;
	struct mig_error *e = NULL;
	struct mig_addr a;
	json_t *args;
	int lfd, n;

	snprintf(name, sizeof(name), "migd-test-%d", (int)getpid());
	snprintf(json, sizeof(json),
		 "{\"addr\": {\"transport\": \"socket\", \"type\": \"unix\", "
		 "\"path\": \"%s\", \"abstract\": true}}",
		 name);
	args = json_loads(json, 0, NULL);
	qapi_in_init(&in, args);
	assert_int_equal(mig_addr_read_qapi(&in, "addr", &a, &e), 0);
	assert_int_equal(sock_listen(&a, &lfd, &n, 1, &e), 0);
	j = local_json(lfd);
	snprintf(expect, sizeof(expect),
		 "{\"type\":\"unix\",\"path\":\"%s\",\"abstract\":true,"
		 "\"tight\":true}",
		 name);
	assert_string_equal(j, expect);
	free(j);
	mig_error_free(e);
	e = NULL;
	{
		struct channel *c = sock_connect(&a, &e), *s;

		assert_non_null(c);
		s = accept_one(lfd);
		assert_int_equal(chan_write_all(c, "x", 1), 0);
		assert_int_equal(chan_read_all(s, name, 1), 0);
		chan_close(c);
		chan_close(s);
	}
	close(lfd);
	mig_addr_clear(&a);
	qapi_in_fini(&in);
	json_decref(args);

	memset(name, 'p', 60);
	name[60] = '\0';
	snprintf(uri, sizeof(uri), "unix:/tmp/%s%s", name, name);
	assert_int_equal(listen_uri(uri, &lfd, 1, &n, &err), -ENAMETOOLONG);
	snprintf(expect, sizeof(expect), "UNIX socket path '%s' is too long",
		 uri + 5);
	assert_string_equal(err, expect);
	free(err);
}

static void test_vsock_errors(void **state)
{
	char *err;
	int fd, n;

	assert_null(connect_uri("vsock:x:1", &err));
	assert_string_equal(err, "Failed to parse cid 'x'");
	free(err);
	assert_null(connect_uri("vsock:1:99999999999", &err));
	assert_string_equal(err, "Failed to parse port '99999999999'");
	free(err);
	assert_int_not_equal(listen_uri("vsock:-1:5", &fd, 1, &n, &err), 0);
	assert_string_equal(err, "Failed to parse cid '-1'");
	free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_ipv4),
		cmocka_unit_test(test_tcp_ipv6),
		cmocka_unit_test(test_tcp_any_address),
		cmocka_unit_test(test_tcp_port_range),
		cmocka_unit_test(test_tcp_errors),
		cmocka_unit_test(test_tcp_connect_cancel),
		cmocka_unit_test(test_mptcp),
		cmocka_unit_test(test_unix),
		cmocka_unit_test(test_unix_abstract_and_long),
		cmocka_unit_test(test_vsock_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
