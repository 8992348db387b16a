/* loadvm_postcopy.c — postcopy on the destination's main stream (see
 * loadvm.h): the commands ADVISE (checks, userfaultfd probe, RAM zapped),
 * DISCARD (range-checked zaps), PACKAGED (a bounded nested stream),
 * LISTEN (RAM registered in missing mode, the fault thread started), RUN,
 * RECV_BITMAP and RESUME (recovery); page requests on the return path
 * (REQ_PAGES_ID / REQ_PAGES) from the uffd fault thread; the preempt
 * channel's loader; the pause on a network error; the check at the end
 * that every page is present before RAM may be unregistered.
 * Threads: the loading thread, except the fault callback (fault thread)
 * and the functions loadvm.h marks "any thread". Return-path writes are
 * serialised by ld->rp_lock. */
#include "multifd/loadvm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest/ram.h"
#include "guest/uffd.h"
#include "multifd/postcopy_proto.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"
#include "util/log.h"

void loadvm_set_postcopy(struct loadvm *ld,
			 const struct loadvm_postcopy_opts *o)
{
	ld->pco = *o;
}

void loadvm_fini(struct loadvm *ld)
{
	uffd_free(ld->uffd); /* stops the fault thread, unregisters */
	ld->uffd = NULL;
	free(ld->ranges);
	ld->ranges = NULL;
	pthread_mutex_destroy(&ld->rp_lock);
}

void loadvm_stop_faults(struct loadvm *ld)
{
	if (ld->uffd)
		uffd_stop(ld->uffd);
}

int loadvm_postcopy_state(struct loadvm *ld)
{
	return atomic_load(&ld->ps);
}

static void notify(struct loadvm *ld, enum loadvm_event ev)
{
	if (ld->pco.notify)
		ld->pco.notify(ld->pco.opaque, ev);
}

/* ---- page requests (fault thread, and recovery) ------------------------ */

void loadvm_set_return_path(struct loadvm *ld, struct channel *ch)
{
	pthread_mutex_lock(&ld->rp_lock);
	ld->rp_ch = ch;
	ld->rp_last_block = -1; /* a new stream names the block again */
	pthread_mutex_unlock(&ld->rp_lock);
}

/* REQ_PAGES_ID names the block when it differs from the previous
 * request's, as QEMU's migrate_send_rp_req_pages(). */
static void request_page(struct loadvm *ld, int idx, uint64_t offset)
{
	struct ram_block *b = ram_load_block(ld->rl, idx);
	struct pc_rp_msg m = {.start = offset, .len = (uint32_t)b->page_size};
	uint8_t buf[PC_RP_HEADER + 13 + PC_NAME_MAX];
	int n;

	pthread_mutex_lock(&ld->rp_lock);
	if (!ld->rp_ch)
		goto out; /* paused: re-requested after RESUME */
	m.type =
		idx == ld->rp_last_block ? PC_RP_REQ_PAGES : PC_RP_REQ_PAGES_ID;
	if (m.type == PC_RP_REQ_PAGES_ID) {
		m.has_name = true;
		snprintf(m.name, sizeof(m.name), "%s", b->name);
	}
	n = pc_rp_encode(&m, buf, sizeof(buf));
	if (n > 0 && chan_write_all(ld->rp_ch, buf, (size_t)n) == 0) {
		ld->rp_last_block = idx;
		atomic_fetch_add(&ld->page_requests, 1);
	}
out:
	pthread_mutex_unlock(&ld->rp_lock);
}

static int block_of_range(struct loadvm *ld, unsigned range)
{
	for (int i = 0; i < ld->nranges; i++)
		if (ld->ranges[i] == (int)range)
			return i;
	return -1;
}

static void on_fault(void *opaque, unsigned range, uint64_t offset,
		     uint32_t tid)
{
	struct loadvm *ld = opaque;
	int idx = block_of_range(ld, range);

	(void)tid; /* blocktime is uffd.c's */
	if (idx >= 0)
		request_page(ld, idx, offset);
}

struct rerequest {
	struct loadvm *ld;
	int idx;
};

