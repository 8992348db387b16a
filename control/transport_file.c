/* transport_file.c — opening the channels of a 'file:' migration (see
 * transport.h): the main channel when the command runs (QEMU opens it in
 * qmp_migrate / migrate-incoming), the extra multifd channels of a
 * mapped-ram migration later. A path is opened by file/filechan.c; a
 * "/dev/fdset/N" path takes a private duplicate of a member of set N whose
 * access mode (and O_DIRECT state) match, as QEMU's qemu_open() does.
 * transport_file_open(): control thread. transport_file_open_extra(): any
 * thread (the fd sets have their own lock). */
#include "control/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/fdset.h"
#include "control/migd.h"
#include "file/filechan.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"

static bool is_fdset(const char *path)
{
	return !strncmp(path, FDSET_PATH_PREFIX, strlen(FDSET_PATH_PREFIX));
}

/* A private duplicate of the member of set `path` matching flags. */
static int fdset_dup(struct migd *md, const char *path, int flags,
		     struct mig_error **errp)
{
	int fd = fdsets_open(md->fdsets, path, flags, errp), ret;

	if (fd < 0)
		return fd;
	ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (ret < 0) {
		ret = -errno;
		mig_error_setg(errp, "Failed to dup() fd set %s: %s", path,
			       strerror(-ret));
	}
	fdsets_close_dup(md->fdsets, fd);
	return ret;
}

int transport_file_open(struct migd *md, const struct mig_addr *a,
			bool incoming, struct channel **out,
			struct mig_error **errp)
{
	enum filechan_role role = incoming ? FILECHAN_DEST : FILECHAN_SOURCE;
	char desc[sizeof(((struct channel *)0)->desc)];
	int fd;

	if (!is_fdset(a->path)) {
		*out = filechan_open(a->path, role, a->offset, errp);
		return *out ? 0 : -EIO;
	}
	fd = fdset_dup(md, a->path, incoming ? O_RDONLY : O_WRONLY, errp);
	if (fd < 0)
		return fd;
	snprintf(desc, sizeof(desc), "file:%s", a->path);
	*out = filechan_from_fd(fd, desc, role, true, a->offset, errp);
	return *out ? 0 : -EIO;
}

struct channel *transport_file_open_extra(struct migd *md,
					  const struct mig_addr *a,
					  bool incoming, bool direct,
					  struct mig_error **errp)
{
	enum filechan_role role = incoming ? FILECHAN_DEST : FILECHAN_SOURCE;
	char desc[sizeof(((struct channel *)0)->desc)];
	int fd, flags = incoming ? O_RDONLY : O_WRONLY;

	if (!is_fdset(a->path))
		return filechan_open_extra(a->path, role, direct, errp);
	fd = fdset_dup(md, a->path, flags | (direct ? O_DIRECT : 0), errp);
	if (fd < 0)
		return NULL;
	snprintf(desc, sizeof(desc), "file:%s", a->path);
	return filechan_from_fd(fd, desc, role, false, 0, errp);
}
