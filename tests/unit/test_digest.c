/* test_digest.c — RAM digests (guest/digest.c): SHA-256 against a known
 * vector and OpenSSL's one-shot SHA256(); the xxh3-128 tree against an
 * independent implementation of its definition, for every edge of the
 * chunking and several pool sizes, and with the real 64 MiB chunks. */
#include <errno.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <cmocka.h>

#include "guest/digest.h"
#include "guest/workload.h"

static uint8_t *random_bytes(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	struct workload_prng prng;

	assert_non_null(p);
	workload_prng_seed(&prng, seed);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)workload_prng_next(&prng);
	return p;
}

static void hex_of(enum ram_digest_alg alg, const void *data, uint64_t len,
		   char *hex)
{
	uint8_t d[RAM_DIGEST_MAX_LEN];

	assert_int_equal(ram_digest(data, len, alg, 0, d, NULL), 0);
	ram_digest_hex(d, ram_digest_len(alg), hex);
}

static void test_sha256_vectors(void **state)
{
	char hex[RAM_DIGEST_HEX_MAX];

	hex_of(RAM_DIGEST_SHA256, "abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
	hex_of(RAM_DIGEST_SHA256, "", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
}

/* The same bytes through OpenSSL's one-shot API (another route). */
static void test_sha256_matches_openssl(void **state)
{
	size_t len = (3u << 20) + 123;
	uint8_t *data = random_bytes(len, 7), ref[32], got[32];

	SHA256(data, len, ref);
	assert_int_equal(ram_digest(data, len, RAM_DIGEST_SHA256, 0, got, NULL),
			 0);
	assert_memory_equal(ref, got, 32);
	free(data);
}

/* The definition, written out independently: chunk hashes in canonical
 * form, concatenated, hashed again. */
static void reference_tree(const uint8_t *data, uint64_t len, uint64_t chunk,
			   uint8_t out[16])
{
	uint64_t n = (len + chunk - 1) / chunk;
	uint8_t *cat = malloc(n * 16 + 1);
	XXH128_canonical_t c;

	assert_non_null(cat);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t off = i * chunk;
		uint64_t sz = len - off < chunk ? len - off : chunk;
		XXH128_hash_t h = XXH3_128bits(data + off, sz);

		/* Canonical = high 64 bits big-endian, then low 64 bits. */
		for (int k = 0; k < 8; k++) {
			cat[i * 16 + k] = (uint8_t)(h.high64 >> (56 - 8 * k));
			cat[i * 16 + 8 + k] =
				(uint8_t)(h.low64 >> (56 - 8 * k));
		}
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits(cat, n * 16));
	memcpy(out, c.digest, 16);
	free(cat);
}

static void test_xxh3_tree_edges(void **state)
{
	static const uint64_t lens[] = {0, 1, 4095, 4096, 4097, 65536, 100003};
	static const unsigned threads[] = {1, 2, 3, 0};
	uint8_t *data = random_bytes(100003, 11), ref[16], got[16];

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		reference_tree(data, lens[i], 4096, ref);
		for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]);
		     t++) {
			memset(got, 0, sizeof(got));
			assert_int_equal(ram_digest_xxh3_tree(data, lens[i],
							      4096, threads[t],
							      got),
					 0);
			assert_memory_equal(ref, got, 16);
		}
	}
	assert_int_equal(ram_digest_xxh3_tree(data, 10, 0, 1, got), -EINVAL);
	free(data);
}

/* Real 64 MiB chunks: two full ones and a short tail. */
static void test_xxh3_real_chunks(void **state)
{
	uint64_t len = 2 * RAM_DIGEST_CHUNK + (1u << 20) + 5;
	uint8_t *data = mmap(NULL, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t ref[16], got[16];

	assert_true(data != MAP_FAILED);
	for (uint64_t i = 0; i < len; i += 4096)
		data[i] = (uint8_t)(i >> 12);
	data[len - 1] = 0x5a;
	reference_tree(data, len, RAM_DIGEST_CHUNK, ref);
	assert_int_equal(
		ram_digest(data, len, RAM_DIGEST_XXH3_128, 0, got, NULL), 0);
	assert_memory_equal(ref, got, 16);
	/* Any change moves the digest. */
	data[RAM_DIGEST_CHUNK + 17] ^= 1;
	assert_int_equal(
		ram_digest(data, len, RAM_DIGEST_XXH3_128, 2, got, NULL), 0);
	assert_memory_not_equal(ref, got, 16);
	munmap(data, len);
}

static void test_hex_and_names(void **state)
{
	static const uint8_t d[] = {0x00, 0x0f, 0xa0, 0xff};
	char hex[9];

	ram_digest_hex(d, 4, hex);
	assert_string_equal(hex, "000fa0ff");
	assert_string_equal(ram_digest_alg_names[RAM_DIGEST_XXH3_128],
			    "xxh3-128");
	assert_string_equal(ram_digest_alg_names[RAM_DIGEST_SHA256], "sha256");
	assert_null(ram_digest_alg_names[RAM_DIGEST__MAX]);
	assert_int_equal(ram_digest_len(RAM_DIGEST_XXH3_128), 16);
	assert_int_equal(ram_digest_len(RAM_DIGEST_SHA256), 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha256_matches_openssl),
		cmocka_unit_test(test_xxh3_tree_edges),
		cmocka_unit_test(test_xxh3_real_chunks),
		cmocka_unit_test(test_hex_and_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
