/* incoming_conn.c — the incoming migration's connections and threads (see
 * incoming_priv.h): the non-blocking listener on the control loop, channel
 * classification (QEMU 8.0+: with multifd, the first 4 bytes tell the main
 * channel "QEVM" from a multifd channel 0x11223344, whose 64-byte init is
 * then checked; without multifd the first connection is the main one), the
 * incoming thread ("mig/dst/main") and the multifd receivers, the idle
 * policy and the teardown.
 *
 * Idle policy (x-incoming-idle-timeout, seconds, default 60, 0 = never):
 * received bytes are counted per read on every channel. When none arrive
 * for the timeout, the migration fails, unless the source may be pausing
 * on purpose: the incoming thread waits for a new section (or a footer)
 * and no multifd channel is inside a packet or waits at a SYNC — that is
 * where a source in pause-before-switchover stops, for as long as its
 * operator wants. A dead peer in that state is found by TCP keepalive
 * (socket/). A connection that does not identify itself within the
 * timeout is dropped; after EOF the optional vmdesc is waited for at most
 * that long.
 * Control thread, except the thread bodies and the callbacks they call. */
#include "control/incoming_file.h"
#include "control/incoming_priv.h"
#include "control/incoming_tls.h"
#include "control/migration.h"
#include "control/transport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/migd.h"
#include "file/filechan.h"
#include "multifd/byteorder.h"
#include "multifd/mfd_recv.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "multifd/ram_load_file.h"
#include "socket/channel.h"
#include "util/evloop.h"
#include "util/log.h"

#define TICK_MS 1000

/* ---- a channel that counts what it receives ------------------------------ */

struct counted_chan {
	struct channel ch; /* first: the ops get &ch */
	struct channel *inner;
	_Atomic uint64_t *counter; /* set before a thread takes the channel */
};

static struct counted_chan *to_counted(struct channel *ch)
{
	return (struct counted_chan *)ch;
}

static ssize_t counted_readv(struct channel *ch, const struct iovec *iov,
			     int iovcnt)
{
	struct counted_chan *c = to_counted(ch);
	ssize_t n = c->inner->ops->readv(c->inner, iov, iovcnt);

	if (n > 0 && c->counter)
		atomic_fetch_add_explicit(c->counter, (uint64_t)n,
					  memory_order_relaxed);
	return n;
}

static ssize_t counted_writev(struct channel *ch, const struct iovec *iov,
			      int iovcnt)
{
	struct counted_chan *c = to_counted(ch);

	return c->inner->ops->writev(c->inner, iov, iovcnt);
}

static void counted_shutdown(struct channel *ch)
{
	chan_shutdown(to_counted(ch)->inner);
}

static void counted_close(struct channel *ch)
{
	chan_close(to_counted(ch)->inner);
	free(to_counted(ch));
}

static const char *counted_noun(const struct channel *ch)
{
	return chan_noun(((const struct counted_chan *)ch)->inner);
}

static const struct channel_ops counted_ops = {
	.noun = counted_noun,
	.name = "counted",
	.writev = counted_writev,
	.readv = counted_readv,
	.shutdown = counted_shutdown,
	.close = counted_close,
};

/* Takes inner (closed on failure). */
static struct channel *counted_new(struct channel *inner)
{
	struct counted_chan *c = calloc(1, sizeof(*c));

	if (!c) {
		chan_close(inner);
		return NULL;
	}
	c->ch.ops = &counted_ops;
	c->ch.fd = inner->fd;
	c->ch.priv = c;
	memcpy(c->ch.desc, inner->desc, sizeof(c->ch.desc));
	c->inner = inner;
	return &c->ch;
}

static void count_into(struct channel *ch, _Atomic uint64_t *counter)
{
	to_counted(ch)->counter = counter;
}

/* ---- data plane setup (first connection) --------------------------------- */

