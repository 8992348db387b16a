/* uffd.c — userfaultfd for postcopy's destination RAM (see uffd.h): open
 * and API handshake, missing-mode ranges with received/requested bitmaps,
 * the fault thread, atomic page placement and postcopy-blocktime.
 * Lock order: u->lock (ranges, rwlock) before u->bt.lock (blocktime). */
#include "guest/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

struct uffd_range {
	bool used;
	bool zeroable; /* UFFDIO_ZEROPAGE works here */
	uint8_t *host;
	uint64_t length;
	size_t page_size;
	unsigned page_shift;
	uint64_t npages;
	_Atomic uint64_t *received;  /* placed (or found present) */
	_Atomic uint64_t *requested; /* reported to the callback */
	uint8_t *zero_buf;	     /* page_size zeros when !zeroable */
};

/* QEMU's PostcopyBlocktimeContext, under its own lock: begin runs on the
 * fault thread, end on whichever thread places the page. */
struct blocktime {
	pthread_mutex_t lock;
	unsigned nr;
	uint32_t *tid;	     /* vCPU index -> thread id (0: unknown) */
	uintptr_t *addr;     /* page a vCPU waits for, 0 when running */
	uint64_t *since;     /* ms when it blocked */
	uint64_t *vcpu_ms;   /* per-vCPU blocktime */
	unsigned cpus_down;  /* vCPUs blocked now */
	uint64_t last_begin; /* ms of the latest blocking fault */
	uint64_t total_ms;
	struct timespec start;
	atomic_uint down_hint; /* lock-free "anyone blocked?" for end() */
};

struct uffd {
	int fd;
	int evfd;
	uint64_t features; /* what the handshake enabled */
	struct uffd_config cfg;
	pthread_rwlock_t lock;
	struct uffd_range ranges[UFFD_MAX_RANGES];
	unsigned nranges; /* slots ever used: ids are never reused */
	pthread_t thread;
	bool running;
	atomic_bool quit;
	atomic_int thread_err;
	bool blocktime_on;
	struct blocktime bt;
};

/* ---- opening and the API handshake ---------------------------------- */

static const struct {
	uint64_t bit;
	const char *name;
} feature_names[] = {
	{UFFD_FEATURE_MISSING_HUGETLBFS, "MISSING_HUGETLBFS"},
	{UFFD_FEATURE_MISSING_SHMEM, "MISSING_SHMEM"},
	{UFFD_FEATURE_THREAD_ID, "THREAD_ID"},
};

static void name_features(uint64_t mask, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(feature_names) / sizeof(*feature_names);
	     i++) {
		if (!(mask & feature_names[i].bit) || n >= len)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "",
				      feature_names[i].name);
	}
}

static int open_fd(enum uffd_open_method m)
{
	int flags = O_CLOEXEC | O_NONBLOCK;
	int fd;

	if (m == UFFD_OPEN_DEV) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev < 0)
			return -errno;
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		fd = fd < 0 ? -errno : fd;
		close(dev);
		return fd;
	}
	if (m == UFFD_OPEN_USER_ONLY)
		flags |= UFFD_USER_MODE_ONLY;
	fd = (int)syscall(__NR_userfaultfd, flags);
	return fd < 0 ? -errno : fd;
}

/* AUTO tries the methods in the order uffd.h gives; *used says which. */
static int open_any(enum uffd_open_method m, enum uffd_open_method *used)
{
	static const enum uffd_open_method order[] = {
		UFFD_OPEN_SYSCALL, UFFD_OPEN_DEV, UFFD_OPEN_USER_ONLY};
	int fd = -ENOSYS;

	if (m != UFFD_OPEN_AUTO) {
		*used = m;
		return open_fd(m);
	}
	for (size_t i = 0; i < 3; i++) {
		*used = order[i];
		fd = open_fd(order[i]);
		if (fd >= 0 || (fd != -EPERM && fd != -EACCES && fd != -ENOENT))
			return fd;
	}
	return fd;
}

static int api_handshake(int fd, uint64_t want, struct uffdio_api *api)
{
	memset(api, 0, sizeof(*api));
	api->api = UFFD_API;
	api->features = want;
	return ioctl(fd, UFFDIO_API, api) ? -errno : 0;
}

