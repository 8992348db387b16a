/* limits.c — the machine's own limits that migration figures are compared
 * with (docs/benchmarks.md): memcpy bandwidth, the cost of first-touching
 * fresh anonymous memory (4 KiB pages and THP, warm and cold, one and two
 * threads), and zero-page scanning. Prints one JSON object. Standalone,
 * single process: `build/migd-limits [-c COLD_SECONDS] [-t TOUCH_MiB] [MiB]`
 * (MiB for memcpy and zero scan, TOUCH_MiB for first touch, default MiB).
 *
 * Warm vs cold: on a VM whose kernel reports free pages to the host
 * (page_reporting), memory freed a few seconds ago has been handed back and
 * the next first touch also pays the host's fault. "Warm" touches memory
 * freed just before; "cold" touches and frees a region of the same size,
 * then waits COLD_SECONDS (default 3) so the freed pages are reported. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "multifd/mfd_send.h"

#define LIMITS_PAGE 4096
#define LIMITS_MAX_THREADS 2

struct touch_job {
	uint8_t *start;
	size_t len;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *map(size_t len, int advice)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	madvise(p, len, advice);
	return p;
}

/* GB/s copying len bytes (both buffers already faulted in). */
static double memcpy_gbs(size_t len)
{
	uint8_t *a = map(len, MADV_HUGEPAGE), *b = map(len, MADV_HUGEPAGE);
	double t0, best = 0;

	memset(a, 1, len);
	memset(b, 2, len);
	for (int i = 0; i < 5; i++) {
		t0 = now_s();
		memcpy(b, a, len);
		double gbs = (double)len / (now_s() - t0) / 1e9;
		if (gbs > best)
			best = gbs;
	}
	munmap(a, len);
	munmap(b, len);
	return best;
}

static void *touch_worker(void *opaque)
{
	struct touch_job *job = opaque;

	for (size_t off = 0; off < job->len; off += LIMITS_PAGE)
		job->start[off] = 1;
	return NULL;
}

/* Touches and frees len bytes so the next allocation meets memory that
 * was just freed; with cold_s > 0 waits for the kernel to report it. */
static void prepare_memory(size_t len, unsigned cold_s)
{
	struct touch_job job = {map(len, MADV_NOHUGEPAGE), len};

	touch_worker(&job);
	munmap(job.start, job.len);
	if (cold_s)
		sleep(cold_s);
}

/* GB/s of first writes to fresh memory, one byte per 4 KiB page, split
 * over nthreads threads (a thread that cannot start runs inline). */
static double first_touch_gbs(size_t len, int advice, unsigned nthreads)
{
	struct touch_job jobs[LIMITS_MAX_THREADS];
	pthread_t tids[LIMITS_MAX_THREADS];
	bool started[LIMITS_MAX_THREADS] = {false};
	uint8_t *a = map(len, advice);
	size_t part = len / nthreads / LIMITS_PAGE * LIMITS_PAGE;
	double t0 = now_s();

	for (unsigned i = 0; i < nthreads; i++) {
		jobs[i].start = a + i * part;
		jobs[i].len = i + 1 == nthreads ? len - i * part : part;
		started[i] = nthreads > 1 &&
			     pthread_create(&tids[i], NULL, touch_worker,
					    &jobs[i]) == 0;
		if (!started[i])
			touch_worker(&jobs[i]);
	}
	for (unsigned i = 0; i < nthreads; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	double gbs = (double)len / (now_s() - t0) / 1e9;
	munmap(a, len);
	return gbs;
}

static double zero_scan_gbs(size_t len)
{
	uint8_t *a = map(len, MADV_HUGEPAGE);
	size_t zero = 0;
	double t0;

	memset(a, 0, len);
	t0 = now_s();
	for (size_t off = 0; off < len; off += LIMITS_PAGE)
		zero += mfd_page_is_zero(a + off);
	double gbs = (double)len / (now_s() - t0) / 1e9;
	munmap(a, len);
	return zero ? gbs : 0;
}

static double touch_after(size_t len, unsigned cold_s, int advice,
			  unsigned nthreads)
{
	prepare_memory(len, cold_s);
	return first_touch_gbs(len, advice, nthreads);
}

struct limits_args {
	size_t mib;	  /* memcpy and zero scan */
	size_t touch_mib; /* first touch; 0 = mib */
	unsigned cold_s;
};

static bool valid_mib(size_t mib)
{
	return mib > 0 && mib <= (1u << 20);
}

static int parse_args(int argc, char **argv, struct limits_args *a)
{
	int opt;

	while ((opt = getopt(argc, argv, "c:t:")) != -1) {
		if (opt == 'c')
			a->cold_s = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 't')
			a->touch_mib = strtoul(optarg, NULL, 0);
		else
			return -EINVAL;
	}
	if (optind < argc)
		a->mib = strtoul(argv[optind], NULL, 0);
	if (!a->touch_mib)
		a->touch_mib = a->mib;
	if (!valid_mib(a->mib) || !valid_mib(a->touch_mib) || a->cold_s > 60)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct limits_args a = {.mib = 1024, .cold_s = 3};

	if (parse_args(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: migd-limits [-c COLD_SECONDS] "
				"[-t TOUCH_MiB] [MiB]\n");
		return 2;
	}
	size_t len = a.mib << 20, touch = a.touch_mib << 20;
	printf("{\"size_mib\": %zu, \"touch_mib\": %zu, \"cold_wait_s\": %u, ",
	       a.mib, a.touch_mib, a.cold_s);
	printf("\"memcpy_gbs\": %.2f, ", memcpy_gbs(len));
	printf("\"zero_scan_gbs\": %.2f, ", zero_scan_gbs(len));
	printf("\"first_touch_4k_warm_gbs\": %.2f, ",
	       touch_after(touch, 0, MADV_NOHUGEPAGE, 1));
	printf("\"first_touch_4k_cold_gbs\": %.2f, ",
	       touch_after(touch, a.cold_s, MADV_NOHUGEPAGE, 1));
	printf("\"first_touch_thp_cold_gbs\": %.2f, ",
	       touch_after(touch, a.cold_s, MADV_HUGEPAGE, 1));
	printf("\"first_touch_4k_cold_2t_gbs\": %.2f}\n",
	       touch_after(touch, a.cold_s, MADV_NOHUGEPAGE, 2));
	return 0;
}
