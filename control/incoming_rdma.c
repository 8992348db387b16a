/* incoming_rdma.c — the destination's rdma: listener on the control loop:
 * listen on the -incoming/migrate-incoming address, hand the connections
 * the listener (rdma/rdma_listen.c) accepted without blocking to
 * incoming_conn.c (the main channel, then multifd channels), a timer for
 * accepts that never complete; a refused or failed connection fails the
 * incoming migration with its reason; what the idle policy counts as
 * RDMA progress. Control thread, except incoming_rdma_error() (the load
 * thread, while the channel lives). */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "control/incoming_priv.h"
#include "control/migd.h"
#include "control/transport.h"
#include "control/migcfg.h"
#include "multifd/mfd_recv.h"
#include "rdma/rdma_chan.h"
#include "rdma/rdma_mfd.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

/* multifd over RDMA (migd <-> migd, rdma/rdma_mfd.h): with multifd on,
 * the listener wants migd's capability bit on the main connection and
 * accepts multifd channel connections. */
static int enable_mfd(struct incoming *inc, struct mig_error **errp)
{
	const struct mig_config *cfg =
		inc->prepared ? inc->cfg : inc->md->config;

	if (!mig_config_cap(cfg, MIG_CAP_MULTIFD))
		return 0;
	if (rdma_listener_enable_mfd(inc->rdma_listener, inc->md->guest)) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	rdma_mfd_set_expect(rdma_listener_mfd(inc->rdma_listener),
			    inc->md->uuid, mig_config_multifd_channels(cfg));
	rdma_mfd_set_counter(rdma_listener_mfd(inc->rdma_listener),
			     &inc->multifd_bytes);
	return 0;
}

/* A multifd channel's connection, its MultiFDInit_t rebuilt from the
 * request: checked and started as a socket channel's (incoming_conn.c). */
static void mfd_channel(struct incoming *inc, struct channel *ch,
			const uint8_t *init)
{
	struct mig_error *err = NULL;

	if (!inc->mfd) {
		chan_close(ch);
		mig_error_setg(&err, "multifd: an rdma channel connected "
				     "before the main connection");
		incoming_fail(inc, err);
		return;
	}
	mfd_recv_set_xport(inc->mfd, &rdma_mfd_recv_xport,
			   rdma_listener_mfd(inc->rdma_listener));
	incoming_tls_connected(inc, ch, init, MFD_INIT_SIZE);
}

/* A connection the listener handed out: a multifd channel or the main. */
static void got_channel(struct incoming *inc, struct channel *ch)
{
	uint8_t init[MFD_INIT_SIZE];

	if (rdma_mfd_chan_init(ch, init)) {
		mfd_channel(inc, ch, init);
		return;
	}
	inc->rdma_ch = ch;
	log_info("incoming migration: rdma connection accepted");
	incoming_new_connection(inc, ch);
}

static void rdma_failed(struct incoming *inc, struct mig_error *err)
{
	log_warn("incoming migration: rdma: %s",
		 err ? err->desc : "connection refused");
	incoming_fail(inc, err);
}

static void on_accept_timeout(struct ev_loop *loop, void *opaque);

/* A timer for the first accepted connection's deadline, if any. */
static void arm_timer(struct incoming *inc)
{
	int ms;

	if (inc->rdma_timer)
		ev_loop_cancel_timer(inc->md->loop, inc->rdma_timer);
	inc->rdma_timer = 0;
	ms = inc->rdma_listener ? rdma_listener_next_timeout(inc->rdma_listener)
				: -1;
	if (ms >= 0)
		inc->rdma_timer = ev_loop_add_timer(inc->md->loop, (uint64_t)ms,
						    on_accept_timeout, inc);
	if (inc->rdma_timer < 0)
		inc->rdma_timer = 0; /* no timer: the idle policy remains */
}

/* Everything the listener has ready, without blocking: accepts start,
 * established connections are handed out, failures fail the incoming
 * migration; then the timer for what is left. */
