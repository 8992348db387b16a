/* postcopy_src.c — the source's postcopy plumbing (see postcopy_src.h):
 * the return-path thread that reads the destination's messages during
 * postcopy (page requests into the queue, or straight onto the preempt
 * channel; PONG, SHUT, RECV_BITMAP bodies, RESUME_ACK), the queue, and the
 * QMP entry points migrate-start-postcopy, migrate-pause and resume.
 * Threads: pcs_new/free and the rp start/stop on the migration thread; the
 * return-path thread; QMP parts on the control thread. Every message from
 * the destination is hostile: a bad one ends the return path with QEMU's
 * message, which pauses postcopy (the source keeps the guest's RAM). */
#include "control/postcopy_src.h"
#include "control/postcopy_src_priv.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/migration_priv.h"
#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/byteorder.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_save_postcopy.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"
#include "util/log.h"

/* ---- lifetime ---------------------------------------------------------- */

static int fill_blocks(struct pcs *p, struct guest *g)
{
	struct ram_block *b;
	unsigned i = 0;

	p->nblocks = g->nblocks;
	p->blocks = calloc(p->nblocks ? p->nblocks : 1, sizeof(*p->blocks));
	if (!p->blocks)
		return -ENOMEM;
	guest_for_each_block(g, b)
	{
		p->blocks[i].name = b->name;
		p->blocks[i].used_length = b->used_length;
		p->blocks[i++].page_size = b->page_size;
	}
	return 0;
}

int pcs_new(struct migration *m, struct mig_error **errp)
{
	struct pcs *p;

	if (!mig_config_cap(m->cfg, MIG_CAP_POSTCOPY_RAM))
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p || fill_blocks(p, m->md->guest) ||
	    pc_req_queue_init(&p->q, p->blocks, p->nblocks,
			      RAM_TARGET_PAGE_SIZE, PCS_QUEUE_CAP)) {
		if (p)
			free(p->blocks);
		free(p);
		mig_error_setg(errp, "out of memory setting up postcopy");
		return -ENOMEM;
	}
	p->m = m;
	p->preempt = mig_config_cap(m->cfg, MIG_CAP_POSTCOPY_PREEMPT);
	p->release_ram = mig_config_cap(m->cfg, MIG_CAP_RELEASE_RAM);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	pthread_mutex_lock(&m->lock);
	m->pcs = p;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void pcs_preempt_close(struct pcs *p)
{
	struct migration *m = p->m;
	struct channel *ch;

	if (p->pf) {
		mig_count(&m->ctr.stream_base, qfile_pos(p->pf));
		atomic_store(&m->ctr.preempt_bytes, 0);
		if (m->rs)
			ram_save_postcopy_set_preempt(m->rs, NULL);
		qfile_free(p->pf);
		p->pf = NULL;
	}
	pthread_mutex_lock(&m->lock);
	ch = p->pch;
	p->pch = NULL;
	pthread_mutex_unlock(&m->lock);
	chan_close(ch);
}

void pcs_free(struct migration *m)
{
	struct pcs *p = m->pcs;

	if (!p)
		return;
	pcs_rp_stop(p);
	pcs_preempt_close(p);
	pthread_mutex_lock(&m->lock);
	m->pcs = NULL;
	pthread_mutex_unlock(&m->lock);
	pc_req_queue_destroy(&p->q);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p->blocks);
	free(p);
}

