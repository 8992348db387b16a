/* socket_vsock.c — AF_VSOCK connect and listen for "vsock:CID:PORT" and
 * the QAPI VsockSocketAddress, with QEMU's messages ("Failed to parse cid
 * '%s'"). Any thread; connect blocks (the vsock transport bounds it). */
#include "socket/sockaddr.h"
#include "socket/socket_priv.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

/* QEMU's parse_uint_full(s, 10) limited to 32 bits. */
static bool parse_u32(const char *s, unsigned int *out)
{
	unsigned long long v;
	char *end;

	while (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		s++;
	if (!*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || end == s || v > UINT32_MAX)
		return false;
	*out = (unsigned int)v;
	return true;
}

static int vsock_sockaddr(const struct mig_addr *a, struct sockaddr_vm *svm,
			  struct mig_error **errp)
{
	const char *cid = a->cid ? a->cid : "", *port = a->port ? a->port : "";

	memset(svm, 0, sizeof(*svm));
	svm->svm_family = AF_VSOCK;
	if (!parse_u32(cid, &svm->svm_cid)) {
		mig_error_setg(errp, "Failed to parse cid '%s'", cid);
		return -EINVAL;
	}
	if (!parse_u32(port, &svm->svm_port)) {
		mig_error_setg(errp, "Failed to parse port '%s'", port);
		return -EINVAL;
	}
	return 0;
}

/* Blocking: the vsock transport bounds connect itself (2 s default). */
int sock_vsock_connect(const struct mig_addr *a, struct mig_error **errp)
{
	struct sockaddr_vm svm;
	int fd, ret = vsock_sockaddr(a, &svm, errp);

	if (ret < 0)
		return ret;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mig_error_setg_errno(errp, errno,
					    "Failed to create socket family %d",
					    AF_VSOCK);
	while (connect(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0) {
		if (errno == EINTR)
			continue;
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to connect to '%s:%s'",
					   a->cid, a->port);
		close(fd);
		return ret;
	}
	return fd;
}

int sock_vsock_listen(const struct mig_addr *a, struct mig_error **errp)
{
	struct sockaddr_vm svm;
	int fd, ret = vsock_sockaddr(a, &svm, errp);

	if (ret < 0)
		return ret;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return mig_error_setg_errno(errp, errno,
					    "Failed to create socket");
	if (bind(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0)
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to bind socket");
	else if (listen(fd, SOMAXCONN) < 0)
		ret = mig_error_setg_errno(errp, errno,
					   "Failed to listen on socket");
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}
