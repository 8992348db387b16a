/* migdump_ram.c — the 'ram' section's records for migdump (reference
 * §1.7): MEM_SIZE with its RAM block list (page sizes, GPAs and mapped-ram
 * headers per the source's capabilities; mapped-ram bitmaps counted and
 * the pages region skipped as the loader does), page-like records with
 * CONTINUE state kept across sections, EOS, MULTIFD_FLUSH and HOOK.
 * Single-threaded. */
#include "contrib/migdump_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "multifd/ram_flags.h"

#define MAPPED_RAM_VERSION 1u
#define HUGEPAGE_MAX (1ull << 40)

static int block_cmp(const void *ctx, uint32_t index, const void *key)
{
	const struct mdump_stream *s = ctx;

	return strcmp(s->blocks[index].name, key);
}

long mdump_find_block(const struct mdump_stream *s, const char *name)
{
	size_t pos = mdump_lower_bound(s->block_order, s->nblocks, block_cmp, s,
				       name);

	if (pos < s->nblocks &&
	    !strcmp(s->blocks[s->block_order[pos]].name, name))
		return s->block_order[pos];
	return -1;
}

static void count(struct mdump_dec *d, struct mdump_event *ev, long blk,
		  enum mdump_rec r)
{
	ev->counts.rec[r]++;
	d->s->counts.rec[r]++;
	if (blk >= 0)
		d->s->blocks[blk].counts.rec[r]++;
}

/* ---- MEM_SIZE ------------------------------------------------------------ */

static bool name_in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (list && *list) {
		const char *comma = strchr(list, ',');
		size_t len = comma ? (size_t)(comma - list) : strlen(list);

		if (len == n && !memcmp(list, name, n))
			return true;
		list = comma ? comma + 1 : NULL;
	}
	return false;
}

/* With postcopy-ram, hugepage-backed blocks carry their page size. Which
 * ones is the source's host knowledge: a list from the user, or else a
 * be64 power of two of 8 KiB .. 1 TiB (what follows otherwise is a block
 * name, whose length byte makes the be64 huge, or a record, whose flag
 * bits make it no power of two; GPAs can look like one, hence the list). */
static bool has_page_size(struct mdump_dec *d, const char *name)
{
	uint64_t v = 0;

	if (!d->o->postcopy)
		return false;
	if (d->o->postcopy_blocks)
		return name_in_list(d->o->postcopy_blocks, name);
	if (mdump_left(&d->c) < 8)
		return false;
	for (int i = 0; i < 8; i++)
		v = v << 8 | d->c.buf[d->c.pos + i];
	return v >= 2 * d->page_size && v <= HUGEPAGE_MAX && !(v & (v - 1));
}

/* Bits 0 .. nbits-1 of a bitmap of host-endian (x86: little-endian)
 * 64-bit words: bit i is bit i % 8 of byte i / 8. */
static uint64_t count_bits(const uint8_t *map, uint64_t nbits)
{
	uint64_t n = 0, bytes = nbits / 8;

	for (uint64_t i = 0; i < bytes; i++)
		n += (uint64_t)__builtin_popcount(map[i]);
	if (nbits % 8)
		n += (uint64_t)__builtin_popcount(map[bytes] &
						  ((1u << (nbits % 8)) - 1));
	return n;
}

static int mapped_ram_regions(struct mdump_dec *d, struct mdump_block *b,
			      uint64_t pages_field)
{
	uint64_t nbits = b->used_length / d->page_size;
	uint64_t bmap_size = (nbits + 63) / 64 * 8, size = d->c.size;

	if (b->pages_offset < d->c.pos)
		return mdump_fail(&d->c, pages_field,
				  "mapped-ram pages_offset of '%s' expected "
				  ">= 0x%llx (after its header), found 0x%llx",
				  b->name, (unsigned long long)d->c.pos,
				  (unsigned long long)b->pages_offset);
	if (b->bitmap_offset > size || bmap_size > size - b->bitmap_offset)
		return mdump_short_file(&d->c,
					"the mapped-ram bitmap of '%s' (%llu "
					"bytes at 0x%llx)",
					b->name, (unsigned long long)bmap_size,
					(unsigned long long)b->bitmap_offset);
	b->present_pages = count_bits(d->c.buf + b->bitmap_offset, nbits);
	if (b->used_length > d->c.limit - b->pages_offset ||
	    b->pages_offset > d->c.limit)
		return mdump_short_file(&d->c,
					"the mapped-ram pages of '%s' (%llu "
					"bytes at 0x%llx)",
					b->name,
					(unsigned long long)b->used_length,
					(unsigned long long)b->pages_offset);
	/* The main stream goes on after the pages region. */
	d->c.pos = b->pages_offset + b->used_length;
	return 0;
}