/* Called with m->lock held (migration_kick). */
void pcs_kick(struct pcs *p)
{
	if (!p)
		return;
	if (p->pch)
		chan_shutdown(p->pch);
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void pcs_set_error(struct migration *m, struct mig_error *err)
{
	pthread_mutex_lock(&m->lock);
	mig_error_free(m->error);
	m->error = err;
	pthread_mutex_unlock(&m->lock);
}

/* ---- the return-path thread ------------------------------------------- */

/* It reads the main channel while the migration thread writes it. Over
 * TLS both share one session: socket/tls.c serialises the SSL calls, waits
 * for input without the lock, and lets a waiting reader in first. */

static int rp_read(struct channel *ch, void *buf, size_t len,
		   struct mig_error **errp)
{
	int ret = chan_read_all(ch, buf, len);

	if (ret)
		mig_error_setg(errp, "Unable to read from socket: %s",
			       strerror(ret == -EPIPE || ret == -EPROTO
						? ECONNRESET
						: -ret));
	return ret;
}

/* Requested pages: queued for the migration thread, or (preempt) sent on
 * the preempt channel right here, as QEMU 8.0+ does. */
static int rp_req(struct pcs *p, const struct pc_rp_msg *msg,
		  struct mig_error **errp)
{
	struct migration *m = p->m;
	struct pc_req r;
	int ret;

	pthread_mutex_lock(&p->lock);
	ret = pc_req_push(&p->q, msg->has_name ? msg->name : NULL, msg->start,
			  msg->len, errp);
	atomic_store(&m->ctr.postcopy_requests, p->q.requests + p->q.coalesced);
	if (ret >= 0)
		pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (ret < 0 || !p->preempt)
		return ret < 0 ? ret : 0;
	for (;;) {
		bool got;

		pthread_mutex_lock(&p->lock);
		got = pc_req_pop(&p->q, &r);
		pthread_mutex_unlock(&p->lock);
		if (!got)
			return 0;
		ret = ram_save_postcopy_send_req(m->rs, &r);
		if (ret < 0) {
			mig_error_setg(errp, "Unable to write to socket: %s",
				       strerror(-ret));
			return ret;
		}
	}
}

/* A RECV_BITMAP body: u64 size (must be QEMU's for the block), the
 * bitmap, the end mark. Returns the bitmap (malloc'd) or NULL. */
static uint8_t *rp_bitmap_body(struct pcs *p, const char *name,
			       uint64_t expected, struct mig_error **errp)
{
	uint8_t v[8], *bits = NULL;
	int ret = rp_read(p->rp_ch, v, 8, errp);

	if (!ret &&
	    pc_recv_bitmap_check_size(name, mfd_load_be64(v), expected, errp))
		ret = -EINVAL;
	if (!ret && !(bits = malloc(expected ? expected : 1))) {
		mig_error_setg(errp, "out of memory reading a bitmap");
		ret = -ENOMEM;
	}
	if (!ret)
		ret = rp_read(p->rp_ch, bits, expected, errp);
	if (!ret)
		ret = rp_read(p->rp_ch, v, 8, errp);
	if (!ret && pc_recv_bitmap_check_end(name, mfd_load_be64(v), errp))
		ret = -EINVAL;
	if (ret) {
		free(bits);
		return NULL;
	}
	return bits;
}

/* RECV_BITMAP message (recovery only): the body follows on the same
 * stream; the block's pages the destination lacks become pending. */
static int rp_bitmap(struct pcs *p, const char *name, struct mig_error **errp)
{
	struct migration *m = p->m;
	struct ram_block *b = guest_find_block(m->md->guest, name);
	uint64_t expected;
	uint8_t *bits;
	int ret;

	if (migration_status(m) != MIG_STATUS_POSTCOPY_RECOVER) {
		mig_error_setg(errp, "Reload bitmap in incorrect state %s",
			       mig_status_names[migration_status(m)]);
		return -EINVAL;
	}
	if (!b) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_RECV_BITMAP has invalid block "
			       "name '%s'",
			       name);
		return -EINVAL;
	}
	expected = pc_recv_bitmap_size(b->used_length, RAM_TARGET_PAGE_SIZE);
	bits = rp_bitmap_body(p, name, expected, errp);
	if (!bits)
		return -EINVAL;
	ret = ram_save_postcopy_recv_bitmap(m->rs, name, bits, expected, errp);
	free(bits);
	if (ret)
		return ret;
	pthread_mutex_lock(&p->lock);
	p->bitmaps++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static int rp_handle(struct pcs *p, const struct pc_rp_msg *msg,
		     struct mig_error **errp)
{
	switch (msg->type) {
	case PC_RP_SHUT:
		pthread_mutex_lock(&p->lock);
		p->shut = true;
		p->shut_err = msg->value;
		pthread_mutex_unlock(&p->lock);
		if (msg->value) {
			mig_error_setg(errp, "Sibling indicated error %d",
				       (int)msg->value);
			return -EIO;
		}
		return 1;
	case PC_RP_REQ_PAGES:
	case PC_RP_REQ_PAGES_ID:
		return rp_req(p, msg, errp);
	case PC_RP_RECV_BITMAP:
		return rp_bitmap(p, msg->name, errp);
	case PC_RP_RESUME_ACK:
		pthread_mutex_lock(&p->lock);
		p->resume_acked = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		return 0;
	default: /* PONG, SWITCHOVER_ACK: nothing to do in postcopy */
		return 0;
	}
}

/* One message: 0 go on, 1 SHUT (done), -errno with *errp. */
static int rp_one(struct pcs *p, struct mig_error **errp)
{
	uint8_t hdr[PC_RP_HEADER], buf[PC_RP_PAYLOAD_MAX];
	struct pc_rp_msg msg;
	uint16_t type, len;
	int ret = rp_read(p->rp_ch, hdr, sizeof(hdr), errp);

	if (!ret)
		ret = pc_rp_header_decode(hdr, &type, &len, errp);
	if (!ret && len > sizeof(buf))
		ret = -EINVAL; /* the decoder already refuses these */
	if (!ret && len)
		ret = rp_read(p->rp_ch, buf, len, errp);
	if (!ret)
		ret = pc_rp_decode(type, buf, len, &msg, errp);
	return ret ? ret : rp_handle(p, &msg, errp);
}

