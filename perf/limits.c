/* limits.c — the machine's own limits that migration figures are compared
 * with (docs/benchmarks.md): memcpy bandwidth, the cost of first-touching
 * fresh anonymous memory (4 KiB pages and THP), and zero-page scanning.
 * Prints one JSON object. Standalone tool: `build/migd-limits [MiB]`. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "multifd/mfd_send.h"

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

/* GB/s of first writes to fresh memory, 4 KiB at a time. */
static double first_touch_gbs(size_t len, int advice)
{
	uint8_t *a = map(len, advice);
	double t0 = now_s();

	for (size_t off = 0; off < len; off += 4096)
		a[off] = 1;
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
	for (size_t off = 0; off < len; off += 4096)
		zero += mfd_page_is_zero(a + off);
	double gbs = (double)len / (now_s() - t0) / 1e9;
	munmap(a, len);
	return zero ? gbs : 0;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 1024;
	size_t len = mib << 20;

	printf("{\"size_mib\": %zu, \"memcpy_gbs\": %.2f, "
	       "\"first_touch_4k_gbs\": %.2f, \"first_touch_thp_gbs\": %.2f, "
	       "\"zero_scan_gbs\": %.2f}\n",
	       mib, memcpy_gbs(len), first_touch_gbs(len, MADV_NOHUGEPAGE),
	       first_touch_gbs(len, MADV_HUGEPAGE), zero_scan_gbs(len));
	return 0;
}
