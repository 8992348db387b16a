/* ramdigest.c — prints x-query-ram-digest's digest of files, so a RAM image
 * (a memory-backend-file of migd or QEMU) can be compared with a running
 * guest: "ramdigest [-a xxh3-128|sha256] [-j THREADS] FILE..." prints
 * "DIGEST  FILE" per file, like sha256sum. Uses guest/digest.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest/digest.h"

static int usage(void)
{
	fprintf(stderr, "usage: ramdigest [-a xxh3-128|sha256] [-j THREADS] "
			"FILE...\n");
	return 2;
}

static int digest_file(const char *path, enum ram_digest_alg alg,
		       unsigned threads)
{
	uint8_t digest[RAM_DIGEST_MAX_LEN];
	char hex[RAM_DIGEST_HEX_MAX];
	struct mig_error *err = NULL;
	void *map = NULL;
	struct stat st;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "ramdigest: %s: %s\n", path, strerror(errno));
		goto out_close;
	}
	if (st.st_size > 0) {
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd,
			   0);
		if (map == MAP_FAILED) {
			fprintf(stderr, "ramdigest: %s: %s\n", path,
				strerror(errno));
			goto out_close;
		}
		madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	}
	if (ram_digest(map ? map : "", (uint64_t)st.st_size, alg, threads,
		       digest, &err) < 0) {
		fprintf(stderr, "ramdigest: %s: %s\n", path, err->desc);
		mig_error_free(err);
	} else {
		ram_digest_hex(digest, ram_digest_len(alg), hex);
		printf("%s  %s\n", hex, path);
		ret = 0;
	}
	if (map)
		munmap(map, (size_t)st.st_size);
out_close:
	if (fd >= 0)
		close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	enum ram_digest_alg alg = RAM_DIGEST_XXH3_128;
	unsigned threads = 0;
	int opt, status = 0;

	while ((opt = getopt(argc, argv, "a:j:h")) != -1) {
		if (opt == 'a' && !strcmp(optarg, "sha256"))
			alg = RAM_DIGEST_SHA256;
		else if (opt == 'a' && !strcmp(optarg, "xxh3-128"))
			alg = RAM_DIGEST_XXH3_128;
		else if (opt == 'j' && atoi(optarg) > 0)
			threads = (unsigned)atoi(optarg);
		else
			return usage();
	}
	if (optind >= argc)
		return usage();
	for (int i = optind; i < argc; i++)
		if (digest_file(argv[i], alg, threads) < 0)
			status = 1;
	return status;
}
