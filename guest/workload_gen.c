/* workload_gen.c — the per-vCPU write generator (see workload.h): picks a
 * page by pattern within the vCPU's share of the working set, fills a piece
 * of it with generated content using ordinary stores, then logs it dirty.
 * A generator belongs to one vCPU thread; the map is shared, immutable. */
#include "guest/workload.h"

#include <stdlib.h>
#include <string.h>

#include "guest/dirty.h"
#include "guest/guest.h"
#include "guest/probe.h"

#define TEXT_POOL_SIZE (64u * 1024)

struct workload_span {
	struct ram_block *block;
	uint64_t first; /* first page of the block in the run */
	uint64_t pages;
};

struct workload_map {
	struct workload_span *spans;
	size_t n;
	uint64_t pages;
};

struct workload_gen {
	const struct workload_map *map;
	struct workload_config cfg;
	struct workload_prng prng;
	uint64_t lo, hi; /* this vCPU's pages [lo, hi) of the run */
	uint64_t hot;	 /* hotcold: the first `hot` pages of the share */
	uint64_t cursor; /* sequential: next page */
	uint64_t left;	 /* touches left when cfg.passes is set */
	unsigned cpu;	 /* the vCPU it writes for (rate log credit) */
	struct probe_stats *probe; /* content=probe records here */
	/* Compressible text: words from a small dictionary; a touch copies a
	 * window of it, so pages differ but compress well. */
	uint8_t text[TEXT_POOL_SIZE + WORKLOAD_PAGE_SIZE];
};

/* ---- PRNG: xoshiro256** with a splitmix64 seeder ------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void workload_prng_seed(struct workload_prng *p, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t workload_prng_next(struct workload_prng *p)
{
	uint64_t *s = p->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n) (Lemire's multiply-shift; n > 0). */
static uint64_t prng_below(struct workload_prng *p, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)workload_prng_next(p) * n) >> 64);
}

/* Uniform in [0, 1). */
static double prng_unit(struct workload_prng *p)
{
	return (double)(workload_prng_next(p) >> 11) * 0x1.0p-53;
}

/* ---- the map ------------------------------------------------------------ */

struct workload_map *workload_map_new(const struct guest *g)
{
	struct workload_map *m = calloc(1, sizeof(*m));
	struct ram_block *b;
	size_t i = 0;

	if (!m)
		return NULL;
	m->spans = calloc(g->nblocks ? g->nblocks : 1, sizeof(*m->spans));
	if (!m->spans) {
		free(m);
		return NULL;
	}
	guest_for_each_block(g, b)
	{
		if (i == g->nblocks)
			break;
		m->spans[i].block = b;
		m->spans[i].first = m->pages;
		m->spans[i].pages = dirty_block_pages(b);
		m->pages += m->spans[i].pages;
		i++;
	}
	m->n = i;
	return m;
}

void workload_map_free(struct workload_map *m)
{
	if (!m)
		return;
	free(m->spans);
	free(m);
}

uint64_t workload_map_pages(const struct workload_map *m)
{
	return m->pages;
}

/* The span holding run page `page` (< m->pages): binary search. */
static const struct workload_span *map_find(const struct workload_map *m,
					    uint64_t page)
{
	size_t lo = 0, hi = m->n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->spans[mid].first <= page)
			lo = mid;
		else
			hi = mid;
	}
	return &m->spans[lo];
}

/* ---- generator ---------------------------------------------------------- */

struct workload_gen *workload_gen_new(const struct workload_map *map)
{
	struct workload_gen *gen = calloc(1, sizeof(*gen));

	if (!gen)
		return NULL;
	gen->map = map;
	workload_config_init(&gen->cfg);
	return gen;
}

void workload_gen_free(struct workload_gen *gen)
{
	free(gen);
}

void workload_gen_set_probe(struct workload_gen *gen, struct probe_stats *ps)
{
	gen->probe = ps;
}

