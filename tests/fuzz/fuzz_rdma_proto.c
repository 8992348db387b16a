/* fuzz_rdma_proto.c — libFuzzer target for the QEMU-compatible RDMA
 * control protocol decoders (rdma/rdma_proto.c): a received control
 * message (header + data, as rdma_chan hands it over) decoded as what its
 * type says, against a fixed table of three blocks (one not a RAM block).
 * Whatever decodes must stay inside the bounds the destination then
 * writes by CPU (COMPRESS zeroing) or registers (REGISTER chunk ranges),
 * and the connect capabilities. Single thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdma/rdma_proto.h"
#include "util/error.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#define NB 3
#define MIB (1024 * 1024ull)

static const struct rproto_block blocks[NB] = {
	{.name = "pc.ram",
	 .offset = 0,
	 .length = 5 * MIB / 2,
	 .is_ram_block = true},
	{.name = "vga",
	 .offset = 5 * MIB / 2,
	 .length = 3 * MIB,
	 .is_ram_block = true},
	{.name = "other",
	 .offset = 0,
	 .length = 2 * MIB,
	 .is_ram_block = false},
};

static void fuzz_compress(const uint8_t *d, const struct rproto_header *h)
{
	struct rproto_compress c;
	struct mig_error *err = NULL;

	if (rproto_compress_decode(d, h, blocks, NB, &c, &err) == 0) {
		const struct rproto_block *b = &blocks[c.block_idx];

		CHECK(c.block_idx < NB && c.offset >= b->offset);
		CHECK(c.offset - b->offset <= b->length);
		CHECK(c.length <= b->length - (c.offset - b->offset));
	} else {
		CHECK(err);
	}
	mig_error_free(err);
}

static void fuzz_register(const uint8_t *d, const struct rproto_header *h)
{
	static struct rproto_register regs[RPROTO_MAX_COMMANDS];
	struct mig_error *err = NULL;

	if (rproto_register_decode(d, h, blocks, NB, regs, RPROTO_MAX_COMMANDS,
				   &err)) {
		CHECK(err);
		mig_error_free(err);
		return;
	}
	for (uint32_t i = 0; i < h->repeat; i++) {
		const struct rproto_block *b = &blocks[regs[i].current_index];
		uint64_t first =
			b->is_ram_block
				? rproto_chunk_index(regs[i].key - b->offset)
				: regs[i].key;
		uint64_t start, end;

		CHECK(regs[i].current_index < NB);
		CHECK(first < rproto_nb_chunks(b->length));
		rproto_chunk_range(b->length, first, regs[i].chunks, &start,
				   &end);
		CHECK(start <= end && end <= b->length);
	}
}

static void fuzz_results(const uint8_t *d, const struct rproto_header *h)
{
	struct rproto_dest_block out[NB];
	struct rproto_register_result r;
	struct mig_error *err = NULL;

	if (rproto_dest_blocks_decode(d, h, blocks, NB, out, &err) == 0)
		for (int i = 0; i < NB; i++)
			CHECK(out[i].length == blocks[i].length);
	mig_error_free(err);
	err = NULL;
	for (uint32_t i = 0; i <= h->repeat && i < 8; i++) {
		if (rproto_register_result_decode(d, h, i, &r, &err) == 0)
			CHECK(i < h->repeat && (i + 1) * 16ull <= h->len);
		mig_error_free(err);
		err = NULL;
	}
}

static void fuzz_caps(const uint8_t *d, size_t size)
{
	struct rproto_caps c;
	struct mig_error *err = NULL;

	if (rproto_caps_decode(d, size, &c, &err) == 0)
		CHECK(c.version == RPROTO_VERSION &&
		      !(c.flags & ~RPROTO_KNOWN_CAPS));
	mig_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rproto_header h;
	struct mig_error *err = NULL;

	if (!size)
		return 0;
	if (data[0] == 0xca) {
		fuzz_caps(data + 1, size - 1);
		return 0;
	}
	if (rproto_header_decode(data, size, &h, &err)) {
		CHECK(err);
		mig_error_free(err);
		return 0;
	}
	CHECK(RPROTO_HEADER_SIZE + (size_t)h.len == size);
	CHECK(h.repeat <= RPROTO_MAX_COMMANDS && h.type < RPROTO_TYPE_COUNT);
	if (h.type == RPROTO_COMPRESS)
		fuzz_compress(data + RPROTO_HEADER_SIZE, &h);
	else if (h.type == RPROTO_REGISTER_REQUEST)
		fuzz_register(data + RPROTO_HEADER_SIZE, &h);
	else
		fuzz_results(data + RPROTO_HEADER_SIZE, &h);
	return 0;
}
