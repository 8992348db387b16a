/* packet.c — encode and decode QEMU's multifd init packet (64 bytes) and
 * page packet (1344 bytes, 10.0 layout), byte by byte, big-endian. Owns
 * the wire layout and the checks QEMU makes on it; not the RAM block
 * lookup or offset checks (the receiver's). Pure functions: any thread. */
#include "multifd/packet.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "multifd/byteorder.h"

/* Init packet (MultiFDInit_t): offsets of its fields. */
enum {
	INIT_MAGIC = 0,
	INIT_VERSION = 4,
	INIT_UUID = 8,
	INIT_ID = 24,
	INIT_UNUSED = 25, /* 7 + 32 bytes, zero */
};

/* Page packet (MultiFDPacket_t, 10.0): offsets of its fields. */
enum {
	PKT_MAGIC = 0,
	PKT_VERSION = 4,
	PKT_FLAGS = 8,
	PKT_PAGES_ALLOC = 12,
	PKT_NORMAL_PAGES = 16,
	PKT_NEXT_SIZE = 20,
	PKT_PACKET_NUM = 24,
	PKT_ZERO_PAGES = 32,
	PKT_UNUSED = 36, /* 4 + 24 bytes, zero */
	PKT_NAME = 64,
	PKT_OFFSETS = PKT_NAME + MFD_NAME_SIZE,
};

_Static_assert(INIT_UNUSED + 7 + 32 == MFD_INIT_SIZE, "MultiFDInit_t is 64");
_Static_assert(PKT_UNUSED + 4 + 24 == PKT_NAME, "unused ends at the name");
_Static_assert(PKT_OFFSETS == MFD_HDR_SIZE, "packet header is 320 bytes");
_Static_assert(MFD_PACKET_SIZE == 1344, "packet is 1344 bytes");
_Static_assert(MFD_COMMON_SIZE == PKT_PAGES_ALLOC, "common part is 12");
_Static_assert((MFD_PAGE_COUNT * MFD_PAGE_SIZE) == 512 * 1024,
	       "a packet carries 512 KiB");

void mfd_init_encode(const struct mfd_init *in, uint8_t out[MFD_INIT_SIZE])
{
	memset(out, 0, MFD_INIT_SIZE);
	mfd_store_be32(out + INIT_MAGIC, MFD_MAGIC);
	mfd_store_be32(out + INIT_VERSION, MFD_VERSION);
	memcpy(out + INIT_UUID, in->uuid, sizeof(in->uuid));
	out[INIT_ID] = in->id;
}

int mfd_init_decode(const uint8_t in[MFD_INIT_SIZE], struct mfd_init *out,
		    struct mig_error **errp)
{
	uint32_t magic = mfd_load_be32(in + INIT_MAGIC);
	uint32_t version = mfd_load_be32(in + INIT_VERSION);

	if (magic != MFD_MAGIC) {
		mig_error_setg(errp,
			       "multifd: received packet magic %x expected %x",
			       magic, MFD_MAGIC);
		return -EINVAL;
	}
	if (version != MFD_VERSION) {
		mig_error_setg(
			errp, "multifd: received packet version %u expected %u",
			version, MFD_VERSION);
		return -EINVAL;
	}
	memcpy(out->uuid, in + INIT_UUID, sizeof(out->uuid));
	out->id = in[INIT_ID];
	return 0;
}

/* QEMU's canonical UUID text: 8-4-4-4-12 lowercase hex digits. */
static void uuid_format(const uint8_t uuid[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[uuid[i] >> 4];
		out[j++] = hex[uuid[i] & 0xf];
	}
	out[j] = '\0';
}

int mfd_init_check(const struct mfd_init *in, const uint8_t uuid[16],
		   unsigned int channels, struct mig_error **errp)
{
	char got[37], want[37];

	if (memcmp(in->uuid, uuid, sizeof(in->uuid)) != 0) {
		uuid_format(in->uuid, got);
		uuid_format(uuid, want);
		mig_error_setg(errp,
			       "multifd: received uuid '%s' and expected uuid "
			       "'%s' for channel %d",
			       got, want, (int)(int8_t)in->id);
		return -EINVAL;
	}
	if (in->id >= channels) {
		mig_error_setg(
			errp,
			"multifd: received channel id %u is greater than "
			"number of channels %u",
			in->id, channels);
		return -EINVAL;
	}
	return 0;
}

