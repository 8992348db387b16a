/* rdma_proto.h — QEMU's RDMA migration control protocol on the wire
 * (qemu-migration-facts.md §5): the 16-byte control header, the message
 * payloads, the connect-time capabilities, chunk arithmetic and work
 * request ids. Pure functions: encode into caller buffers, decode hostile
 * bytes into typed structs with every bound checked. Any thread. */
#ifndef MIGD_RDMA_PROTO_H
#define MIGD_RDMA_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mig_error;

#define RPROTO_HEADER_SIZE 16
#define RPROTO_MAX_BUFFER (512 * 1024) /* header included */
#define RPROTO_MAX_DATA (RPROTO_MAX_BUFFER - RPROTO_HEADER_SIZE)
#define RPROTO_MAX_COMMANDS 4096
#define RPROTO_VERSION 1
#define RPROTO_CAP_PIN_ALL 0x01u
#define RPROTO_KNOWN_CAPS RPROTO_CAP_PIN_ALL
#define RPROTO_CHUNK_SHIFT 20
#define RPROTO_CHUNK_SIZE (1ull << RPROTO_CHUNK_SHIFT)
#define RPROTO_MERGE_MAX (2u * 1024 * 1024)
#define RPROTO_SIGNALED_SEND_MAX (RPROTO_MERGE_MAX / 4096)
#define RPROTO_SEND_INCREMENT 32768 /* QEMU_FILE bytes per message */
#define RPROTO_RESOLVE_TIMEOUT_MS 10000
#define RPROTO_RAM_SAVE_FLAG_HOOK 0x80 /* be64 record in the main stream */

/* Wire sizes. */
#define RPROTO_CAPS_SIZE 8
#define RPROTO_DEST_BLOCK_SIZE 32
#define RPROTO_COMPRESS_SIZE 24
#define RPROTO_REGISTER_SIZE 24
#define RPROTO_REGISTER_RESULT_SIZE 16

/* Message types (docs/rdma.txt numbers them from 1). */
enum rproto_type {
	RPROTO_NONE,
	RPROTO_ERROR,
	RPROTO_READY,
	RPROTO_QEMU_FILE,
	RPROTO_RAM_BLOCKS_REQUEST,
	RPROTO_RAM_BLOCKS_RESULT,
	RPROTO_COMPRESS,
	RPROTO_REGISTER_REQUEST,
	RPROTO_REGISTER_RESULT,
	RPROTO_REGISTER_FINISHED,
	RPROTO_UNREGISTER_REQUEST,
	RPROTO_UNREGISTER_FINISHED,
	RPROTO_TYPE_COUNT,
};

struct rproto_header {
	uint32_t len; /* data bytes after the header */
	uint32_t type;
	uint32_t repeat; /* same-type commands in the data */
};

struct rproto_caps {
	uint32_t version;
	uint32_t flags;
};

/* RAM_BLOCKS_RESULT entry (QEMU's RDMADestBlock). */
struct rproto_dest_block {
	uint64_t remote_host_addr;
	uint64_t offset; /* the block's ram_addr_t offset on the destination */
	uint64_t length;
	uint32_t remote_rkey; /* pin-all only */
};

/* COMPRESS: fill [offset, offset + length) of block_idx with value. */
struct rproto_compress {
	uint32_t value;
	uint32_t block_idx;
	uint64_t offset; /* ram_addr_t space of the destination */
	uint64_t length;
};

/* REGISTER_REQUEST / UNREGISTER_REQUEST entry. key is the address in the
 * destination's ram_addr_t space for RAM blocks, else a chunk number;
 * chunks is how many chunks *after* the first to register. */
struct rproto_register {
	uint64_t key;
	uint32_t current_index;
	uint64_t chunks;
};

struct rproto_register_result {
	uint32_t rkey;
	uint64_t host_addr;
};

/* The receiver's description of one of its blocks, to validate against. */
struct rproto_block {
	const char *name;
	uint64_t offset; /* ram_addr_t */
	uint64_t length;
	bool is_ram_block;
};

/* QEMU's names ("QEMU FILE", ...) or "??BAD CONTROL VALUE??". */
const char *rproto_type_name(uint32_t type);

void rproto_header_encode(const struct rproto_header *h,
			  uint8_t out[RPROTO_HEADER_SIZE]);
/* Decodes a received message of byte_len bytes: the header must be whole,
 * len within the buffer limit and equal to what arrived, type known,
 * repeat <= 4096. 0 or -EINVAL/-EIO with *errp. */
