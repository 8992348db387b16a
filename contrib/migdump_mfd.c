/* migdump_mfd.c — decodes one multifd channel capture for migdump
 * (reference §2): the 64-byte init packet, then page packets (fields
 * checked at their offsets, then parsed by multifd/packet.c) with their
 * payloads, and 10.0 device-state packets. normal_pages == 0 means no
 * payload whatever next_packet_size says (7.2's stale SYNC packets).
 * Single-threaded. */
#include "contrib/migdump_priv.h"

#include <errno.h>
#include <string.h>

#include "multifd/byteorder.h"
#include "multifd/packet.h"

#define DEV_STATE_SIZE (MFD_COMMON_SIZE + MFD_NAME_SIZE + 8) /* 276 */
#define COMPRESSED_MAX (2u * MFD_PAGE_COUNT * MFD_PAGE_SIZE)
#define PAGE_SIZE_MFD ((uint64_t)MFD_PAGE_SIZE)

struct mfd_dec {
	struct mdump_cur c;
	const struct mdump_opts *o;
	struct mdump_stream *s; /* block list, may be NULL */
	struct mdump_channel *ch;
	bool has_method;
};

static int check_common(struct mfd_dec *d, const uint8_t *p, uint64_t off,
			const char *what)
{
	uint32_t magic = mfd_load_be32(p), version = mfd_load_be32(p + 4);

	if (magic != MFD_MAGIC)
		return mdump_fail(&d->c, off,
				  "%s magic expected 0x%08x, found 0x%08x",
				  what, MFD_MAGIC, magic);
	if (version != MFD_VERSION)
		return mdump_fail(&d->c, off + 4,
				  "%s version expected %u, found %u", what,
				  MFD_VERSION, version);
	return 0;
}

static int decode_init(struct mfd_dec *d)
{
	struct mig_error *err = NULL;
	struct mfd_init in;
	const uint8_t *p;
	int ret;

	if (!mdump_left(&d->c))
		return mdump_short_before(&d->c, "the multifd init packet");
	ret = mdump_get_bytes(&d->c, MFD_INIT_SIZE, "the multifd init packet",
			      &p);
	if (!ret)
		ret = check_common(d, p, 0, "multifd init");
	if (ret)
		return ret;
	if (mfd_init_decode(p, &in, &err)) {
		ret = mdump_fail(&d->c, 0, "multifd init: %s", err->desc);
		mig_error_free(err);
		return ret;
	}
	memcpy(d->ch->uuid, in.uuid, sizeof(in.uuid));
	d->ch->id = in.id;
	d->ch->has_init = true;
	mdump_trace(d->o, 1, 0, "multifd init channel id %u", in.id);
	return 0;
}

/* 10.0 device state (VFIO): idstr, instance, next_packet_size, payload. */
static int device_state_packet(struct mfd_dec *d, uint64_t off)
{
	const uint8_t *p;
	uint32_t next;
	int ret = mdump_get_bytes(&d->c, DEV_STATE_SIZE - MFD_COMMON_SIZE,
				  "a multifd device state packet", &p);

	if (ret)
		return ret;
	next = mfd_load_be32(p + MFD_NAME_SIZE + 4);
	ret = mdump_get_bytes(&d->c, next, "a device state packet's payload",
			      &p);
	if (ret)
		return ret;
	d->ch->packets++;
	d->ch->device_state_packets++;
	d->ch->payload_bytes += next;
	mdump_trace(d->o, 1, off, "DEVICE_STATE packet, %u bytes", next);
	return 0;
}

