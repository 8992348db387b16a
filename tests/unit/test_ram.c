/* test_ram.c — guest RAM blocks (guest/ram.c) and the guest's block list
 * and runstate (guest/guest.c): every backing really allocates zeroed RAM,
 * a shared file mapping writes through to the file, QEMU's file sizing
 * rules and error messages, preallocation keeps file content. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest/guest.h"
#include "guest/ram.h"

#define MiB (1ull << 20)

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/migd-test-ram-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/guest.img", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static struct ram_block *new_ok(const struct ram_block_config *cfg)
{
	struct mig_error *err = NULL;
	struct ram_block *b = ram_block_new(cfg, &err);

	if (err)
		fprintf(stderr, "unexpected error: %s\n", err->desc);
	assert_null(err);
	assert_non_null(b);
	return b;
}

static void new_fails(const struct ram_block_config *cfg, const char *desc)
{
	struct mig_error *err = NULL;

	assert_null(ram_block_new(cfg, &err));
	assert_non_null(err);
	assert_string_equal(err->desc, desc);
	mig_error_free(err);
}

/* Writes a pattern at both ends and checks it reads back. */
static void scribble(struct ram_block *b)
{
	memset(b->host, 0xa5, 4096);
	memset(b->host + b->used_length - 4096, 0x5a, 4096);
	assert_int_equal(b->host[0], 0xa5);
	assert_int_equal(b->host[b->used_length - 1], 0x5a);
}

static void test_anon(void **state)
{
	struct ram_block_config cfg = {
		.name = "ram",
		.size = 8 * MiB,
		.backing = RAM_BACKING_ANON,
	};
	struct ram_block *b = new_ok(&cfg);

	assert_string_equal(b->name, "ram");
	assert_int_equal(b->used_length, 8 * MiB);
	assert_int_equal(b->page_size, (size_t)sysconf(_SC_PAGESIZE));
	assert_int_equal(b->fd, -1);
	assert_false(ram_block_is_shared(b));
	assert_int_equal((uintptr_t)b->host % (2 * MiB), 0); /* THP-aligned */
	assert_true(all_zero(b->host, b->used_length));
	scribble(b);
	assert_true(ram_block_contains(b, 0, 8 * MiB));
	assert_true(ram_block_contains(b, 8 * MiB, 0));
	assert_false(ram_block_contains(b, 8 * MiB - 4095, 4096));
	assert_false(ram_block_contains(b, UINT64_MAX, 2));
	ram_block_free(b);
}

static void test_anon_rounds_to_page(void **state)
{
	struct ram_block_config cfg = {
		.name = "odd",
		.size = 5000,
		.backing = RAM_BACKING_ANON,
		.share = true,
		.prealloc = true,
	};
	struct ram_block *b = new_ok(&cfg);

	assert_int_equal(b->used_length, 8192);
	assert_true(ram_block_is_shared(b));
	assert_true(all_zero(b->host, b->used_length));
	ram_block_free(b);
}

static void test_memfd(void **state)
{
	struct ram_block_config cfg = {
		.name = "mem0",
		.size = 4 * MiB,
		.backing = RAM_BACKING_MEMFD,
		.share = true,
		.seal = true,
		.prealloc = true,
	};
	struct ram_block *b = new_ok(&cfg);
	uint8_t byte = 0;

	assert_true(b->fd >= 0);
	assert_true(all_zero(b->host, b->used_length));
	scribble(b);
	/* Shared: the memfd itself holds what the guest wrote. */
	assert_int_equal(pread(b->fd, &byte, 1, 0), 1);
	assert_int_equal(byte, 0xa5);
	/* Sealed against resizing, as QEMU's seal=on default does. */
	assert_int_equal(ftruncate(b->fd, 8 * MiB), -1);
	assert_int_equal(errno, EPERM);
	ram_block_free(b);
}

static void test_file_shared(void **state)
{
	struct fixture *f = *state;
	struct ram_block_config cfg = {
		.name = "ram0",
		.size = 4 * MiB,
		.backing = RAM_BACKING_FILE,
		.mem_path = f->path,
		.share = true,
	};
	struct ram_block *b = new_ok(&cfg);
	uint8_t *copy = malloc(4 * MiB);
	struct stat st;
	int fd;

	assert_string_equal(b->mem_path, f->path);
	assert_true(all_zero(b->host, b->used_length));
	for (size_t i = 0; i < 4 * MiB; i += 4096)
		b->host[i] = (uint8_t)(i >> 12);
	ram_block_free(b);
	/* The file is the guest RAM image. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 4 * MiB);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(read(fd, copy, 4 * MiB), (ssize_t)(4 * MiB));
	close(fd);
	for (size_t i = 0; i < 4 * MiB; i += 4096)
		assert_int_equal(copy[i], (uint8_t)(i >> 12));
	/* Mapping it again (with prealloc) keeps the content. */
	cfg.prealloc = true;
	b = new_ok(&cfg);
	assert_memory_equal(b->host, copy, 4 * MiB);
	ram_block_free(b);
	free(copy);
}

static void test_file_private(void **state)
{
	struct fixture *f = *state;
	struct ram_block_config cfg = {
		.name = "ram0",
		.size = 1 * MiB,
		.backing = RAM_BACKING_FILE,
		.mem_path = f->path,
		.share = false,
	};
	struct ram_block *b = new_ok(&cfg);
	uint8_t byte = 0xff;
	int fd;

	b->host[0] = 0x77;
	ram_block_free(b);
	fd = open(f->path, O_RDONLY);
	assert_int_equal(pread(fd, &byte, 1, 0), 1);
	close(fd);
	assert_int_equal(byte, 0); /* MAP_PRIVATE: the file is untouched */
}

