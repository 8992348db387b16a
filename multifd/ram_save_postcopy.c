/* ram_save_postcopy.c — the 'ram' section in postcopy (see
 * ram_save_postcopy.h). Once rs->postcopy is set, the bitmaps and the
 * pending count are only touched under rs->lock: the return-path thread
 * sends requested pages on the preempt channel while the migration thread
 * streams the rest. Each page is sent at most once after the discard. */
#include "multifd/ram_save_postcopy.h"
#include "multifd/ram_save_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "guest/ram.h"
#include "multifd/migstats.h"
#include "multifd/postcopy_proto.h"
#include "multifd/postcopy_req.h"
#include "multifd/qemufile.h"
#include "multifd/ram_flags.h"
#include "multifd/vmstate.h"
#include "socket/channel.h"

#define RELEASE_MAX_RUNS 4096

static int io_fail(struct ram_save *rs, struct qfile *f, int ret,
		   struct mig_error **errp)
{
	(void)rs;
	mig_error_setg(errp, "Unable to write to %s: %s",
		       chan_noun(qfile_channel(f)), strerror(-ret));
	return ret;
}

int ram_save_block_index(const struct ram_save *rs, const char *name)
{
	for (size_t i = 0; i < rs->nblocks; i++)
		if (!strcmp(rs->blocks[i].b->name, name))
			return (int)i;
	return -1;
}

int ram_save_postcopy_flush_multifd(struct ram_save *rs,
				    struct mig_error **errp)
{
	int ret;

	if (!rs->o.mfd)
		return 0;
	vms_put_section_header(rs->f, VMS_SECTION_PART, VMS_ID_RAM, NULL, 0, 0);
	/* legacy mode: ram_save_end_section() syncs before the EOS */
	ret = rs->o.flush_each_section ? 0 : ram_save_multifd_sync(rs, true);
	if (!ret)
		ret = ram_save_end_section(rs);
	if (!ret)
		ret = qfile_flush(rs->f);
	rs->o.mfd = NULL; /* postcopy pages go on the main stream */
	return ret ? io_fail(rs, rs->f, ret, errp) : 0;
}

/* ---- the discard bitmap ------------------------------------------------ */

struct discard_batch {
	struct qfile *f;
	const char *name;
	struct pc_range r[PC_DISCARD_MAX_PER_CMD];
	unsigned n;
};

static int discard_flush(struct discard_batch *d)
{
	uint8_t buf[PC_DISCARD_PAYLOAD_MAX];
	int len;

	if (!d->n)
		return 0;
	len = pc_discard_encode(d->name, d->r, d->n, buf, sizeof(buf));
	d->n = 0;
	if (len < 0)
		return len;
	vms_put_command(d->f, MIG_CMD_POSTCOPY_RAM_DISCARD, (uint16_t)len, buf);
	return qfile_error(d->f);
}

static int discard_add(struct discard_batch *d, uint64_t page, uint64_t n)
{
	d->r[d->n].start = page << RAM_TARGET_PAGE_BITS;
	d->r[d->n].length = n << RAM_TARGET_PAGE_BITS;
	if (++d->n == PC_DISCARD_MAX_PER_CMD)
		return discard_flush(d);
	return 0;
}

static bool bit_set(const unsigned long *bmap, uint64_t p)
{
	return (bmap[p / BITS_PER_LONG] >> (p % BITS_PER_LONG)) & 1;
}

/* Runs of pending pages of one block, as DISCARD commands. */
static int discard_block(struct ram_save *rs, struct rs_block *rb)
{
	struct discard_batch d = {.f = rs->f, .name = rb->b->name};
	uint64_t p = 0;
	int ret = 0;

	while (p < rb->npages && !ret) {
		uint64_t start;

		if (!rb->bmap[p / BITS_PER_LONG]) {
			p = (p / BITS_PER_LONG + 1) * BITS_PER_LONG;
			continue;
		}
		if (!bit_set(rb->bmap, p)) {
			p++;
			continue;
		}
		start = p;
		while (p < rb->npages && bit_set(rb->bmap, p))
			p++;
		ret = discard_add(&d, start, p - start);
	}
	return ret ? ret : discard_flush(&d);
}

int ram_save_postcopy_discard(struct ram_save *rs, bool release_ram,
			      ram_save_urgent_fn urgent, void *opaque,
			      struct mig_error **errp)
{
	int ret = 0;

