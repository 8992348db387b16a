/* mfd_zerocopy.c — zero-copy-send on multifd channels (see
 * mfd_zerocopy.h). Owns the QEMU semantics: which bytes go zero-copy, when
 * completions are awaited, what counts as a missed zero copy and the
 * wording of the errors. Does not own the socket mechanics (socket/
 * zerocopy.c) or the packet layout (mfd_send.c). */
#include "multifd/mfd_zerocopy.h"

#include <errno.h>
#include <string.h>

#include "multifd/migstats.h"
#include "socket/channel.h"
#include "util/log.h"

int mfd_zc_enable(struct channel **chans, unsigned n, struct mig_error **errp)
{
	for (unsigned i = 0; i < n; i++) {
		int ret = chan_zerocopy_enable(chans[i]);

		if (ret) {
			/* QEMU probes SO_ZEROCOPY when it connects and fails
			 * the migration with this when the probe failed. */
			mig_error_setg(errp, "Zero copy send feature not "
					     "detected in host kernel");
			return ret;
		}
	}
	return 0;
}

/* As QEMU: the header is small and reused for the next packet at once,
 * so it is copied; only the guest pages go zero-copy. */
int mfd_zc_send_packet(struct channel *ch, struct iovec *iov, int niov)
{
	int ret = chan_writev_all(ch, iov, 1);

	if (ret || niov < 2)
		return ret;
	return chan_writev_zerocopy_all(ch, iov + 1, niov - 1);
}

/* Called by the send thread after its SYNC packet, before the sync point
 * completes: no page may be queued again while an older zero-copy send
 * of it could still be read by the kernel. */
int mfd_zc_flush(struct channel *ch, struct mig_counters *ctr)
{
	struct mig_error *err = NULL;
	int ret = chan_flush(ch, &err);

	if (ret < 0) {
		if (err)
			log_error("multifd zero-copy flush on %s: %s", ch->desc,
				  err->desc);
		mig_error_free(err);
		return ret;
	}
	/* QEMU: every flush in which the kernel copied all the sends. */
	if (ret == 1)
		mig_count(&ctr->dirty_sync_missed_zero_copy, 1);
	return 0;
}

bool mfd_zc_error(struct mig_error **errp, int err)
{
	switch (err) {
	case -ENOBUFS:
		mig_error_setg(errp,
			       "Process can't lock enough memory for "
			       "using MSG_ZEROCOPY: %s",
			       strerror(ENOBUFS));
		return true;
	case -EOPNOTSUPP:
		mig_error_setg(errp,
			       "Requested Zero Copy feature is not "
			       "available: %s",
			       strerror(EINVAL));
		return true;
	}
	return false;
}