static void fail_msg(struct incoming *inc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail_msg(struct incoming *inc, const char *fmt, ...)
{
	struct mig_error *err = NULL;
	va_list ap;

	va_start(ap, fmt);
	mig_error_vset(&err, MIG_ERR_GENERIC, fmt, ap);
	va_end(ap);
	incoming_fail(inc, err);
}

static int sync_channels(void *opaque, struct mig_error **errp)
{
	struct incoming *inc = opaque;
	int ret;

	loadvm_set_stage(&inc->ld, LOADVM_STAGE_SYNC);
	ret = mfd_recv_sync(inc->mfd, errp);
	loadvm_set_stage(&inc->ld, LOADVM_STAGE_ITEM);
	return ret;
}

static void mfd_failed(void *opaque, struct mig_error *err)
{
	struct incoming *inc = opaque;

	/* After LISTEN the multifd channels carry nothing: their end (a
	 * broken network included) is not the migration's; postcopy pauses
	 * on the main channel instead. */
	if (inc->rl && ram_load_landing_closed(inc->rl) &&
	    strcmp(err->desc, RAM_LOAD_LANDING_CLOSED_MSG) != 0) {
		log_info("incoming migration: multifd channel ended during "
			 "postcopy: %s",
			 err->desc);
		mig_error_free(err);
		return;
	}
	incoming_fail(inc, err);
}

/* What migd's destination cannot receive yet ends the migration here. */
/* multifd-compression as the packets' flag bit (multifd/packet.h). */
static uint32_t compression_flag(const struct mig_config *cfg)
{
	switch (mig_config_multifd_compression(cfg)) {
	case MIG_MULTIFD_COMPRESSION_ZLIB:
		return MFD_FLAG_ZLIB;
	case MIG_MULTIFD_COMPRESSION_ZSTD:
		return MFD_FLAG_ZSTD;
	default:
		return 0;
	}
}

static int check_config(struct incoming *inc)
{
	inc->pc.enabled = mig_config_cap(inc->cfg, MIG_CAP_POSTCOPY_RAM);
	inc->pc.preempt = mig_config_cap(inc->cfg, MIG_CAP_POSTCOPY_PREEMPT);
	if (mig_config_tls_enabled(inc->cfg)) {
		struct mig_error *err = NULL;

		inc->tls = incoming_tls_new(inc, &err);
		if (!inc->tls) {
			incoming_fail(inc, err);
			return -EINVAL;
		}
	}
	return 0;
}

static int prepare(struct incoming *inc)
{
	struct migd *md = inc->md;
	struct ram_load_opts ro = {0};
	struct mfd_recv_opts mo = {0};
	struct mig_error *err = NULL;

	inc->prepared = true;
	inc->cfg = mig_config_snapshot(md->config);
	if (!inc->cfg)
		goto oom;
	/* file: no connections: its multifd channels are opened by
	 * incoming_file.c, with no handshake or packets */
	inc->multifd = mig_config_cap(inc->cfg, MIG_CAP_MULTIFD) &&
		       inc->addr.kind != MIG_ADDR_FILE;
	inc->idle_timeout_s = mig_config_incoming_idle_timeout(inc->cfg);
	if (check_config(inc))
		return -ENOTSUP;
	ro.multifd = inc->multifd;
	ro.flush_after_each_section = mig_config_knob(
		inc->cfg, MIG_KNOB_MULTIFD_FLUSH_AFTER_EACH_SECTION);
	ro.x_ignore_shared = mig_config_cap(inc->cfg, MIG_CAP_X_IGNORE_SHARED);
	ro.rdma = incoming_rdma_ram(inc);
	if (incoming_file_prepare(inc, &ro, &err)) {
		incoming_fail(inc, err);
		return -EIO;
	}
	inc->rl = ram_load_new(md->guest, &ro);
	if (!inc->rl)
		goto oom;
	if (inc->multifd) {
		mo.channels = mig_config_multifd_channels(inc->cfg);
		mo.method = compression_flag(inc->cfg);
		memcpy(mo.uuid, md->uuid, sizeof(mo.uuid));
		inc->mfd = mfd_recv_new(&mo, inc->rl, mfd_failed, inc);
		if (!inc->mfd)
			goto oom;
		ram_load_set_sync(inc->rl, sync_channels, inc);
	}
	return 0;
oom:
	fail_msg(inc, "Out of memory");
	return -ENOMEM;
}

/* ---- the incoming thread ------------------------------------------------- */

static void *load_thread(void *opaque)
{
	struct incoming *inc = opaque;
	struct mig_error *err = NULL;

	pthread_setname_np(pthread_self(), "mig/dst/main");
	incoming_post(inc, INCOMING_EV_ACTIVE);
	if (loadvm_run(&inc->ld, &err)) {
		if (incoming_rdma_error(inc, NULL)) { /* the root cause */
			mig_error_free(err);
			err = NULL;
			incoming_rdma_error(inc, &err);
		}
		incoming_fail(inc, err);
	} else {
		incoming_post(inc, INCOMING_EV_LOADED);
	}
	return NULL;
}

/* Takes ch. */
static void start_main(struct incoming *inc, struct channel *ch)
{
	struct vms_opts vo;
	int ret;

	count_into(ch, &inc->main_bytes);
	inc->main_f = qfile_reader_new(ch);
	if (!inc->main_f) {
		chan_close(ch);
		fail_msg(inc, "Out of memory");
		return;
	}
	pthread_mutex_lock(&inc->lock);
	inc->main_ch = ch;
	pthread_mutex_unlock(&inc->lock);
	migration_vms_opts(inc->md, inc->cfg, &vo);
	loadvm_init(&inc->ld, inc->main_f, inc->rl, &vo,
		    mig_config_cap(inc->cfg, MIG_CAP_SWITCHOVER_ACK));
	incoming_pc_setup_loader(inc);
	ret = pthread_create(&inc->load_thread, NULL, load_thread, inc);
	if (ret) {
		fail_msg(inc,
			 "Unable to start the incoming migration thread: "
			 "%s",
			 strerror(ret));
		return;
	}
	inc->load_started = true;
	log_info("incoming migration: main channel from %s", ch->desc);
}

/* ---- classification ------------------------------------------------------ */

static bool have_all_channels(struct incoming *inc)
{
	return inc->main_ch && (!inc->mfd || mfd_recv_all_connected(inc->mfd));
}

static struct channel *take_pending(struct incoming *inc, int i)
{
	struct channel *ch = inc->pending[i].ch;

	ev_loop_del_fd(inc->md->loop, ch->fd);
	inc->pending[i] = inc->pending[--inc->npending];
	return ch;
}

static void drop_pending(struct incoming *inc, int i, const char *why)
{
	struct channel *ch = take_pending(inc, i);

	log_warn("incoming migration: dropping connection from %s: %s",
		 ch->desc, why);
	chan_close(ch);
}

static void extra_connection(struct channel *ch)
{
	log_warn("incoming migration: Extra incoming migration connection "
		 "from %s; ignoring",
		 ch->desc);
	chan_close(ch);
}

static void accept_multifd(struct incoming *inc, struct channel *ch,
			   const uint8_t *init);

/* Takes ch, which came once every channel existed: postcopy's preempt
 * channel or a recovery's new main channel (postcopy_dst.c), or one too
 * many. */
static void late_connection(struct incoming *inc, struct channel *ch)
{
	count_into(ch, &inc->main_bytes);
	if (!incoming_pc_connection(inc, ch))
		extra_connection(ch);
}

/* A multifd channel's 64 bytes are all there (peeked): consume them. */
static void start_multifd(struct incoming *inc, int i)
{
	uint8_t init[MFD_INIT_SIZE];
	struct channel *ch = take_pending(inc, i);

	if (recv(ch->fd, init, sizeof(init), MSG_DONTWAIT) !=
	    (ssize_t)sizeof(init)) {
		chan_close(ch);
		fail_msg(inc, "Unable to read from socket: %s",
			 strerror(errno));
		return;
	}
	accept_multifd(inc, ch, init);
}

/* Takes ch, whose init packet (consumed) is init. */
static void accept_multifd(struct incoming *inc, struct channel *ch,
			   const uint8_t *init)
{
	struct mig_error *err = NULL;
	unsigned id;

	atomic_fetch_add(&inc->multifd_bytes, MFD_INIT_SIZE);
	if (mfd_recv_accept_init(inc->mfd, init, &id, &err)) {
		chan_close(ch);
		incoming_fail(inc, err);
		return;
	}
	count_into(ch, &inc->multifd_bytes);
	log_info("incoming migration: multifd channel %u from %s", id,
		 ch->desc);
	if (mfd_recv_start(inc->mfd, id, ch, &err))
		incoming_fail(inc, err);
}

static void classify(struct incoming *inc, int i, uint32_t events)
{
	uint8_t buf[MFD_INIT_SIZE];
	bool closed = events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
	ssize_t n = recv(inc->pending[i].ch->fd, buf, sizeof(buf),
			 MSG_PEEK | MSG_DONTWAIT);

	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			drop_pending(inc, i, strerror(errno));
		return;
	}
	if (n >= 4 && mfd_load_be32(buf) == QEVM_MAGIC) {
		struct channel *ch = take_pending(inc, i);

		if (inc->main_ch)
			extra_connection(ch);
		else
			start_main(inc, ch);
	} else if (n < 4) {
		if (n == 0 || closed)
			drop_pending(inc, i,
				     "closed before identifying itself");
	} else if (n == MFD_INIT_SIZE) {
		start_multifd(inc, i);
	} else if (closed) {
		/* a multifd channel (QEMU calls any non-QEVM one that) whose
		 * init packet was cut short */
		chan_close(take_pending(inc, i));
		fail_msg(inc, "Unexpected end-of-file before all data were "
			      "read");
	}
}