/* The counts, each against its bound, at its offset in the packet. */
static int check_counts(struct mfd_dec *d, const uint8_t *p, uint64_t off)
{
	uint32_t alloc = mfd_load_be32(p + 12), normal = mfd_load_be32(p + 16);
	uint32_t zero = mfd_load_be32(p + 32);

	if (alloc > MFD_PAGE_COUNT)
		return mdump_fail(&d->c, off + 12,
				  "packet pages_alloc expected <= %u, found %u",
				  MFD_PAGE_COUNT, alloc);
	if (normal > alloc)
		return mdump_fail(&d->c, off + 16,
				  "packet normal_pages expected <= %u "
				  "(pages_alloc), found %u",
				  alloc, normal);
	if (zero > alloc - normal)
		return mdump_fail(
			&d->c, off + 32,
			"packet zero_pages expected <= %u (pages_alloc - "
			"normal_pages), found %u",
			alloc - normal, zero);
	return 0;
}

static int check_offsets(struct mfd_dec *d, const struct mfd_packet *pk,
			 uint64_t off, long blk)
{
	uint64_t last = UINT64_MAX;
	const char *name = "";

	if (blk >= 0) {
		const struct mdump_block *b = &d->s->blocks[blk];

		name = b->name;
		last = b->used_length < PAGE_SIZE_MFD
			       ? 0
			       : b->used_length - PAGE_SIZE_MFD;
		if (b->used_length < PAGE_SIZE_MFD)
			return mdump_fail(&d->c, off + 64,
					  "packet ramblock expected a block "
					  "of at least one page, found '%s'",
					  name);
	}
	for (uint32_t i = 0; i < pk->normal_pages + pk->zero_pages; i++) {
		uint64_t o = pk->offset[i], at = off + MFD_HDR_SIZE + 8ull * i;

		if (o % PAGE_SIZE_MFD)
			return mdump_fail(&d->c, at,
					  "packet offset[%u] expected a "
					  "multiple of %u, found 0x%llx",
					  i, MFD_PAGE_SIZE,
					  (unsigned long long)o);
		if (o > last)
			return mdump_fail(&d->c, at,
					  "packet offset[%u] expected <= "
					  "0x%llx (the last page of '%s'), "
					  "found 0x%llx",
					  i, (unsigned long long)last, name,
					  (unsigned long long)o);
	}
	return 0;
}

/* The block a packet with pages names: -1 when there is no block list. */
static int packet_block(struct mfd_dec *d, const struct mfd_packet *pk,
			uint64_t off, long *blk)
{
	char esc[4 * MFD_NAME_SIZE];

	*blk = -1;
	if (!d->s || !d->s->has_mem_size ||
	    !(pk->normal_pages + pk->zero_pages))
		return 0;
	*blk = mdump_find_block(d->s, pk->ramblock);
	if (*blk >= 0)
		return 0;
	mdump_escape((const uint8_t *)pk->ramblock, strlen(pk->ramblock), esc,
		     sizeof(esc));
	return mdump_fail(&d->c, off + 64,
			  "packet ramblock expected one of the MEM_SIZE "
			  "blocks, found '%s'",
			  esc);
}

/* Data packets of one channel share one method (QEMU checks its own). */
static int check_method(struct mfd_dec *d, const struct mfd_packet *pk,
			uint64_t off)
{
	uint32_t m = pk->flags & MFD_FLAG_COMPRESSION_MASK;

	if (!pk->normal_pages)
		return 0;
	if (!d->has_method) {
		d->has_method = true;
		d->ch->method = m;
		return 0;
	}
	if (m == d->ch->method)
		return 0;
	return mdump_fail(
		&d->c, off + 8,
		"packet compression bits expected 0x%02x (%s, as in earlier "
		"packets), found 0x%02x (%s)",
		d->ch->method, mdump_method_name(d->ch->method), m,
		mdump_method_name(m));
}

static int payload_len(struct mfd_dec *d, const struct mfd_packet *pk,
		       uint64_t off, uint64_t *len)
{
	*len = 0;
	if (!pk->normal_pages) { /* 7.2 leaves a stale next_packet_size */
		d->ch->stale_next += pk->next_packet_size != 0;
		return 0;
	}
	if (!(pk->flags & MFD_FLAG_COMPRESSION_MASK)) {
		*len = (uint64_t)pk->normal_pages * MFD_PAGE_SIZE;
		return 0;
	}
	if (pk->next_packet_size > COMPRESSED_MAX)
		return mdump_fail(&d->c, off + 20,
				  "packet next_packet_size expected <= %u for "
				  "a compressed payload, found %u",
				  COMPRESSED_MAX, pk->next_packet_size);
	*len = pk->next_packet_size;
	return 0;
}