static int mapped_ram_header(struct mdump_dec *d, struct mdump_block *b)
{
	const char *what = "a mapped-ram header";
	uint64_t off = d->c.pos;
	int ret = mdump_get_be32(&d->c, what, &b->mr_version);

	if (!ret)
		ret = mdump_get_be64(&d->c, what, &b->mr_page_size);
	if (!ret)
		ret = mdump_get_be64(&d->c, what, &b->bitmap_offset);
	if (!ret)
		ret = mdump_get_be64(&d->c, what, &b->pages_offset);
	if (ret)
		return ret;
	b->mapped_ram = true;
	if (b->mr_version != MAPPED_RAM_VERSION)
		return mdump_fail(&d->c, off,
				  "mapped-ram header version of '%s' expected "
				  "%u, found %u",
				  b->name, MAPPED_RAM_VERSION, b->mr_version);
	if (b->mr_page_size != d->page_size)
		return mdump_fail(&d->c, off + 4,
				  "mapped-ram page_size of '%s' expected "
				  "%llu, found %llu",
				  b->name, (unsigned long long)d->page_size,
				  (unsigned long long)b->mr_page_size);
	if (b->pages_offset % d->page_size)
		return mdump_fail(&d->c, off + 20,
				  "mapped-ram pages_offset of '%s' expected a "
				  "multiple of %llu, found 0x%llx",
				  b->name, (unsigned long long)d->page_size,
				  (unsigned long long)b->pages_offset);
	return mapped_ram_regions(d, b, off + 20);
}

/* The entry for name: found, or appended (at most MDUMP_BLOCKS_MAX). */
static int block_slot(struct mdump_dec *d, const char *name, uint64_t off,
		      struct mdump_block **b)
{
	struct mdump_stream *s = d->s;
	size_t pos = mdump_lower_bound(s->block_order, s->nblocks, block_cmp, s,
				       name);

	if (pos < s->nblocks &&
	    !strcmp(s->blocks[s->block_order[pos]].name, name)) {
		*b = &s->blocks[s->block_order[pos]];
		return 0;
	}
	if (s->nblocks >= MDUMP_BLOCKS_MAX)
		return mdump_fail(&d->c, off,
				  "MEM_SIZE blocks expected at most %u, found "
				  "more",
				  MDUMP_BLOCKS_MAX);
	*b = mdump_grow((void **)&s->blocks, &s->nblocks, &s->blocks_cap,
			sizeof(**b));
	if (!*b)
		return -ENOMEM;
	if (mdump_order_insert(&s->block_order, s->nblocks - 1, pos,
			       (uint32_t)(s->nblocks - 1))) {
		s->nblocks--; /* order and blocks stay the same length */
		return -ENOMEM;
	}
	memcpy((*b)->name, name, MDUMP_NAME_MAX);
	return 0;
}

static int block_extras(struct mdump_dec *d, struct mdump_block *b)
{
	const char *what = "a MEM_SIZE block entry";
	int ret = 0;

	if (has_page_size(d, b->name))
		ret = mdump_get_be64(&d->c, what, &b->page_size);
	if (!ret && d->ignore_shared) {
		ret = mdump_get_be64(&d->c, what, &b->addr);
		b->has_addr = true;
	}
	if (!ret && d->mapped_ram)
		ret = mapped_ram_header(d, b);
	return ret;
}

static int mem_size_block(struct mdump_dec *d, uint64_t *left)
{
	const char *what = "a MEM_SIZE block entry";
	char name[MDUMP_NAME_MAX];
	struct mdump_block *b = NULL;
	uint64_t off = d->c.pos, len_off, len;
	int ret = mdump_get_name(&d->c, what, "MEM_SIZE block name", name);

	len_off = d->c.pos;
	if (!ret)
		ret = mdump_get_be64(&d->c, what, &len);
	if (ret)
		return ret;
	if (!len || len > *left)
		return mdump_fail(&d->c, len_off,
				  "MEM_SIZE used_length of '%s' expected "
				  "1..0x%llx (what is left of the total), "
				  "found 0x%llx",
				  name, (unsigned long long)*left,
				  (unsigned long long)len);
	ret = block_slot(d, name, off, &b);
	if (ret)
		return ret;
	b->used_length = len;
	*left -= len;
	ret = block_extras(d, b);
	mdump_trace(d->o, 2, off, "  block '%s' used_length 0x%llx", name,
		    (unsigned long long)len);
	return ret;
}