static void rerequest_one(void *opaque, uint64_t offset)
{
	struct rerequest *r = opaque;

	request_page(r->ld, r->idx, offset);
}

int loadvm_rerequest_pending(struct loadvm *ld)
{
	int64_t n = 0;

	for (int i = 0; ld->uffd && i < ld->nranges; i++) {
		struct rerequest r = {ld, i};
		int64_t k;

		if (ld->ranges[i] < 0)
			continue;
		k = uffd_foreach_pending(ld->uffd, (unsigned)ld->ranges[i],
					 rerequest_one, &r);
		if (k > 0)
			n += k;
	}
	return (int)(n > INT32_MAX ? INT32_MAX : n);
}

int64_t loadvm_blocktime(struct loadvm *ld, uint32_t *vcpu_ms, unsigned n)
{
	if (!ld->uffd || !uffd_has_blocktime(ld->uffd))
		return -ENOTSUP;
	return uffd_blocktime_read(ld->uffd, vcpu_ms, n);
}

void loadvm_blocktime_vcpu(struct loadvm *ld, unsigned cpu, uint32_t tid)
{
	if (ld->uffd && tid)
		uffd_blocktime_set_vcpu(ld->uffd, cpu, tid);
}

/* ---- zapping RAM --------------------------------------------------------- */

/* QEMU's ram_block_discard_range(): shared memory loses its pages (hole
 * punched), private memory its mapping; both then read as missing. */
static int zap(struct ram_block *b, uint64_t start, uint64_t len,
	       struct mig_error **errp)
{
	if (!len)
		return 0;
	if (b->fd >= 0 && b->shared &&
	    fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)start, (off_t)len)) {
		mig_error_setg_errno(errp, errno,
				     "ram_block_discard_range: Failed to "
				     "fallocate %s:%" PRIx64 " +%" PRIx64,
				     b->name, start, len);
		return -EINVAL;
	}
	if (madvise(b->host + start, len, MADV_DONTNEED)) {
		mig_error_setg_errno(errp, errno,
				     "ram_block_discard_range: Failed to "
				     "discard range %s:%" PRIx64 " +%" PRIx64,
				     b->name, start, len);
		return -EINVAL;
	}
	return 0;
}

/* ---- ADVISE, DISCARD ----------------------------------------------------- */

static uint64_t local_summary(struct loadvm *ld)
{
	uint64_t s = 0;

	for (int i = 0; i < ram_load_nblocks(ld->rl); i++)
		s |= ram_load_block(ld->rl, i)->page_size;
	return s;
}

static int open_uffd(struct loadvm *ld, struct mig_error **errp)
{
	struct uffd_config c = {
		.method = UFFD_OPEN_AUTO,
		.blocktime = ld->pco.blocktime,
		.nr_vcpus = ld->pco.nr_vcpus,
		.on_fault = on_fault,
		.opaque = ld,
	};

	for (int i = 0; i < ram_load_nblocks(ld->rl); i++) {
		struct ram_block *b = ram_load_block(ld->rl, i);

		if (b->page_size != RAM_TARGET_PAGE_SIZE) {
			mig_error_setg(errp,
				       "Postcopy on huge pages (block %s) is "
				       "not supported by migd",
				       b->name);
			return -ENOTSUP;
		}
		c.need_shmem |= b->shared;
	}
	if (c.nr_vcpus > UFFD_MAX_VCPUS)
		c.nr_vcpus = UFFD_MAX_VCPUS;
	ld->uffd = uffd_open(&c, errp);
	return ld->uffd ? 0 : -ENOTSUP;
}

/* Every block zapped: postcopy needs RAM that is truly empty, so that
 * pages never sent fault instead of reading stale data. */
static int advise(struct loadvm *ld, const uint8_t *p, uint16_t len,
		  struct mig_error **errp)
{
	struct pc_advise a;
	int ret = pc_advise_decode(p, len, ld->pco.postcopy_ram,
				   local_summary(ld), RAM_TARGET_PAGE_SIZE, &a,
				   errp);