	ram_save_sync(rs); /* the guest is stopped: the last one */
	ram_save_drop_residency(rs);
	for (size_t i = 0; i < rs->nblocks && !ret; i++)
		ret = discard_block(rs, &rs->blocks[i]);
	pthread_mutex_lock(&rs->lock);
	rs->postcopy = true;
	rs->o.mfd = NULL;
	rs->rel.on = release_ram;
	rs->urgent = urgent;
	rs->urgent_opaque = opaque;
	rs->cur_block = 0;
	rs->cur_page = 0;
	/* the destination's postcopy loader keeps its own last block */
	rs->main.last_block = NULL;
	pthread_mutex_unlock(&rs->lock);
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
	if (ret == -EINVAL || ret == -ENOBUFS) {
		mig_error_setg(errp, "cannot encode the discard bitmap");
		return ret;
	}
	return ret ? io_fail(rs, rs->f, ret, errp) : 0;
}

/* ---- release-ram ------------------------------------------------------- */

/* QEMU's ram_discard_range on the source: the memory goes back to the
 * host (a hole in a shared file or memfd, fresh zero pages otherwise). */
static void release_range(struct rs_block *rb, uint64_t page, uint64_t n)
{
	struct ram_block *b = rb->b;
	uint64_t off = page << RAM_TARGET_PAGE_BITS;
	uint64_t len = n << RAM_TARGET_PAGE_BITS;

	if (b->page_size != RAM_TARGET_PAGE_SIZE || !len)
		return; /* huge pages: only whole host pages could go */
	if (b->shared && b->fd >= 0)
		fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)off, (off_t)len);
	else if (b->shared)
		madvise(b->host + off, len, MADV_REMOVE);
	if (!b->shared || b->fd < 0)
		madvise(b->host + off, len, MADV_DONTNEED);
}

static void release_pending_runs(struct ram_save *rs)
{
	for (unsigned i = 0; i < rs->rel.n; i++)
		release_range(rs->rel.r[i].rb, rs->rel.r[i].page,
			      rs->rel.r[i].n);
	rs->rel.n = 0;
}

void ram_save_note_release(struct ram_save *rs, struct rs_block *rb,
			   uint64_t page)
{
	struct rs_release *r = &rs->rel;
	struct rs_release_run *last = r->n ? &r->r[r->n - 1] : NULL;

	if (!rs->postcopy || !r->on)
		return;
	if (last && last->rb == rb && last->page + last->n == page) {
		last->n++;
		return;
	}
	if (r->n == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 64;
		struct rs_release_run *nr;

		/* too many runs or no memory: send what is queued, free it */
		if (cap > RELEASE_MAX_RUNS ||
		    !(nr = realloc(r->r, cap * sizeof(*nr)))) {
			if (qfile_flush(rs->f) == 0)
				release_pending_runs(rs);
			r->n = 0;
			if (!r->cap)
				return;
		} else {
			r->r = nr;
			r->cap = cap;
		}
	}
	r->r[r->n++] = (struct rs_release_run){rb, page, 1};
}

void ram_save_postcopy_flushed(struct ram_save *rs)
{
	release_pending_runs(rs);
}

void ram_save_postcopy_release_sent(struct ram_save *rs)
{
	pthread_mutex_lock(&rs->lock);
	for (size_t i = 0; i < rs->nblocks; i++) {
		struct rs_block *rb = &rs->blocks[i];
		uint64_t p = 0;

		while (p < rb->npages) {
			uint64_t start = p;

			while (p < rb->npages && !bit_set(rb->bmap, p))
				p++;
			release_range(rb, start, p - start);
			while (p < rb->npages && bit_set(rb->bmap, p))
				p++;
		}
	}
	pthread_mutex_unlock(&rs->lock);
}

/* ---- requested pages --------------------------------------------------- */

/* The still-pending pages of r on out: pages sent, or -errno. Freed pages
 * of the preempt stream are released by the caller after its flush. */
static int send_req(struct ram_save *rs, struct rs_out *out,
		    const struct pc_req *r)
{
	struct rs_block *rb;
	uint64_t first, n;
	int sent = 0;

	if (r->block >= rs->nblocks)
		return 0;
	rb = &rs->blocks[r->block];
	first = r->start >> RAM_TARGET_PAGE_BITS;
	n = r->len >> RAM_TARGET_PAGE_BITS;
	for (uint64_t p = first; p < first + n && p < rb->npages; p++) {
		bool mine;
		int ret;

		pthread_mutex_lock(&rs->lock);
		mine = ram_save_test_clear(rs, rb, p);
		pthread_mutex_unlock(&rs->lock);
		if (!mine)
			continue; /* sent already, or on its way */
		ret = ram_save_send_page(rs, out, rb, p);
		if (ret < 0)
			return ret;
		if (out == &rs->main)
			ram_save_note_release(rs, rb, p);
		sent++;
	}
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
	return sent;
}

