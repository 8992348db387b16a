/* fuzz_packet.c — libFuzzer target for the multifd packet decoders
 * (multifd/packet.c). The input's first 1344 bytes are a page packet and
 * its first 64 an init packet. Whatever decodes must satisfy the checked
 * bounds and survive encode -> decode unchanged, with the canonical bytes
 * (everything QEMU reads) equal to the input's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multifd/packet.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static void check_packet_bytes(const uint8_t *in, const uint8_t *out,
			       const struct mfd_packet *p)
{
	size_t name_len = strlen(p->ramblock);
	uint32_t used = p->normal_pages + p->zero_pages;

	CHECK(memcmp(in, out, 36) == 0); /* every header field */
	CHECK(name_len < MFD_NAME_SIZE);
	CHECK(memcmp(in + 64, out + 64, name_len) == 0);
	for (size_t i = 36; i < 64; i++)
		CHECK(out[i] == 0);
	for (size_t i = 64 + name_len; i < MFD_HDR_SIZE; i++)
		CHECK(out[i] == 0);
	CHECK(memcmp(in + MFD_HDR_SIZE, out + MFD_HDR_SIZE, 8 * used) == 0);
	for (size_t i = MFD_HDR_SIZE + 8 * used; i < MFD_PACKET_SIZE; i++)
		CHECK(out[i] == 0);
}

static void fuzz_page_packet(const uint8_t *in)
{
	struct mig_error *err = NULL;
	struct mfd_packet p, again;
	uint8_t out[MFD_PACKET_SIZE];
	uint32_t flags;
	int ret;

	ret = mfd_packet_decode(in, &p, &err);
	CHECK((ret == 0) == (err == NULL));
	CHECK((mfd_packet_decode_common(in, &flags, NULL) == 0) || ret != 0);
	if (ret < 0) {
		CHECK(err->desc && err->desc[0]);
		mig_error_free(err);
		return;
	}
	CHECK(p.pages_alloc <= MFD_PAGE_COUNT);
	CHECK(p.normal_pages <= p.pages_alloc);
	CHECK(p.zero_pages <= p.pages_alloc - p.normal_pages);
	CHECK(!(p.flags & MFD_FLAG_DEVICE_STATE));
	mfd_packet_encode(&p, out);
	check_packet_bytes(in, out, &p);
	CHECK(mfd_packet_decode(out, &again, NULL) == 0);
	CHECK(memcmp(&p, &again, sizeof(p)) == 0);
	if (mfd_packet_check_method(&p, 7, MFD_FLAG_ZLIB, &err) < 0)
		mig_error_free(err);
}

static void fuzz_init_packet(const uint8_t *in)
{
	static const uint8_t uuid[16];
	struct mig_error *err = NULL;
	struct mfd_init init, again;
	uint8_t out[MFD_INIT_SIZE];

	if (mfd_init_decode(in, &init, &err) < 0) {
		CHECK(err != NULL);
		mig_error_free(err);
		return;
	}
	CHECK(err == NULL);
	mfd_init_encode(&init, out);
	CHECK(memcmp(in, out, 25) == 0);
	for (size_t i = 25; i < MFD_INIT_SIZE; i++)
		CHECK(out[i] == 0);
	CHECK(mfd_init_decode(out, &again, NULL) == 0);
	CHECK(memcmp(&init, &again, sizeof(init)) == 0);
	if (mfd_init_check(&init, uuid, in[25], &err) < 0)
		mig_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Decoders take fixed-size arrays: copy so ASan sees their bounds. */
	uint8_t *buf;

	if (size >= MFD_INIT_SIZE) {
		buf = malloc(MFD_INIT_SIZE);
		memcpy(buf, data, MFD_INIT_SIZE);
		fuzz_init_packet(buf);
		free(buf);
	}
	if (size >= MFD_PACKET_SIZE) {
		buf = malloc(MFD_PACKET_SIZE);
		memcpy(buf, data, MFD_PACKET_SIZE);
		fuzz_page_packet(buf);
		free(buf);
	}
	return 0;
}
