/* transport.c — which transport carries which migration, and opening the
 * 'fd:' and 'exec:' streams (see transport.h). The bytes move in socket/
 * (socket.c, fdchan.c, exec.c); this file only picks and opens.
 * Control thread, except transport_connect() (the migration thread). */
#include "control/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/fdset.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "control/monfd.h"
#include "socket/channel.h"
#include "socket/fdchan.h"
#include "socket/sockaddr.h"
#include "util/log.h"
#include "util/parse.h"

static bool is_socket_kind(const struct mig_addr *a)
{
	return a->kind == MIG_ADDR_TCP || a->kind == MIG_ADDR_UNIX ||
	       a->kind == MIG_ADDR_VSOCK;
}

int transport_check_compatible(const struct mig_config *cfg,
			       const struct mig_addr *a,
			       struct mig_error **errp)
{
	bool mapped_ram = mig_config_cap(cfg, MIG_CAP_MAPPED_RAM);
	bool multi = is_socket_kind(a) || a->kind == MIG_ADDR_RDMA ||
		     (a->kind == MIG_ADDR_FILE && mapped_ram);

	if (mapped_ram && a->kind != MIG_ADDR_FILE) {
		mig_error_setg(errp, "Migration requires seekable transport "
				     "(e.g. file)");
		return -EINVAL;
	}
	if (transport_rdma_check(cfg, a, errp)) /* before multi-channel */
		return -EINVAL;
	if ((mig_config_cap(cfg, MIG_CAP_MULTIFD) ||
	     mig_config_cap(cfg, MIG_CAP_POSTCOPY_PREEMPT)) &&
	    !multi) {
		mig_error_setg(errp, "Migration requires multi-channel URIs "
				     "(e.g. tcp)");
		return -EINVAL;
	}
	return 0;
}

bool transport_is_stream(const struct mig_addr *a)
{
	return a->kind == MIG_ADDR_FD || a->kind == MIG_ADDR_EXEC ||
	       a->kind == MIG_ADDR_FILE;
}

/* A private duplicate of a member of fd set /dev/fdset/N: the set keeps
 * its own, so closing ours needs no bookkeeping. Any access mode. */
static int fdset_fd(struct migd *md, const char *path, struct mig_error **errp)
{
	static const int modes[] = {O_RDWR, O_WRONLY, O_RDONLY};
	struct mig_error *err = NULL;
	int fd = -1, ret;

	for (size_t i = 0; i < 3 && fd < 0; i++) {
		mig_error_free(err);
		err = NULL;
		fd = fdsets_open(md->fdsets, path, modes[i], &err);
	}
	if (fd < 0) {
		mig_error_propagate(errp, err);
		return fd;
	}
	mig_error_free(err);
	ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (ret < 0) {
		ret = -errno;
		mig_error_setg(errp, "Failed to dup() fd set %s: %s", path,
			       strerror(-ret));
	}
	fdsets_close_dup(md->fdsets, fd);
	return ret;
}

/* QEMU's monitor_get_fd() (source) and monitor_fd_param() (destination),
 * plus the /dev/fdset/N extension. Returns an fd the caller owns. */
static int take_fd(struct migd *md, struct qmp_monitor *mon, const char *name,
		   bool incoming, struct mig_error **errp)
{
	bool number = name[0] >= '0' && name[0] <= '9';
	int fd;

	if (incoming && (number || !mon)) {
		fd = parse_fd_number(name);
		if (fd < 0) {
			mig_error_setg(errp,
				       "Invalid file descriptor number '%s'",
				       name);
			return -EINVAL;
		}
		return fd;
	}
	fd = mon ? monfd_take(qmp_monitor_fds(mon), name) : -ENOENT;
	if (fd >= 0)
		return fd;
	if (!strncmp(name, FDSET_PATH_PREFIX, strlen(FDSET_PATH_PREFIX)))
		return fdset_fd(md, name, errp);
	mig_error_setg(errp, "File descriptor named '%s' has not been found",
		       name);
	return -ENOENT;
}

/* Wraps fd (taken) as QEMU's qio_channel_new_fd() would: a socket channel
 * for sockets, an fd channel for everything else. */
static int fd_channel(int fd, const char *name, struct channel **out,
		      struct mig_error **errp)
{
	char desc[128];
	struct stat st;

	snprintf(desc, sizeof(desc), "fd:%s", name);
	if (fstat(fd, &st) < 0) {
		int err = errno;

		close(fd);
		mig_error_setg(errp, "Unable to stat file descriptor: %s",
			       strerror(err));
		return -err;
	}
	if (sock_fd_is_socket(fd)) {
		*out = sock_channel_new(fd, desc);
		if (!*out)
			mig_error_setg(errp, "Out of memory");
		return *out ? 0 : -ENOMEM;
	}
	if (!S_ISFIFO(st.st_mode))
		log_warn("fd: migration to a file is deprecated. Use file: "
			 "instead.");
	*out = fdchan_new(fd, fd, 0, desc, errp);
	return *out ? 0 : -EIO;
}

int transport_open_stream(struct migd *md, struct qmp_monitor *mon,
			  const struct mig_addr *a, bool incoming,
			  struct channel **out, struct mig_error **errp)
{
	int fd;

	*out = NULL;
	if (a->kind == MIG_ADDR_EXEC) {
		*out = exec_spawn(a->argv, errp);
		return *out ? 0 : -EIO;
	}
	if (a->kind == MIG_ADDR_FILE)
		return transport_file_open(md, a, incoming, out, errp);
	if (a->kind != MIG_ADDR_FD)
		return 0;
	fd = take_fd(md, mon, a->fdname ? a->fdname : "", incoming, errp);
	if (fd < 0)
		return fd;
	return fd_channel(fd, a->fdname, out, errp);
}

struct channel *transport_connect(const struct mig_addr *a,
				  struct channel **opened,
				  struct mig_error **errp)
{
	struct channel *ch;

	if (is_socket_kind(a))
		return sock_connect(a, errp);
	if (transport_is_stream(a) && opened && *opened) {
		ch = *opened;
		*opened = NULL;
		return ch;
	}
	if (transport_is_stream(a))
		mig_error_setg(errp, "Migration requires multi-channel URIs "
				     "(e.g. tcp)");
	else
		mig_error_setg(errp, "migd cannot connect this transport");
	return NULL;
}

int transport_stream_read_fd(struct channel *ch)
{
	return ch ? fdchan_read_fd(ch) : -1;
}