/* What the kernel supports, asked on a throwaway fd: UFFDIO_API may be
 * done once per fd, so the real fd asks only for what is both wanted and
 * available. */
static int probe_features(enum uffd_open_method m, uint64_t *features,
			  struct mig_error **errp)
{
	struct uffdio_api api;
	int fd = open_fd(m), ret;

	if (fd < 0) {
		mig_error_setg(errp, "userfaultfd not available: %s",
			       strerror(-fd));
		return fd;
	}
	ret = api_handshake(fd, 0, &api);
	close(fd);
	if (ret) {
		mig_error_setg(errp, "UFFDIO_API failed: %s", strerror(-ret));
		return ret;
	}
	*features = api.features;
	return 0;
}

static int check_features(struct uffd *u, uint64_t supported, uint64_t *want,
			  struct mig_error **errp)
{
	uint64_t need = 0, missing;
	char names[96];

	if (u->cfg.need_hugetlbfs)
		need |= UFFD_FEATURE_MISSING_HUGETLBFS;
	if (u->cfg.need_shmem)
		need |= UFFD_FEATURE_MISSING_SHMEM;
	missing = need & ~supported;
	if (missing) {
		name_features(missing, names, sizeof(names));
		mig_error_setg(errp,
			       "Missing userfault features: %" PRIx64 " (%s)",
			       missing, names);
		return -ENOTSUP;
	}
	*want = need;
	/* Like QEMU: no THREAD_ID only means no blocktime. */
	if (u->cfg.blocktime && (supported & UFFD_FEATURE_THREAD_ID))
		*want |= UFFD_FEATURE_THREAD_ID;
	return 0;
}

static int handshake(struct uffd *u, enum uffd_open_method m,
		     struct mig_error **errp)
{
	uint64_t supported, want, ioctls;
	struct uffdio_api api;
	int ret = probe_features(m, &supported, errp);

	if (!ret)
		ret = check_features(u, supported, &want, errp);
	if (ret)
		return ret;
	ret = api_handshake(u->fd, want, &api);
	if (ret) {
		mig_error_setg(errp, "UFFDIO_API failed: %s", strerror(-ret));
		return ret;
	}
	ioctls = (1ULL << _UFFDIO_REGISTER) | (1ULL << _UFFDIO_UNREGISTER);
	if ((api.ioctls & ioctls) != ioctls) {
		mig_error_setg(errp, "Missing userfault features: %" PRIx64,
			       (uint64_t)(~api.ioctls & ioctls));
		return -ENOTSUP;
	}
	u->features = want;
	u->blocktime_on = (want & UFFD_FEATURE_THREAD_ID) != 0;
	return 0;
}

/* ---- blocktime -------------------------------------------------------- */

static uint64_t bt_now_ms(const struct blocktime *bt)
{
	struct timespec ts;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ms = (int64_t)(ts.tv_sec - bt->start.tv_sec) * 1000 +
	     (ts.tv_nsec - bt->start.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint64_t)ms;
}

static int bt_init(struct blocktime *bt, unsigned nr)
{
	memset(bt, 0, sizeof(*bt));
	pthread_mutex_init(&bt->lock, NULL);
	bt->nr = nr;
	clock_gettime(CLOCK_MONOTONIC, &bt->start);
	if (!nr)
		return 0;
	bt->tid = calloc(nr, sizeof(*bt->tid));
	bt->addr = calloc(nr, sizeof(*bt->addr));
	bt->since = calloc(nr, sizeof(*bt->since));
	bt->vcpu_ms = calloc(nr, sizeof(*bt->vcpu_ms));
	if (!bt->tid || !bt->addr || !bt->since || !bt->vcpu_ms)
		return -ENOMEM;
	return 0;
}

static void bt_destroy(struct blocktime *bt)
{
	free(bt->tid);
	free(bt->addr);
	free(bt->since);
	free(bt->vcpu_ms);
	pthread_mutex_destroy(&bt->lock);
}

static int bt_vcpu_of(const struct blocktime *bt, uint32_t tid)
{
	for (unsigned i = 0; tid && i < bt->nr; i++)
		if (bt->tid[i] == tid)
			return (int)i;
	return -1;
}

