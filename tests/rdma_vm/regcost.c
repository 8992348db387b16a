/* regcost.c — memory registration cost on the first RDMA device, for the
 * rdma_vm tier's relative figures: "regcost MiB" registers MiB of touched
 * anonymous memory once as one region (what rdma-pin-all does) and once as
 * 1 MiB chunks (dynamic registration's chunk size), deregistering each, and
 * prints one FIGURE line with milliseconds per GiB for both. Single-threaded
 * test tool; not part of migd. Exit 0 success, 1 failure, 2 usage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <infiniband/verbs.h>

#define CHUNK (1UL << 20)
#define ACCESS (IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Registers [buf, buf + len) as len / chunk regions, then deregisters them;
 * returns the milliseconds both took, or -1 with a message. */
static double reg_cost(struct ibv_pd *pd, char *buf, size_t len, size_t chunk)
{
	size_t n = len / chunk, i, done = 0;
	struct ibv_mr **mrs = calloc(n, sizeof(*mrs));
	double t0 = now_ms(), ms = -1;

	if (!mrs)
		return -1;
	for (i = 0; i < n; i++, done++) {
		mrs[i] = ibv_reg_mr(pd, buf + i * chunk, chunk, ACCESS);
		if (!mrs[i]) {
			fprintf(stderr, "regcost: ibv_reg_mr %zu bytes: %s\n",
				chunk, strerror(errno));
			goto cleanup;
		}
	}
	ms = 0;
cleanup:
	for (i = 0; i < done; i++)
		ibv_dereg_mr(mrs[i]);
	free(mrs);
	return ms < 0 ? -1 : now_ms() - t0;
}

static int measure(struct ibv_context *ctx, size_t mib)
{
	size_t len = mib * CHUNK;
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	double whole, chunks, gib = mib / 1024.0;
	char *buf;

	if (!pd) {
		fprintf(stderr, "regcost: ibv_alloc_pd: %s\n", strerror(errno));
		return 1;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		ibv_dealloc_pd(pd);
		return 1;
	}
	memset(buf, 1, len); /* guest RAM is touched before it is sent */
	whole = reg_cost(pd, buf, len, len);
	chunks = reg_cost(pd, buf, len, CHUNK);
	munmap(buf, len);
	ibv_dealloc_pd(pd);
	if (whole < 0 || chunks < 0)
		return 1;
	printf("FIGURE regcost mib=%zu one_region_ms_per_gib=%.1f "
	       "chunks_1mib_ms_per_gib=%.1f\n",
	       mib, whole / gib, chunks / gib);
	return 0;
}

int main(int argc, char **argv)
{
	struct ibv_device **devs;
	struct ibv_context *ctx;
	long mib;
	int n, ret;

	if (argc != 2 || (mib = strtol(argv[1], NULL, 10)) <= 0 ||
	    mib > 65536) {
		fprintf(stderr, "usage: regcost MiB\n");
		return 2;
	}
	devs = ibv_get_device_list(&n);
	if (!devs || n < 1) {
		fprintf(stderr, "regcost: no RDMA device\n");
		return 1;
	}
	ctx = ibv_open_device(devs[0]);
	if (!ctx) {
		fprintf(stderr, "regcost: cannot open %s: %s\n",
			ibv_get_device_name(devs[0]), strerror(errno));
		ibv_free_device_list(devs);
		return 1;
	}
	ret = measure(ctx, (size_t)mib);
	ibv_close_device(ctx);
	ibv_free_device_list(devs);
	return ret;
}
