/* transport.h — the seam between the migration state machines (migration.c,
 * incoming*.c) and the transports in socket/: which transport may carry
 * which migration (QEMU's migration_channels_and_transport_compatible()),
 * opening 'fd:' and 'exec:' streams when the command runs (as QEMU does:
 * the fd is taken from the monitor, the command spawned at once), and the
 * source's connect for every kind.
 * transport_check_compatible(), transport_open_stream(): control thread.
 * transport_connect(): the migration thread. */
#ifndef MIGD_CONTROL_TRANSPORT_H
#define MIGD_CONTROL_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct channel;
struct mig_addr;
struct mig_config;
struct migd;
struct qmp_monitor;

/* QEMU 9.0's rules, in its order and words: mapped-ram needs a seekable
 * transport ("Migration requires seekable transport (e.g. file)");
 * multifd or postcopy-preempt needs tcp/unix/vsock, or file: with
 * mapped-ram ("Migration requires multi-channel URIs (e.g. tcp)").
 * 0 or -EINVAL with *errp. */
int transport_check_compatible(const struct mig_config *cfg,
			       const struct mig_addr *a,
			       struct mig_error **errp);

/* True for the kinds whose one stream transport_open_stream() opens. */
bool transport_is_stream(const struct mig_addr *a);

/* For 'fd:', 'exec:' and 'file:' (transport_file_open()) addresses:
 * opens the stream now. fd:NAME: a name
 * not starting with a digit is taken from mon's getfd table (QEMU's
 * monitor_get_fd(): "File descriptor named '%s' has not been found"); on
 * the destination (incoming), a name starting with a digit, or any name
 * when mon is NULL (the command line), is an fd number the process
 * inherited ("Invalid file descriptor number '%s'"). migd extension: a
 * name "/dev/fdset/N" that no getfd entry has is a duplicate of a member
 * of fd set N (add-fd). Sockets become socket channels; pipes, FIFOs and
 * other fds fd channels (regular files are accepted with QEMU's
 * deprecation warning in the log). exec: spawns the command (the source
 * writes its stdin, the destination reads its stdout).
 * *out is the channel, or NULL for other kinds. 0 or -errno with *errp. */
int transport_open_stream(struct migd *md, struct qmp_monitor *mon,
			  const struct mig_addr *a, bool incoming,
			  struct channel **out, struct mig_error **errp);

/* 'file:PATH[,offset=N]' (transport_file.c): the main channel (the
 * source creates the file 0600, truncates it to offset and seeks there;
 * the destination seeks to offset), opened by transport_open_stream(); and
 * a multifd channel of a mapped-ram migration: another open of the same
 * file (O_DIRECT with direct), used only for positioned I/O. A path
 * "/dev/fdset/N" takes a private duplicate of a member of fd set N with
 * the matching access mode and O_DIRECT state (with multifd and direct-io
 * the set must hold one of each). 0 / channel, or -errno / NULL with
 * *errp (QEMU's "Could not create '%s': ...", "... filesystem does not
 * support O_DIRECT"). */
int transport_file_open(struct migd *md, const struct mig_addr *a,
			bool incoming, struct channel **out,
			struct mig_error **errp);
struct channel *transport_file_open_extra(struct migd *md,
					  const struct mig_addr *a,
					  bool incoming, bool direct,
					  struct mig_error **errp);

/* The source's channels: tcp/unix/vsock connect (blocking); fd/exec hand
 * over *opened (then NULL; a second channel cannot exist: "Migration
 * requires multi-channel URIs (e.g. tcp)"). opened may be NULL. NULL with
 * *errp on failure. */
struct channel *transport_connect(const struct mig_addr *a,
				  struct channel **opened,
				  struct mig_error **errp);

/* rdma: (transport_rdma.c). What QEMU refuses with RDMA, in its words:
 * "RDMA and XBZRLE can't be used together", "RDMA and postcopy-ram can't
 * be used together" (0 for other kinds); multifd is migd <-> migd only
 * (a QEMU peer gets "RDMA and multifd can't be used together" when it
 * answers the connection), without compression or zero-copy. The port of an rdma: address (QEMU's "RDMA ERROR: bad
 * RDMA migration address"). The source's connect over md's fabric (the
 * migration thread): NULL with *errp; once cancel_fd (an eventfd, -1 for
 * none) is readable the connection phase ends at once. */
int transport_rdma_check(const struct mig_config *cfg,
			 const struct mig_addr *a, struct mig_error **errp);
int transport_rdma_port(const struct mig_addr *a, uint16_t *port,
			struct mig_error **errp);
struct channel *transport_rdma_connect(struct migd *md,
				       const struct mig_config *cfg,
				       const struct mig_addr *a, int cancel_fd,
				       struct mig_error **errp);

/* Multifd over RDMA (migd <-> migd, rdma/rdma_mfd.h; migration thread):
 * connects multifd channel i of an rdma: migration (chans[0] once
 * connected shares its registrations). NULL with *errp. */
struct mfd_send_xport;
struct channel *transport_rdma_mfd_connect(struct migd *md,
					   const struct mig_addr *a,
					   struct channel **chans, unsigned i,
					   int cancel_fd,
					   struct mig_error **errp);
/* The multifd send ops of a's transport: NULL (bytes) but for rdma:. */
const struct mfd_send_xport *transport_mfd_xport(const struct mig_addr *a);

/* The descriptor that becomes readable when an opened stream's first
 * bytes arrive (the destination starts loading then, as QEMU's watch on
 * the channel), or -1 when it cannot be watched. */
int transport_stream_read_fd(struct channel *ch);

#endif