static void write_file(const char *path, size_t len, uint8_t fill)
{
	uint8_t *buf = malloc(len);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	memset(buf, fill, len);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	free(buf);
}

static void test_file_sizes(void **state)
{
	struct fixture *f = *state;
	struct ram_block_config cfg = {
		.name = "ram0",
		.size = 1 * MiB,
		.backing = RAM_BACKING_FILE,
		.mem_path = f->path,
		.share = true,
	};
	struct ram_block *b;
	struct stat st;

	/* A larger file is used in part and not truncated. */
	write_file(f->path, 2 * MiB, 0x11);
	b = new_ok(&cfg);
	assert_int_equal(b->used_length, 1 * MiB);
	assert_int_equal(b->host[0], 0x11);
	ram_block_free(b);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 2 * MiB);
	/* A smaller non-empty file is refused. */
	write_file(f->path, 4096, 0x22);
	new_fails(&cfg, "backing store size 0x1000 does not match 'size' "
			"option 0x100000");
	/* An empty file is extended. */
	write_file(f->path, 0, 0);
	b = new_ok(&cfg);
	ram_block_free(b);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 1 * MiB);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void test_file_errors_and_dir(void **state)
{
	struct fixture *f = *state;
	struct ram_block_config cfg = {
		.name = "ram0",
		.size = 1 * MiB,
		.backing = RAM_BACKING_FILE,
		.mem_path = "/nonexistent-migd/x",
		.share = true,
	};
	struct ram_block *b;

	new_fails(&cfg, "can't open backing store /nonexistent-migd/x for "
			"guest RAM: No such file or directory");
	/* A directory gets an unlinked temporary file. */
	cfg.mem_path = f->dir;
	b = new_ok(&cfg);
	assert_true(all_zero(b->host, b->used_length));
	assert_int_equal(count_entries(f->dir), 0);
	ram_block_free(b);
	cfg.mem_path = NULL;
	new_fails(&cfg, "mem-path property not set");
	cfg.mem_path = f->path;
	cfg.size = 0;
	new_fails(&cfg, "can't create backend with size 0");
	cfg.size = 1 * MiB;
	cfg.name = "";
	new_fails(&cfg, "invalid RAM block name");
}

static void test_anon_too_big(void **state)
{
	struct ram_block_config cfg = {
		.name = "ram",
		.size = 1ull << 62,
		.backing = RAM_BACKING_ANON,
	};

	new_fails(&cfg, "cannot set up guest memory 'ram': Cannot allocate "
			"memory");
}

static void test_guest_blocks(void **state)
{
	struct guest *g = guest_new(4, GUEST_RUNSTATE_PRELAUNCH);
	struct ram_block_config cfg = {.backing = RAM_BACKING_ANON};
	const char *names[] = {"small", "big", "mid"};
	const uint64_t sizes[] = {1 * MiB, 4 * MiB, 2 * MiB};
	const char *order[] = {"big", "mid", "small"};
	struct ram_block *b, *dup;
	int i = 0;

	for (int k = 0; k < 3; k++) {
		cfg.name = names[k];
		cfg.size = sizes[k];
		assert_int_equal(guest_add_block(g, new_ok(&cfg)), 0);
	}
	cfg.name = "mid";
	dup = new_ok(&cfg);
	assert_int_equal(guest_add_block(g, dup), -EEXIST);
	ram_block_free(dup);
	guest_for_each_block(g, b) assert_string_equal(b->name, order[i++]);
	assert_int_equal(g->nblocks, 3);
	assert_int_equal(guest_ram_size(g), 7 * MiB);
	assert_non_null(guest_find_block(g, "mid"));
	assert_null(guest_find_block(g, "nope"));
	assert_int_equal(g->smp_cpus, 4);
	guest_free(g);
}

static void test_runstate(void **state)
{
	struct guest *g = guest_new(1, GUEST_RUNSTATE_INMIGRATE);

	assert_int_equal(guest_get_runstate(g), GUEST_RUNSTATE_INMIGRATE);
	assert_false(guest_is_running(g));
	assert_true(g->autostart);
	guest_set_runstate(g, GUEST_RUNSTATE_RUNNING);
	assert_true(guest_is_running(g));
	assert_string_equal(guest_runstate_name(GUEST_RUNSTATE_FINISH_MIGRATE),
			    "finish-migrate");
	assert_string_equal(guest_runstate_name(GUEST_RUNSTATE__MAX),
			    "unknown");
	assert_int_equal(guest_runstate_lookup("postmigrate"),
			 GUEST_RUNSTATE_POSTMIGRATE);
	assert_int_equal(guest_runstate_lookup("bogus"), -1);
	guest_free(g);
	guest_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anon),
		cmocka_unit_test(test_anon_rounds_to_page),
		cmocka_unit_test(test_memfd),
		cmocka_unit_test_setup_teardown(test_file_shared, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_private, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_sizes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_file_errors_and_dir, setup,
						teardown),
		cmocka_unit_test(test_anon_too_big),
		cmocka_unit_test(test_guest_blocks),
		cmocka_unit_test(test_runstate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
