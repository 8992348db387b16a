/* mfd_zerocopy.h — zero-copy-send for the multifd send threads: turning it
 * on for every channel, one packet sent QEMU's way (header copied, pages
 * with MSG_ZEROCOPY), the flush at each sync point with QEMU's
 * dirty-sync-missed-zero-copy count, and QEMU's error messages.
 * mfd_zc_enable: the migration thread before the send threads start; the
 * others: the send thread that owns the channel. */
#ifndef MIGD_MULTIFD_MFD_ZEROCOPY_H
#define MIGD_MULTIFD_MFD_ZEROCOPY_H

#include <stdbool.h>
#include <sys/uio.h>

#include "util/error.h"

struct channel;
struct mig_counters;

/* Turns zero-copy on for chans[0..n): 0, or -errno with QEMU's "Zero copy
 * send feature not detected in host kernel" when one cannot (unix
 * sockets, old kernels, non-socket transports). */
int mfd_zc_enable(struct channel **chans, unsigned n, struct mig_error **errp);
/* Writes iov[0] (the packet header) with a plain write and iov[1..niov)
 * (guest pages) with MSG_ZEROCOPY. May modify iov. 0 or -errno. */
int mfd_zc_send_packet(struct channel *ch, struct iovec *iov, int niov);
/* Waits until every zero-copy send on ch has completed; counts one
 * dirty-sync-missed-zero-copy when the kernel copied all of them. 0 or
 * -errno. */
int mfd_zc_flush(struct channel *ch, struct mig_counters *ctr);
/* QEMU's message for a zero-copy send failure err (-errno) into *errp;
 * false (nothing set) for errors that have no zero-copy meaning. */
bool mfd_zc_error(struct mig_error **errp, int err);

#endif
