/* rdma_proto.c — encoders and validating decoders for QEMU's RDMA control
 * protocol (rdma_proto.h). Error texts follow QEMU's migration/rdma.c where
 * it has one; checks QEMU lacks (ranges of COMPRESS, lengths of arrays)
 * get messages in the same style. Any thread; no state. */
#include "rdma/rdma_proto.h"

#include <errno.h>
#include <inttypes.h>

#include "util/error.h"

_Static_assert(RPROTO_MAX_DATA == 524272, "control data limit");

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, v >> 32);
	put_be32(p + 4, (uint32_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

const char *rproto_type_name(uint32_t type)
{
	static const char *const names[RPROTO_TYPE_COUNT] = {
		"NONE",
		"ERROR",
		"READY",
		"QEMU FILE",
		"RAM BLOCKS REQUEST",
		"RAM BLOCKS RESULT",
		"COMPRESS",
		"REGISTER REQUEST",
		"REGISTER RESULT",
		"REGISTER FINISHED",
		"UNREGISTER REQUEST",
		"UNREGISTER FINISHED",
	};

	return type < RPROTO_TYPE_COUNT ? names[type] : "??BAD CONTROL VALUE??";
}

/* --- header ----------------------------------------------------------- */

void rproto_header_encode(const struct rproto_header *h,
			  uint8_t out[RPROTO_HEADER_SIZE])
{
	put_be32(out, h->len);
	put_be32(out + 4, h->type);
	put_be32(out + 8, h->repeat);
	put_be32(out + 12, 0);
}

int rproto_header_decode(const uint8_t *buf, size_t byte_len,
			 struct rproto_header *h, struct mig_error **errp)
{
	if (byte_len < RPROTO_HEADER_SIZE) {
		mig_error_setg(errp,
			       "Malformed length: control message of "
			       "%zu bytes has no header",
			       byte_len);
		return -EINVAL;
	}
	h->len = get_be32(buf);
	h->type = get_be32(buf + 4);
	h->repeat = get_be32(buf + 8);
	if (h->len > RPROTO_MAX_DATA) {
		mig_error_setg(errp, "too long length: %" PRIu32, h->len);
		return -EINVAL;
	}
	if (RPROTO_HEADER_SIZE + (size_t)h->len != byte_len) {
		mig_error_setg(errp,
			       "Malformed length: %" PRIu32 " byte_len %zu",
			       h->len, byte_len);
		return -EINVAL;
	}
	if (h->type >= RPROTO_TYPE_COUNT) {
		mig_error_setg(errp, "Unknown control message %s (%" PRIu32 ")",
			       rproto_type_name(h->type), h->type);
		return -EIO;
	}
	if (h->repeat > RPROTO_MAX_COMMANDS) {
		mig_error_setg(errp,
			       "rdma: Too many requests in this message "
			       "(%" PRIu32 ").Bailing.",
			       h->repeat);
		return -EIO;
	}
	return 0;
}

int rproto_expect(const struct rproto_header *h, uint32_t expecting,
		  bool *got_error, struct mig_error **errp)
{
	if (got_error)
		*got_error = h->type == RPROTO_ERROR;
	if (expecting == RPROTO_NONE && h->type != RPROTO_ERROR)
		return 0;
	if (h->type == expecting && h->type != RPROTO_ERROR)
		return 0;
	mig_error_setg(errp,
		       "Was expecting a %s (%" PRIu32 ") control "
		       "message, but got: %s (%" PRIu32 "), length: %" PRIu32,
		       rproto_type_name(expecting), expecting,
		       rproto_type_name(h->type), h->type, h->len);
	return -EIO;
}

/* --- capabilities ------------------------------------------------------- */

void rproto_caps_encode(const struct rproto_caps *c,
			uint8_t out[RPROTO_CAPS_SIZE])
{
	put_be32(out, c->version);
	put_be32(out + 4, c->flags);
}

int rproto_caps_decode(const uint8_t *buf, size_t len, struct rproto_caps *c,
		       struct mig_error **errp)
{
	if (len < RPROTO_CAPS_SIZE) {
		mig_error_setg(errp,
			       "RDMA ERROR: connection request carries "
			       "%zu bytes of capabilities, need %d",
			       len, RPROTO_CAPS_SIZE);
		return -EINVAL;
	}
	c->version = get_be32(buf);
	c->flags = get_be32(buf + 4) & RPROTO_KNOWN_CAPS;
	if (c->version < 1 || c->version > RPROTO_VERSION) {
		mig_error_setg(errp,
			       "Unknown source RDMA version: %" PRIu32
			       ", bailing...",
			       c->version);
		return -EINVAL;
	}
	return 0;
}

/* --- RAM_BLOCKS_RESULT ---------------------------------------------------- */

void rproto_dest_block_encode(const struct rproto_dest_block *b,
			      uint8_t out[RPROTO_DEST_BLOCK_SIZE])
{
	put_be64(out, b->remote_host_addr);
	put_be64(out + 8, b->offset);
	put_be64(out + 16, b->length);
	put_be32(out + 24, b->remote_rkey);
	put_be32(out + 28, 0);
}

/* Entry i of RAM_BLOCKS_RESULT against the local block it describes. */
static int rproto_dest_block_decode(const uint8_t *p, uint32_t i,
				    const struct rproto_block *local,
				    struct rproto_dest_block *out,
				    struct mig_error **errp)
{
	out->remote_host_addr = get_be64(p);
	out->offset = get_be64(p + 8);
	out->length = get_be64(p + 16);
	out->remote_rkey = get_be32(p + 24);
	if (out->length != local->length) {
		mig_error_setg(errp,
			       "RDMA ERROR: Block %s/%" PRIu32
			       " has a different length %" PRIu64 "vs %" PRIu64,
			       local->name, i, local->length, out->length);
		return -EINVAL;
	}
	if (out->remote_host_addr > UINT64_MAX - out->length) {
		mig_error_setg(errp,
			       "RDMA ERROR: Block %s/%" PRIu32
			       " wraps the address space",
			       local->name, i);
		return -EINVAL;
	}
	return 0;
}

int rproto_dest_blocks_decode(const uint8_t *data,
			      const struct rproto_header *h,
			      const struct rproto_block *local,
			      uint32_t nb_local, struct rproto_dest_block *out,
			      struct mig_error **errp)
{
	uint32_t nb = h->len / RPROTO_DEST_BLOCK_SIZE;
	int ret = 0;

	if (h->len % RPROTO_DEST_BLOCK_SIZE || nb != nb_local) {
		mig_error_setg(errp,
			       "RDMA ERROR: ram blocks mismatch (Number "
			       "of blocks %" PRIu32 " vs %" PRIu32 ") Your "
			       "QEMU command line parameters are probably "
			       "not identical on both the source and "
			       "destination.",
			       nb_local, nb);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < nb && !ret; i++)
		ret = rproto_dest_block_decode(
			data + (size_t)i * RPROTO_DEST_BLOCK_SIZE, i, &local[i],
			&out[i], errp);
	return ret;
}

/* --- COMPRESS --------------------------------------------------------------
 */

void rproto_compress_encode(const struct rproto_compress *c,
			    uint8_t out[RPROTO_COMPRESS_SIZE])
{
	put_be32(out, c->value);
	put_be32(out + 4, c->block_idx);
	put_be64(out + 8, c->offset);
	put_be64(out + 16, c->length);
}

/* [off, off + len) lies inside b (both in ram_addr_t space). */
static bool rproto_in_block(const struct rproto_block *b, uint64_t off,
			    uint64_t len)
{
	return off >= b->offset && off - b->offset <= b->length &&
	       len <= b->length - (off - b->offset);
}

int rproto_compress_decode(const uint8_t *data, const struct rproto_header *h,
			   const struct rproto_block *blocks, uint32_t nb,
			   struct rproto_compress *out, struct mig_error **errp)
{
	if (h->len < RPROTO_COMPRESS_SIZE) {
		mig_error_setg(errp,
			       "rdma: 'compress' message of %" PRIu32
			       " bytes, need %d",
			       h->len, RPROTO_COMPRESS_SIZE);
		return -EIO;
	}
	out->value = get_be32(data);
	out->block_idx = get_be32(data + 4);
	out->offset = get_be64(data + 8);
	out->length = get_be64(data + 16);
	if (out->block_idx >= nb) {
		mig_error_setg(errp,
			       "rdma: 'compress' bad block index %" PRIu32
			       " (vs %" PRIu32 ")",
			       out->block_idx, nb);
		return -EIO;
	}
	if (!rproto_in_block(&blocks[out->block_idx], out->offset,
			     out->length)) {
		mig_error_setg(errp,
			       "rdma: 'compress' range offset: %" PRIx64
			       " length: %" PRIx64 " outside block %s",
			       out->offset, out->length,
			       blocks[out->block_idx].name);
		return -ERANGE;
	}
	return 0;
}

/* --- REGISTER_REQUEST / REGISTER_RESULT --------------------------------------
 */

void rproto_register_encode(const struct rproto_register *r,
			    uint8_t out[RPROTO_REGISTER_SIZE])
{
	put_be64(out, r->key);
	put_be32(out + 8, r->current_index);
	put_be32(out + 12, 0);
	put_be64(out + 16, r->chunks);
}

/* The first chunk an entry names, or -ERANGE with QEMU's message. */
static int rproto_register_chunk(const struct rproto_register *r,
				 const struct rproto_block *b, uint64_t *chunk,
				 struct mig_error **errp)
{
	if (!b->is_ram_block) {
		*chunk = r->key;
		if (*chunk >= rproto_nb_chunks(b->length)) {
			mig_error_setg(errp,
				       "rdma: bad chunk for block %s "
				       "chunk: %" PRIx64,
				       b->name, r->key);
			return -ERANGE;
		}
		return 0;
	}
	if (b->offset > r->key || r->key - b->offset >= b->length) {
		mig_error_setg(errp,
			       "rdma: bad register address for block %s "
			       "offset: %" PRIx64 " current_addr: %" PRIx64,
			       b->name, b->offset, r->key);
		return -ERANGE;
	}
	*chunk = rproto_chunk_index(r->key - b->offset);
	return 0;
}

static int rproto_register_check(const struct rproto_register *r,
				 const struct rproto_block *blocks, uint32_t nb,
				 struct mig_error **errp)
{
	const struct rproto_block *b;
	uint64_t chunk;
	int ret;

	if (r->current_index >= nb) {
		mig_error_setg(errp,
			       "rdma: 'register' bad block index %" PRIu32
			       " (vs %" PRIu32 ")",
			       r->current_index, nb);
		return -ENOENT;
	}
	b = &blocks[r->current_index];
	ret = rproto_register_chunk(r, b, &chunk, errp);
	if (ret)
		return ret;
	if (r->chunks >= rproto_nb_chunks(b->length) - chunk) {
		mig_error_setg(errp,
			       "rdma: bad chunk count for block %s "
			       "chunk: %" PRIx64 " chunks: %" PRIx64,
			       b->name, chunk, r->chunks);
		return -ERANGE;
	}
	return 0;
}

int rproto_register_decode(const uint8_t *data, const struct rproto_header *h,
			   const struct rproto_block *blocks, uint32_t nb,
			   struct rproto_register *out, uint32_t max_out,
			   struct mig_error **errp)
{
	if (h->repeat > max_out ||
	    (uint64_t)h->repeat * RPROTO_REGISTER_SIZE > h->len) {
		mig_error_setg(errp,
			       "rdma: 'register' message of %" PRIu32
			       " bytes cannot hold %" PRIu32 " requests",
			       h->len, h->repeat);
		return -EIO;
	}
	for (uint32_t i = 0; i < h->repeat; i++) {
		const uint8_t *p = data + (size_t)i * RPROTO_REGISTER_SIZE;
		int ret;

		out[i].key = get_be64(p);
		out[i].current_index = get_be32(p + 8);
		out[i].chunks = get_be64(p + 16);
		ret = rproto_register_check(&out[i], blocks, nb, errp);
		if (ret)
			return ret;
	}
	return 0;
}

void rproto_register_result_encode(const struct rproto_register_result *r,
				   uint8_t out[RPROTO_REGISTER_RESULT_SIZE])
{
	put_be32(out, r->rkey);
	put_be32(out + 4, 0);
	put_be64(out + 8, r->host_addr);
}

int rproto_register_result_decode(const uint8_t *data,
				  const struct rproto_header *h, uint32_t i,
				  struct rproto_register_result *out,
				  struct mig_error **errp)
{
	const uint8_t *p;

	if (i >= h->repeat ||
	    (uint64_t)(i + 1) * RPROTO_REGISTER_RESULT_SIZE > h->len) {
		mig_error_setg(errp,
			       "rdma: 'register result' message of %" PRIu32
			       " bytes has no entry %" PRIu32,
			       h->len, i);
		return -EIO;
	}
	p = data + (size_t)i * RPROTO_REGISTER_RESULT_SIZE;
	out->rkey = get_be32(p);
	out->host_addr = get_be64(p + 8);
	return 0;
}

/* --- chunks and work request ids ---------------------------------------- */

void rproto_chunk_range(uint64_t block_len, uint64_t first, uint64_t extra,
			uint64_t *start, uint64_t *end)
{
	uint64_t nb = rproto_nb_chunks(block_len);
	uint64_t last;

	if (first >= nb) {
		*start = *end = block_len;
		return;
	}
	last = extra >= nb - first ? nb - 1 : first + extra;
	*start = first << RPROTO_CHUNK_SHIFT;
	if (*start > block_len)
		*start = block_len;
	if (last + 1 > (UINT64_MAX >> RPROTO_CHUNK_SHIFT))
		*end = block_len;
	else
		*end = (last + 1) << RPROTO_CHUNK_SHIFT;
	if (*end > block_len)
		*end = block_len;
}

bool rproto_can_merge(int cur_idx, uint64_t cur_off, uint64_t cur_len, int idx,
		      uint64_t off, uint64_t len, uint64_t block_len)
{
	uint64_t chunk_end;

	if (cur_idx < 0 || !cur_len || idx != cur_idx)
		return false;
	if (off != cur_off + cur_len || off > block_len ||
	    len > block_len - off)
		return false;
	chunk_end = (rproto_chunk_index(cur_off) + 1) << RPROTO_CHUNK_SHIFT;
	if (chunk_end > block_len)
		chunk_end = block_len;
	return off + len <= chunk_end;
}

uint64_t rproto_wrid(uint32_t type, uint32_t block, uint64_t chunk)
{
	return (uint64_t)(type & 0xffff) | (uint64_t)(block & 0x3fff) << 16 |
	       chunk << 30;
}

void rproto_wrid_split(uint64_t wrid, uint32_t *type, uint32_t *block,
		       uint64_t *chunk)
{
	*type = wrid & 0xffff;
	*block = (wrid >> 16) & 0x3fff;
	*chunk = wrid >> 30;
}