static void rdma_dispatch(struct incoming *inc)
{
	struct mig_error *err = NULL;
	struct channel *ch = NULL;
	int ret;

	if (!inc->rdma_listener)
		return;
	ret = enable_mfd(inc, &err);
	while (!ret && inc->rdma_listener) {
		ret = rdma_listener_handle(inc->rdma_listener, &ch, &err);
		if (ret != 1)
			break;
		got_channel(inc, ch);
		ret = 0;
	}
	if (ret < 0) {
		rdma_failed(inc, err);
		return;
	}
	arm_timer(inc);
}

/* A deadline passed, or multifd accepts wait for guest RAM's pinning. */
static void on_accept_timeout(struct ev_loop *loop, void *opaque)
{
	struct incoming *inc = opaque;
	struct mig_error *err = NULL;

	inc->rdma_timer = 0; /* fired: one-shot */
	if (!inc->rdma_listener)
		return;
	if (rdma_listener_expire(inc->rdma_listener, &err)) {
		rdma_failed(inc, err);
		return;
	}
	rdma_dispatch(inc);
}

static void on_cm_event(struct ev_loop *loop, int fd, uint32_t events,
			void *opaque)
{
	rdma_dispatch(opaque);
}

int incoming_rdma_listen(struct incoming *inc, struct mig_error **errp)
{
	struct migd *md = inc->md;
	uint16_t port;
	int ret = transport_rdma_port(&inc->addr, &port, errp);

	inc->rdma_ch = NULL;
	inc->rdma_timer = 0;
	if (ret)
		return ret;
	if (!md->rdma_fabric) {
		mig_error_setg(errp, "RDMA ERROR: no RDMA backend");
		return -ENODEV;
	}
	inc->rdma_listener =
		rdma_listener_open(md->rdma_fabric, inc->addr.host, port, errp);
	if (!inc->rdma_listener)
		return -EIO;
	ret = ev_loop_add_fd(md->loop, rdma_listener_fd(inc->rdma_listener),
			     EPOLLIN, on_cm_event, inc);
	if (ret) {
		rdma_listener_free(inc->rdma_listener);
		inc->rdma_listener = NULL;
		mig_error_setg(errp, "Cannot watch the RDMA event channel: %s",
			       strerror(-ret));
	}
	return ret;
}

void incoming_rdma_close(struct incoming *inc)
{
	if (inc->rdma_timer)
		ev_loop_cancel_timer(inc->md->loop, inc->rdma_timer);
	inc->rdma_timer = 0;
	if (!inc->rdma_listener)
		return;
	ev_loop_del_fd(inc->md->loop, rdma_listener_fd(inc->rdma_listener));
	rdma_listener_free(inc->rdma_listener);
	inc->rdma_listener = NULL;
}

struct rdma_ram *incoming_rdma_ram(struct incoming *inc)
{
	if (inc->addr.kind != MIG_ADDR_RDMA || !inc->rdma_ch)
		return NULL;
	return rdma_chan_ram(inc->rdma_ch);
}

bool incoming_rdma_error(struct incoming *inc, struct mig_error **errp)
{
	if (inc->addr.kind != MIG_ADDR_RDMA || !inc->rdma_ch)
		return false;
	return rdma_chan_error(inc->rdma_ch, errp);
}

/* The idle policy's view (check_idle, control thread, while main_ch
 * lives): completions and registrations on the rdma channel. */
uint64_t incoming_rdma_progress(struct incoming *inc)
{
	if (inc->addr.kind != MIG_ADDR_RDMA || !inc->rdma_ch || !inc->main_ch)
		return 0;
	/* multifd over RDMA: its packets move multifd_bytes */
	return rdma_chan_progress(inc->rdma_ch);
}

/* Inside a HOOK round the source writes guest RAM by RDMA WRITE, which
 * this side never sees: a long bulk round is progress, not silence. A
 * source that dies then is seen through the CM (DISCONNECTED). */
bool incoming_rdma_in_round(struct incoming *inc)
{
	if (inc->addr.kind != MIG_ADDR_RDMA || !inc->rdma_ch || !inc->main_ch)
		return false;
	return rdma_chan_in_round(inc->rdma_ch);
}
