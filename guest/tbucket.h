/* tbucket.h — a token bucket over a caller-supplied clock: how many bytes
 * a rate-limited writer may write now, and how long to sleep otherwise.
 * Pure arithmetic (no clock, no sleeping), so tests can drive it with a
 * simulated clock. One owner thread per bucket. */
#ifndef MIGD_GUEST_TBUCKET_H
#define MIGD_GUEST_TBUCKET_H

#include <stdint.h>

struct tbucket {
	double rate;   /* bytes per second, > 0 */
	double burst;  /* most tokens kept: unused credit beyond is lost */
	double tokens; /* bytes that may be written now */
	uint64_t last; /* clock (ns) of the last refill */
};

/* Starts empty at now_ns. burst is raised to at least one byte. */
void tbucket_init(struct tbucket *tb, double rate, double burst,
		  uint64_t now_ns);
/* Credits the time since the last refill, up to burst. */
void tbucket_refill(struct tbucket *tb, uint64_t now_ns);
/* Whole bytes available now (after a refill). */
uint64_t tbucket_available(const struct tbucket *tb);
void tbucket_consume(struct tbucket *tb, uint64_t bytes);
/* Nanoseconds from the last refill until need bytes are available (0 when
 * they are; need is capped at burst so the wait always ends). */
uint64_t tbucket_wait_ns(const struct tbucket *tb, uint64_t need);

#endif
