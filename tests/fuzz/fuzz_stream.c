/* fuzz_stream.c — libFuzzer target for the destination's stream parsers:
 * the main-stream loader (multifd/loadvm.c + multifd/ram_load.c) and a
 * multifd channel's receive loop (multifd/mfd_recv.c). The guest's RAM
 * blocks live on the heap here, so ASan flags any write outside them.
 * Input byte 0: bit 0 = multifd channel (else main stream), bits 1..5 =
 * options (ram_load multifd/legacy/x-ignore-shared, no configuration, no
 * footers); byte 1: the most a read returns (0 = everything), so partial
 * reads are exercised. The rest is the stream. Every failure must come
 * with a message; nothing may crash, hang or leak.
 * Single-threaded: SYNC points do not wait (sync_noop). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "multifd/loadvm.h"
#include "multifd/mfd_recv.h"
#include "multifd/qemufile.h"
#include "multifd/ram_load.h"
#include "socket/channel.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* ---- a read-only channel over the input ---------------------------------- */

struct in_chan {
	struct channel ch; /* first */
	const uint8_t *p;
	size_t len, pos, max_io;
};

static ssize_t in_readv(struct channel *ch, const struct iovec *iov, int iovcnt)
{
	struct in_chan *c = (struct in_chan *)ch;
	size_t total = 0, budget = c->max_io ? c->max_io : SIZE_MAX;

	for (int i = 0; i < iovcnt && c->pos < c->len && budget; i++) {
		size_t n = iov[i].iov_len;

		if (n > c->len - c->pos)
			n = c->len - c->pos;
		if (n > budget)
			n = budget;
		memcpy(iov[i].iov_base, c->p + c->pos, n);
		c->pos += n;
		total += n;
		budget -= n;
	}
	return (ssize_t)total;
}

/* The return path goes nowhere. */
static ssize_t in_writev(struct channel *ch, const struct iovec *iov,
			 int iovcnt)
{
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return (ssize_t)total;
}

static void in_nop(struct channel *ch)
{
}

static const struct channel_ops in_ops = {
	.name = "fuzz",
	.writev = in_writev,
	.readv = in_readv,
	.shutdown = in_nop,
	.close = in_nop,
};

/* ---- the guest: two heap blocks ------------------------------------------ */

static struct guest fuzz_guest;
static struct ram_block fuzz_blocks[2];

static void add_block(struct ram_block *b, const char *name, uint64_t size)
{
	b->name = (char *)name;
	b->host = calloc(1, size);
	CHECK(b->host);
	b->used_length = size;
	b->mapped_length = size;
	b->page_size = 4096;
	b->backing = RAM_BACKING_ANON;
	b->fd = -1;
	b->next = fuzz_guest.blocks;
	fuzz_guest.blocks = b;
	fuzz_guest.nblocks++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_guest.smp_cpus = 1;
	add_block(&fuzz_blocks[1], "vga", 16 * 4096);
	add_block(&fuzz_blocks[0], "ram", 64 * 4096);
	return 0;
}

/* ---- the two parsers ----------------------------------------------------- */

/* FUZZ_STREAM_VERBOSE=1: print each input's outcome (seed checks). */
static void report(const char *what, const struct mig_error *err)
{
	if (getenv("FUZZ_STREAM_VERBOSE"))
		fprintf(stderr, "%s: %s\n", what, err ? err->desc : "ok");
}

static int no_wait_sync(void *opaque, struct mig_error **errp)
{
	return 0;
}

static void fuzz_main_stream(struct in_chan *c, uint8_t opt)
{
	struct ram_load_opts ro = {
		.multifd = opt & 1,
		.flush_after_each_section = opt & 2,
		.x_ignore_shared = opt & 4,
	};
	struct vms_opts vo = {
		.send_configuration = !(opt & 8),
		.send_section_footer = !(opt & 16),
		.store_global_state = true,
	};
	struct mig_error *err = NULL;
	struct ram_load *rl = ram_load_new(&fuzz_guest, &ro);
	struct qfile *f = qfile_reader_new(&c->ch);
	struct loadvm *ld = malloc(sizeof(*ld));
	int ret;

	CHECK(rl && f && ld);
	ram_load_set_sync(rl, no_wait_sync, NULL);
	loadvm_init(ld, f, rl, &vo, opt & 1);
	ret = loadvm_run(ld, &err);
	CHECK((ret == 0) == (err == NULL));
	CHECK(!err || (err->desc && err->desc[0]));
	CHECK(ret || ld->src_runstate <= GUEST_RUNSTATE__MAX);
	report("main stream", err);
	mig_error_free(err);
	free(ld);
	qfile_free(f);
	ram_load_free(rl);
}

static void fuzz_multifd_channel(struct in_chan *c)
{
	struct ram_load_opts ro = {.multifd = true};
	struct mfd_recv_opts mo = {.channels = 4, .sync_noop = true};
	struct mig_error *err = NULL;
	struct ram_load *rl = ram_load_new(&fuzz_guest, &ro);
	struct mfd_recv *r;
	uint8_t init[MFD_INIT_SIZE] = {0};
	unsigned id = 0;
	int ret;

	CHECK(rl);
	r = mfd_recv_new(&mo, rl, NULL, NULL);
	CHECK(r);
	if (c->len - c->pos >= MFD_INIT_SIZE) {
		memcpy(init, c->p + c->pos, MFD_INIT_SIZE);
		c->pos += MFD_INIT_SIZE;
	}
	ret = mfd_recv_accept_init(r, init, &id, &err);
	CHECK((ret == 0) == (err == NULL));
	CHECK(id < mo.channels);
	report("multifd init", err);
	mig_error_free(err);
	err = NULL;
	ret = mfd_recv_run_channel(r, id, &c->ch, &err);
	CHECK((ret == 0) == (err == NULL));
	CHECK(!err || (err->desc && err->desc[0]));
	report("multifd channel", err);
	mig_error_free(err);
	mfd_recv_free(r);
	ram_load_free(rl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_chan c = {.ch = {.ops = &in_ops, .fd = -1}};

	if (size < 2)
		return 0;
	c.p = data + 2;
	c.len = size - 2;
	c.max_io = data[1];
	if (data[0] & 1)
		fuzz_multifd_channel(&c);
	else
		fuzz_main_stream(&c, (uint8_t)(data[0] >> 1));
	return 0;
}
