/* migctl_progress.c — query-migrate reply → struct mctl_progress → progress
 * line and summary text (see migctl_progress.h). Pure functions. */
#include "contrib/migctl_progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PAGE_SIZE 4096u
/* The live line's bar: 8 cells fit next to the numbers on 80 columns. */
#define BAR_MIN_CELLS 8
#define BAR_MAX_CELLS 40

/* Reads a non-negative number; false (and *out untouched) otherwise. */
static bool get_u64(const json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	double d;

	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!(d >= 0 && d < 1.8e19)) /* also rejects NaN */
		return false;
	*out = (uint64_t)d;
	return true;
}

static bool get_ms(const json_t *obj, const char *key, int64_t *out)
{
	uint64_t v;

	if (!get_u64(obj, key, &v) || v > INT64_MAX)
		return false;
	*out = (int64_t)v;
	return true;
}

/* Copies a server string for printing on a terminal: C0 and C1 control
 * characters (escape sequences) become '?'. */
static void copy_printable(char *dst, size_t len, const char *src)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t i = 0;

	for (; *s && i + 1 < len; s++) {
		if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
			dst[i++] = '?';
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			dst[i++] = '?';
		} else {
			dst[i++] = (char)*s;
		}
	}
	dst[i] = '\0';
}

static void parse_ram(const json_t *ram, struct mctl_progress *p)
{
	double mbps;

	p->has_ram = json_is_object(ram);
	get_u64(ram, "transferred", &p->transferred);
	p->has_remaining = get_u64(ram, "remaining", &p->remaining);
	get_u64(ram, "total", &p->total);
	get_u64(ram, "normal", &p->normal);
	get_u64(ram, "duplicate", &p->duplicate);
	get_u64(ram, "dirty-pages-rate", &p->dirty_pages_rate);
	get_u64(ram, "dirty-sync-count", &p->dirty_sync_count);
	if (!get_u64(ram, "page-size", &p->page_size) || !p->page_size ||
	    p->page_size > (1u << 30))
		p->page_size = DEFAULT_PAGE_SIZE;
	mbps = json_number_value(json_object_get(ram, "mbps"));
	p->mbps = mbps >= 0 && mbps < 1e12 ? mbps : 0;
}

void mctl_progress_parse(const json_t *info, struct mctl_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->page_size = DEFAULT_PAGE_SIZE;
	if (!json_is_object(info))
		return;
	copy_printable(p->status, sizeof(p->status),
		       json_string_value(json_object_get(info, "status")));
	copy_printable(p->error_desc, sizeof(p->error_desc),
		       json_string_value(json_object_get(info, "error-desc")));
	p->has_total_time = get_ms(info, "total-time", &p->total_time_ms);
	p->has_downtime = get_ms(info, "downtime", &p->downtime_ms);
	p->has_setup_time = get_ms(info, "setup-time", &p->setup_time_ms);
	parse_ram(json_object_get(info, "ram"), p);
}

enum mctl_phase mctl_progress_phase(const struct mctl_progress *p)
{
	if (!p->status[0] || !strcmp(p->status, "none"))
		return MCTL_PHASE_NONE;
	if (!strcmp(p->status, "completed"))
		return MCTL_PHASE_COMPLETED;
	if (!strcmp(p->status, "failed") || !strcmp(p->status, "cancelled"))
		return MCTL_PHASE_FAILED;
	return MCTL_PHASE_RUNNING;
}

double mctl_progress_percent(const struct mctl_progress *p)
{
	uint64_t denom = p->transferred + p->remaining;
	double pct;

	if (p->has_remaining && p->total) {
		if (p->remaining >= p->total)
			return 0.0;
		return 100.0 * (double)(p->total - p->remaining) /
		       (double)p->total;
	}
	if (denom < p->transferred) /* wrapped: saturate */
		denom = UINT64_MAX;
	if (p->total > denom)
		denom = p->total;
	if (!denom)
		return 0.0;
	pct = 100.0 * (double)p->transferred / (double)denom;
	return pct > 100.0 ? 100.0 : pct;
}

void mctl_format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB",
					    "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return;
	}
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, v < 10.0 ? "%.2f %s" : "%.1f %s", v, units[u]);
}