static void on_pending(struct ev_loop *loop, int fd, uint32_t events,
		       void *opaque)
{
	struct incoming *inc = opaque;

	for (int i = 0; i < inc->npending; i++) {
		if (inc->pending[i].ch->fd == fd) {
			if (atomic_load(&inc->ending))
				drop_pending(inc, i, "the migration ended");
			else
				classify(inc, i, events);
			return;
		}
	}
}

static void add_pending(struct incoming *inc, struct channel *ch)
{
	const uint32_t ev = EPOLLIN | EPOLLRDHUP | EPOLLET;

	if (inc->npending == INCOMING_MAX_PENDING) {
		log_warn("incoming migration: too many unidentified "
			 "connections; dropping %s",
			 ch->desc);
		chan_close(ch);
		return;
	}
	if (ev_loop_add_fd(inc->md->loop, ch->fd, ev, on_pending, inc) < 0) {
		chan_close(ch);
		return;
	}
	inc->pending[inc->npending].ch = ch;
	inc->pending[inc->npending].since_ms = ev_now_ms();
	inc->npending++;
}

/* Takes ch. */
static void new_connection(struct incoming *inc, struct channel *ch)
{
	if (atomic_load(&inc->ending) || inc->finished) {
		chan_close(ch);
		return;
	}
	if (!inc->prepared && prepare(inc)) {
		chan_close(ch);
		return;
	}
	if (inc->tls) { /* goes on in incoming_tls_connected() */
		incoming_tls_accept(inc->tls, ch);
		return;
	}
	ch = counted_new(ch);
	if (!ch)
		return;
	if (have_all_channels(inc))
		late_connection(inc, ch);
	else if (!inc->multifd || inc->addr.kind == MIG_ADDR_RDMA)
		start_main(inc, ch); /* rdma: multifd ones: incoming_rdma.c */
	else
		add_pending(inc, ch);
}

