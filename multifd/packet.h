/* packet.h — QEMU's multifd wire structures: the 64-byte per-channel
 * handshake (MultiFDInit_t) and the 1344-byte page packet header
 * (MultiFDPacket_t, 10.0 layout: 320 bytes + 128 be64 offsets, normal
 * offsets first, then zero-page offsets). Encoders write every byte;
 * decoders check everything QEMU checks before anything is used.
 * Pure functions: any thread. */
#ifndef MIGD_MULTIFD_PACKET_H
#define MIGD_MULTIFD_PACKET_H

#include <stdint.h>

#include "util/error.h"

#define MFD_MAGIC 0x11223344u
#define MFD_VERSION 1u
#define MFD_INIT_SIZE 64
#define MFD_PAGE_SIZE 4096u
#define MFD_PAGE_COUNT 128u /* 512 KiB / 4 KiB */
#define MFD_HDR_SIZE 320
/* magic, version, flags: what a receiver reads first to tell a page packet
 * from a 10.0 device-state packet. */
#define MFD_COMMON_SIZE 12
#define MFD_PACKET_SIZE (MFD_HDR_SIZE + 8 * MFD_PAGE_COUNT) /* 1344 */
#define MFD_NAME_SIZE 256

#define MFD_FLAG_SYNC 0x01u
#define MFD_FLAG_ZLIB 0x02u
#define MFD_FLAG_ZSTD 0x04u
#define MFD_FLAG_COMPRESSION_MASK 0x3Eu
#define MFD_FLAG_DEVICE_STATE 0x40u

struct mfd_init {
	uint8_t uuid[16];
	uint8_t id;
};

struct mfd_packet {
	uint32_t flags;
	uint32_t pages_alloc;
	uint32_t normal_pages;
	uint32_t next_packet_size;
	uint64_t packet_num;
	uint32_t zero_pages;
	char ramblock[MFD_NAME_SIZE];	 /* NUL-terminated after decode */
	uint64_t offset[MFD_PAGE_COUNT]; /* normal first, then zero */
};

void mfd_init_encode(const struct mfd_init *in, uint8_t out[MFD_INIT_SIZE]);
/* Checks magic and version. 0 or -EINVAL with *errp. */
int mfd_init_decode(const uint8_t in[MFD_INIT_SIZE], struct mfd_init *out,
		    struct mig_error **errp);
/* The destination's checks on a decoded init packet: the UUID must equal
 * ours and id < channels (QEMU only rejects id > channels, then indexes its
 * array with id == channels; we reject both). 0 or -EINVAL with *errp. */
int mfd_init_check(const struct mfd_init *in, const uint8_t uuid[16],
		   unsigned int channels, struct mig_error **errp);

/* Writes all MFD_PACKET_SIZE bytes: offset[0 .. normal + zero) (at most
 * MFD_PAGE_COUNT), zeros everywhere else, the name cut to 255 bytes so the
 * wire copy is NUL-terminated. A 10.0 SYNC packet is flags = SYNC with
 * every other field 0 (what 10.0 sends; 9.2+ senders never fill RAM fields
 * in SYNC packets). */
void mfd_packet_encode(const struct mfd_packet *p,
		       uint8_t out[MFD_PACKET_SIZE]);
/* Checks magic, version, pages_alloc <= MFD_PAGE_COUNT, normal <= alloc,
 * zero <= alloc - normal, that no DEVICE_STATE flag is set, and
 * NUL-terminates the name (byte 255 is forced to 0, as QEMU does: a
 * 255-character name is accepted). Offsets past normal + zero decode as 0.
 * Offsets are the caller's to check against the block. Fields are taken as
 * sent: 7.2 SYNC packets carry a stale next_packet_size and name with
 * normal_pages == 0, so "no payload" is the caller's reading of
 * normal_pages == 0. 0 or -EINVAL with QEMU 10.0's messages in *errp. */
int mfd_packet_decode(const uint8_t in[MFD_PACKET_SIZE], struct mfd_packet *p,
		      struct mig_error **errp);
/* The first MFD_COMMON_SIZE bytes alone (magic, version, no DEVICE_STATE):
 * lets a receiver stop before reading the rest. *flags gets the flags.
 * mfd_packet_decode() makes the same checks. 0 or -EINVAL with *errp. */
int mfd_packet_decode_common(const uint8_t in[MFD_COMMON_SIZE], uint32_t *flags,
			     struct mig_error **errp);
/* The receiver's check that the compression bits are its own method
 * (MFD_FLAG_ZLIB, MFD_FLAG_ZSTD or 0). chan_id is for the message.
 * 0 or -EINVAL with *errp. */
int mfd_packet_check_method(const struct mfd_packet *p, unsigned int chan_id,
			    uint32_t method, struct mig_error **errp);

#endif