/* Everything after the bar, so the bar can be sized; fixed field widths
 * when padded. The percentage is rounded down (100.0% only when nothing
 * remains). mbps is megabits per second (QEMU's unit): shown as MB/s.
 * Before RAM statistics exist (setup), the elapsed time is all there is to
 * show. */
static void format_tail(const struct mctl_progress *p, bool padded, char *buf,
			size_t len)
{
	double dirty_mbs, pct;
	char rem[32];

	if (!p->has_ram) {
		snprintf(buf, len, "%.1fs", p->total_time_ms / 1000.0);
		return;
	}
	mctl_format_bytes(p->remaining, rem, sizeof(rem));
	dirty_mbs = (double)p->dirty_pages_rate * (double)p->page_size / 1e6;
	pct = floor(mctl_progress_percent(p) * 10.0 + 1e-9) / 10.0;
	if (padded)
		snprintf(buf, len,
			 "%5.1f%%  %6.1f MB/s  rem %10s  dirty %5.1f MB/s  "
			 "iter %llu",
			 pct, p->mbps / 8.0, rem, dirty_mbs,
			 (unsigned long long)p->dirty_sync_count);
	else
		snprintf(buf, len,
			 "%5.1f%%  %.1f MB/s  rem %s  dirty %.1f MB/s  "
			 "iter %llu",
			 pct, p->mbps / 8.0, rem, dirty_mbs,
			 (unsigned long long)p->dirty_sync_count);
}

static void format_bar(double pct, int cells, char *buf)
{
	int filled = (int)(pct / 100.0 * cells + 0.5), i;

	buf[0] = '[';
	for (i = 0; i < cells; i++)
		buf[i + 1] = i < filled ? '#' : '-';
	buf[cells + 1] = ']';
	buf[cells + 2] = '\0';
}

void mctl_progress_line(const struct mctl_progress *p, int width, bool with_bar,
			char *buf, size_t len)
{
	const char *status = p->status[0] ? p->status : "none";
	char tail[256], bar[48] = "";
	int cells;

	if (!len)
		return;
	format_tail(p, true, tail, sizeof(tail));
	/* status, space, [bar], space, tail: the bar takes what is left */
	cells = width - 1 - (int)strlen(status) - (int)strlen(tail) - 4;
	if (with_bar && p->has_ram && cells >= BAR_MIN_CELLS) {
		if (cells > BAR_MAX_CELLS)
			cells = BAR_MAX_CELLS;
		format_bar(mctl_progress_percent(p), cells, bar);
		snprintf(buf, len, "%s %s %s", status, bar, tail);
	} else {
		format_tail(p, false, tail, sizeof(tail));
		snprintf(buf, len, "%s  %s", status, tail);
	}
	if (width > 1 && (size_t)width - 1 < len)
		buf[width - 1] = '\0';
}

static void summary_times(FILE *f, const struct mctl_progress *p)
{
	if (p->has_total_time)
		fprintf(f, "  total time    %lld ms\n",
			(long long)p->total_time_ms);
	if (p->has_downtime)
		fprintf(f, "  downtime      %lld ms\n",
			(long long)p->downtime_ms);
	if (p->has_setup_time)
		fprintf(f, "  setup time    %lld ms\n",
			(long long)p->setup_time_ms);
}

static void summary_ram(FILE *f, const struct mctl_progress *p)
{
	char sent[32];

	if (!p->has_ram)
		return;
	mctl_format_bytes(p->transferred, sent, sizeof(sent));
	fprintf(f, "  transferred   %s\n", sent);
	if (p->has_total_time && p->total_time_ms > 0)
		fprintf(f, "  throughput    %.1f MB/s average\n",
			(double)p->transferred / 1e3 /
				(double)p->total_time_ms);
	fprintf(f, "  pages         %llu normal, %llu duplicate\n",
		(unsigned long long)p->normal,
		(unsigned long long)p->duplicate);
	fprintf(f, "  iterations    %llu\n",
		(unsigned long long)p->dirty_sync_count);
}

char *mctl_progress_summary(const struct mctl_progress *p)
{
	char *text = NULL;
	size_t size;
	FILE *f;

	f = open_memstream(&text, &size);
	if (!f)
		return NULL;
	fprintf(f, "Migration %s\n", p->status[0] ? p->status : "none");
	summary_times(f, p);
	summary_ram(f, p);
	if (p->error_desc[0])
		fprintf(f, "  error         %s\n", p->error_desc);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}
