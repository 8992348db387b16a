/* transport_rdma.c — the rdma: transport's part of control/transport.h:
 * the capabilities QEMU refuses with RDMA, and the source's connect (the
 * fabric comes from the migd context: rdma-core in migd, the loopback
 * fabric in tests). Control thread (checks), migration thread (connect). */
#include "control/transport.h"

#include <errno.h>
#include <stdlib.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "rdma/rdma_chan.h"
#include "rdma/rdma_mfd.h"
#include "socket/channel.h"
#include "socket/sockaddr.h"

int transport_rdma_check(const struct mig_config *cfg, const struct mig_addr *a,
			 struct mig_error **errp)
{
	if (a->kind != MIG_ADDR_RDMA)
		return 0;
	if (mig_config_cap(cfg, MIG_CAP_XBZRLE)) {
		mig_error_setg(errp, "RDMA and XBZRLE can't be used together");
		return -EINVAL;
	}
	/* multifd: migd <-> migd only (rdma/rdma_mfd.h); a QEMU peer is
	 * refused with QEMU's "RDMA and multifd can't be used together"
	 * when it answers the connection. */
	if (mig_config_cap(cfg, MIG_CAP_MULTIFD) &&
	    (mig_config_multifd_compression(cfg) !=
		     MIG_MULTIFD_COMPRESSION_NONE ||
	     mig_config_cap(cfg, MIG_CAP_ZERO_COPY_SEND))) {
		mig_error_setg(errp,
			       "migd does not support multifd-compression "
			       "or zero-copy-send with multifd over rdma");
		return -EINVAL;
	}
	if (mig_config_cap(cfg, MIG_CAP_POSTCOPY_RAM)) {
		mig_error_setg(errp,
			       "RDMA and postcopy-ram can't be used together");
		return -EINVAL;
	}
	if (mig_config_tls_enabled(cfg)) { /* QEMU's rdma: has no TLS */
		mig_error_setg(errp, "migd does not support TLS over rdma");
		return -EINVAL;
	}
	return 0;
}

int transport_rdma_port(const struct mig_addr *a, uint16_t *port,
			struct mig_error **errp)
{
	char *end = NULL;
	unsigned long v = a->port ? strtoul(a->port, &end, 10) : 0;

	if (!a->port || !*a->port || *end || v > 65535) {
		mig_error_setg(errp,
			       "RDMA ERROR: bad RDMA migration address "
			       "'%s:%s'",
			       a->host ? a->host : "", a->port ? a->port : "");
		return -EINVAL;
	}
	*port = (uint16_t)v;
	return 0;
}

/* The main channel with multifd: the destination must echo RMFD_CAP_MAIN
 * (a migd with multifd on); QEMU drops the bit. */
static struct channel *connect_mfd_main(struct migd *md,
					const struct mig_config *cfg,
					const struct mig_addr *a, uint16_t port,
					int cancel_fd, struct mig_error **errp)
{
	uint32_t accepted = 0;
	struct channel *ch = rdma_chan_connect_flags(
		md->rdma_fabric, a->host, port,
		mig_config_cap(cfg, MIG_CAP_RDMA_PIN_ALL), RMFD_CAP_MAIN,
		cancel_fd, &accepted, errp);

	if (ch && !(accepted & RMFD_CAP_MAIN)) {
		chan_close(ch);
		mig_error_setg(errp, RMFD_QEMU_REFUSAL);
		return NULL;
	}
	return ch;
}

struct channel *transport_rdma_connect(struct migd *md,
				       const struct mig_config *cfg,
				       const struct mig_addr *a, int cancel_fd,
				       struct mig_error **errp)
{
	uint16_t port;

	if (mig_config_cap(cfg, MIG_CAP_RETURN_PATH) ||
	    mig_config_cap(cfg, MIG_CAP_SWITCHOVER_ACK)) {
		mig_error_setg(errp, "migd does not support the return path "
				     "over rdma yet");
		return NULL;
	}
	if (transport_rdma_port(a, &port, errp))
		return NULL;
	if (!a->host || !*a->host) {
		mig_error_setg(errp, "RDMA ERROR: RDMA host is not set!");
		return NULL;
	}
	if (!md->rdma_fabric) {
		mig_error_setg(errp, "RDMA ERROR: no RDMA backend");
		return NULL;
	}
	if (mig_config_cap(cfg, MIG_CAP_MULTIFD))
		return connect_mfd_main(md, cfg, a, port, cancel_fd, errp);
	return rdma_chan_connect_cancellable(
		md->rdma_fabric, a->host, port,
		mig_config_cap(cfg, MIG_CAP_RDMA_PIN_ALL), cancel_fd, errp);
}

struct channel *transport_rdma_mfd_connect(struct migd *md,
					   const struct mig_addr *a,
					   struct channel **chans, unsigned i,
					   int cancel_fd,
					   struct mig_error **errp)
{
	uint16_t port;

	if (transport_rdma_port(a, &port, errp))
		return NULL;
	return rdma_mfd_connect(md->rdma_fabric, a->host, port, md->guest,
				md->uuid, i, i ? chans[0] : NULL, cancel_fd,
				errp);
}

const struct mfd_send_xport *transport_mfd_xport(const struct mig_addr *a)
{
	return a->kind == MIG_ADDR_RDMA ? &rdma_mfd_send_xport : NULL;
}
