/* ram.c — allocation of guest RAM blocks (see ram.h): anonymous mmap with
 * transparent huge pages, memfd, or a file mapped the way QEMU's
 * memory-backend-file does; parallel preallocation.
 * Control thread only (startup and shutdown); the prealloc helper threads
 * live only inside ram_block_prealloc(). */
#include "guest/ram.h"
#include "guest/ram_touch.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Anonymous RAM is aligned like QEMU's (2 MiB) so THP can back it. */
#define RAM_ANON_ALIGN (2ull << 20)
#define PREALLOC_MAX_THREADS 16
#define PREALLOC_MIN_CHUNK (64ull << 20)

const char *ram_backing_name(enum ram_backing backing)
{
	switch (backing) {
	case RAM_BACKING_ANON:
		return "memory-backend-ram";
	case RAM_BACKING_MEMFD:
		return "memory-backend-memfd";
	case RAM_BACKING_FILE:
		return "memory-backend-file";
	}
	return "unknown";
}

static uint64_t align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) / align * align;
}

static size_t host_page_size(void)
{
	long sz = sysconf(_SC_PAGESIZE);

	return sz > 0 ? (size_t)sz : 4096;
}

/* Page size of the filesystem holding fd: hugetlbfs gives its huge page
 * size, everything else the host page size. */
static size_t fd_page_size(int fd)
{
	struct statfs fs;
	int ret;

	do {
		ret = fstatfs(fd, &fs);
	} while (ret != 0 && errno == EINTR);
	if (ret == 0 && fs.f_type == HUGETLBFS_MAGIC)
		return (size_t)fs.f_bsize;
	return host_page_size();
}

static int map_anon(struct ram_block *b, bool share, enum ram_thp thp)
{
	size_t len = b->mapped_length, total = len + RAM_ANON_ALIGN;
	int flags = MAP_ANONYMOUS | MAP_NORESERVE |
		    (share ? MAP_SHARED : MAP_PRIVATE);
	uint8_t *raw, *host;

	raw = mmap(NULL, total, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (raw == MAP_FAILED)
		return -errno;
	host = (uint8_t *)align_up((uintptr_t)raw, RAM_ANON_ALIGN);
	/* Give back the unaligned head and the unused tail. */
	if (host > raw)
		munmap(raw, (size_t)(host - raw));
	if ((size_t)(host - raw) + len < total)
		munmap(host + len, total - (size_t)(host - raw) - len);
	b->host = host;
	b->map_base = host;
	b->map_len = len;
	/* THP is a performance hint: a kernel without it still works. */
	if (thp == RAM_THP_ON)
		madvise(host, len, MADV_HUGEPAGE);
	return 0;
}

static int map_fd(struct ram_block *b, bool share)
{
	int flags = share ? MAP_SHARED : MAP_PRIVATE;
	void *p;

	p = mmap(NULL, b->mapped_length, PROT_READ | PROT_WRITE, flags, b->fd,
		 0);
	if (p == MAP_FAILED)
		return -errno;
	b->host = p;
	b->map_base = p;
	b->map_len = b->mapped_length;
	return 0;
}

static int alloc_anon(struct ram_block *b, const struct ram_block_config *cfg,
		      struct mig_error **errp)
{
	int ret;

	b->page_size = host_page_size();
	b->used_length = align_up(cfg->size, b->page_size);
	b->mapped_length = b->used_length;
	ret = map_anon(b, cfg->share, cfg->thp);
	if (ret < 0) {
		mig_error_setg(errp, "cannot set up guest memory '%s': %s",
			       b->name, strerror(-ret));
		return ret;
	}
	/* shared anonymous RAM is shmem: its huge pages follow shmem_enabled */
	if (cfg->thp == RAM_THP_AUTO && !cfg->share && !cfg->prealloc)
		b->touch = ram_touch_new(b->host, b->used_length,
					 ram_touch_probe_sys());
	return 0;
}

static int alloc_memfd(struct ram_block *b, const struct ram_block_config *cfg,
		       struct mig_error **errp)
{
	int seals = F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
	int ret;

	b->fd = memfd_create("memory-backend-memfd",
			     MFD_CLOEXEC | (cfg->seal ? MFD_ALLOW_SEALING : 0));
	if (b->fd < 0)
		goto err_errno;
	b->page_size = fd_page_size(b->fd);
	b->used_length = align_up(cfg->size, b->page_size);
	b->mapped_length = b->used_length;
	if (ftruncate(b->fd, (off_t)b->used_length) < 0)
		goto err_errno;
	if (cfg->seal && fcntl(b->fd, F_ADD_SEALS, seals) < 0)
		goto err_errno;
	ret = map_fd(b, cfg->share);
	if (ret < 0) {
		errno = -ret;
		goto err_errno;
	}
	return 0;

err_errno:
	ret = -errno;
	mig_error_setg(errp, "cannot set up guest memory '%s': %s", b->name,
		       strerror(errno));
	return ret;
}

/* A directory mem-path gets an unlinked temporary file, as in QEMU. */
static int open_temp_in_dir(const char *dir, const char *name)
{
	char *path, *p;
	int fd, err;

	if (asprintf(&path, "%s/migd_back_mem.%s.XXXXXX", dir, name) < 0)
		return -ENOMEM;
	for (p = path + strlen(dir) + 1; *p; p++)
		if (*p == '/')
			*p = '_';
	fd = mkostemp(path, O_CLOEXEC);
	err = errno;
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd >= 0 ? fd : -err;
}

/* Opens or creates the backing file. *created tells the caller to unlink it
 * if the block cannot be set up. */
static int open_backing(struct ram_block *b, const char *path, bool *created,
			struct mig_error **errp)
{
	int fd;

	*created = false;
	for (;;) {
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT)
			break;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0) {
			*created = true;
			break;
		}
		if (errno != EEXIST) /* EEXIST: lost a race, open it again */
			break;
	}
	if (fd < 0 && errno == EISDIR)
		fd = open_temp_in_dir(path, b->name);
	else if (fd < 0)
		fd = -errno;
	if (fd < 0)
		mig_error_setg(errp,
			       "can't open backing store %s for guest RAM: %s",
			       path, strerror(-fd));
	return fd;
}