void incoming_new_connection(struct incoming *inc, struct channel *ch)
{
	new_connection(inc, ch);
}

/* TLS: QEMU can only tell channels apart by their order; migd reads the
 * first bytes through TLS instead (incoming_tls.c), so any order works. */
void incoming_tls_connected(struct incoming *inc, struct channel *ch,
			    const uint8_t *first, size_t n)
{
	if (atomic_load(&inc->ending) || inc->finished) {
		chan_close(ch);
		return;
	}
	ch = counted_new(ch);
	if (!ch)
		return;
	if (n == 0 && have_all_channels(inc))
		late_connection(inc, ch);
	else if (have_all_channels(inc) || (n < MFD_INIT_SIZE && inc->main_ch))
		extra_connection(ch);
	else if (n < MFD_INIT_SIZE)
		start_main(inc, ch);
	else
		accept_multifd(inc, ch, first);
}

static void on_accept(struct ev_loop *loop, int fd, uint32_t events,
		      void *opaque)
{
	struct incoming *inc = opaque;
	struct mig_error *err = NULL;
	struct channel *ch;
	int ret;

	for (;;) {
		ret = sock_accept(fd, &ch, &err);
		if (ret == -EAGAIN)
			return;
		if (ret < 0) {
			log_warn("incoming migration: %s", err->desc);
			mig_error_free(err);
			return;
		}
		new_connection(inc, ch);
	}
}

