/* postcopy_proto.h — postcopy's wire messages, byte for byte as QEMU 9.0/10.0
 * (migration/savevm.c, migration.c, ram.c): the payloads of the main
 * stream's QEMU_VM_COMMAND postcopy sub-commands, the return-path messages
 * (destination to source) and the RECV_BITMAP body, plus the destination's
 * postcopy command state machine. Pure functions over byte buffers: any
 * thread. Framing (the 0x08 byte, be16 cmd, be16 len) is vms_put_command's
 * and the loader's; these codecs see the payload only.
 *
 * Layouts (all integers big-endian unless said otherwise):
 *   POSTCOPY_ADVISE (3)  len 0 (dirty-bitmaps only) or 16:
 *                        u64 RAM pagesize summary (OR of block page
 *                        sizes), u64 target page size
 *   POSTCOPY_LISTEN (4), POSTCOPY_RUN (5), POSTCOPY_RESUME (9): len 0
 *   POSTCOPY_RAM_DISCARD (6): u8 version 0, u8 namelen, name, u8 0, then
 *                        N >= 1 pairs of u64 start, u64 length (bytes,
 *                        block-relative); QEMU sends <= 12 pairs each
 *   PACKAGED (7)         len 4: u32 length; that many bytes of a nested
 *                        stream follow the command (LISTEN, the device
 *                        sections, PINGs, RUN)
 *   RECV_BITMAP (10)     u8 namelen, name; len must be namelen + 1
 *   Return path: u16 type, u16 len, payload (len <= 512 on QEMU's source)
 *     SHUT 1 (4: u32 error, 0 = fine)   PONG 2 (4: u32 ping value)
 *     REQ_PAGES_ID 3 (13 + namelen: u64 start, u32 len, u8 namelen, name)
 *     REQ_PAGES 4 (12: u64 start, u32 len; block of the previous _ID)
 *     RECV_BITMAP 5 (1 + namelen: u8 namelen, name), followed on the same
 *       stream by the bitmap body: u64 size, size bytes of bitmap (one bit
 *       per target page, little-endian u64 words, size rounded up to 8),
 *       u64 end mark 0x0123456789abcdef
 *     RESUME_ACK 6 (4: u32 1)   SWITCHOVER_ACK 7 (0) */
#ifndef MIGD_MULTIFD_POSTCOPY_PROTO_H
#define MIGD_MULTIFD_POSTCOPY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "multifd/vmstate.h"
#include "util/error.h"

#define PC_NAME_MAX 255
#define PC_DISCARD_VERSION 0
#define PC_DISCARD_MAX_PER_CMD 12 /* QEMU's MAX_DISCARDS_PER_COMMAND */
#define PC_DISCARD_PAYLOAD_MAX (3 + PC_NAME_MAX + 16 * PC_DISCARD_MAX_PER_CMD)
/* migd's cap on a PACKAGED blob: QEMU 9.0+ accepts up to UINT32_MAX
 * (MAX_VM_CMD_PACKAGED_SIZE), which would let a peer make us allocate
 * 4 GiB. Machine 'none' packages a few hundred bytes. */
#define PC_PACKAGED_MAX (1u << 24)
#define PC_RESUME_ACK_VALUE 1u
#define PC_RECV_BITMAP_ENDING 0x0123456789abcdefULL
#define PC_RP_PAYLOAD_MAX 512 /* the source's receive buffer */
#define PC_RP_HEADER 4

enum pc_rp_type {
	PC_RP_INVALID = 0,
	PC_RP_SHUT = 1,
	PC_RP_PONG = 2,
	PC_RP_REQ_PAGES_ID = 3,
	PC_RP_REQ_PAGES = 4,
	PC_RP_RECV_BITMAP = 5,
	PC_RP_RESUME_ACK = 6,
	PC_RP_SWITCHOVER_ACK = 7,
	PC_RP_MAX = 8,
};

/* ---- main-stream commands ------------------------------------------- */

/* QEMU's first checks on any command: "MIG_CMD 0x%x unknown (len 0x%x)",
 * "%s received with bad length - expecting %zu, got %d". */
int pc_cmd_check(uint16_t cmd, uint16_t len, struct mig_error **errp);
const char *pc_cmd_name(uint16_t cmd);

struct pc_advise {
	bool ram; /* false: the 0-byte (dirty-bitmaps only) form */
	uint64_t pagesize_summary;
	uint64_t target_page_size;
};

/* OR of every block's page size, what ADVISE carries. */
uint64_t pc_pagesize_summary(const uint64_t *page_sizes, unsigned n);
/* Writes 0 or 16 bytes; returns the payload length. */
uint16_t pc_advise_encode(const struct pc_advise *a, uint8_t out[16]);
/* Decodes and checks against the destination's postcopy-ram capability and
 * page sizes, with QEMU's messages. local_* are ignored when !a->ram. */