	if (ret || !a.ram)
		return ret;
	ret = open_uffd(ld, errp);
	ram_load_populate_zero_pages(ld->rl);
	for (int i = 0; !ret && i < ram_load_nblocks(ld->rl); i++) {
		struct ram_block *b = ram_load_block(ld->rl, i);

		if (ram_load_block_skipped(ld->rl, i))
			continue;
		ret = zap(b, 0, b->used_length, errp);
		ram_load_forget(ld->rl, i, 0, b->used_length);
	}
	return ret;
}

static int discard(struct loadvm *ld, const uint8_t *p, uint16_t len,
		   struct mig_error **errp)
{
	struct pc_discard d;
	struct ram_block *b;
	int idx, ret = pc_discard_decode(p, len, &d, errp);

	if (ret)
		return ret;
	idx = ram_load_lookup(ld->rl, d.name);
	if (idx < 0 || ram_load_block_skipped(ld->rl, idx)) {
		mig_error_setg(errp,
			       "ram_discard_range: Failed to find block "
			       "'%s'",
			       d.name);
		return -EINVAL;
	}
	b = ram_load_block(ld->rl, idx);
	for (unsigned i = 0; i < d.count; i++) {
		struct pc_range r;

		pc_discard_get(&d, i, &r);
		ret = pc_discard_range_check(d.name, &r, b->used_length,
					     b->page_size, errp);
		if (!ret)
			ret = zap(b, r.start, r.length, errp);
		if (ret)
			return ret;
		ram_load_forget(ld->rl, idx, r.start, r.length);
	}
	return 0;
}

/* ---- LISTEN, RUN --------------------------------------------------------- */

static int register_ram(struct loadvm *ld, struct mig_error **errp)
{
	int n = ram_load_nblocks(ld->rl);

	ld->ranges = calloc(n ? (size_t)n : 1, sizeof(int));
	if (!ld->ranges) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	ld->nranges = n;
	for (int i = 0; i < n; i++)
		ld->ranges[i] = -1; /* also those a failure leaves unreached */
	for (int i = 0; i < n; i++) {
		struct ram_block *b = ram_load_block(ld->rl, i);

		if (ram_load_block_skipped(ld->rl, i))
			continue;
		ld->ranges[i] = uffd_register(ld->uffd, b->host, b->used_length,
					      b->page_size, errp);
		if (ld->ranges[i] < 0)
			return ld->ranges[i];
	}
	if (ram_load_set_postcopy(ld->rl, ld->uffd, ld->ranges)) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return uffd_start(ld->uffd, errp);
}

static int handle_listen(struct loadvm *ld, struct mig_error **errp)
{
	int ret;

	if (!ld->uffd) { /* ADVISE came without RAM (len 0) */
		mig_error_setg(errp, "CMD_POSTCOPY_LISTEN without RAM "
				     "postcopy advised");
		return -EINVAL;
	}
	/* Closed first, then checked: a receiver that started a packet
	 * before is seen busy, one that starts after refuses it. */
	ram_load_close_landing(ld->rl);
	/* pairs with the receiver's fence between "busy" and its check of
	 * the landing: one of the two sides sees the other */
	atomic_thread_fence(memory_order_seq_cst);
	if (ld->pco.multifd_idle && !ld->pco.multifd_idle(ld->pco.opaque)) {
		mig_error_setg(errp, "CMD_POSTCOPY_LISTEN while multifd "
				     "channels are still receiving pages");
		return -EINVAL;
	}
	ret = register_ram(ld, errp);
	if (ret)
		return ret;
	/* This thread is QEMU's listen thread from here on: it keeps the
	 * main channel while the control thread stays free. */
	pthread_setname_np(pthread_self(), "mig/dst/listen");
	log_info("incoming migration: postcopy listening");
	notify(ld, LOADVM_EV_LISTEN);
	return 0;
}

/* ---- PACKAGED: a nested stream from a buffer ---------------------------- */

struct mem_chan {
	struct channel ch;
	const uint8_t *p;
	size_t len, pos;
};