/* A vCPU faulted on page (fault thread). Caller holds u->lock (read). */
static void bt_begin(struct uffd *u, uintptr_t page, uint32_t tid)
{
	struct blocktime *bt = &u->bt;
	int cpu;

	if (!u->blocktime_on)
		return;
	pthread_mutex_lock(&bt->lock);
	cpu = bt_vcpu_of(bt, tid);
	if (cpu >= 0) {
		if (!bt->addr[cpu])
			bt->cpus_down++;
		bt->last_begin = bt_now_ms(bt);
		bt->since[cpu] = bt->last_begin;
		bt->addr[cpu] = page;
		atomic_store(&bt->down_hint, bt->cpus_down);
	}
	pthread_mutex_unlock(&bt->lock);
}

/* The fault raced with placement: forget it without counting. */
static void bt_cancel(struct uffd *u, uintptr_t page, uint32_t tid)
{
	struct blocktime *bt = &u->bt;
	int cpu;

	if (!u->blocktime_on)
		return;
	pthread_mutex_lock(&bt->lock);
	cpu = bt_vcpu_of(bt, tid);
	if (cpu >= 0 && bt->addr[cpu] == page) {
		bt->addr[cpu] = 0;
		bt->cpus_down--;
		atomic_store(&bt->down_hint, bt->cpus_down);
	}
	pthread_mutex_unlock(&bt->lock);
}

/* page was placed: unblock its waiters (any placing thread). */
static void bt_end(struct uffd *u, uintptr_t page)
{
	struct blocktime *bt = &u->bt;
	unsigned affected = 0;
	bool all_down = false;
	uint64_t now;

	if (!u->blocktime_on || !atomic_load(&bt->down_hint))
		return;
	pthread_mutex_lock(&bt->lock);
	now = bt_now_ms(bt);
	for (unsigned i = 0; i < bt->nr; i++) {
		if (bt->addr[i] != page)
			continue;
		bt->addr[i] = 0;
		bt->vcpu_ms[i] += now - bt->since[i];
		affected++;
		if (bt->cpus_down == bt->nr)
			all_down = true;
	}
	if (all_down)
		bt->total_ms += now - bt->last_begin;
	bt->cpus_down -= affected;
	atomic_store(&bt->down_hint, bt->cpus_down);
	pthread_mutex_unlock(&bt->lock);
}

bool uffd_has_blocktime(const struct uffd *u)
{
	return u->blocktime_on;
}

int uffd_blocktime_set_vcpu(struct uffd *u, unsigned cpu, uint32_t tid)
{
	if (cpu >= u->bt.nr)
		return -EINVAL;
	pthread_mutex_lock(&u->bt.lock);
	u->bt.tid[cpu] = tid;
	pthread_mutex_unlock(&u->bt.lock);
	return 0;
}

int64_t uffd_blocktime_read(struct uffd *u, uint32_t *vcpu_ms, unsigned n)
{
	int64_t total;

	if (!u->blocktime_on)
		return -ENOTSUP;
	pthread_mutex_lock(&u->bt.lock);
	for (unsigned i = 0; i < n && i < u->bt.nr; i++)
		vcpu_ms[i] = (uint32_t)u->bt.vcpu_ms[i];
	total = (int64_t)(uint32_t)u->bt.total_ms; /* QMP's uint32 */
	pthread_mutex_unlock(&u->bt.lock);
	return total;
}

/* ---- lifecycle -------------------------------------------------------- */

static struct uffd *uffd_alloc(const struct uffd_config *cfg)
{
	struct uffd *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->cfg = *cfg;
	u->fd = -1;
	u->evfd = -1;
	pthread_rwlock_init(&u->lock, NULL);
	if (bt_init(&u->bt, cfg->blocktime ? cfg->nr_vcpus : 0)) {
		bt_destroy(&u->bt);
		pthread_rwlock_destroy(&u->lock);
		free(u);
		return NULL;
	}
	return u;
}

struct uffd *uffd_open(const struct uffd_config *cfg, struct mig_error **errp)
{
	enum uffd_open_method used;
	struct uffd *u;

	if (!cfg->on_fault || cfg->nr_vcpus > UFFD_MAX_VCPUS) {
		mig_error_setg(errp, "userfaultfd: invalid configuration");
		return NULL;
	}
	u = uffd_alloc(cfg);
	if (!u) {
		mig_error_setg(errp, "userfaultfd: out of memory");
		return NULL;
	}
	u->fd = open_any(cfg->method, &used);
	if (u->fd < 0) {
		mig_error_setg(errp, "userfaultfd not available: %s",
			       strerror(-u->fd));
		goto err;
	}
	u->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->evfd < 0) {
		mig_error_setg(errp, "userfaultfd: eventfd: %s",
			       strerror(errno));
		goto err;
	}
	if (handshake(u, used, errp))
		goto err;
	return u;