static int serve_main(struct ram_save *rs)
{
	struct pc_req r;
	int total = 0;

	while (rs->urgent && rs->urgent(rs->urgent_opaque, &r)) {
		int ret = send_req(rs, &rs->main, &r);

		if (ret < 0)
			return ret;
		total += ret;
	}
	return total;
}

int ram_save_postcopy_iterate(struct ram_save *rs, ram_save_stop_fn stop,
			      void *opaque, struct mig_error **errp)
{
	int ret = 0, done = 0;

	vms_put_section_header(rs->f, VMS_SECTION_PART, VMS_ID_RAM, NULL, 0, 0);
	for (unsigned n = 0;; n++) {
		ret = serve_main(rs);
		if (ret < 0)
			break;
		if ((n & 15) == 15 && stop(opaque))
			break;
		ret = ram_save_one(rs);
		if (ret <= 0) {
			done = !ret;
			break;
		}
	}
	if (ret >= 0)
		ret = ram_save_end_section(rs);
	if (ret >= 0)
		ret = qfile_flush(rs->f);
	atomic_store(&rs->ctr->main_bytes, qfile_pos(rs->f));
	if (ret < 0) {
		rs->rel.n = 0; /* not known to have left: keep them */
		return io_fail(rs, rs->f, ret, errp);
	}
	release_pending_runs(rs);
	return done;
}

void ram_save_postcopy_set_preempt(struct ram_save *rs, struct qfile *pf)
{
	pthread_mutex_lock(&rs->lock);
	rs->preempt.f = pf;
	rs->preempt.last_block = NULL;
	pthread_mutex_unlock(&rs->lock);
}

int ram_save_postcopy_send_req(struct ram_save *rs, const struct pc_req *r)
{
	struct rs_out *out = &rs->preempt;
	bool ready;
	int sent, ret;

	pthread_mutex_lock(&rs->lock); /* a recovery may set a new stream */
	ready = out->f && rs->postcopy;
	pthread_mutex_unlock(&rs->lock);
	if (!ready)
		return 0; /* the destination asks again after a recovery */
	sent = send_req(rs, out, r);
	ret = qfile_flush(out->f);
	atomic_store(&rs->ctr->preempt_bytes, qfile_pos(out->f));
	if (sent < 0 || ret < 0)
		return sent < 0 ? sent : ret;
	if (rs->rel.on && sent)
		release_range(&rs->blocks[r->block],
			      r->start >> RAM_TARGET_PAGE_BITS,
			      r->len >> RAM_TARGET_PAGE_BITS);
	return sent;
}

/* ---- recovery ---------------------------------------------------------- */

int ram_save_postcopy_recv_bitmap(struct ram_save *rs, const char *block,
				  const uint8_t *le_bits, uint64_t size,
				  struct mig_error **errp)
{
	int i = ram_save_block_index(rs, block);
	struct rs_block *rb;

	if (i < 0) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_RECV_BITMAP has invalid block "
			       "name '%s'",
			       block);
		return -ENOENT;
	}
	rb = &rs->blocks[i];
	if (pc_recv_bitmap_check_size(block, size,
				      pc_recv_bitmap_size(rb->b->used_length,
							  RAM_TARGET_PAGE_SIZE),
				      errp))
		return -EINVAL;
	pthread_mutex_lock(&rs->lock);
	for (uint64_t p = 0; p < rb->npages; p++) {
		bool got = (le_bits[p / 8] >> (p % 8)) & 1;
		unsigned long bit = 1ul << (p % BITS_PER_LONG);
		unsigned long *w = &rb->bmap[p / BITS_PER_LONG];

		if (got && (*w & bit)) {
			*w &= ~bit;
			rs->pending--;
		} else if (!got && !(*w & bit)) {
			*w |= bit;
			rs->pending++;
		}
	}
	pthread_mutex_unlock(&rs->lock);
	atomic_store(&rs->ctr->remaining_pages, rs->pending);
	return 0;
}

void ram_save_postcopy_resume(struct ram_save *rs, struct qfile *f)
{
	pthread_mutex_lock(&rs->lock);
	rs->f = f;
	rs->main.f = f;
	rs->main.last_block = NULL;
	rs->cur_block = 0;
	rs->cur_page = 0;
	rs->rel.n = 0;
	pthread_mutex_unlock(&rs->lock);
}
