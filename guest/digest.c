/* digest.c — RAM digests (see digest.h): SHA-256 through OpenSSL's EVP,
 * and the xxh3-128 chunk tree hashed by a pool of threads that live only
 * inside one call. Any thread. */
#include "guest/digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define TREE_MAX_THREADS 64
#define SHA_PIECE (1ull << 30) /* EVP_DigestUpdate takes a size_t */

const char *const ram_digest_alg_names[] = {
	[RAM_DIGEST_XXH3_128] = "xxh3-128",
	[RAM_DIGEST_SHA256] = "sha256",
	[RAM_DIGEST__MAX] = NULL,
};

size_t ram_digest_len(enum ram_digest_alg alg)
{
	return alg == RAM_DIGEST_SHA256 ? 32 : 16;
}

void ram_digest_hex(const uint8_t *digest, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[2 * len] = '\0';
}

/* ---- xxh3-128 tree ------------------------------------------------------ */

struct tree_job {
	const uint8_t *data;
	uint64_t len, chunk, nchunks;
	atomic_uint_fast64_t next; /* next chunk to claim */
	XXH128_canonical_t *hashes;
};

static void *tree_worker(void *opaque)
{
	struct tree_job *job = opaque;
	uint64_t i;

	while ((i = atomic_fetch_add(&job->next, 1)) < job->nchunks) {
		uint64_t off = i * job->chunk;
		uint64_t n = job->len - off < job->chunk ? job->len - off
							 : job->chunk;

		XXH128_canonicalFromHash(
			&job->hashes[i],
			XXH3_128bits(job->data + off, (size_t)n));
	}
	return NULL;
}

static unsigned pool_size(unsigned threads, uint64_t nchunks)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (!threads)
		threads = cpus > 0 ? (unsigned)cpus : 1;
	if (threads > TREE_MAX_THREADS)
		threads = TREE_MAX_THREADS;
	if (threads > nchunks)
		threads = nchunks ? (unsigned)nchunks : 1;
	return threads;
}

/* Runs the job on the calling thread plus up to threads - 1 helpers (a
 * helper that cannot be created just leaves more work for the others). */
static void run_pool(struct tree_job *job, unsigned threads)
{
	pthread_t tids[TREE_MAX_THREADS];
	unsigned started = 0;

	for (unsigned i = 1; i < threads; i++)
		if (pthread_create(&tids[started], NULL, tree_worker, job) == 0)
			started++;
	tree_worker(job);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
}

int ram_digest_xxh3_tree(const void *data, uint64_t len, uint64_t chunk,
			 unsigned threads, uint8_t out[16])
{
	struct tree_job job = {.data = data, .len = len, .chunk = chunk};
	XXH128_canonical_t top;

	if (!chunk)
		return -EINVAL;
	job.nchunks = len / chunk + (len % chunk != 0);
	if (job.nchunks > SIZE_MAX / sizeof(*job.hashes))
		return -ENOMEM;
	job.hashes =
		malloc(job.nchunks ? job.nchunks * sizeof(*job.hashes) : 1);
	if (!job.hashes)
		return -ENOMEM;
	atomic_init(&job.next, 0);
	run_pool(&job, pool_size(threads, job.nchunks));
	XXH128_canonicalFromHash(
		&top, XXH3_128bits(job.hashes,
				   (size_t)job.nchunks * sizeof(*job.hashes)));
	memcpy(out, top.digest, 16);
	free(job.hashes);
	return 0;
}

/* ---- SHA-256 ------------------------------------------------------------ */

static int sha256(const uint8_t *data, uint64_t len, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned outlen = 0;
	int ok;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (uint64_t off = 0; ok && off < len; off += SHA_PIECE) {
		uint64_t n = len - off < SHA_PIECE ? len - off : SHA_PIECE;

		ok = EVP_DigestUpdate(ctx, data + off, (size_t)n);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, out, &outlen) && outlen == 32;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int ram_digest(const void *data, uint64_t len, enum ram_digest_alg alg,
	       unsigned threads, uint8_t *out, struct mig_error **errp)
{
	int ret;

	switch (alg) {
	case RAM_DIGEST_XXH3_128:
		ret = ram_digest_xxh3_tree(data, len, RAM_DIGEST_CHUNK, threads,
					   out);
		break;
	case RAM_DIGEST_SHA256:
		ret = sha256(data, len, out);
		break;
	default:
		ret = -EINVAL;
		break;
	}
	if (ret < 0)
		mig_error_setg(errp, "cannot compute the %s digest: %s",
			       alg < RAM_DIGEST__MAX ? ram_digest_alg_names[alg]
						     : "unknown",
			       strerror(-ret));
	return ret;
}
