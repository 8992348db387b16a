/* incoming_file.c — the destination's part of a mapped-ram 'file:'
 * migration: one extra open of the file per multifd channel (O_DIRECT
 * with direct-io) and the mapped-ram reader the 'ram' loader calls for
 * each block. A sequential 'file:' stream needs nothing here: it is read
 * like an 'fd:' stream. Control thread (from prepare()). */
#include "control/incoming_file.h"
#include "control/incoming_priv.h"

#include <errno.h>
#include <stdlib.h>

#include "control/migcfg.h"
#include "control/transport.h"
#include "multifd/ram_load.h"
#include "multifd/ram_load_file.h"
#include "socket/channel.h"

static void close_all(struct channel **chans, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		chan_close(chans[i]);
	free(chans);
}

int incoming_file_prepare(struct incoming *inc, struct ram_load_opts *ro,
			  struct mig_error **errp)
{
	const struct mig_config *cfg = inc->cfg;
	bool multifd = mig_config_cap(cfg, MIG_CAP_MULTIFD);
	unsigned n = multifd ? mig_config_multifd_channels(cfg) : 0;
	struct channel **chans;

	if (inc->addr.kind != MIG_ADDR_FILE ||
	    !mig_config_cap(cfg, MIG_CAP_MAPPED_RAM))
		return 0;
	if (!inc->file_ch) {
		mig_error_setg(errp, "mapped-ram needs a seekable channel");
		return -EINVAL;
	}
	chans = calloc(n ? n : 1, sizeof(*chans));
	if (!chans) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		chans[i] = transport_file_open_extra(inc->md, &inc->addr, true,
						     mig_config_direct_io(cfg),
						     errp);
		if (!chans[i]) {
			close_all(chans, n);
			return -EIO;
		}
	}
	inc->rlf = ram_load_file_new(inc->file_ch, chans, n,
				     &inc->multifd_bytes, errp);
	close_all(chans, n);
	if (!inc->rlf)
		return -ENOMEM;
	ro->file = inc->rlf;
	return 0;
}