static void *rp_main(void *opaque)
{
	struct pcs *p = opaque;
	struct mig_error *err = NULL;
	bool stopping;
	int ret;

	pthread_setname_np(pthread_self(), "return path");
	while (!(ret = rp_one(p, &err)))
		;
	pthread_mutex_lock(&p->lock);
	stopping = p->stopping;
	pthread_mutex_unlock(&p->lock);
	if (ret < 0 && !stopping) { /* the cause, before anyone notices */
		log_warn("migration: return path: %s",
			 err ? err->desc : strerror(-ret));
		migration_set_error(p->m, err);
		err = NULL;
	}
	mig_error_free(err);
	pthread_mutex_lock(&p->lock);
	p->rp_done = true;
	p->rp_failed = ret < 0;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (ret < 0 && !stopping)
		migration_kick(p->m); /* the migration thread pauses */
	return NULL;
}

int pcs_rp_start(struct pcs *p, struct channel *ch)
{
	pthread_mutex_lock(&p->lock);
	p->rp_ch = ch;
	p->rp_done = p->rp_failed = p->stopping = p->shut = false;
	p->bitmaps = 0;
	p->resume_acked = false;
	pc_req_forget_last(&p->q);
	pthread_mutex_unlock(&p->lock);
	if (pthread_create(&p->rp, NULL, rp_main, p))
		return -EAGAIN;
	p->rp_running = true;
	return 0;
}

void pcs_rp_stop(struct pcs *p)
{
	bool done;

	if (!p->rp_running)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	done = p->rp_done;
	pthread_mutex_unlock(&p->lock);
	if (!done) {
		chan_shutdown(p->rp_ch);
		if (p->pch) /* it may be blocked sending a requested page */
			chan_shutdown(p->pch);
	}
	pthread_join(p->rp, NULL);
	p->rp_running = false;
}

/* ---- setup and QMP ----------------------------------------------------- */

void pcs_put_advise(struct migration *m)
{
	struct pc_advise a = {.ram = true,
			      .target_page_size = RAM_TARGET_PAGE_SIZE};
	uint8_t buf[16];
	struct ram_block *b;
	uint16_t len;

	if (!m->pcs)
		return;
	guest_for_each_block(m->md->guest, b) a.pagesize_summary |=
		b->page_size;
	len = pc_advise_encode(&a, buf);
	vms_put_command(m->f, MIG_CMD_POSTCOPY_ADVISE, len, buf);
}

bool pcs_wanted(struct migration *m)
{
	return m->pcs && atomic_load(&m->start_postcopy);
}

int pcs_request_resume(struct migration *m, struct mig_addr *a,
		       struct channel *ch, struct mig_error **errp)
{
	if (!m || migration_status(m) != MIG_STATUS_POSTCOPY_PAUSED) {
		mig_error_setg(errp, "Cannot resume if there is no paused "
				     "migration");
		return -EINVAL;
	}
	if (mig_config_cap(m->cfg, MIG_CAP_RELEASE_RAM)) {
		mig_error_setg(errp, "Postcopy recovery cannot work when "
				     "release-ram capability is set");
		return -EINVAL;
	}
	if (!migration_set_status(m, MIG_STATUS_POSTCOPY_PAUSED,
				  MIG_STATUS_POSTCOPY_RECOVER_SETUP)) {
		mig_error_setg(errp, "Cannot resume if there is no paused "
				     "migration");
		return -EINVAL;
	}
	pthread_mutex_lock(&m->lock);
	mig_addr_clear(&m->resume_addr);
	chan_close(m->resume_ch);
	m->resume_addr = *a;
	memset(a, 0, sizeof(*a));
	m->resume_ch = ch;
	m->resume_requested = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int pcs_pause(struct migration *m, struct mig_error **errp)
{
	struct mig_error *err = NULL;
	int st = m ? (int)migration_status(m) : MIG_STATUS_NONE;

	if (st != MIG_STATUS_POSTCOPY_ACTIVE &&
	    st != MIG_STATUS_POSTCOPY_RECOVER)
		return -ENOENT;
	(void)errp; /* shutting a socket down cannot fail here */
	mig_error_setg(&err, "Postcopy migration is paused by the user");
	pcs_set_error(m, err);
	pthread_mutex_lock(&m->lock);
	if (m->main_ch)
		chan_shutdown(m->main_ch);
	pcs_kick(m->pcs);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
