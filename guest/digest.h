/* digest.h — digests of guest RAM for verification (x-query-ram-digest,
 * contrib/ramdigest): SHA-256 of the bytes, or migd's "xxh3-128" tree hash
 * computed in parallel:
 *   split the data into 64 MiB chunks (the last may be shorter; no data
 *   = no chunks), hash each with XXH3-128, and hash the concatenation of
 *   the chunk hashes, each in canonical (big-endian) form, with XXH3-128;
 *   the digest is that hash in canonical form (32 hex digits).
 * Any thread; the data is read as it is (live RAM may change meanwhile). */
#ifndef MIGD_GUEST_DIGEST_H
#define MIGD_GUEST_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

enum ram_digest_alg {
	RAM_DIGEST_XXH3_128,
	RAM_DIGEST_SHA256,
	RAM_DIGEST__MAX,
};

#define RAM_DIGEST_CHUNK (64ull << 20)
#define RAM_DIGEST_MAX_LEN 32 /* bytes */
#define RAM_DIGEST_HEX_MAX (2 * RAM_DIGEST_MAX_LEN + 1)

/* "xxh3-128", "sha256"; NULL-terminated. */
extern const char *const ram_digest_alg_names[];

/* Digest length in bytes. */
size_t ram_digest_len(enum ram_digest_alg alg);

/* Digest of len bytes at data into out (ram_digest_len(alg) bytes).
 * threads: the xxh3-128 tree's workers, 0 = one per online CPU.
 * 0 or -errno with *errp set. */
int ram_digest(const void *data, uint64_t len, enum ram_digest_alg alg,
	       unsigned threads, uint8_t *out, struct mig_error **errp);

/* The xxh3-128 tree with another chunk size (> 0): for tests. */
int ram_digest_xxh3_tree(const void *data, uint64_t len, uint64_t chunk,
			 unsigned threads, uint8_t out[16]);

/* Lower-case hex of len bytes into hex (2 * len + 1 bytes). */
void ram_digest_hex(const uint8_t *digest, size_t len, char *hex);

#endif
