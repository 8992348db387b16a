/* rdma_ram.c — QEMU's RDMA RAM protocol (rdma_ram.h): the source's block
 * table, RAM_BLOCKS exchange, pin-all and per-chunk registration, zero
 * chunks as COMPRESS, merged RDMA WRITEs, the drain at each round; the
 * destination's control loop. Owner thread of the channel. */
#include "rdma/rdma_ram.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "rdma/rdma_chan_priv.h"

#define RR_PAGE 4096u
#define RR_WAIT RDMA_CHAN_WAIT_MS
#define RR_RAM_ACCESS (RV_ACCESS_LOCAL_WRITE | RV_ACCESS_REMOTE_WRITE)
/* Block indices travel in 14 bits of the work request id. */
#define RR_MAX_BLOCKS (1u << 14)

struct rr_block {
	uint8_t *host;
	uint64_t offset; /* in this side's ram_addr space */
	uint64_t length;
	uint64_t nb_chunks;
	int rl_idx; /* destination: ram_load's index */
	/* source: where the destination has it */
	uint64_t remote_host_addr, dest_offset;
	uint32_t remote_rkey;
	struct rv_mr *mr;   /* pin-all: the whole block */
	struct rv_mr **pmr; /* per chunk (first chunk of a registration) */
	uint32_t *rkeys;    /* source: the destination's rkey per chunk */
	uint8_t *rkey_ok;
	uint8_t *transit; /* source: a write to the chunk is in flight */
};

struct rdma_ram {
	struct rdma_chan *c;
	struct rr_block *blocks;
	struct rproto_block *pblocks;
	uint32_t nb;
	bool built;
	/* source: the pending merged write */
	int cur_idx;
	uint64_t cur_off, cur_len;
	/* destination: ram_load indices in the source's order */
	int *seen;
	uint32_t nseen, cap_seen;
	struct rproto_register *regs;
	uint8_t *results;
	struct rdma_ram_stats st;
};

void rdma_ram_get_stats(const struct rdma_ram *r, struct rdma_ram_stats *st)
{
	*st = r->st;
}

struct rdma_ram *rdma_ram_new(struct rdma_chan *c)
{
	struct rdma_ram *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->c = c;
	r->cur_idx = -1;
	rdma_chan_set_write_done(c, NULL, NULL);
	return r;
}

void rdma_ram_free(struct rdma_ram *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->nb; i++) {
		free(r->blocks[i].pmr);
		free(r->blocks[i].rkeys);
		free(r->blocks[i].rkey_ok);
		free(r->blocks[i].transit);
	}
	free(r->blocks);
	free(r->pblocks);
	free(r->seen);
	free(r->regs);
	free(r->results);
	free(r);
}

static void rr_write_done(void *opaque, uint32_t block, uint64_t chunk)
{
	struct rdma_ram *r = opaque;

	if (block < r->nb && chunk < r->blocks[block].nb_chunks)
		r->blocks[block].transit[chunk] = 0;
}

/* One table entry; the MRs are the endpoint's (freed with it). */
static int rr_block_init(struct rdma_ram *r, uint32_t i, const char *name,
			 uint8_t *host, uint64_t len, uint64_t offset)
{
	struct rr_block *b = &r->blocks[i];

	b->host = host;
	b->length = len;
	b->offset = offset;
	b->nb_chunks = rproto_nb_chunks(len);
	b->pmr = calloc(b->nb_chunks, sizeof(*b->pmr));
	b->rkeys = calloc(b->nb_chunks, sizeof(*b->rkeys));
	b->rkey_ok = calloc(b->nb_chunks, 1);
	b->transit = calloc(b->nb_chunks, 1);
	r->pblocks[i] = (struct rproto_block){.name = name,
					      .offset = offset,
					      .length = len,
					      .is_ram_block = true};
	return b->pmr && b->rkeys && b->rkey_ok && b->transit ? 0 : -ENOMEM;
}