/* ---- idle policy --------------------------------------------------------- */

static unsigned idle_timeout(struct incoming *inc)
{
	if (inc->prepared)
		return inc->idle_timeout_s;
	return mig_config_incoming_idle_timeout(inc->md->config);
}

static void expire_pending(struct incoming *inc, unsigned timeout_s)
{
	uint64_t now = ev_now_ms();

	for (int i = inc->npending - 1; i >= 0; i--)
		if (now - inc->pending[i].since_ms >= timeout_s * 1000ull)
			drop_pending(inc, i, "nothing identified it in time");
}

/* True when silence is what a pausing source looks like. */
static bool may_pause(struct incoming *inc)
{
	enum loadvm_stage st = inc->load_started ? loadvm_get_stage(&inc->ld)
						 : LOADVM_STAGE_BOUNDARY;

	/* A paused postcopy waits for migrate-recover, for as long as its
	 * operator wants. */
	if (inc->status == MIG_STATUS_POSTCOPY_PAUSED ||
	    inc->status == MIG_STATUS_POSTCOPY_RECOVER)
		return true;
	if (st != LOADVM_STAGE_BOUNDARY && st != LOADVM_STAGE_DONE)
		return false;
	return !inc->mfd || mfd_recv_idle(inc->mfd);
}

static void fail_idle(struct incoming *inc, unsigned timeout_s)
{
	/* Channels stuck at a SYNC that the main stream never asks for:
	 * the source syncs at every section's end, as QEMU before 8.1 does
	 * (QEMU's destination simply hangs there). */
	if (inc->mfd && mfd_recv_any_parked(inc->mfd) &&
	    loadvm_get_stage(&inc->ld) != LOADVM_STAGE_SYNC)
		fail_msg(inc,
			 "No data received from the migration source for "
			 "%u seconds (x-incoming-idle-timeout); multifd "
			 "channels wait at a SYNC: a source older than QEMU "
			 "8.1 needs -global "
			 "migration.multifd-flush-after-each-section=on",
			 timeout_s);
	else
		fail_msg(inc,
			 "No data received from the migration source for "
			 "%u seconds (x-incoming-idle-timeout)",
			 timeout_s);
}

