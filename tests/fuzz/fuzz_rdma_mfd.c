/* fuzz_rdma_mfd.c — libFuzzer target for the decoders of multifd over
 * RDMA (rdma/rdma_mfd.c): the block table a destination sends (decoded
 * against a fixed guest of two blocks) and a channel's connect private
 * data. Whatever decodes must respect the checked bounds: a table that
 * passes names every local block with its exact size and at most
 * RMFD_CREDITS credits; a connect request that passes rebuilds an init
 * packet whose id is the request's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"
#include "guest/ram.h"
#include "rdma/rdma_mfd_priv.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static struct rdma_mfd_set *fixed_set(void)
{
	static struct rdma_mfd_set *set;
	static const char *const names[] = {"pc.ram", "vga"};
	struct guest *g;

	if (set)
		return set;
	g = guest_new(1, GUEST_RUNSTATE_RUNNING);
	for (int i = 0; g && i < 2; i++) {
		struct ram_block_config cfg = {.name = names[i],
					       .size = 65536u << i,
					       .backing = RAM_BACKING_ANON};
		struct ram_block *b = ram_block_new(&cfg, NULL);

		if (!b || guest_add_block(g, b))
			abort();
	}
	set = g ? rdma_mfd_set_new(NULL, g) : NULL; /* lives to the end */
	if (!set)
		abort();
	return set;
}

static void fuzz_table(const uint8_t *data, size_t size)
{
	struct rdma_mfd_set *set = fixed_set();
	struct rmfd_remote remote[3];
	struct mig_error *err = NULL;
	unsigned credits = 0;
	uint32_t len = size > RMFD_TABLE_MAX ? RMFD_TABLE_MAX : (uint32_t)size;

	memset(remote, 0, sizeof(remote));
	if (rmfd_table_decode(data, len, set, remote, &credits, &err) == 0) {
		CHECK(credits >= 1 && credits <= RMFD_CREDITS);
		for (size_t i = 0; i < set->nblocks; i++) {
			CHECK(remote[i].found);
			CHECK(remote[i].length == set->blocks[i]->used_length);
		}
		CHECK(!err);
	} else {
		CHECK(err);
	}
	mig_error_free(err);
}

static void fuzz_connect(const uint8_t *data, size_t size)
{
	uint8_t init[MFD_INIT_SIZE];
	struct mig_error *err = NULL;
	uint8_t len = size > RV_CONNECT_PRIVATE_MAX ? RV_CONNECT_PRIVATE_MAX
						    : (uint8_t)size;
	unsigned id = 0;

	(void)rdma_mfd_connect_flags(data, len);
	if (rmfd_connect_decode(data, len, init, &id, &err) == 0) {
		CHECK(len >= RMFD_CONNECT_SIZE);
		CHECK(id == init[24] && id == data[32]);
		for (size_t i = 25; i < MFD_INIT_SIZE; i++)
			CHECK(init[i] == 0);
	} else {
		CHECK(err);
	}
	mig_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (data[0] & 1)
		fuzz_connect(data + 1, size - 1);
	else
		fuzz_table(data + 1, size - 1);
	return 0;
}