static int mem_size(struct mdump_dec *d, struct mdump_event *ev, uint64_t total)
{
	uint64_t left = total;
	int ret = 0;

	count(d, ev, -1, MDUMP_REC_MEM_SIZE);
	d->s->has_mem_size = true;
	d->s->ram_total = total;
	while (!ret && left)
		ret = mem_size_block(d, &left);
	return ret;
}

/* ---- page-like records ------------------------------------------------------
 */

static int record_block(struct mdump_dec *d, uint64_t off, uint64_t flags,
			long *blk)
{
	char name[MDUMP_NAME_MAX], esc[4 * MDUMP_NAME_MAX];
	uint64_t name_off = d->c.pos;
	uint8_t nlen;
	int ret;

	if (flags & RAM_SAVE_FLAG_CONTINUE) {
		if (d->last_block < 0)
			return mdump_fail(&d->c, off,
					  "ram record block expected a name "
					  "(no earlier record named "
					  "one), found the CONTINUE flag");
		*blk = d->last_block;
		return 0;
	}
	ret = mdump_get_str8(&d->c, "a ram record's block name", name, &nlen);
	if (ret)
		return ret;
	*blk = strlen(name) == nlen ? mdump_find_block(d->s, name) : -1;
	if (*blk < 0) {
		mdump_escape((const uint8_t *)name, nlen, esc, sizeof(esc));
		return mdump_fail(&d->c, name_off,
				  "ram record block expected one of the "
				  "MEM_SIZE blocks, found '%s'",
				  esc);
	}
	d->last_block = *blk;
	return 0;
}

/* compressBound() of zlib for one page. */
static uint64_t compress_bound(uint64_t n)
{
	return n + (n >> 12) + (n >> 14) + (n >> 25) + 13;
}

static int zero_body(struct mdump_dec *d)
{
	uint64_t off = d->c.pos;
	uint8_t b;
	int ret = mdump_get_u8(&d->c, "a ZERO record", &b);

	if (!ret && b)
		return mdump_fail(&d->c, off,
				  "ZERO record fill byte expected 0x00, found "
				  "0x%02x",
				  b);
	return ret;
}

/* u8 encoding (0x01), be16 length (<= a page), the encoded bytes. */
static int xbzrle_body(struct mdump_dec *d, uint64_t *len)
{
	uint64_t off = d->c.pos;
	uint16_t n;
	uint8_t b;
	int ret = mdump_get_u8(&d->c, "an XBZRLE record", &b);

	if (!ret && b != 0x01)
		return mdump_fail(&d->c, off,
				  "XBZRLE record encoding expected 0x01, "
				  "found 0x%02x",
				  b);
	if (!ret)
		ret = mdump_get_be16(&d->c, "an XBZRLE record", &n);
	if (!ret && n > d->page_size)
		return mdump_fail(&d->c, off + 1,
				  "XBZRLE record length expected <= %llu, "
				  "found %u",
				  (unsigned long long)d->page_size, n);
	*len = n;
	return ret;
}

/* be32 length (<= zlib's compressBound of a page), a zlib stream. */
static int compress_body(struct mdump_dec *d, uint64_t *len)
{
	uint64_t off = d->c.pos;
	uint64_t bound = compress_bound(d->page_size);
	uint32_t n;
	int ret = mdump_get_be32(&d->c, "a COMPRESS_PAGE record", &n);

	if (!ret && n > bound)
		return mdump_fail(&d->c, off,
				  "COMPRESS_PAGE record length expected <= "
				  "%llu, found %u",
				  (unsigned long long)bound, n);
	*len = n;
	return ret;
}

static int record_body(struct mdump_dec *d, uint64_t kind)
{
	const uint8_t *p;
	uint64_t len = 0;
	int ret;

	switch (kind) {
	case RAM_SAVE_FLAG_ZERO:
		return zero_body(d);
	case RAM_SAVE_FLAG_PAGE:
		d->s->page_bytes += d->page_size;
		return mdump_get_bytes(&d->c, d->page_size,
				       "a PAGE record's data", &p);
	case RAM_SAVE_FLAG_XBZRLE:
		ret = xbzrle_body(d, &len);
		break;
	default: /* COMPRESS_PAGE */
		ret = compress_body(d, &len);
		break;
	}
	if (ret)
		return ret;
	d->s->page_bytes += len;
	return mdump_get_bytes(&d->c, len, "a ram record's data", &p);
}