static ssize_t mem_readv(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	struct mem_chan *m = ch->priv;
	size_t done = 0;

	for (int i = 0; i < iovcnt && m->pos < m->len; i++) {
		size_t n = iov[i].iov_len;

		if (n > m->len - m->pos)
			n = m->len - m->pos;
		memcpy(iov[i].iov_base, m->p + m->pos, n);
		m->pos += n;
		done += n;
	}
	return (ssize_t)done;
}

static ssize_t mem_writev(struct channel *ch, const struct iovec *iov,
			  int iovcnt)
{
	return -EBADF;
}

static void mem_shutdown(struct channel *ch)
{
}

static void mem_close(struct channel *ch)
{
}

static const struct channel_ops mem_ops = {
	.name = "packaged",
	.readv = mem_readv,
	.writev = mem_writev,
	.shutdown = mem_shutdown,
	.close = mem_close,
};

/* Items of the blob until RUN (QEMU's LOADVM_QUIT) or its EOF. A blob
 * that ends early is a protocol error, never a network one. */
static int load_nested(struct loadvm *ld, struct qfile *packf,
		       struct mig_error **errp)
{
	struct qfile *outer = ld->f;
	bool eof = false;
	int ret = 0;

	ld->f = packf;
	ld->nested = true;
	ld->run_seen = false;
	while (!ret && !eof && !ld->run_seen)
		ret = loadvm_load_item(ld, &eof, errp);
	ld->nested = false;
	ld->f = outer;
	if (ret == -EPIPE || ret == -EPROTO || ret == -ECANCELED)
		ret = -EINVAL;
	return ret;
}

static int packaged(struct loadvm *ld, const uint8_t *p, uint16_t len,
		    struct mig_error **errp)
{
	struct mem_chan m = {.ch = {.ops = &mem_ops, .fd = -1}};
	struct qfile *packf;
	uint32_t length;
	uint8_t *blob;
	int ret = pc_packaged_decode(p, len, PC_PACKAGED_MAX, &length, errp);

	if (ret)
		return ret;
	if (ld->nested) {
		mig_error_setg(errp, "CMD_PACKAGED inside a packaged stream");
		return -EINVAL;
	}
	blob = malloc(length ? length : 1);
	if (!blob) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	ret = qfile_get_buffer(ld->f, blob, length);
	if (ret) {
		mig_error_setg(errp,
			       "CMD_PACKAGED: Buffer receive fail ret=%d "
			       "length=%u",
			       ret, length);
		goto out;
	}
	m.ch.priv = &m;
	m.p = blob;
	m.len = length;
	snprintf(m.ch.desc, sizeof(m.ch.desc), "packaged");
	packf = qfile_reader_new(&m.ch);
	ret = packf ? load_nested(ld, packf, errp) : -ENOMEM;
	if (!packf)
		mig_error_setg(errp, "Out of memory");
	qfile_free(packf);
out:
	free(blob);
	return ret;
}

/* ---- recovery: RECV_BITMAP, RESUME ------------------------------------- */

static bool recovering(struct loadvm *ld)
{
	return ld->pco.recovering && ld->pco.recovering(ld->pco.opaque);
}

/* Block idx's received pages into bits (size bytes, zeroed, LE): those
 * placed through uffd, and what precopy brought and no DISCARD took away
 * (QEMU's receivedmap covers precopy too). */
static void received_le(struct loadvm *ld, int idx, uint8_t *bits,
			uint64_t size)
{
	if (ld->ranges && ld->ranges[idx] >= 0)
		uffd_received_to_le(ld->uffd, (unsigned)ld->ranges[idx],
				    RAM_TARGET_PAGE_SIZE, bits, size);
	ram_load_received_or_le(ld->rl, idx, bits, size);
}