static void check_idle(struct incoming *inc, unsigned timeout_s)
{
	uint64_t progress = atomic_load(&inc->main_bytes) +
			    atomic_load(&inc->multifd_bytes) +
			    incoming_rdma_progress(inc);

	/* rdma: control traffic counts; a round of RDMA WRITEs is unseen */
	if (progress != inc->last_progress || incoming_rdma_in_round(inc)) {
		inc->last_progress = progress;
		inc->idle_ms = 0;
		return;
	}
	inc->idle_ms += TICK_MS;
	if (inc->idle_ms < timeout_s * 1000ull || atomic_load(&inc->ending))
		return;
	if (inc->load_started &&
	    loadvm_get_stage(&inc->ld) == LOADVM_STAGE_VMDESC) {
		/* the state is complete; stop waiting for the vmdesc */
		chan_shutdown(inc->main_ch);
		return;
	}
	if (incoming_pc_idle_pause(inc)) {
		inc->idle_ms = 0; /* postcopy-paused follows */
		return;
	}
	if (!may_pause(inc))
		fail_idle(inc, timeout_s);
}

static void on_tick(struct ev_loop *loop, void *opaque)
{
	struct incoming *inc = opaque;
	unsigned timeout_s = idle_timeout(inc);

	inc->timer = -1;
	if (inc->finished)
		return;
	if (timeout_s) {
		expire_pending(inc, timeout_s);
		incoming_tls_expire(inc->tls, timeout_s);
		check_idle(inc, timeout_s);
	}
	inc->timer = ev_loop_add_timer(loop, TICK_MS, on_tick, inc);
}

/* ---- listening and teardown ---------------------------------------------- */

/* socket-address lists the listeners last first, as QEMU prepends. */
static json_t *listener_addresses(struct incoming *inc)
{
	json_t *list = json_array();

	for (int i = inc->nlfds - 1; list && i >= 0; i--) {
		json_t *a = sock_local_address_json(inc->lfds[i]);

		if (a)
			json_array_append_new(list, a);
	}
	return list;
}

/* ---- fd: and exec: streams ---------------------------------------------- */

/* The stream has bytes (or ended): it is the main channel now. */
static void stream_ready(struct incoming *inc)
{
	struct channel *ch = inc->stream_ch;

	if (!ch)
		return; /* torn down meanwhile */
	ev_loop_del_fd(inc->md->loop, transport_stream_read_fd(ch));
	inc->stream_ch = NULL;
	inc->file_ch = filechan_is_file(ch) ? ch : NULL;
	new_connection(inc, ch);
}

static void on_stream(struct ev_loop *loop, int fd, uint32_t events,
		      void *opaque)
{
	stream_ready(opaque);
}

static void on_stream_post(struct ev_loop *loop, void *opaque)
{
	stream_ready(opaque);
}

/* QEMU starts loading once the channel is readable. epoll refuses regular
 * files (always readable): those start from the next loop turn. */
static int watch_stream(struct incoming *inc, struct mig_error **errp)
{
	struct ev_loop *loop = inc->md->loop;
	int fd = transport_stream_read_fd(inc->stream_ch);
	int ret = fd >= 0 ? ev_loop_add_fd(loop, fd, EPOLLIN, on_stream, inc)
			  : -EPERM;

	if (ret == -EPERM)
		ret = ev_loop_post(loop, on_stream_post, inc);
	if (ret) {
		chan_close(inc->stream_ch);
		inc->stream_ch = NULL;
		mig_error_setg(errp, "Cannot watch the migration stream: %s",
			       strerror(-ret));
		return ret;
	}
	inc->timer = ev_loop_add_timer(loop, TICK_MS, on_tick, inc);
	return 0;
}

static void close_stream(struct incoming *inc)
{
	if (!inc->stream_ch)
		return;
	ev_loop_del_fd(inc->md->loop, transport_stream_read_fd(inc->stream_ch));
	chan_close(inc->stream_ch);
	inc->stream_ch = NULL;
}

static void close_listeners(struct incoming *inc)
{
	close_stream(inc);
	incoming_rdma_close(inc);
	for (int i = 0; i < inc->nlfds; i++) {
		ev_loop_del_fd(inc->md->loop, inc->lfds[i]);
		sock_listen_cleanup(inc->lfds[i]);
		close(inc->lfds[i]);
	}
	inc->nlfds = 0;
	json_decref(inc->socket_address);
	inc->socket_address = NULL;
}