static int rr_alloc(struct rdma_ram *r, uint32_t nb, struct mig_error **errp)
{
	r->blocks = calloc(nb ? nb : 1, sizeof(*r->blocks));
	r->pblocks = calloc(nb ? nb : 1, sizeof(*r->pblocks));
	r->nb = nb;
	r->built = true;
	if (!r->blocks || !r->pblocks) {
		r->nb = 0;
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* ---- source ---------------------------------------------------------------
 */

static int rr_src_build(struct rdma_ram *r, const struct guest *g,
			struct mig_error **errp)
{
	struct ram_block *b;
	uint64_t off = 0;
	uint32_t i = 0;
	int ret;

	if (g->nblocks > RR_MAX_BLOCKS) {
		mig_error_setg(errp, "RDMA ERROR: too many RAM blocks");
		return -E2BIG;
	}
	ret = rr_alloc(r, (uint32_t)g->nblocks, errp);

	guest_for_each_block(g, b)
	{
		if (ret)
			break;
		ret = rr_block_init(r, i++, b->name, b->host, b->used_length,
				    off);
		off += b->used_length;
	}
	if (ret)
		mig_error_setg(errp, "Out of memory");
	rdma_chan_set_write_done(r->c, rr_write_done, r);
	return ret;
}

/* Flushes the stream; a failure's root cause is the channel's error. */
static int rr_flush_stream(struct rdma_ram *r, struct qfile *f,
			   struct mig_error **errp)
{
	int ret = qfile_flush(f);

	if (ret && !rdma_chan_error(&r->c->base, errp))
		mig_error_setg(errp, "Unable to write to rdma: %s",
			       strerror(-ret));
	return ret;
}

static int rr_put_hook(struct rdma_ram *r, struct qfile *f,
		       struct mig_error **errp)
{
	qfile_put_be64(f, RPROTO_RAM_SAVE_FLAG_HOOK);
	return rr_flush_stream(r, f, errp);
}

/* QEMU's drain: the pending merged write, then every completion. */
static int rr_drain(struct rdma_ram *r, struct mig_error **errp)
{
	int ret = rdma_ram_flush(r, errp);

	while (!ret && rdma_chan_writes_in_flight(r->c))
		ret = rdma_chan_poll(r->c, RR_WAIT, errp);
	return ret;
}

/* The end of a registration round: every write done, then
 * REGISTER_FINISHED (the destination leaves its control loop). */
static int rr_finish_round(struct rdma_ram *r, struct mig_error **errp)
{
	int ret = rr_drain(r, errp);

	if (!ret)
		ret = rdma_chan_exchange_send(r->c, RPROTO_REGISTER_FINISHED,
					      NULL, 0, 1, RPROTO_NONE, NULL,
					      NULL, NULL, NULL, errp);
	return ret;
}

static int rr_reg_whole(void *opaque)
{
	struct rdma_ram *r = opaque;

	for (uint32_t i = 0; i < r->nb; i++) {
		struct rr_block *b = &r->blocks[i];

		if (!b->length || b->mr)
			continue;
		b->mr = rdma_chan_reg(r->c, b->host, b->length, RR_RAM_ACCESS,
				      NULL);
		if (!b->mr)
			return -ENOMEM;
	}
	return 0;
}

static int rr_blocks_exchange(struct rdma_ram *r, struct mig_error **errp)
{
	struct rproto_dest_block *db = calloc(r->nb ? r->nb : 1, sizeof(*db));
	struct rproto_header resp;
	const uint8_t *data;
	int ret;

	if (!db) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	ret = rdma_chan_exchange_send(
		r->c, RPROTO_RAM_BLOCKS_REQUEST, NULL, 0, 1,
		RPROTO_RAM_BLOCKS_RESULT, &resp, &data,
		rdma_chan_pin_all(r->c) ? rr_reg_whole : NULL, r, errp);
	if (!ret)
		ret = rproto_dest_blocks_decode(data, &resp, r->pblocks, r->nb,
						db, errp);
	for (uint32_t i = 0; !ret && i < r->nb; i++) {
		r->blocks[i].remote_host_addr = db[i].remote_host_addr;
		r->blocks[i].remote_rkey = db[i].remote_rkey;
		r->blocks[i].dest_offset = db[i].offset;
	}
	free(db);
	return ret;
}

int rdma_src_setup(struct rdma_ram *r, const struct guest *g, struct qfile *f,
		   struct mig_error **errp)
{
	int ret = r->built ? 0 : rr_src_build(r, g, errp);

	if (!ret)
		ret = rr_put_hook(r, f, errp);
	if (!ret)
		ret = rr_drain(r, errp);
	if (!ret)
		ret = rr_blocks_exchange(r, errp);
	return ret ? ret : rr_finish_round(r, errp);
}

int rdma_src_round_start(struct rdma_ram *r, struct qfile *f,
			 struct mig_error **errp)
{
	return rr_put_hook(r, f, errp);
}

int rdma_src_round_stop(struct rdma_ram *r, struct qfile *f,
			struct mig_error **errp)
{
	int ret = rr_flush_stream(r, f, errp);

	return ret ? ret : rr_finish_round(r, errp);
}

static bool rr_is_zero(const uint8_t *p, uint64_t len)
{
	const uint64_t *w = (const uint64_t *)p;
	uint64_t acc = 0;

	for (uint64_t i = 0; i < len / 8; i++)
		acc |= w[i];
	return acc == 0;
}

static int rr_send_compress(struct rdma_ram *r, uint32_t idx, uint64_t off,
			    uint64_t len, struct mig_error **errp)
{
	struct rproto_compress comp = {.value = 0,
				       .block_idx = idx,
				       .offset =
					       r->blocks[idx].dest_offset + off,
				       .length = len};
	uint8_t buf[RPROTO_COMPRESS_SIZE];

	rproto_compress_encode(&comp, buf);
	r->st.compress++;
	return rdma_chan_exchange_send(r->c, RPROTO_COMPRESS, buf, sizeof(buf),
				       1, RPROTO_NONE, NULL, NULL, NULL, NULL,
				       errp);
}

/* Asks the destination to register the chunks of a write. */
static int rr_register_remote(struct rdma_ram *r, uint32_t idx, uint64_t off,
			      uint64_t chunk, uint64_t extra,
			      struct mig_error **errp)
{
	struct rr_block *b = &r->blocks[idx];
	struct rproto_register reg = {.key = b->dest_offset + off,
				      .current_index = idx,
				      .chunks = extra};
	struct rproto_register_result res;
	struct rproto_header resp;
	uint8_t buf[RPROTO_REGISTER_SIZE];
	const uint8_t *data;
	int ret;

	rproto_register_encode(&reg, buf);
	ret = rdma_chan_exchange_send(r->c, RPROTO_REGISTER_REQUEST, buf,
				      sizeof(buf), 1, RPROTO_REGISTER_RESULT,
				      &resp, &data, NULL, NULL, errp);
	if (!ret)
		ret = rproto_register_result_decode(data, &resp, 0, &res, errp);
	if (ret)
		return ret;
	r->st.registrations++;
	b->rkeys[chunk] = res.rkey;
	b->rkey_ok[chunk] = 1;
	b->remote_host_addr = res.host_addr;
	return 0;
}

/* The local MR covering chunk..chunk+extra (registered on first use). */
static struct rv_mr *rr_local_mr(struct rdma_ram *r, struct rr_block *b,
				 uint64_t chunk, uint64_t extra,
				 struct mig_error **errp)
{
	uint64_t start, end;

	if (b->mr)
		return b->mr;
	if (b->pmr[chunk])
		return b->pmr[chunk];
	rproto_chunk_range(b->length, chunk, extra, &start, &end);
	b->pmr[chunk] = rdma_chan_reg(r->c, b->host + start, end - start,
				      RV_ACCESS_LOCAL_WRITE, errp);
	return b->pmr[chunk];
}

/* QEMU's write_one: 1 when sent as COMPRESS, 0 when posted. */
static int rr_write_one(struct rdma_ram *r, uint32_t idx, uint64_t off,
			uint64_t len, struct mig_error **errp)
{
	struct rr_block *b = &r->blocks[idx];
	uint64_t chunk = rproto_chunk_index(off);
	uint64_t extra = rproto_extra_chunks(len);
	bool pin = rdma_chan_pin_all(r->c);
	struct rv_mr *mr;
	uint32_t rkey;
	int ret = 0;

	while (!ret && b->transit[chunk])
		ret = rdma_chan_poll(r->c, RR_WAIT, errp);
	if (!ret && !pin && !b->rkey_ok[chunk]) {
		if (rr_is_zero(b->host + off, len))
			return rr_send_compress(r, idx, off, len, errp) ?: 1;
		ret = rr_register_remote(r, idx, off, chunk, extra, errp);
	}
	if (ret)
		return ret;
	mr = rr_local_mr(r, b, chunk, extra, errp);
	if (!mr)
		return -ENOMEM;
	rkey = pin ? b->remote_rkey : b->rkeys[chunk];
	ret = rdma_chan_write(r->c, b->host + off, (uint32_t)len, mr->lkey,
			      b->remote_host_addr + off, rkey,
			      rproto_wrid(RC_WRID_WRITE, idx, chunk), errp);
	if (!ret) {
		b->transit[chunk] = 1;
		r->st.writes++;
		r->st.write_bytes += len;
	}
	return ret;
}

int rdma_ram_flush(struct rdma_ram *r, struct mig_error **errp)
{
	int ret = 0;

	if (r->cur_len && r->cur_idx >= 0)
		ret = rr_write_one(r, (uint32_t)r->cur_idx, r->cur_off,
				   r->cur_len, errp);
	r->cur_len = 0;
	return ret < 0 ? ret : 0;
}

int rdma_src_save_page(struct rdma_ram *r, uint32_t idx, uint64_t offset,
		       struct mig_error **errp)
{
	int ret = 0;

	if (idx >= r->nb) {
		mig_error_setg(errp, "RDMA ERROR: page of unknown block %u",
			       idx);
		return -EINVAL;
	}
	if (!rproto_can_merge(r->cur_idx, r->cur_off, r->cur_len, (int)idx,
			      offset, RR_PAGE, r->blocks[idx].length)) {
		ret = rdma_ram_flush(r, errp);
		r->cur_idx = (int)idx;
		r->cur_off = offset;
	}
	r->cur_len += RR_PAGE;
	if (!ret && r->cur_len >= RPROTO_MERGE_MAX)
		ret = rdma_ram_flush(r, errp);
	/* Reap what completed, without blocking. */
	if (!ret)
		ret = rdma_chan_poll(r->c, 0, errp);
	return ret;
}

/* ---- destination ----------------------------------------------------------
 */

int rdma_dst_block_seen(struct rdma_ram *r, int rl_idx, struct mig_error **errp)
{
	if (r->built) {
		mig_error_setg(errp, "RDMA ERROR: RAM block list after the "
				     "RAM blocks exchange");
		return -EINVAL;
	}
	/* The source's MEM_SIZE list may repeat names: bound it. */
	if (r->nseen >= RR_MAX_BLOCKS) {
		mig_error_setg(errp, "RDMA ERROR: too many RAM blocks");
		return -E2BIG;
	}
	if (r->nseen == r->cap_seen) {
		uint32_t n = r->cap_seen ? r->cap_seen * 2 : 8;
		int *s = realloc(r->seen, n * sizeof(*s));

		if (!s) {
			mig_error_setg(errp, "Out of memory");
			return -ENOMEM;
		}
		r->seen = s;
		r->cap_seen = n;
	}
	r->seen[r->nseen++] = rl_idx;
	return 0;
}

/* The table in the source's order (QEMU sorts by src_index). */
static int rr_dst_build(struct rdma_ram *r, struct ram_load *rl,
			struct mig_error **errp)
{
	uint64_t off = 0;
	int ret = rr_alloc(r, r->nseen, errp);

	r->regs = calloc(RPROTO_MAX_COMMANDS, sizeof(*r->regs));
	r->results = calloc(RPROTO_MAX_COMMANDS, RPROTO_REGISTER_RESULT_SIZE);
	if (!ret && (!r->regs || !r->results))
		ret = -ENOMEM;
	for (uint32_t i = 0; !ret && i < r->nb; i++) {
		struct ram_block *b = ram_load_block(rl, r->seen[i]);

		r->blocks[i].rl_idx = r->seen[i];
		ret = rr_block_init(r, i, b->name, b->host, b->used_length,
				    off);
		off += b->used_length;
	}
	if (ret)
		mig_error_setg(errp, "Out of memory");
	return ret;
}

/* Registered destination RAM may be written behind ram_load's back. */
static void rr_mark(struct ram_load *rl, const struct rr_block *b,
		    uint64_t start, uint64_t end)
{
	for (uint64_t p = start & ~(uint64_t)(RR_PAGE - 1); p < end;
	     p += RR_PAGE)
		ram_load_mark_page(rl, b->rl_idx, p);
}

static int rr_dst_blocks(struct rdma_ram *r, struct ram_load *rl,
			 struct mig_error **errp)
{
	uint8_t *buf = calloc(r->nb ? r->nb : 1, RPROTO_DEST_BLOCK_SIZE);
	bool pin = rdma_chan_pin_all(r->c);
	int ret = 0;

	if (!buf) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->nb && !ret; i++) {
		struct rr_block *b = &r->blocks[i];
		struct rproto_dest_block db = {.remote_host_addr =
						       (uintptr_t)b->host,
					       .offset = b->offset,
					       .length = b->length};

		if (pin && b->length && !b->mr) {
			b->mr = rdma_chan_reg(r->c, b->host, b->length,
					      RR_RAM_ACCESS, errp);
			if (!b->mr)
				ret = -ENOMEM;
			else
				rr_mark(rl, b, 0, b->length);
		}
		db.remote_rkey = b->mr ? b->mr->rkey : 0;
		rproto_dest_block_encode(&db, buf + i * RPROTO_DEST_BLOCK_SIZE);
	}
	if (!ret)
		ret = rdma_chan_send(r->c, RPROTO_RAM_BLOCKS_RESULT, buf,
				     r->nb * RPROTO_DEST_BLOCK_SIZE, 1, errp);
	free(buf);
	return ret;
}

static int rr_dst_compress(struct rdma_ram *r, struct ram_load *rl,
			   const uint8_t *data, const struct rproto_header *h,
			   struct mig_error **errp)
{
	struct rproto_compress comp;
	struct rr_block *b;
	uint64_t off, end;
	int ret =
		rproto_compress_decode(data, h, r->pblocks, r->nb, &comp, errp);

	if (ret)
		return ret;
	if (comp.value) {
		mig_error_setg(errp,
			       "rdma: Zero page with non-zero (%" PRIu32
			       ") value",
			       comp.value);
		return -EINVAL;
	}
	b = &r->blocks[comp.block_idx];
	off = comp.offset - b->offset;
	end = off + comp.length;
	for (; off < end && (off & (RR_PAGE - 1)); off++)
		b->host[off] = 0;
	for (; off + RR_PAGE <= end; off += RR_PAGE) {
		ram_load_zero_page(rl, b->rl_idx, off);
		ram_load_count(rl, 0, 1);
	}
	if (off < end)
		memset(b->host + off, 0, end - off);
	return 0;
}

static int rr_dst_register(struct rdma_ram *r, struct ram_load *rl,
			   const uint8_t *data, const struct rproto_header *h,
			   struct mig_error **errp)
{
	int ret = rproto_register_decode(data, h, r->pblocks, r->nb, r->regs,
					 RPROTO_MAX_COMMANDS, errp);

	for (uint32_t i = 0; !ret && i < h->repeat; i++) {
		const struct rproto_register *reg = &r->regs[i];
		struct rr_block *b = &r->blocks[reg->current_index];
		uint64_t chunk = rproto_chunk_index(reg->key - b->offset);
		struct rproto_register_result res;
		uint64_t start, end;

		rproto_chunk_range(b->length, chunk, reg->chunks, &start, &end);
		if (!b->mr && !b->pmr[chunk] && end > start) {
			b->pmr[chunk] =
				rdma_chan_reg(r->c, b->host + start,
					      end - start, RR_RAM_ACCESS, errp);
			if (!b->pmr[chunk])
				return -ENOMEM;
			rr_mark(rl, b, start, end);
			r->st.registrations++;
		}
		res.rkey = b->mr	   ? b->mr->rkey
			   : b->pmr[chunk] ? b->pmr[chunk]->rkey
					   : 0;
		res.host_addr = (uintptr_t)b->host;
		rproto_register_result_encode(
			&res, r->results + i * RPROTO_REGISTER_RESULT_SIZE);
	}
	if (!ret)
		ret = rdma_chan_send(r->c, RPROTO_REGISTER_RESULT, r->results,
				     h->repeat * RPROTO_REGISTER_RESULT_SIZE,
				     h->repeat, errp);
	return ret;
}

static int rr_dst_one(struct rdma_ram *r, struct ram_load *rl, bool *done,
		      struct mig_error **errp)
{
	struct rproto_header h;
	const uint8_t *data;
	int ret =
		rdma_chan_exchange_recv(r->c, RPROTO_NONE, &h, &data, -1, errp);

	if (ret)
		return ret;
	switch (h.type) {
	case RPROTO_COMPRESS:
		return rr_dst_compress(r, rl, data, &h, errp);
	case RPROTO_REGISTER_FINISHED:
		*done = true;
		return 0;
	case RPROTO_RAM_BLOCKS_REQUEST:
		return rr_dst_blocks(r, rl, errp);
	case RPROTO_REGISTER_REQUEST:
		return rr_dst_register(r, rl, data, &h, errp);
	default:
		mig_error_setg(errp, "Unknown control message %s",
			       rproto_type_name(h.type));
		return -EINVAL;
	}
}

int rdma_dst_hook(struct rdma_ram *r, struct ram_load *rl,
		  struct mig_error **errp)
{
	bool done = false;
	int ret;

	r->st.hooks++;
	rdma_chan_set_in_round(r->c, true);
	ret = r->built ? 0 : rr_dst_build(r, rl, errp);
	while (!ret && !done)
		ret = rr_dst_one(r, rl, &done, errp);
	rdma_chan_set_in_round(r->c, false);
	return ret;
}