err:
	uffd_free(u);
	return NULL;
}

static void range_release(struct uffd_range *r)
{
	free((void *)r->received);
	free((void *)r->requested);
	if (r->zero_buf)
		munmap(r->zero_buf, r->page_size);
	memset(r, 0, sizeof(*r));
}

void uffd_free(struct uffd *u)
{
	if (!u)
		return;
	uffd_stop(u);
	for (unsigned i = 0; i < u->nranges; i++)
		if (u->ranges[i].used)
			uffd_unregister(u, i, NULL);
	if (u->evfd >= 0)
		close(u->evfd);
	if (u->fd >= 0)
		close(u->fd);
	bt_destroy(&u->bt);
	pthread_rwlock_destroy(&u->lock);
	free(u);
}

/* ---- ranges ------------------------------------------------------------ */

static int check_geometry(void *host, uint64_t length, size_t page_size,
			  struct mig_error **errp)
{
	long host_ps = sysconf(_SC_PAGESIZE);

	if (!page_size || (page_size & (page_size - 1)) ||
	    page_size < (size_t)host_ps) {
		mig_error_setg(errp,
			       "userfaultfd: invalid page size 0x%zx "
			       "(host page size 0x%lx)",
			       page_size, host_ps);
		return -EINVAL;
	}
	if (!host || !length || ((uintptr_t)host & (page_size - 1)) ||
	    (length & (page_size - 1)) ||
	    (uintptr_t)host + length < (uintptr_t)host) {
		mig_error_setg(errp,
			       "userfaultfd: range %p+0x%" PRIx64
			       " is not a multiple of page size 0x%zx",
			       host, length, page_size);
		return -EINVAL;
	}
	return 0;
}

static bool ranges_overlap(const struct uffd *u, uintptr_t start,
			   uint64_t length)
{
	for (unsigned i = 0; i < u->nranges; i++) {
		const struct uffd_range *r = &u->ranges[i];

		if (r->used && start < (uintptr_t)r->host + r->length &&
		    (uintptr_t)r->host < start + length)
			return true;
	}
	return false;
}

static int range_alloc(struct uffd_range *r, void *host, uint64_t length,
		       size_t page_size)
{
	size_t words;

	r->host = host;
	r->length = length;
	r->page_size = page_size;
	r->page_shift = (unsigned)__builtin_ctzll(page_size);
	r->npages = length >> r->page_shift;
	words = (size_t)((r->npages + 63) / 64);
	r->received = calloc(words, sizeof(uint64_t));
	r->requested = calloc(words, sizeof(uint64_t));
	if (!r->received || !r->requested)
		return -ENOMEM;
	return 0;
}

static int range_kernel_register(struct uffd *u, struct uffd_range *r,
				 struct mig_error **errp)
{
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)r->host, .len = r->length},
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	uint64_t need = (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_WAKE);

	if (ioctl(u->fd, UFFDIO_REGISTER, &reg)) {
		int e = errno;

		mig_error_setg(errp, "userfault register: %s", strerror(e));
		return -e;
	}
	if ((reg.ioctls & need) != need) {
		struct uffdio_range rng = reg.range;

		ioctl(u->fd, UFFDIO_UNREGISTER, &rng);
		mig_error_setg(errp, "Missing userfault map features: %" PRIx64,
			       (uint64_t)(~reg.ioctls & need));
		return -ENOTSUP;
	}
	r->zeroable = (reg.ioctls & (1ULL << _UFFDIO_ZEROPAGE)) != 0;
	return 0;
}

int uffd_register(struct uffd *u, void *host, uint64_t length, size_t page_size,
		  struct mig_error **errp)
{
	struct uffd_range *r;
	int ret = check_geometry(host, length, page_size, errp);