static enum mdump_rec rec_of(uint64_t kind)
{
	switch (kind) {
	case RAM_SAVE_FLAG_ZERO:
		return MDUMP_REC_ZERO;
	case RAM_SAVE_FLAG_PAGE:
		return MDUMP_REC_PAGE;
	case RAM_SAVE_FLAG_XBZRLE:
		return MDUMP_REC_XBZRLE;
	default:
		return MDUMP_REC_COMPRESS;
	}
}

static int page_record(struct mdump_dec *d, struct mdump_event *ev,
		       uint64_t off, uint64_t addr, uint64_t flags)
{
	uint64_t kind = flags & ~(uint64_t)RAM_SAVE_FLAG_CONTINUE;
	const struct mdump_block *b;
	long blk;
	int ret = record_block(d, off, flags, &blk);

	if (ret)
		return ret;
	b = &d->s->blocks[blk];
	if (addr >= b->used_length)
		return mdump_fail(&d->c, off,
				  "ram record offset expected < 0x%llx (the "
				  "used_length of '%s'), found 0x%llx",
				  (unsigned long long)b->used_length, b->name,
				  (unsigned long long)addr);
	ret = record_body(d, kind);
	if (ret)
		return ret;
	count(d, ev, blk, rec_of(kind));
	if (flags & RAM_SAVE_FLAG_CONTINUE)
		count(d, ev, blk, MDUMP_REC_CONTINUE);
	mdump_trace(d->o, 2, off, "  %s%s '%s' +0x%llx",
		    mdump_rec_name(rec_of(kind)),
		    flags & RAM_SAVE_FLAG_CONTINUE ? "|CONTINUE" : "", b->name,
		    (unsigned long long)addr);
	return 0;
}

/* ---- the record loop
 * ------------------------------------------------------------ */

#define PAGE_LIKE                                                              \
	(RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE |      \
	 RAM_SAVE_FLAG_COMPRESS_PAGE)
#define NOT_WITH_MAPPED_RAM                                                    \
	(RAM_SAVE_FLAG_HOOK | RAM_SAVE_FLAG_MULTIFD_FLUSH |                    \
	 RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_XBZRLE | RAM_SAVE_FLAG_ZERO)

static int other_record(struct mdump_dec *d, struct mdump_event *ev,
			uint64_t off, uint64_t kind, bool *eos)
{
	enum mdump_rec r;

	switch (kind) {
	case RAM_SAVE_FLAG_EOS:
		*eos = true;
		r = MDUMP_REC_EOS;
		break;
	case RAM_SAVE_FLAG_MULTIFD_FLUSH:
		r = MDUMP_REC_FLUSH;
		break;
	case RAM_SAVE_FLAG_HOOK:
		r = MDUMP_REC_HOOK;
		break;
	default:
		return mdump_fail(&d->c, off,
				  "ram record flags expected one of MEM_SIZE, "
				  "ZERO, PAGE, EOS, XBZRLE, COMPRESS_PAGE, "
				  "MULTIFD_FLUSH, HOOK (with or without "
				  "CONTINUE), found 0x%llx",
				  (unsigned long long)kind);
	}
	count(d, ev, -1, r);
	mdump_trace(d->o, 2, off, "  %s", mdump_rec_name(r));
	return 0;
}

static int ram_record(struct mdump_dec *d, struct mdump_event *ev, bool *eos)
{
	uint64_t off = d->c.pos, v, flags, kind, addr;
	int ret = mdump_get_be64(&d->c, "a ram record", &v);

	if (ret)
		return ret;
	flags = v & (d->page_size - 1);
	addr = v & ~(d->page_size - 1);
	kind = flags & ~(uint64_t)RAM_SAVE_FLAG_CONTINUE;
	if (d->mapped_ram && (flags & NOT_WITH_MAPPED_RAM))
		return mdump_fail(
			&d->c, off,
			"ram record flags expected none of PAGE, ZERO, "
			"XBZRLE, MULTIFD_FLUSH, HOOK with mapped-ram, found "
			"0x%llx",
			(unsigned long long)flags);
	if (kind == RAM_SAVE_FLAG_MEM_SIZE)
		return mem_size(d, ev, addr);
	if (kind && !(kind & (kind - 1)) && (kind & PAGE_LIKE))
		return page_record(d, ev, off, addr, flags);
	return other_record(d, ev, off, kind, eos);
}

int mdump_ram_section(struct mdump_dec *d, struct mdump_event *ev)
{
	bool eos = false;
	int ret = 0;

	while (!ret && !eos)
		ret = ram_record(d, ev, &eos);
	return ret;
}