/* The RECV_BITMAP message and its body, written as one piece. */
static int send_recv_bitmap(struct loadvm *ld, int idx, struct mig_error **errp)
{
	struct ram_block *b = ram_load_block(ld->rl, idx);
	struct pc_rp_msg m = {.type = PC_RP_RECV_BITMAP, .has_name = true};
	uint64_t size =
		pc_recv_bitmap_size(b->used_length, RAM_TARGET_PAGE_SIZE);
	size_t cap = PC_RP_HEADER + 1 + PC_NAME_MAX + 16 + size;
	uint8_t *buf = malloc(cap), *bits = calloc(1, size ? size : 1);
	int n, ret = -ENOMEM;
	int64_t body;

	snprintf(m.name, sizeof(m.name), "%s", b->name);
	if (!buf || !bits)
		goto out;
	received_le(ld, idx, bits, size); /* need not be sent again */
	n = pc_rp_encode(&m, buf, cap);
	body = n > 0 ? pc_recv_bitmap_body_encode(bits, size, buf + n,
						  cap - (size_t)n)
		     : -EINVAL;
	ret = body < 0 ? (int)body
		       : loadvm_rp_write(ld, buf, (size_t)n + (size_t)body);
out:
	if (ret)
		mig_error_setg(errp,
			       "Cannot send the received bitmap of %s: %s",
			       b->name, strerror(-ret));
	free(buf);
	free(bits);
	return ret;
}

static int recv_bitmap(struct loadvm *ld, const uint8_t *p, uint16_t len,
		       struct mig_error **errp)
{
	char name[PC_NAME_MAX + 1];
	int idx;

	if (!recovering(ld)) {
		mig_error_setg(errp, "loadvm_handle_recv_bitmap: only possible "
				     "to receive bitmap during recover");
		return -EINVAL;
	}
	if (pc_recv_bitmap_cmd_decode(p, len, name, errp))
		return -EINVAL;
	idx = ram_load_lookup(ld->rl, name);
	if (idx < 0) {
		mig_error_setg(errp,
			       "loadvm_handle_recv_bitmap: block '%s' not "
			       "found",
			       name);
		return -EINVAL;
	}
	return send_recv_bitmap(ld, idx, errp);
}

/* QEMU ignores a RESUME outside recovery ("illegal resume received"). */
static int resume(struct loadvm *ld, struct mig_error **errp)
{
	struct pc_rp_msg m = {.type = PC_RP_RESUME_ACK,
			      .value = PC_RESUME_ACK_VALUE};
	uint8_t buf[PC_RP_HEADER + 4];
	int n, ret;

	if (!recovering(ld)) {
		log_warn("incoming migration: illegal resume received");
		return 0;
	}
	notify(ld, LOADVM_EV_RESUMED);
	n = pc_rp_encode(&m, buf, sizeof(buf));
	ret = n > 0 ? loadvm_rp_write(ld, buf, (size_t)n) : -EINVAL;
	if (ret) {
		mig_error_setg(errp, "Cannot send RESUME_ACK: %s",
			       strerror(-ret));
		return ret;
	}
	log_info("incoming migration: postcopy resumed; %d pages requested "
		 "again",
		 loadvm_rerequest_pending(ld));
	return 0;
}

/* ---- the end of the main stream ------------------------------------------ */

/* Pages of block idx that are not present; -ENOMEM. */
static int64_t block_missing(struct loadvm *ld, int idx)
{
	struct ram_block *b = ram_load_block(ld->rl, idx);
	uint64_t size =
		pc_recv_bitmap_size(b->used_length, RAM_TARGET_PAGE_SIZE);
	uint64_t have = 0;
	uint8_t *bits = calloc(1, size ? size : 1);

	if (!bits)
		return -ENOMEM;
	received_le(ld, idx, bits, size);
	for (uint64_t i = 0; i < size; i++)
		have += (uint64_t)__builtin_popcount(bits[i]);
	free(bits);
	return (int64_t)(b->used_length / RAM_TARGET_PAGE_SIZE - have);
}

/* The first registered block with missing pages (-1: none); *n gets its
 * count, or -ENOMEM. */
static int first_incomplete(struct loadvm *ld, int64_t *n)
{
	*n = 0;
	for (int i = 0; i < ld->nranges; i++) {
		if (ld->ranges[i] < 0)
			continue;
		*n = block_missing(ld, i);
		if (*n)
			return i;
	}
	return -1;
}

