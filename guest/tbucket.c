/* tbucket.c — token bucket arithmetic (see tbucket.h). Any thread; a
 * bucket belongs to one. */
#include "guest/tbucket.h"

#include <math.h>

void tbucket_init(struct tbucket *tb, double rate, double burst,
		  uint64_t now_ns)
{
	tb->rate = rate > 0 ? rate : 1;
	tb->burst = burst >= 1 ? burst : 1;
	tb->tokens = 0;
	tb->last = now_ns;
}

void tbucket_refill(struct tbucket *tb, uint64_t now_ns)
{
	if (now_ns <= tb->last)
		return;
	tb->tokens += tb->rate * (double)(now_ns - tb->last) / 1e9;
	if (tb->tokens > tb->burst)
		tb->tokens = tb->burst;
	tb->last = now_ns;
}

uint64_t tbucket_available(const struct tbucket *tb)
{
	return tb->tokens > 0 ? (uint64_t)tb->tokens : 0;
}

void tbucket_consume(struct tbucket *tb, uint64_t bytes)
{
	tb->tokens -= (double)bytes;
}

uint64_t tbucket_wait_ns(const struct tbucket *tb, uint64_t need)
{
	double want = (double)need < tb->burst ? (double)need : tb->burst;

	if (tb->tokens >= want)
		return 0;
	return (uint64_t)ceil((want - tb->tokens) * 1e9 / tb->rate);
}