static void fill_text_pool(struct workload_gen *gen)
{
	static const char *const words[] = {
		"the",	  "of",	    "and",    "to",	 "in",	   "is",
		"that",	  "for",    "it",     "as",	 "was",	   "with",
		"be",	  "by",	    "on",     "not",	 "he",	   "this",
		"are",	  "or",	    "his",    "from",	 "at",	   "which",
		"but",	  "have",   "an",     "had",	 "they",   "you",
		"were",	  "their",  "one",    "all",	 "we",	   "can",
		"her",	  "has",    "there",  "been",	 "if",	   "more",
		"when",	  "will",   "would",  "who",	 "so",	   "no",
		"memory", "page",   "guest",  "migrate", "dirty",  "channel",
		"stream", "packet", "kernel", "thread",	 "socket", "buffer",
		"vcpu",	  "block",  "host",   "device",
	};
	size_t n = sizeof(words) / sizeof(words[0]), pos = 0;

	while (pos < sizeof(gen->text)) {
		const char *w = words[prng_below(&gen->prng, n)];
		size_t len = strlen(w);

		if (len > sizeof(gen->text) - pos)
			len = sizeof(gen->text) - pos;
		memcpy(gen->text + pos, w, len);
		pos += len;
		if (pos < sizeof(gen->text))
			gen->text[pos++] =
				prng_below(&gen->prng, 12) ? ' ' : '\n';
	}
}

void workload_gen_reset(struct workload_gen *gen,
			const struct workload_config *w, unsigned cpu,
			unsigned ncpus)
{
	uint64_t pages = gen->map->pages, share;

	gen->cfg = *w;
	gen->cpu = cpu;
	if (w->working_set) {
		uint64_t ws = (w->working_set + WORKLOAD_PAGE_SIZE - 1) /
			      WORKLOAD_PAGE_SIZE;

		pages = ws < pages ? ws : pages;
	}
	/* Each vCPU owns a slice of the working set (no two write the same
	 * page) unless there are fewer pages than vCPUs. The probe is vCPU 0
	 * alone, over the whole working set. */
	if (w->content == WORKLOAD_CONTENT_PROBE) {
		gen->lo = 0;
		gen->hi = cpu == 0 ? pages : 0;
	} else if (ncpus && pages >= ncpus && cpu < ncpus) {
		gen->lo = pages * cpu / ncpus;
		gen->hi = pages * (cpu + 1) / ncpus;
	} else {
		gen->lo = 0;
		gen->hi = pages;
	}
	share = gen->hi - gen->lo;
	gen->hot = (uint64_t)(w->hot_fraction * (double)share + 0.5);
	gen->hot = gen->hot ? (gen->hot < share ? gen->hot : share) : 1;
	gen->cursor = gen->lo;
	gen->left = w->passes > UINT64_MAX / (share ? share : 1)
			    ? UINT64_MAX
			    : w->passes * share;
	workload_prng_seed(&gen->prng,
			   w->seed ^ ((uint64_t)cpu * 0xd1b54a32d192ed03ull));
	if (w->content == WORKLOAD_CONTENT_TEXT ||
	    w->content == WORKLOAD_CONTENT_MIXED)
		fill_text_pool(gen);
}

static uint64_t pick_page(struct workload_gen *gen)
{
	uint64_t share = gen->hi - gen->lo, page;

	switch (gen->cfg.pattern) {
	case WORKLOAD_SEQUENTIAL:
		page = gen->cursor++;
		if (gen->cursor >= gen->hi)
			gen->cursor = gen->lo;
		return page;
	case WORKLOAD_HOTCOLD:
		if (gen->hot >= share)
			break;
		if (prng_unit(&gen->prng) < gen->cfg.hot_ratio)
			return gen->lo + prng_below(&gen->prng, gen->hot);
		return gen->lo + gen->hot +
		       prng_below(&gen->prng, share - gen->hot);
	default:
		break;
	}
	return gen->lo + prng_below(&gen->prng, share);
}

static void fill_random(struct workload_gen *gen, uint8_t *dst, uint64_t len)
{
	uint64_t i = 0, v;

	for (; i + 8 <= len; i += 8) {
		v = workload_prng_next(&gen->prng);
		memcpy(dst + i, &v, 8);
	}
	if (i < len) {
		v = workload_prng_next(&gen->prng);
		memcpy(dst + i, &v, len - i);
	}
}

