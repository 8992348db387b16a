/* postcopy_req.c — validation and queueing of the destination's page
 * requests on the source (see postcopy_req.h). A ring buffer of fixed
 * capacity; the caller serialises access. */
#include "multifd/postcopy_req.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define PC_REQ_DEFAULT_MAX (2u << 20)

int pc_req_queue_init(struct pc_req_queue *q, const struct pc_req_block *b,
		      unsigned nblocks, uint64_t host_page_size, unsigned cap)
{
	memset(q, 0, sizeof(*q));
	if (!cap || !host_page_size || (host_page_size & (host_page_size - 1)))
		return -EINVAL;
	q->ring = calloc(cap, sizeof(*q->ring));
	if (!q->ring)
		return -ENOMEM;
	q->blocks = b;
	q->nblocks = nblocks;
	q->host_page_size = host_page_size;
	q->cap = cap;
	q->last_block = -1;
	return 0;
}

void pc_req_queue_destroy(struct pc_req_queue *q)
{
	free(q->ring);
	q->ring = NULL;
	q->count = 0;
}

static int find_block(const struct pc_req_queue *q, const char *name,
		      struct mig_error **errp)
{
	if (!name) {
		if (q->last_block < 0)
			mig_error_setg(errp, "MIG_RP_MSG_REQ_PAGES has no "
					     "previous block");
		return q->last_block < 0 ? -EINVAL : q->last_block;
	}
	for (unsigned i = 0; i < q->nblocks; i++)
		if (!strcmp(q->blocks[i].name, name))
			return (int)i;
	mig_error_setg(errp, "MIG_RP_MSG_REQ_PAGES has no block '%s'", name);
	return -EINVAL;
}

/* migd's own limits, after QEMU's checks passed. */
static int check_size(const struct pc_req_queue *q,
		      const struct pc_req_block *b, uint64_t start,
		      uint64_t len, struct mig_error **errp)
{
	uint64_t max = q->max_len ? q->max_len : PC_REQ_DEFAULT_MAX;

	if (max < b->page_size)
		max = b->page_size;
	if (len == 0 || (start | len) & (b->page_size - 1) || len > max) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_REQ_PAGES: bad request for block "
			       "'%s', start=%" PRIx64 " len=%" PRIx64
			       " (page size %" PRIx64 ", at most %" PRIx64 ")",
			       b->name, start, len, b->page_size, max);
		return -EINVAL;
	}
	return 0;
}

int pc_req_validate(struct pc_req_queue *q, const char *name, uint64_t start,
		    uint64_t len, struct pc_req *out, struct mig_error **errp)
{
	const struct pc_req_block *b;
	int i;

	if ((start | len) & (q->host_page_size - 1)) {
		mig_error_setg(errp,
			       "MIG_RP_MSG_REQ_PAGES: Misaligned page request, "
			       "start:%" PRIx64 " len: %zd",
			       start, (ssize_t)len);
		return -EINVAL;
	}
	i = find_block(q, name, errp);
	if (i < 0)
		return i;
	q->last_block = i;
	b = &q->blocks[i];
	/* QEMU: the last byte, start + len - 1, must lie in the block */
	if (start + len - 1 >= b->used_length || start + len - 1 < start) {
		mig_error_setg(
			errp,
			"MIG_RP_MSG_REQ_PAGES request overrun, start=%" PRIx64
			" len=%" PRIx64 " blocklen=%" PRIx64,
			start, len, b->used_length);
		return -EINVAL;
	}
	if (check_size(q, b, start, len, errp))
		return -EINVAL;
	*out = (struct pc_req){
		.block = (unsigned)i, .start = start, .len = len};
	return 0;
}

static bool is_queued(const struct pc_req_queue *q, const struct pc_req *r)
{
	for (unsigned k = 0; k < q->count; k++) {
		const struct pc_req *e = &q->ring[(q->head + k) % q->cap];

		if (e->block == r->block && e->start == r->start &&
		    e->len == r->len)
			return true;
	}
	return false;
}

int pc_req_push(struct pc_req_queue *q, const char *name, uint64_t start,
		uint64_t len, struct mig_error **errp)
{
	struct pc_req r;
	int ret = pc_req_validate(q, name, start, len, &r, errp);

	if (ret)
		return ret;
	if (is_queued(q, &r)) {
		q->coalesced++;
		return 1;
	}
	if (q->count == q->cap) {
		mig_error_setg(
			errp,
			"MIG_RP_MSG_REQ_PAGES: too many outstanding page "
			"requests (%u)",
			q->cap);
		return -ENOBUFS;
	}
	q->ring[(q->head + q->count) % q->cap] = r;
	q->count++;
	q->requests++;
	return 0;
}

bool pc_req_pop(struct pc_req_queue *q, struct pc_req *out)
{
	if (!q->count)
		return false;
	*out = q->ring[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return true;
}

void pc_req_forget_last(struct pc_req_queue *q)
{
	q->last_block = -1;
}
