/* ram.h — guest RAM blocks: QEMU's RAMBlock for migd. A block is one
 * contiguous host mapping (anonymous, memfd or a file) with the name that
 * identifies it in the migration stream.
 * Blocks are created and freed by the control thread at startup/shutdown;
 * in between their metadata is immutable, so any thread (vCPUs, migration
 * and multifd workers) may read it and access guest memory through host. */
#ifndef MIGD_GUEST_RAM_H
#define MIGD_GUEST_RAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct dirty_block;

/* The wire carries a block name as one length byte plus the bytes. */
#define RAM_BLOCK_NAME_MAX 255

enum ram_backing {
	RAM_BACKING_ANON,  /* memory-backend-ram (and plain -m) */
	RAM_BACKING_MEMFD, /* memory-backend-memfd */
	RAM_BACKING_FILE,  /* memory-backend-file */
};

/* Transparent huge pages for anonymous RAM. AUTO (the default): regions a
 * migration loader fills get a huge page while huge-page faults are cheap,
 * 4 KiB pages while they are not (guest/ram_touch.h). ON: MADV_HUGEPAGE on
 * the whole block, as QEMU. OFF: 4 KiB pages. On VMs that hand free memory
 * back to their host, a huge page's first touch costs ~8 ms per 2 MiB when
 * the memory is cold and ~0.2 ms when it is warm (docs/benchmarks.md). */
enum ram_thp { RAM_THP_AUTO, RAM_THP_OFF, RAM_THP_ON };

/* What a memory backend asks for (parsed from -m / -object). */
struct ram_block_config {
	const char *name; /* RAMBlock idstr: "ram" or the backend id */
	uint64_t size;	  /* bytes, > 0 */
	enum ram_backing backing;
	const char *mem_path; /* FILE: a file, or a directory for a temp file */
	bool share;	      /* MAP_SHARED (memfd's QEMU default is on) */
	bool prealloc;	      /* touch every page before the guest starts */
	bool seal;	      /* MEMFD: seal against resizing (QEMU default) */
	unsigned prealloc_threads; /* 0: one per online CPU, at most 16 */
	enum ram_thp thp; /* ANON only (x-thp=), see enum ram_thp */
};

struct ram_block {
	struct ram_block *next; /* the guest's list (guest.h) */
	char *name;
	uint8_t *host; /* used_length bytes of guest RAM */
	uint64_t used_length;
	uint64_t mapped_length; /* host mapping, >= used_length */
	size_t page_size;	/* host page size backing it (4K, or hugetlb) */
	enum ram_backing backing;
	int fd;		/* memfd or file; -1 for anonymous */
	bool shared;	/* mapped MAP_SHARED */
	char *mem_path; /* FILE only: the path opened, NULL otherwise */
	void *map_base; /* what to munmap (anon is over-mapped to align) */
	size_t map_len;
	/* Exact dirty log of this block, owned by guest/dirty.c: NULL until
	 * dirty_log_init(), then immutable (its bits are atomics). */
	struct dirty_block *dirty;
	/* x-thp=auto on fresh private anonymous RAM, else NULL: loaders call
	 * ram_block_prepare_write() before their first write. */
	struct ram_touch *touch;
};

/* Allocates a block; RAM that is not backed by an existing file reads as
 * zero. Returns NULL with *errp set (QEMU's messages: "cannot set up guest
 * memory 'ram': ...", "can't open backing store ... for guest RAM: ...",
 * "backing store size 0x... does not match 'size' option 0x..."). */
struct ram_block *ram_block_new(const struct ram_block_config *cfg,
				struct mig_error **errp);
/* Unmaps and closes; the file of a file block stays. NULL is fine. */
void ram_block_free(struct ram_block *b);

/* Pre-faults every page of b (parallel threads). 0 or -errno with *errp. */
int ram_block_prealloc(struct ram_block *b, unsigned threads,
		       struct mig_error **errp);

/* Before a loader writes [offset, offset+len) (inside the block): lets the
 * first-touch policy pick the page size of fresh regions. Any thread. */
void ram_block_prepare_write(struct ram_block *b, uint64_t offset,
			     uint64_t len);
/* No more huge pages for this block (postcopy places 4 KiB pages). */
void ram_block_no_huge_pages(struct ram_block *b);

static inline bool ram_block_is_shared(const struct ram_block *b)
{
	return b->shared;
}

/* True when [offset, offset+len) lies inside the block's used length:
 * the check every peer-supplied offset must pass before it is used. */
static inline bool ram_block_contains(const struct ram_block *b,
				      uint64_t offset, uint64_t len)
{
	return offset <= b->used_length && len <= b->used_length - offset;
}

const char *ram_backing_name(enum ram_backing backing);

#endif