void mfd_packet_encode(const struct mfd_packet *p, uint8_t out[MFD_PACKET_SIZE])
{
	uint64_t used = (uint64_t)p->normal_pages + p->zero_pages;

	if (used > MFD_PAGE_COUNT)
		used = MFD_PAGE_COUNT; /* caller bug: never write past out */
	memset(out, 0, MFD_PACKET_SIZE);
	mfd_store_be32(out + PKT_MAGIC, MFD_MAGIC);
	mfd_store_be32(out + PKT_VERSION, MFD_VERSION);
	mfd_store_be32(out + PKT_FLAGS, p->flags);
	mfd_store_be32(out + PKT_PAGES_ALLOC, p->pages_alloc);
	mfd_store_be32(out + PKT_NORMAL_PAGES, p->normal_pages);
	mfd_store_be32(out + PKT_NEXT_SIZE, p->next_packet_size);
	mfd_store_be64(out + PKT_PACKET_NUM, p->packet_num);
	mfd_store_be32(out + PKT_ZERO_PAGES, p->zero_pages);
	/* At most 255 bytes: the wire name is always NUL-terminated. */
	memcpy(out + PKT_NAME, p->ramblock,
	       strnlen(p->ramblock, MFD_NAME_SIZE - 1));
	for (uint64_t i = 0; i < used; i++)
		mfd_store_be64(out + PKT_OFFSETS + 8 * i, p->offset[i]);
}

int mfd_packet_decode_common(const uint8_t in[MFD_COMMON_SIZE], uint32_t *flags,
			     struct mig_error **errp)
{
	uint32_t magic = mfd_load_be32(in + PKT_MAGIC);
	uint32_t version = mfd_load_be32(in + PKT_VERSION);

	if (magic != MFD_MAGIC) {
		mig_error_setg(errp,
			       "multifd: received packet magic %x, expected %x",
			       magic, MFD_MAGIC);
		return -EINVAL;
	}
	if (version != MFD_VERSION) {
		mig_error_setg(
			errp,
			"multifd: received packet version %u, expected %u",
			version, MFD_VERSION);
		return -EINVAL;
	}
	*flags = mfd_load_be32(in + PKT_FLAGS);
	/* QEMU 10.0 hands these to a device's loader; we hold no devices
	 * that take device state over multifd, so QEMU has no message. */
	if (*flags & MFD_FLAG_DEVICE_STATE) {
		mig_error_setg(errp,
			       "multifd: received device state packet (flags "
			       "%x), which is not supported",
			       *flags);
		return -EINVAL;
	}
	return 0;
}

/* pages_alloc, normal_pages and zero_pages against each other, with QEMU
 * 10.0's messages (multifd_ram_unfill_packet). */
static int check_page_counts(const struct mfd_packet *p,
			     struct mig_error **errp)
{
	if (p->pages_alloc > MFD_PAGE_COUNT) {
		mig_error_setg(errp,
			       "multifd: received packet with %u pages, "
			       "expected %u",
			       p->pages_alloc, MFD_PAGE_COUNT);
		return -EINVAL;
	}
	if (p->normal_pages > p->pages_alloc) {
		mig_error_setg(errp,
			       "multifd: received packet with %u non-zero "
			       "pages, which exceeds maximum expected pages %u",
			       p->normal_pages, p->pages_alloc);
		return -EINVAL;
	}
	if (p->zero_pages > p->pages_alloc - p->normal_pages) {
		mig_error_setg(errp,
			       "multifd: received packet with %u zero pages, "
			       "expected maximum %u",
			       p->zero_pages, p->pages_alloc - p->normal_pages);
		return -EINVAL;
	}
	return 0;
}

int mfd_packet_decode(const uint8_t in[MFD_PACKET_SIZE], struct mfd_packet *p,
		      struct mig_error **errp)
{
	uint32_t used;
	int ret;

	memset(p, 0, sizeof(*p));
	ret = mfd_packet_decode_common(in, &p->flags, errp);
	if (ret < 0)
		return ret;
	p->pages_alloc = mfd_load_be32(in + PKT_PAGES_ALLOC);
	p->normal_pages = mfd_load_be32(in + PKT_NORMAL_PAGES);
	p->next_packet_size = mfd_load_be32(in + PKT_NEXT_SIZE);
	p->packet_num = mfd_load_be64(in + PKT_PACKET_NUM);
	p->zero_pages = mfd_load_be32(in + PKT_ZERO_PAGES);
	ret = check_page_counts(p, errp);
	if (ret < 0)
		return ret;
	/* Up to the first NUL, at most 255 bytes: byte 255 is ignored as
	 * QEMU ignores it, and the struct stays canonical for re-encoding. */
	memcpy(p->ramblock, in + PKT_NAME,
	       strnlen((const char *)in + PKT_NAME, MFD_NAME_SIZE - 1));
	used = p->normal_pages + p->zero_pages; /* <= pages_alloc <= 128 */
	for (uint32_t i = 0; i < used; i++)
		p->offset[i] = mfd_load_be64(in + PKT_OFFSETS + 8 * i);
	return 0;
}

int mfd_packet_check_method(const struct mfd_packet *p, unsigned int chan_id,
			    uint32_t method, struct mig_error **errp)
{
	uint32_t got = p->flags & MFD_FLAG_COMPRESSION_MASK;

	if (got != method) {
		mig_error_setg(
			errp, "multifd %u: flags received %x flags expected %x",
			chan_id, got, method);
		return -EINVAL;
	}
	return 0;
}
