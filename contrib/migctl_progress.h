/* migctl_progress.h — what `migctl watch` shows: query-migrate's reply parsed
 * once into a typed struct, the one-line progress display and the final
 * summary. Does not own polling or the terminal (migctl_watch.c does).
 * Pure functions: any thread. The reply is the server's: every field is
 * optional, range-checked, and strings are made safe to print. */
#ifndef MIGD_CONTRIB_MIGCTL_PROGRESS_H
#define MIGD_CONTRIB_MIGCTL_PROGRESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mctl_phase {
	MCTL_PHASE_NONE,      /* no migration yet ({} or "none") */
	MCTL_PHASE_RUNNING,   /* setup, active, device, ... */
	MCTL_PHASE_COMPLETED, /* "completed" */
	MCTL_PHASE_FAILED,    /* "failed" or "cancelled" */
};

/* A field absent from the reply (or negative, or of the wrong type) reads
 * as 0 and its has_ flag is false. */
struct mctl_progress {
	char status[32];
	char error_desc[512];
	bool has_total_time, has_downtime, has_setup_time;
	bool has_ram, has_remaining;
	int64_t total_time_ms;
	int64_t downtime_ms;
	int64_t setup_time_ms;
	uint64_t transferred;
	uint64_t remaining;
	uint64_t total;
	uint64_t normal;
	uint64_t duplicate;
	uint64_t dirty_pages_rate; /* pages per second */
	uint64_t dirty_sync_count; /* the iteration */
	uint64_t page_size;	   /* 4096 when not reported */
	double mbps;		   /* megabits per second, as QEMU reports */
};

/* Parses a query-migrate "return" value (NULL or non-object: no
 * migration). */
void mctl_progress_parse(const json_t *info, struct mctl_progress *p);
enum mctl_phase mctl_progress_phase(const struct mctl_progress *p);
/* Share of RAM done, 0..100: (total - remaining) / total, as virsh counts
 * it (zero pages cost almost no bytes, so transferred says little; after a
 * dirty sync the share goes down again). Without remaining or total:
 * transferred / max(total, transferred + remaining). */
double mctl_progress_percent(const struct mctl_progress *p);

/* Binary units: "0 B", "512 B", "1.50 KiB", "512.0 MiB", "2.00 GiB". */
void mctl_format_bytes(uint64_t bytes, char *buf, size_t len);

/* The live line, at most width - 1 characters (width <= 0: no limit),
 * e.g. "active   47.2%  118.3 MB/s  rem 540.0 MiB  dirty 0.0 MB/s  iter 1".
 * With with_bar and room for it, a bar follows the status and the numbers
 * get fixed widths, so redraws do not make the bar jump: "active [###---]
 *  47.2%    118.3 MB/s  rem  540.0 MiB  dirty    0.0 MB/s  iter 1". */
void mctl_progress_line(const struct mctl_progress *p, int width, bool with_bar,
			char *buf, size_t len);

/* The final summary, several lines ending in '\n' (malloc'd; NULL when out
 * of memory). */
char *mctl_progress_summary(const struct mctl_progress *p);

#endif