int pc_advise_decode(const uint8_t *p, uint16_t len, bool postcopy_ram,
		     uint64_t local_summary, uint64_t local_target_page_size,
		     struct pc_advise *a, struct mig_error **errp);

struct pc_range {
	uint64_t start;
	uint64_t length;
};

/* One DISCARD payload for 1..PC_DISCARD_MAX_PER_CMD ranges of block.
 * Returns the payload length, or -EINVAL (bad name/count) / -ENOBUFS. */
int pc_discard_encode(const char *block, const struct pc_range *r, unsigned n,
		      uint8_t *out, size_t cap);

/* A decoded DISCARD: pairs points into the decoded payload. */
struct pc_discard {
	char name[PC_NAME_MAX + 1];
	unsigned count;
	const uint8_t *pairs;
};

int pc_discard_decode(const uint8_t *p, uint16_t len, struct pc_discard *d,
		      struct mig_error **errp);
void pc_discard_get(const struct pc_discard *d, unsigned i, struct pc_range *r);
/* ram_discard_range's checks for one pair against the named block. */
int pc_discard_range_check(const char *block, const struct pc_range *r,
			   uint64_t used_length, uint64_t page_size,
			   struct mig_error **errp);

void pc_packaged_encode(uint32_t length, uint8_t out[4]);
/* "Unreasonably large packaged state: %zu" above max (<= PC_PACKAGED_MAX
 * is a sensible max). */
int pc_packaged_decode(const uint8_t *p, uint16_t len, uint32_t max,
		       uint32_t *length, struct mig_error **errp);

/* RECV_BITMAP command (source asks the destination for a block's received
 * bitmap during recovery). Encode returns the payload length or -errno. */
int pc_recv_bitmap_cmd_encode(const char *block, uint8_t *out, size_t cap);
int pc_recv_bitmap_cmd_decode(const uint8_t *p, uint16_t len,
			      char name[PC_NAME_MAX + 1],
			      struct mig_error **errp);

/* The destination's PostcopyState, advanced by the commands that change
 * it. RESUME, PING and the rest leave it alone (0). QEMU's numbers appear
 * in its "in wrong postcopy state (%d)" messages. */
enum pc_incoming_state {
	PC_INCOMING_NONE = 0,
	PC_INCOMING_ADVISE = 1,
	PC_INCOMING_DISCARD = 2,
	PC_INCOMING_LISTENING = 3,
	PC_INCOMING_RUNNING = 4,
	PC_INCOMING_END = 5,
};

int pc_incoming_step(enum pc_incoming_state *ps, uint16_t cmd,
		     struct mig_error **errp);

/* ---- return path ------------------------------------------------------ */

struct pc_rp_msg {
	enum pc_rp_type type;
	uint32_t value; /* SHUT, PONG, RESUME_ACK */
	uint64_t start; /* REQ_PAGES(_ID) */
	uint32_t len;
	bool has_name; /* REQ_PAGES_ID, RECV_BITMAP */
	char name[PC_NAME_MAX + 1];
};

/* Header checks exactly as source_return_path_thread (QEMU's "with"
 * "incorrect" message really has no space). */
int pc_rp_header_decode(const uint8_t hdr[PC_RP_HEADER], uint16_t *type,
			uint16_t *len, struct mig_error **errp);
/* Payload of a header that passed pc_rp_header_decode. A RESUME_ACK other
 * than 1 is refused ("illegal resume_ack value %u"); a SHUT with an error
 * decodes fine (the caller reports "Sibling indicated error %d"). */
int pc_rp_decode(uint16_t type, const uint8_t *p, uint16_t len,
		 struct pc_rp_msg *m, struct mig_error **errp);
/* Header and payload; returns the total length or -EINVAL / -ENOBUFS. */
int pc_rp_encode(const struct pc_rp_msg *m, uint8_t *out, size_t cap);

/* RECV_BITMAP body: bytes of bitmap for a block (QEMU's
 * ROUND_UP(DIV_ROUND_UP(pages, 8), 8)). */
uint64_t pc_recv_bitmap_size(uint64_t used_length, uint64_t target_page_size);
/* Writes u64 size, the bitmap, the end mark; returns 16 + size or
 * -ENOBUFS. le_bits holds size bytes. */
int64_t pc_recv_bitmap_body_encode(const uint8_t *le_bits, uint64_t size,
				   uint8_t *out, size_t cap);
/* The source's checks while reading a body, with QEMU's messages. */
int pc_recv_bitmap_check_size(const char *block, uint64_t got,
			      uint64_t expected, struct mig_error **errp);
int pc_recv_bitmap_check_end(const char *block, uint64_t end_mark,
			     struct mig_error **errp);

#endif