static void account(struct mfd_dec *d, const struct mfd_packet *pk, long blk,
		    uint64_t len, uint64_t off)
{
	struct mdump_channel *ch = d->ch;

	ch->packets++;
	ch->syncs += !!(pk->flags & MFD_FLAG_SYNC);
	ch->data_packets += pk->normal_pages + pk->zero_pages != 0;
	ch->normal += pk->normal_pages;
	ch->zero += pk->zero_pages;
	ch->payload_bytes += len;
	if (!ch->has_packet_num)
		ch->first_packet_num = pk->packet_num;
	ch->has_packet_num = true;
	ch->last_packet_num = pk->packet_num;
	if (blk >= 0) {
		d->s->blocks[blk].mfd_normal += pk->normal_pages;
		d->s->blocks[blk].mfd_zero += pk->zero_pages;
	}
	mdump_trace(d->o, pk->flags & MFD_FLAG_SYNC ? 1 : 2, off,
		    "packet %llu flags 0x%x%s normal %u zero %u next %u '%s'",
		    (unsigned long long)pk->packet_num, pk->flags,
		    pk->flags & MFD_FLAG_SYNC ? " (SYNC)" : "",
		    pk->normal_pages, pk->zero_pages, pk->next_packet_size,
		    blk >= 0 ? d->s->blocks[blk].name : "");
}

static int page_packet(struct mfd_dec *d, const uint8_t *p, uint64_t off)
{
	struct mig_error *err = NULL;
	struct mfd_packet pk;
	const uint8_t *payload;
	uint64_t len;
	long blk;
	int ret = mdump_get_bytes(&d->c, MFD_PACKET_SIZE - MFD_COMMON_SIZE,
				  "a multifd packet", &payload);

	if (!ret)
		ret = check_counts(d, p, off);
	if (ret)
		return ret;
	if (mfd_packet_decode(p, &pk, &err)) {
		ret = mdump_fail(&d->c, off, "packet: %s", err->desc);
		mig_error_free(err);
		return ret;
	}
	ret = packet_block(d, &pk, off, &blk);
	if (!ret)
		ret = check_offsets(d, &pk, off, blk);
	if (!ret)
		ret = check_method(d, &pk, off);
	if (!ret)
		ret = payload_len(d, &pk, off, &len);
	if (!ret)
		ret = mdump_get_bytes(&d->c, len, "a multifd packet's payload",
				      &payload);
	if (!ret)
		account(d, &pk, blk, len, off);
	return ret;
}

static int decode_packet(struct mfd_dec *d)
{
	uint64_t off = d->c.pos;
	const uint8_t *p;
	int ret =
		mdump_get_bytes(&d->c, MFD_COMMON_SIZE, "a multifd packet", &p);

	if (!ret)
		ret = check_common(d, p, off, "packet");
	if (ret)
		return ret;
	if (mfd_load_be32(p + 8) & MFD_FLAG_DEVICE_STATE)
		return device_state_packet(d, off);
	return page_packet(d, p, off);
}

int mdump_channel_decode(const uint8_t *buf, uint64_t len,
			 const struct mdump_opts *o, struct mdump_stream *s,
			 struct mdump_channel *c)
{
	struct mfd_dec d = {.o = o, .s = s, .ch = c};
	int ret;

	c->size = len;
	mdump_cur_init(&d.c, buf, len, &c->err, &c->err_offset, &c->truncated);
	ret = decode_init(&d);
	while (!ret && mdump_left(&d.c))
		ret = decode_packet(&d);
	c->end = d.c.pos;
	return ret;
}

void mdump_channel_free(struct mdump_channel *c)
{
	mig_error_free(c->err);
	memset(c, 0, sizeof(*c));
}