/* Sizes the block against the file: a file larger than the block is used in
 * part, an empty (new) one is extended, a non-empty smaller one refused. */
static int size_backing(struct ram_block *b, uint64_t size,
			struct mig_error **errp)
{
	struct stat st;

	if (fstat(b->fd, &st) < 0) {
		mig_error_setg(errp, "can't stat backing store: %s",
			       strerror(errno));
		return -errno;
	}
	b->page_size = fd_page_size(b->fd);
	size = align_up(size, host_page_size());
	if (size < b->page_size) {
		mig_error_setg(errp,
			       "memory size 0x%llx must be equal to or larger "
			       "than page size 0x%zx",
			       (unsigned long long)size, b->page_size);
		return -EINVAL;
	}
	if (st.st_size > 0 && (uint64_t)st.st_size < size) {
		mig_error_setg(errp,
			       "backing store size 0x%llx does not match "
			       "'size' option 0x%llx",
			       (unsigned long long)st.st_size,
			       (unsigned long long)size);
		return -EINVAL;
	}
	b->used_length = align_up(size, b->page_size);
	b->mapped_length = b->used_length;
	if (st.st_size == 0 && ftruncate(b->fd, (off_t)b->used_length) < 0) {
		mig_error_setg(errp, "cannot extend backing store: %s",
			       strerror(errno));
		return -errno;
	}
	return 0;
}

static int alloc_file(struct ram_block *b, const struct ram_block_config *cfg,
		      struct mig_error **errp)
{
	bool created;
	int ret;

	b->mem_path = strdup(cfg->mem_path);
	if (!b->mem_path)
		return -ENOMEM;
	ret = open_backing(b, cfg->mem_path, &created, errp);
	if (ret < 0)
		return ret;
	b->fd = ret;
	ret = size_backing(b, cfg->size, errp);
	if (ret < 0)
		goto err_unlink;
	ret = map_fd(b, cfg->share);
	if (ret < 0) {
		mig_error_setg(errp,
			       "unable to map backing store for guest RAM: %s",
			       strerror(-ret));
		goto err_unlink;
	}
	return 0;

err_unlink:
	if (created)
		unlink(cfg->mem_path);
	return ret;
}

struct prealloc_job {
	pthread_t thread;
	uint8_t *start;
	size_t len;
	size_t page_size;
	int ret;
};

/* Faults in [start, start+len). MADV_POPULATE_WRITE reports failures (no
 * huge pages left, quota) as errors instead of SIGBUS; older kernels fall
 * back to touching one byte per page, keeping its value so a file's content
 * survives. */
static void *prealloc_worker(void *opaque)
{
	struct prealloc_job *job = opaque;

	if (madvise(job->start, job->len, MADV_POPULATE_WRITE) == 0) {
		job->ret = 0;
		return NULL;
	}
	if (errno != EINVAL) {
		job->ret = -errno;
		return NULL;
	}
	for (size_t off = 0; off < job->len; off += job->page_size) {
		volatile uint8_t *p = job->start + off;
		*p = *p;
	}
	job->ret = 0;
	return NULL;
}