int incoming_listen(struct incoming *inc, struct mig_error **errp)
{
	struct ev_loop *loop = inc->md->loop;
	int ret;

	if (inc->stream_ch)
		return watch_stream(inc, errp);
	if (inc->addr.kind == MIG_ADDR_RDMA) { /* incoming_rdma.c */
		ret = incoming_rdma_listen(inc, errp);
		if (!ret)
			inc->timer =
				ev_loop_add_timer(loop, TICK_MS, on_tick, inc);
		return ret;
	}
	ret = sock_listen(&inc->addr, inc->lfds, &inc->nlfds,
			  INCOMING_MAX_LISTEN, errp);
	if (ret)
		return ret;
	for (int i = 0; i < inc->nlfds; i++) {
		ret = ev_loop_add_fd(loop, inc->lfds[i], EPOLLIN, on_accept,
				     inc);
		if (ret) {
			for (int j = i; j < inc->nlfds; j++)
				close(inc->lfds[j]); /* never watched */
			inc->nlfds = i;
			close_listeners(inc);
			mig_error_setg(errp,
				       "Cannot watch the listening "
				       "socket: %s",
				       strerror(-ret));
			return ret;
		}
	}
	inc->socket_address = listener_addresses(inc);
	inc->timer = ev_loop_add_timer(loop, TICK_MS, on_tick, inc);
	return 0;
}

/* migrate-recover: the old listeners go, the new address listens. */
int incoming_relisten(struct incoming *inc, struct mig_addr *addr,
		      struct mig_error **errp)
{
	struct mig_addr old = inc->addr;
	int ret;

	if (inc->timer >= 0)
		ev_loop_cancel_timer(inc->md->loop, inc->timer);
	inc->timer = -1;
	close_listeners(inc);
	inc->addr = *addr;
	memset(addr, 0, sizeof(*addr));
	ret = incoming_listen(inc, errp);
	if (ret && inc->timer < 0)
		inc->timer =
			ev_loop_add_timer(inc->md->loop, TICK_MS, on_tick, inc);
	mig_addr_clear(&old);
	return ret;
}

void incoming_teardown(struct incoming *inc)
{
	struct channel *main_ch;

	if (inc->finished)
		return;
	inc->finished = true;
	if (inc->timer >= 0)
		ev_loop_cancel_timer(inc->md->loop, inc->timer);
	inc->timer = -1;
	close_listeners(inc);
	while (inc->npending)
		chan_close(take_pending(inc, inc->npending - 1));
	incoming_tls_free(inc->tls);
	inc->tls = NULL;
	/* Kick, join, then close: no thread may see a freed channel. */
	mfd_recv_shutdown(inc->mfd);
	ram_load_file_kick(inc->rlf);
	incoming_pc_kick(inc);
	pthread_mutex_lock(&inc->lock);
	main_ch = inc->main_ch;
	if (main_ch)
		chan_shutdown(main_ch);
	pthread_mutex_unlock(&inc->lock);
	if (inc->load_started)
		pthread_join(inc->load_thread, NULL);
	inc->load_started = false;
	incoming_pc_teardown(inc);
	mfd_recv_free(inc->mfd);
	inc->mfd = NULL;
	ram_load_file_free(inc->rlf);
	inc->rlf = NULL;
	inc->file_ch = NULL;
	qfile_free(inc->main_f);
	inc->main_f = NULL;
	pthread_mutex_lock(&inc->lock);
	inc->main_ch = NULL;
	pthread_mutex_unlock(&inc->lock);
	chan_close(main_ch);
	ram_load_free(inc->rl);
	inc->rl = NULL;
	mig_config_free(inc->cfg);
	inc->cfg = NULL;
	mig_config_set_incoming_started(inc->md->config, false);
}