	if (ret)
		return ret;
	pthread_rwlock_wrlock(&u->lock);
	if (u->nranges == UFFD_MAX_RANGES) {
		mig_error_setg(errp, "userfaultfd: too many ranges (max %d)",
			       UFFD_MAX_RANGES);
		ret = -ENOSPC;
		goto out;
	}
	if (ranges_overlap(u, (uintptr_t)host, length)) {
		mig_error_setg(errp,
			       "userfaultfd: range %p+0x%" PRIx64
			       " overlaps a registered range",
			       host, length);
		ret = -EEXIST;
		goto out;
	}
	r = &u->ranges[u->nranges];
	ret = range_alloc(r, host, length, page_size);
	if (ret)
		mig_error_setg(errp, "userfaultfd: out of memory");
	else
		ret = range_kernel_register(u, r, errp);
	if (ret) {
		range_release(r);
		goto out;
	}
	r->used = true;
	ret = (int)u->nranges++;
out:
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

int uffd_unregister(struct uffd *u, unsigned range, struct mig_error **errp)
{
	struct uffdio_range rng;
	struct uffd_range *r;
	int ret = 0;

	pthread_rwlock_wrlock(&u->lock);
	r = range < u->nranges ? &u->ranges[range] : NULL;
	if (!r || !r->used) {
		ret = -ENOENT;
		goto out;
	}
	rng.start = (uintptr_t)r->host;
	rng.len = r->length;
	if (ioctl(u->fd, UFFDIO_UNREGISTER, &rng)) {
		ret = -errno;
		mig_error_setg(errp, "userfault unregister: %s",
			       strerror(-ret));
	}
	range_release(r); /* the slot stays burnt: ids are not reused */
out:
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

/* Caller holds u->lock. NULL unless [offset, +page) is a page of range. */
static struct uffd_range *lookup(struct uffd *u, unsigned range,
				 uint64_t offset)
{
	struct uffd_range *r;

	if (range >= u->nranges || !u->ranges[range].used)
		return NULL;
	r = &u->ranges[range];
	if (offset >= r->length || (offset & (r->page_size - 1)))
		return NULL;
	return r;
}

static bool bit_test(_Atomic uint64_t *map, uint64_t i)
{
	return atomic_load(&map[i / 64]) & (1ULL << (i % 64));
}

/* Returns whether the bit was already set. */
static bool bit_set(_Atomic uint64_t *map, uint64_t i)
{
	uint64_t m = 1ULL << (i % 64);

	return atomic_fetch_or(&map[i / 64], m) & m;
}

/* ---- placement --------------------------------------------------------- */

static int place_ioctl(struct uffd *u, struct uffd_range *r, uint8_t *dst,
		       const void *src)
{
	if (!src && r->zeroable) {
		struct uffdio_zeropage z = {
			.range = {.start = (uintptr_t)dst, .len = r->page_size},
		};

		return ioctl(u->fd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
	}
	if (!src) {
		if (!r->zero_buf) {
			void *z = mmap(NULL, r->page_size, PROT_READ,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (z == MAP_FAILED)
				return -ENOMEM;
			/* racing placers may both map: keep one */
			if (!__sync_bool_compare_and_swap(&r->zero_buf, NULL,
							  z))
				munmap(z, r->page_size);
		}
		src = r->zero_buf;
	}
	struct uffdio_copy c = {
		.dst = (uintptr_t)dst,
		.src = (uintptr_t)src,
		.len = r->page_size,
	};
	return ioctl(u->fd, UFFDIO_COPY, &c) ? -errno : 0;
}

static int place(struct uffd *u, unsigned range, uint64_t offset,
		 const void *src, struct mig_error **errp)
{
	struct uffd_range *r;
	uint64_t page;
	uint8_t *dst;
	int ret;

	pthread_rwlock_rdlock(&u->lock);
	r = lookup(u, range, offset);
	if (!r) {
		ret = range < u->nranges && u->ranges[range].used ? -EINVAL
								  : -ENOENT;
		mig_error_setg(errp,
			       "postcopy: refusing to place page at 0x%" PRIx64
			       " of range %u: %s",
			       offset, range,
			       ret == -EINVAL ? "outside or unaligned"
					      : "no such range");
		goto out;
	}
	page = offset >> r->page_shift;
	dst = r->host + offset;
	ret = bit_test(r->received, page) ? 1 : place_ioctl(u, r, dst, src);
	if (ret == -EEXIST) {
		/* Present already (placed by a racing thread, or never
		 * discarded): make sure nobody stays asleep on it. */
		struct uffdio_range w = {(uintptr_t)dst, r->page_size};

		ioctl(u->fd, UFFDIO_WAKE, &w);
		ret = 1;
	}
	if (ret < 0) {
		mig_error_setg(errp, "postcopy: %s page at 0x%" PRIx64 ": %s",
			       src ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE", offset,
			       strerror(-ret));
		goto out;
	}
	if (!bit_set(r->received, page))
		bt_end(u, (uintptr_t)dst);
out:
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

int uffd_place_page(struct uffd *u, unsigned range, uint64_t offset,
		    const void *src, struct mig_error **errp)
{
	if (!src) {
		mig_error_setg(errp, "postcopy: no page to place");
		return -EINVAL;
	}
	return place(u, range, offset, src, errp);
}

int uffd_place_zero(struct uffd *u, unsigned range, uint64_t offset,
		    struct mig_error **errp)
{
	return place(u, range, offset, NULL, errp);
}

int uffd_wake(struct uffd *u, unsigned range, uint64_t offset, uint64_t len)
{
	struct uffd_range *r;
	int ret = -EINVAL;

	pthread_rwlock_rdlock(&u->lock);
	r = lookup(u, range, offset);
	if (r && len && !(len & (r->page_size - 1)) &&
	    len <= r->length - offset) {
		struct uffdio_range w = {(uintptr_t)r->host + offset, len};

		ret = ioctl(u->fd, UFFDIO_WAKE, &w) ? -errno : 0;
	}
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

/* ---- queries ----------------------------------------------------------- */

bool uffd_is_received(struct uffd *u, unsigned range, uint64_t offset)
{
	struct uffd_range *r;
	bool ret = false;

	pthread_rwlock_rdlock(&u->lock);
	r = range < u->nranges ? &u->ranges[range] : NULL;
	if (r && r->used && offset < r->length)
		ret = bit_test(r->received, offset >> r->page_shift);
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

int64_t uffd_received_pages(struct uffd *u, unsigned range)
{
	int64_t n = -ENOENT;

	pthread_rwlock_rdlock(&u->lock);
	if (range < u->nranges && u->ranges[range].used) {
		struct uffd_range *r = &u->ranges[range];

		n = 0;
		for (uint64_t w = 0; w < (r->npages + 63) / 64; w++)
			n += __builtin_popcountll(atomic_load(&r->received[w]));
	}
	pthread_rwlock_unlock(&u->lock);
	return n;
}

int64_t uffd_foreach_pending(struct uffd *u, unsigned range,
			     void (*fn)(void *opaque, uint64_t offset),
			     void *opaque)
{
	struct uffd_range *r;
	int64_t n = 0;

	pthread_rwlock_rdlock(&u->lock);
	if (range >= u->nranges || !u->ranges[range].used) {
		n = -ENOENT;
		goto out;
	}
	r = &u->ranges[range];
	for (uint64_t w = 0; w < (r->npages + 63) / 64; w++) {
		uint64_t bits = atomic_load(&r->requested[w]) &
				~atomic_load(&r->received[w]);

		while (bits) {
			uint64_t i = w * 64 + (uint64_t)__builtin_ctzll(bits);

			bits &= bits - 1;
			fn(opaque, i << r->page_shift);
			n++;
		}
	}
out:
	pthread_rwlock_unlock(&u->lock);
	return n;
}

int uffd_received_to_le(struct uffd *u, unsigned range,
			uint64_t target_page_size, uint8_t *out, size_t out_len)
{
	struct uffd_range *r;
	uint64_t per, nbits;
	int ret = 0;

	pthread_rwlock_rdlock(&u->lock);
	r = range < u->nranges && u->ranges[range].used ? &u->ranges[range]
							: NULL;
	if (!r) {
		ret = -ENOENT;
		goto out;
	}
	if (!target_page_size || r->page_size % target_page_size) {
		ret = -EINVAL;
		goto out;
	}
	per = r->page_size / target_page_size;
	nbits = r->npages * per;
	if ((nbits + 7) / 8 > out_len) {
		ret = -ENOBUFS;
		goto out;
	}
	memset(out, 0, out_len);
	for (uint64_t b = 0; b < nbits; b++)
		if (bit_test(r->received, b / per))
			out[b / 8] |= (uint8_t)(1u << (b % 8));
out:
	pthread_rwlock_unlock(&u->lock);
	return ret;
}

/* ---- the fault thread -------------------------------------------------- */

/* Maps a faulting address to (range, offset); caller holds u->lock. */
static struct uffd_range *find_addr(struct uffd *u, uintptr_t addr,
				    unsigned *range, uint64_t *offset)
{
	for (unsigned i = 0; i < u->nranges; i++) {
		struct uffd_range *r = &u->ranges[i];

		if (!r->used || addr < (uintptr_t)r->host ||
		    addr - (uintptr_t)r->host >= r->length)
			continue;
		*range = i;
		*offset = (addr - (uintptr_t)r->host) & ~(r->page_size - 1);
		return r;
	}
	return NULL;
}

static void handle_fault(struct uffd *u, const struct uffd_msg *m)
{
	uint32_t tid = (u->features & UFFD_FEATURE_THREAD_ID)
			       ? m->arg.pagefault.feat.ptid
			       : 0;
	struct uffd_range *r;
	unsigned range = 0;
	uint64_t offset = 0;
	bool report = false;

	pthread_rwlock_rdlock(&u->lock);
	r = find_addr(u, (uintptr_t)m->arg.pagefault.address, &range, &offset);
	if (r) {
		uint64_t page = offset >> r->page_shift;

		bt_begin(u, (uintptr_t)r->host + offset, tid);
		/* Placed in the meantime: its waker may have run before
		 * this thread slept, so wake again rather than request. */
		if (bit_test(r->received, page)) {
			struct uffdio_range w = {(uintptr_t)r->host + offset,
						 r->page_size};

			bt_cancel(u, (uintptr_t)r->host + offset, tid);
			ioctl(u->fd, UFFDIO_WAKE, &w);
		} else {
			report = !bit_set(r->requested, page);
		}
	}
	pthread_rwlock_unlock(&u->lock);
	if (report)
		u->cfg.on_fault(u->cfg.opaque, range, offset, tid);
}

/* Reads every queued event. 0, or -errno when the fd is unusable. */
static int drain_events(struct uffd *u)
{
	struct uffd_msg msgs[16];

	for (;;) {
		ssize_t n = read(u->fd, msgs, sizeof(msgs));

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n == 0 || n % (ssize_t)sizeof(msgs[0]))
			return -EIO; /* lost message alignment */
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(u, &msgs[i]);
		if ((size_t)n < sizeof(msgs))
			return 0;
	}
}

static void *fault_thread(void *arg)
{
	struct uffd *u = arg;
	struct pollfd pfd[2] = {{.fd = u->fd, .events = POLLIN},
				{.fd = u->evfd, .events = POLLIN}};
	int ret = 0;

	while (!ret && !atomic_load(&u->quit)) {
		if (poll(pfd, 2, -1) < 0) {
			ret = errno == EINTR ? 0 : -errno;
			continue;
		}
		if (pfd[1].revents) {
			uint64_t v;

			if (read(u->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				ret = -errno;
			continue; /* the loop condition checks quit */
		}
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			ret = -EIO;
		else if (pfd[0].revents)
			ret = drain_events(u);
	}
	atomic_store(&u->thread_err, ret);
	return NULL;
}

int uffd_start(struct uffd *u, struct mig_error **errp)
{
	int ret;

	if (u->running)
		return 0;
	atomic_store(&u->quit, false);
	atomic_store(&u->thread_err, 0);
	ret = pthread_create(&u->thread, NULL, fault_thread, u);
	if (ret) {
		mig_error_setg(errp,
			       "postcopy: cannot start the fault thread: %s",
			       strerror(ret));
		return -ret;
	}
	u->running = true;
	return 0;
}

void uffd_stop(struct uffd *u)
{
	uint64_t one = 1;

	if (!u->running)
		return;
	atomic_store(&u->quit, true);
	/* An eventfd write only fails when the counter would overflow,
	 * which still leaves it readable: the thread wakes either way. */
	if (write(u->evfd, &one, sizeof(one)) < 0) {
	}
	pthread_join(u->thread, NULL);
	u->running = false;
}

int uffd_fault_thread_error(const struct uffd *u)
{
	return atomic_load(&((struct uffd *)u)->thread_err);
}