/* content=read: touches every 8th byte of [src, +len) without writing. */
static void read_bytes(const uint8_t *src, uint64_t len)
{
	uint64_t acc = 0;

	for (uint64_t i = 0; i < len; i += 8)
		acc += ((const volatile uint8_t *)src)[i];
	__asm__ volatile("" : : "r"(acc));
}

static void fill(struct workload_gen *gen, uint8_t *dst, uint64_t len)
{
	enum workload_content c = gen->cfg.content;

	if (c == WORKLOAD_CONTENT_MIXED) {
		double r = prng_unit(&gen->prng);

		c = r < gen->cfg.zero_fraction ? WORKLOAD_CONTENT_ZERO
		    : r < gen->cfg.zero_fraction + gen->cfg.text_fraction
			    ? WORKLOAD_CONTENT_TEXT
			    : WORKLOAD_CONTENT_RANDOM;
	}
	switch (c) {
	case WORKLOAD_CONTENT_ZERO:
		memset(dst, 0, len);
		break;
	case WORKLOAD_CONTENT_TEXT:
		memcpy(dst, gen->text + prng_below(&gen->prng, TEXT_POOL_SIZE),
		       len);
		break;
	default:
		fill_random(gen, dst, len);
		break;
	}
}

/* content=probe: up to PROBE_TRIES random pages of the share until one is
 * missing, then times its first access (a postcopy page request when the
 * page has not arrived). Counts as one page touched either way. */
static uint32_t probe_touch(struct workload_gen *gen)
{
	uint64_t share = gen->hi - gen->lo, resident = 0;

	for (unsigned i = 0; i < PROBE_TRIES; i++) {
		uint64_t page = gen->lo + prng_below(&gen->prng, share);
		const struct workload_span *span = map_find(gen->map, page);
		const uint8_t *p = span->block->host +
				   (page - span->first) * WORKLOAD_PAGE_SIZE;
		uint64_t ns;

		if (!probe_page_missing(p)) {
			resident++;
			continue;
		}
		ns = probe_first_access_ns(p);
		if (gen->probe) {
			probe_stats_count(gen->probe, resident, false);
			probe_stats_record(gen->probe, ns);
		}
		return WORKLOAD_PAGE_SIZE;
	}
	if (gen->probe)
		probe_stats_count(gen->probe, resident, true);
	return WORKLOAD_PAGE_SIZE;
}

bool workload_gen_is_finished(const struct workload_gen *gen)
{
	return gen->cfg.passes && !gen->left;
}

uint32_t workload_gen_touch(struct workload_gen *gen)
{
	const struct workload_span *span;
	uint64_t page, off, len = gen->cfg.write_size;
	struct ram_block *b;

	if (gen->cfg.idle || gen->hi <= gen->lo || !gen->map->n ||
	    workload_gen_is_finished(gen))
		return 0;
	if (gen->cfg.passes)
		gen->left--;
	if (gen->cfg.content == WORKLOAD_CONTENT_PROBE)
		return probe_touch(gen);
	page = pick_page(gen);
	span = map_find(gen->map, page);
	b = span->block;
	off = (page - span->first) * WORKLOAD_PAGE_SIZE;
	if (len < WORKLOAD_PAGE_SIZE)
		off += prng_below(&gen->prng, WORKLOAD_PAGE_SIZE - len + 1);
	/* A block whose size is not a multiple of 4 KiB: stay inside. */
	if (off >= b->used_length)
		off = (page - span->first) * WORKLOAD_PAGE_SIZE;
	if (len > b->used_length - off)
		len = b->used_length - off;
	if (gen->cfg.content == WORKLOAD_CONTENT_READ) {
		read_bytes(b->host + off, len);
		return (uint32_t)len;
	}
	fill(gen, b->host + off, len);
	dirty_log_mark_cpu(b, off, len, gen->cpu);
	return (uint32_t)len;
}