static bool stopping(struct loadvm *ld)
{
	return ld->pco.stopping && ld->pco.stopping(ld->pco.opaque);
}

int loadvm_pc_check_complete(struct loadvm *ld, struct mig_error **errp)
{
	int64_t n;
	int idx;

	for (int ms = 0;; ms += 10) {
		idx = first_incomplete(ld, &n);
		if (idx < 0 || n < 0 || !ld->pco.preempt ||
		    ms >= PC_COMPLETE_WAIT_MS || stopping(ld))
			break;
		usleep(10000); /* the preempt thread may still place them */
	}
	if (n < 0) {
		mig_error_setg(errp, "Out of memory");
		return (int)n;
	}
	if (idx < 0)
		return 0;
	mig_error_setg(errp,
		       "Postcopy ended with %" PRId64 " pages of block %s "
		       "never received",
		       n, ram_load_block(ld->rl, idx)->name);
	return -EINVAL;
}

/* ---- dispatch ------------------------------------------------------------ */

static int step(struct loadvm *ld, uint16_t cmd, struct mig_error **errp)
{
	enum pc_incoming_state ps = atomic_load(&ld->ps);
	int ret = pc_incoming_step(&ps, cmd, errp);

	if (!ret)
		atomic_store(&ld->ps, ps);
	return ret;
}

static int dispatch(struct loadvm *ld, uint16_t cmd, const uint8_t *p,
		    uint16_t len, struct mig_error **errp)
{
	switch (cmd) {
	case MIG_CMD_POSTCOPY_ADVISE:
		return advise(ld, p, len, errp);
	case MIG_CMD_POSTCOPY_RAM_DISCARD:
		return discard(ld, p, len, errp);
	case MIG_CMD_POSTCOPY_LISTEN:
		return handle_listen(ld, errp);
	case MIG_CMD_POSTCOPY_RUN:
		ld->run_seen = ld->nested;
		notify(ld, LOADVM_EV_RUN);
		return 0;
	case MIG_CMD_PACKAGED:
		return packaged(ld, p, len, errp);
	case MIG_CMD_RECV_BITMAP:
		return recv_bitmap(ld, p, len, errp);
	default:
		return resume(ld, errp);
	}
}

int loadvm_pc_command(struct loadvm *ld, uint16_t cmd, uint16_t len,
		      struct mig_error **errp)
{
	uint8_t *p = malloc(len ? len : 1);
	int ret;

	if (!p) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	ret = qfile_get_buffer(ld->f, p, len);
	if (ret)
		ret = vms_read_fail(ret, "a command", errp);
	else
		ret = step(ld, cmd, errp);
	if (!ret)
		ret = dispatch(ld, cmd, p, len, errp);
	free(p);
	return ret;
}

/* ---- pause and the preempt channel -------------------------------------- */

static bool network_error(int ret)
{
	switch (-ret) {
	case EPIPE:
	case EPROTO:
	case ECANCELED:
	case ECONNRESET:
	case ECONNABORTED:
	case EIO:
	case ETIMEDOUT:
	case ENOTCONN:
	case ESHUTDOWN:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return true;
	default:
		return false;
	}
}

int loadvm_pc_maybe_pause(struct loadvm *ld, int ret, struct mig_error **errp)
{
	struct mig_error *err;
	struct qfile *f;

	if (loadvm_postcopy_state(ld) != PC_INCOMING_RUNNING || ld->nested ||
	    !network_error(ret) || !ld->pco.pause)
		return ret;
	err = *errp;
	*errp = NULL;
	loadvm_set_return_path(ld, NULL);
	f = ld->pco.pause(ld->pco.opaque, err);
	if (!f) {
		mig_error_setg(errp, "postcopy recovery ended");
		return -ECANCELED;
	}
	ld->f = f;
	loadvm_set_return_path(ld, qfile_channel(f));
	return 0;
}

int loadvm_load_preempt(struct loadvm *ld, struct qfile *f,
			struct mig_error **errp)
{
	int last = -1;

	return ram_load_postcopy(ld->rl, f, &last, errp);
}