static unsigned prealloc_thread_count(const struct ram_block *b,
				      unsigned wanted)
{
	uint64_t by_size = b->used_length / PREALLOC_MIN_CHUNK;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!wanted)
		wanted = cpus > 0 ? (unsigned)cpus : 1;
	if (wanted > PREALLOC_MAX_THREADS)
		wanted = PREALLOC_MAX_THREADS;
	if (wanted > by_size)
		wanted = by_size ? (unsigned)by_size : 1;
	return wanted;
}

int ram_block_prealloc(struct ram_block *b, unsigned threads,
		       struct mig_error **errp)
{
	unsigned n = prealloc_thread_count(b, threads), started = 0;
	uint64_t pages = b->used_length / b->page_size;
	struct prealloc_job jobs[PREALLOC_MAX_THREADS];
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t first = pages * i / n, last = pages * (i + 1) / n;

		jobs[i] = (struct prealloc_job){
			.start = b->host + first * b->page_size,
			.len = (size_t)((last - first) * b->page_size),
			.page_size = b->page_size,
		};
		/* Job 0 runs on this thread; if a thread cannot start, this
		 * thread does its share too. */
		if (i == 0 || pthread_create(&jobs[i].thread, NULL,
					     prealloc_worker, &jobs[i]) != 0)
			continue;
		started |= 1u << i;
	}
	for (unsigned i = 0; i < n; i++) {
		if (started & (1u << i))
			pthread_join(jobs[i].thread, NULL);
		else
			prealloc_worker(&jobs[i]);
		if (jobs[i].ret < 0 && !ret)
			ret = jobs[i].ret;
	}
	if (ret < 0)
		mig_error_setg(errp, "preallocating memory failed: %s",
			       strerror(-ret));
	return ret;
}

static bool config_is_valid(const struct ram_block_config *cfg,
			    struct mig_error **errp)
{
	size_t len = cfg->name ? strlen(cfg->name) : 0;

	if (!len || len > RAM_BLOCK_NAME_MAX) {
		mig_error_setg(errp, "invalid RAM block name");
		return false;
	}
	if (!cfg->size) {
		mig_error_setg(errp, "can't create backend with size 0");
		return false;
	}
	if (cfg->backing == RAM_BACKING_FILE && !cfg->mem_path) {
		mig_error_setg(errp, "mem-path property not set");
		return false;
	}
	/* Leave room for alignment without wrapping size_t arithmetic. */
	if (cfg->size > (UINT64_MAX >> 2) || cfg->size > SIZE_MAX / 2) {
		mig_error_setg(errp, "cannot set up guest memory '%s': %s",
			       cfg->name, strerror(ENOMEM));
		return false;
	}
	return true;
}

static int alloc_backing(struct ram_block *b,
			 const struct ram_block_config *cfg,
			 struct mig_error **errp)
{
	switch (cfg->backing) {
	case RAM_BACKING_ANON:
		return alloc_anon(b, cfg, errp);
	case RAM_BACKING_MEMFD:
		return alloc_memfd(b, cfg, errp);
	case RAM_BACKING_FILE:
		return alloc_file(b, cfg, errp);
	}
	mig_error_setg(errp, "unknown RAM backing");
	return -EINVAL;
}

struct ram_block *ram_block_new(const struct ram_block_config *cfg,
				struct mig_error **errp)
{
	struct ram_block *b;

	if (!config_is_valid(cfg, errp))
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b || !(b->name = strdup(cfg->name))) {
		free(b);
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	b->fd = -1;
	b->backing = cfg->backing;
	b->shared = cfg->share;
	if (alloc_backing(b, cfg, errp) < 0)
		goto err_free;
	if (cfg->prealloc &&
	    ram_block_prealloc(b, cfg->prealloc_threads, errp) < 0)
		goto err_free;
	return b;

err_free:
	mig_error_setg(errp, "cannot set up guest memory '%s'", cfg->name);
	ram_block_free(b);
	return NULL;
}

void ram_block_prepare_write(struct ram_block *b, uint64_t offset,
			     uint64_t len)
{
	ram_touch_prepare(b->touch, offset, len);
}

void ram_block_no_huge_pages(struct ram_block *b)
{
	ram_touch_disable(b->touch);
}

void ram_block_free(struct ram_block *b)
{
	if (!b)
		return;
	ram_touch_free(b->touch);
	if (b->map_base)
		munmap(b->map_base, b->map_len);
	if (b->fd >= 0)
		close(b->fd);
	free(b->mem_path);
	free(b->name);
	free(b);
}
