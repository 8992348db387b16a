/* dirtyrate.h — calc-dirty-rate / query-dirty-rate (QEMU 9.0 semantics):
 * a measuring thread ("get_dirtyrate") per request, in one of three modes:
 * page-sampling (hashes of sampled pages before/after), dirty-bitmap (the
 * guest's rate log: pages first written in the window) and dirty-ring (the
 * same, per vCPU). Measuring never touches a migration's dirty tracking.
 * Control thread, except the measuring thread inside dirtyrate.c. */
#ifndef MIGD_CONTROL_DIRTYRATE_H
#define MIGD_CONTROL_DIRTYRATE_H

#include <stdint.h>

struct migd;
struct qmp_server;

#define DIRTYRATE_MIN_CALC_MS 50
#define DIRTYRATE_MAX_CALC_MS 60000
#define DIRTYRATE_DEFAULT_SAMPLES 512
#define DIRTYRATE_MIN_SAMPLES 128
#define DIRTYRATE_MAX_SAMPLES 16384
#define DIRTYRATE_MIN_BLOCK (128u << 10) /* smaller blocks: not sampled */

/* Creates md->dirtyrate and registers the two commands. */
int dirtyrate_register_qmp(struct migd *md, struct qmp_server *srv);
/* Ends a running measurement at once, joins its thread, frees. */
void dirtyrate_shutdown(struct migd *md);

/* The rate arithmetic, QEMU's integer formulas (exposed for tests).
 * Pages first written in ms milliseconds, as MiB/s. */
int64_t dirtyrate_from_pages(uint64_t pages, int64_t ms);
/* page-sampling: dirty samples of total, over blocks of block_mib MiB. */
int64_t dirtyrate_from_samples(uint64_t dirty, uint64_t total,
			       uint64_t block_mib, int64_t ms);
/* calc-time in unit (0 second, 1 millisecond) to ms; saturates so that
 * any overflow lands outside the valid range. */
int64_t dirtyrate_to_ms(int64_t value, int unit);

#endif
