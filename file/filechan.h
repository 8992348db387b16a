/* filechan.h — the file channel: channel_ops (socket/channel.h) over a
 * regular file for file: migration (path, /dev/fdset/N or a passed fd),
 * with sequential I/O at the file position and positioned I/O (pwritev,
 * preadv) for mapped-ram. Opening follows QEMU's migration/file.c, with
 * QEMU 9.1+'s error messages. Does not own URI parsing or fdset lookup.
 * I/O: the channel's owner thread (positioned I/O: any one thread per
 * channel); filechan_shutdown via chan_shutdown(): any thread. */
#ifndef MIGD_FILE_FILECHAN_H
#define MIGD_FILE_FILECHAN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/error.h"

struct channel;

/* Which side of the migration a channel serves. */
enum filechan_role {
	FILECHAN_SOURCE, /* writes (the outgoing migration) */
	FILECHAN_DEST,	 /* reads (the incoming migration) */
};

/* The main channel of `file:PATH,offset=N`. SOURCE: opens (creating it
 * with mode 0600) write-only, truncates the file to offset, seeks there.
 * DEST: opens read-only and seeks to offset. NULL with *errp on failure:
 * "Could not create '<path>': <strerror>", "Could not open '<path>': ...",
 * "failed to truncate migration file to offset <hex>: ...", "Unable to
 * seek to offset <n> whence 0 in file: ...". */
struct channel *filechan_open(const char *path, enum filechan_role role,
			      uint64_t offset, struct mig_error **errp);

/* A multifd channel: a second, independent open of the same path
 * (O_WRONLY for SOURCE, O_RDONLY for DEST; never created or truncated),
 * with O_DIRECT when direct is set (direct-io). Used only with positioned
 * I/O. When the filesystem refuses O_DIRECT: "Could not open '<path>':
 * filesystem does not support O_DIRECT". */
struct channel *filechan_open_extra(const char *path, enum filechan_role role,
				    bool direct, struct mig_error **errp);

/* A channel over fd, which it takes over (closed on failure too). desc
 * names it in messages ("file:/dev/fdset/3", "fd:mig"). With
 * set_offset, the same treatment as filechan_open() (SOURCE truncates to
 * offset and seeks, DEST seeks): the file:/dev/fdset/N case. Without it,
 * I/O starts at the fd's current position: the fd: case. */
struct channel *filechan_from_fd(int fd, const char *desc,
				 enum filechan_role role, bool set_offset,
				 uint64_t offset, struct mig_error **errp);

/* True when ch was made by this module. */
bool filechan_is_file(const struct channel *ch);
/* True when ch's fd was opened with O_DIRECT (direct-io checks on fdset
 * fds). */
bool filechan_is_direct(const struct channel *ch);
/* True when the fd underneath is a seekable file (mapped-ram needs it). */
bool filechan_is_seekable(const struct channel *ch);

/* The sequential position (where the next writev/readv goes), and moving
 * it: for the main stream around the mapped-ram regions. 0 or -errno;
 * seek failures set QEMU's "Unable to seek to offset ..." message. */
int filechan_tell(struct channel *ch, uint64_t *pos);
int filechan_seek(struct channel *ch, uint64_t pos, struct mig_error **errp);
/* The file's current size (fstat). 0 or -errno. */
int filechan_size(struct channel *ch, uint64_t *size);

/* Positioned "everything or an error" loops over ch->ops->pwritev/preadv
 * (any seekable channel): retry after EINTR and partial transfers. 0 or
 * -errno; a read that meets the end of the file returns -EPIPE (nothing
 * read) or -EPROTO (part read): a truncated file. -ENOTSUP when ch has no
 * positioned I/O, -EOVERFLOW when offset + length overflows off_t. May
 * modify iov. */
int filechan_pwritev_all(struct channel *ch, struct iovec *iov, int iovcnt,
			 uint64_t offset);
int filechan_preadv_all(struct channel *ch, struct iovec *iov, int iovcnt,
			uint64_t offset);

/* QEMU's messages for a failed transfer (err is a -errno from the calls
 * above): "Unable to write to file: <strerror>" / "Unable to read from
 * file: <strerror>". */
void filechan_set_io_error(struct mig_error **errp, int err, bool write);

#endif