int rproto_header_decode(const uint8_t *buf, size_t byte_len,
			 struct rproto_header *h, struct mig_error **errp);
/* -EIO with QEMU's message unless h is of type expecting (an ERROR always
 * fails; *got_error tells the caller the peer reported one). */
int rproto_expect(const struct rproto_header *h, uint32_t expecting,
		  bool *got_error, struct mig_error **errp);

void rproto_caps_encode(const struct rproto_caps *c,
			uint8_t out[RPROTO_CAPS_SIZE]);
/* Destination side of CONNECT_REQUEST: version must be 1; unknown flag
 * bits are dropped (they are what accept returns). */
int rproto_caps_decode(const uint8_t *buf, size_t len, struct rproto_caps *c,
		       struct mig_error **errp);

void rproto_dest_block_encode(const struct rproto_dest_block *b,
			      uint8_t out[RPROTO_DEST_BLOCK_SIZE]);
/* Source side of RAM_BLOCKS_RESULT: exactly nb_local entries, each of the
 * local block's length. out has nb_local entries. */
int rproto_dest_blocks_decode(const uint8_t *data,
			      const struct rproto_header *h,
			      const struct rproto_block *local,
			      uint32_t nb_local, struct rproto_dest_block *out,
			      struct mig_error **errp);

void rproto_compress_encode(const struct rproto_compress *c,
			    uint8_t out[RPROTO_COMPRESS_SIZE]);
/* Destination side: block index known, range inside the block. */
int rproto_compress_decode(const uint8_t *data, const struct rproto_header *h,
			   const struct rproto_block *blocks, uint32_t nb,
			   struct rproto_compress *out,
			   struct mig_error **errp);

void rproto_register_encode(const struct rproto_register *r,
			    uint8_t out[RPROTO_REGISTER_SIZE]);
/* Destination side: h->repeat entries (<= max_out) fill out; every index,
 * address and chunk range is checked against blocks. */
int rproto_register_decode(const uint8_t *data, const struct rproto_header *h,
			   const struct rproto_block *blocks, uint32_t nb,
			   struct rproto_register *out, uint32_t max_out,
			   struct mig_error **errp);

void rproto_register_result_encode(const struct rproto_register_result *r,
				   uint8_t out[RPROTO_REGISTER_RESULT_SIZE]);
/* Source side: entry i of a REGISTER_RESULT (i < repeat). */
int rproto_register_result_decode(const uint8_t *data,
				  const struct rproto_header *h, uint32_t i,
				  struct rproto_register_result *out,
				  struct mig_error **errp);

/* Chunk arithmetic (1 MiB chunks from the block's start). */
static inline uint64_t rproto_chunk_index(uint64_t off_in_block)
{
	return off_in_block >> RPROTO_CHUNK_SHIFT;
}

/* Chunks a block is tracked with: QEMU sizes its tables as the index of
 * the byte just past the end, plus one. */
static inline uint64_t rproto_nb_chunks(uint64_t length)
{
	return (length >> RPROTO_CHUNK_SHIFT) + 1;
}

/* The "chunks" field for a write of len bytes: extra chunks after the
 * first, i.e. ceil(len / 1 MiB) - 1 (0 for len <= 1 MiB). */
static inline uint64_t rproto_extra_chunks(uint64_t len)
{
	return len ? (len - 1) >> RPROTO_CHUNK_SHIFT : 0;
}

/* [*start, *end) in block offsets of chunks first..first+extra, clamped to
 * the block's length. */
void rproto_chunk_range(uint64_t block_len, uint64_t first, uint64_t extra,
			uint64_t *start, uint64_t *end);

/* Whether a page run [off, off + len) of block index idx extends the
 * pending merged write (cur_*) without leaving its chunk or the block
 * (QEMU's rule); the caller also flushes at RPROTO_MERGE_MAX. */
bool rproto_can_merge(int cur_idx, uint64_t cur_off, uint64_t cur_len, int idx,
		      uint64_t off, uint64_t len, uint64_t block_len);

/* Work request ids: type in bits 0-15, block in 16-29, chunk in 30-63. */
uint64_t rproto_wrid(uint32_t type, uint32_t block, uint64_t chunk);
void rproto_wrid_split(uint64_t wrid, uint32_t *type, uint32_t *block,
		       uint64_t *chunk);

#endif
