/* fuzz_migdump.c — libFuzzer target for migdump's decoders
 * (contrib/migdump_*.c): the main-stream decoder and the multifd channel
 * decoder, then the text and JSON reports of what they found.
 * Input byte 0 picks the decoder and its options: bit 0 = a multifd
 * channel (checked against a one-block 'ram' stream decoded at start-up),
 * else a main stream with bit 1 = --ignore-shared, bit 2 = --mapped-ram,
 * bit 3 = --postcopy, bit 4 = --no-footer. The rest is the input. Every
 * failure must carry an "offset N: ..." message; nothing may crash, hang
 * or leak. Single-threaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contrib/migdump.h"

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

static FILE *devnull;
static struct mdump_stream ram_stream; /* one block 'ram' of 64 pages */

/* header, configuration "none", ram START with MEM_SIZE, EOS, footer. */
static const uint8_t ram_start[] = {
	0x51, 0x45, 0x56, 0x4d, 0, 0,	0,   3,		/* QEVM v3 */
	0x07, 0,    0,	  0,	4, 'n', 'o', 'n',  'e', /* config */
	0x01, 0,    0,	  0,	1, 3,	'r', 'a',  'm', 0, 0, 0,
	0,    0,    0,	  0,	4,		   /* START */
	0,    0,    0,	  0,	0, 4,	0,   0x04, /* MEM_SIZE 256 KiB */
	3,    'r',  'a',  'm',	0, 0,	0,   0,	   0,	4, 0, 0, /* block */
	0,    0,    0,	  0,	0, 0,	0,   0x10,		 /* EOS */
	0x7e, 0,    0,	  0,	1,				 /* footer */
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct mdump_opts o = {0};

	devnull = fopen("/dev/null", "w");
	CHECK(devnull);
	/* Truncated on purpose (no EOF): only the block list matters. */
	mdump_stream_decode(ram_start, sizeof(ram_start), &o, &ram_stream);
	CHECK(ram_stream.has_mem_size && ram_stream.nblocks == 1);
	return 0;
}

static void check_result(int ret, const struct mig_error *err)
{
	CHECK((ret == 0) == (err == NULL));
	CHECK(!err || !strncmp(err->desc, "offset ", 7));
}

static void fuzz_stream(const uint8_t *p, size_t len, uint8_t opt)
{
	struct mdump_opts o = {
		.ignore_shared = opt & 2,
		.mapped_ram = opt & 4,
		.postcopy = opt & 8,
		.no_footer = opt & 16,
		.verbose = 2,
		.trace = devnull,
	};
	struct mdump_stream s = {0};
	const char *none = NULL;
	char *json;
	int ret = mdump_stream_decode(p, len, &o, &s);

	check_result(ret, s.err);
	CHECK(s.end <= len);
	mdump_print_stream(devnull, "fuzz", &s);
	json = mdump_json_report("fuzz", &s, p, true, &none, NULL, 0);
	CHECK(json);
	free(json);
	mdump_stream_free(&s);
}

static void fuzz_channel(const uint8_t *p, size_t len)
{
	struct mdump_opts o = {.verbose = 2, .trace = devnull};
	struct mdump_channel c = {0};
	const char *path = "fuzz";
	char *json;
	int ret = mdump_channel_decode(p, len, &o, &ram_stream, &c);

	check_result(ret, c.err);
	CHECK(c.end <= len);
	mdump_print_channel(devnull, "fuzz", &c);
	json = mdump_json_report("main", &ram_stream, ram_start, false, &path,
				 &c, 1);
	CHECK(json);
	free(json);
	mdump_channel_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_channel(data + 1, size - 1);
	else
		fuzz_stream(data + 1, size - 1, data[0]);
	return 0;
}
