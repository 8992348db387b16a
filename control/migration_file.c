/* migration_file.c — the source's part of a mapped-ram 'file:' migration
 * that lives outside the migration thread's loop: opening one extra file
 * channel per multifd channel (O_DIRECT with direct-io) and building the
 * mapped-ram writer that ram_save.c feeds. The sequential 'file:' stream
 * needs nothing here: it is one channel like 'fd:'.
 * The migration thread. */
#include "control/migration_file.h"
#include "control/migration_priv.h"

#include <errno.h>
#include <stdlib.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/transport.h"
#include "multifd/ram_save_file.h"
#include "socket/channel.h"

static void close_all(struct channel **chans, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		chan_close(chans[i]);
	free(chans);
}

int migration_file_setup(struct migration *m, struct mig_error **errp)
{
	const struct mig_config *cfg = m->cfg;
	bool multifd = mig_config_cap(cfg, MIG_CAP_MULTIFD);
	unsigned n = multifd ? mig_config_multifd_channels(cfg) : 0;
	bool direct = mig_config_direct_io(cfg);
	struct channel **chans;
	struct ram_save_file *rsf;

	if (m->addr.kind != MIG_ADDR_FILE ||
	    !mig_config_cap(cfg, MIG_CAP_MAPPED_RAM))
		return 0;
	chans = calloc(n ? n : 1, sizeof(*chans));
	if (!chans) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		chans[i] = transport_file_open_extra(m->md, &m->addr, false,
						     direct, errp);
		if (!chans[i]) {
			close_all(chans, n);
			return -EIO;
		}
	}
	rsf = ram_save_file_new(m->md->guest, m->main_ch, chans, n,
				mig_config_zero_page_detection(cfg) !=
					MIG_ZERO_PAGE_DETECTION_NONE,
				&m->ctr, errp);
	close_all(chans, n);
	if (!rsf)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	m->file = rsf;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void migration_file_release(struct migration *m)
{
	struct ram_save_file *rsf;

	pthread_mutex_lock(&m->lock);
	rsf = m->file;
	m->file = NULL;
	pthread_mutex_unlock(&m->lock);
	ram_save_file_free(rsf);
}
