/* migdump.c — "migdump [options] MAIN_STREAM [CHANNEL...]": decodes a
 * captured QEMU main migration stream (or a saved file) and multifd channel
 * captures, prints a summary (or --json), and reports the first malformed
 * byte of each file with its offset. Exit 0: everything decodes; 2: some
 * file is malformed or truncated; 1: usage or I/O error. main() maps the
 * files and hands them to migdump_*.c. Single-threaded. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contrib/migdump.h"

struct mapped {
	const uint8_t *p;
	uint64_t len;
	bool is_mmap, is_heap;
};

struct args {
	struct mdump_opts o;
	bool json, vmdesc;
	const char *main_path;
	const char *const *chan_paths;
	size_t nchans;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: migdump [options] MAIN_STREAM [CHANNEL...]\nDecodes a "
		"QEMU migration stream (and multifd channel captures)\nand "
		"reports the first malformed byte.\n  -v, --verbose        a "
		"line per section (-vv: per record)\n  -j, --json           "
		"machine-readable report on stdout\n      --vmdesc         "
		"print the vmdesc JSON\n      --postcopy[=BLOCKS]  MEM_SIZE "
		"carries hugepage sizes\n                       (for the "
		"comma-separated BLOCKS, else\n                       "
		"guessed)\n      --ignore-shared  MEM_SIZE carries each "
		"block's GPA\n      --mapped-ram     a mapped-ram file "
		"(headers, bitmaps)\n      --no-footer      "
		"send-section-footer=off on the source\n      "
		"--offset=N       the stream starts at N (file:...,offset=)\n"
		"exit status: 0 decoded, 2 malformed or truncated, 1 error\n");
}

static int parse_offset(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static const struct option longopts[] = {
	{"verbose", no_argument, NULL, 'v'},
	{"json", no_argument, NULL, 'j'},
	{"help", no_argument, NULL, 'h'},
	{"vmdesc", no_argument, NULL, 'D'},
	{"postcopy", optional_argument, NULL, 'P'},
	{"ignore-shared", no_argument, NULL, 'I'},
	{"mapped-ram", no_argument, NULL, 'M'},
	{"no-footer", no_argument, NULL, 'F'},
	{"offset", required_argument, NULL, 'O'},
	{NULL, 0, NULL, 0},
};

static int apply_option(int c, const char *arg, struct args *a)
{
	switch (c) {
	case 'v':
		a->o.verbose++;
		return 0;
	case 'j':
		a->json = true;
		return 0;
	case 'h':
		usage(stdout);
		exit(0);
	case 'D':
		a->vmdesc = true;
		return 0;
	case 'P':
		a->o.postcopy = true;
		a->o.postcopy_blocks = arg;
		return 0;
	case 'I':
		a->o.ignore_shared = true;
		return 0;
	case 'M':
		a->o.mapped_ram = true;
		return 0;
	case 'F':
		a->o.no_footer = true;
		return 0;
	case 'O':
		if (parse_offset(arg, &a->o.start) == 0)
			return 0;
		fprintf(stderr, "migdump: bad --offset '%s'\n", arg);
		return -EINVAL;
	default:
		return -EINVAL;
	}
}

static int parse_args(int argc, char **argv, struct args *a)
{
	int c;

	while ((c = getopt_long(argc, argv, "vjh", longopts, NULL)) != -1)
		if (apply_option(c, optarg, a))
			return -EINVAL;
	if (optind >= argc)
		return -EINVAL;
	a->main_path = argv[optind];
	a->chan_paths = (const char *const *)argv + optind + 1;
	a->nchans = (size_t)(argc - optind - 1);
	return 0;
}

/* ---- input files: mapped, or read whole when they cannot be (pipes) ---- */

static int read_all(int fd, struct mapped *m)
{
	size_t cap = 1 << 16, len = 0;
	uint8_t *buf = malloc(cap), *nbuf;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			nbuf = realloc(buf, cap * 2);
			if (!nbuf)
				goto err;
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	m->p = buf;
	m->len = len;
	m->is_heap = true;
	return 0;
err:
	n = errno ? -errno : -ENOMEM;
	free(buf);
	return (int)n;
}

static int map_file(const char *path, struct mapped *m)
{
	struct stat st;
	void *p;
	int fd, ret = 0;

	memset(m, 0, sizeof(*m));
	m->p = (const uint8_t *)"";
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = read_all(fd, m);
		goto out;
	}
	if (st.st_size > 0) {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
			 0);
		if (p == MAP_FAILED) {
			ret = -errno;
			goto out;
		}
		madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
		m->p = p;
		m->len = (uint64_t)st.st_size;
		m->is_mmap = true;
	}
out:
	if (fd >= 0)
		close(fd);
	if (ret)
		fprintf(stderr, "migdump: %s: %s\n", path, strerror(-ret));
	return ret;
}

static void unmap_file(struct mapped *m)
{
	if (m->is_mmap)
		munmap((void *)m->p, m->len);
	else if (m->is_heap)
		free((void *)m->p);
}

/* ---- output ------------------------------------------------------------ */

static void print_vmdesc(const struct mdump_stream *s, const uint8_t *buf)
{
	const char *text = (const char *)buf + s->vmdesc_offset;
	json_t *doc = json_loadb(text, s->vmdesc_len, 0, NULL);

	printf("vmdesc (%llu bytes):\n", (unsigned long long)s->vmdesc_len);
	if (doc) {
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(doc);
	} else {
		fwrite(text, 1, s->vmdesc_len, stdout);
	}
	putchar('\n');
}

static void print_totals(const struct mdump_stream *s,
			 const struct mdump_channel *ch, size_t n)
{
	unsigned long long normal = s->counts.rec[MDUMP_REC_PAGE];
	unsigned long long zero = s->counts.rec[MDUMP_REC_ZERO];

	for (size_t i = 0; i < n; i++) {
		normal += ch[i].normal;
		zero += ch[i].zero;
	}
	printf("totals: normal pages %llu (main stream %llu), zero pages %llu "
	       "(main stream %llu)\n",
	       normal, (unsigned long long)s->counts.rec[MDUMP_REC_PAGE], zero,
	       (unsigned long long)s->counts.rec[MDUMP_REC_ZERO]);
}

static int report(const struct args *a, const struct mdump_stream *s,
		  const struct mapped *main_map, const struct mdump_channel *ch)
{
	char *text;

	if (a->json) {
		text = mdump_json_report(a->main_path, s, main_map->p,
					 a->vmdesc, a->chan_paths, ch,
					 a->nchans);
		if (!text)
			return -ENOMEM;
		puts(text);
		free(text);
		return 0;
	}
	mdump_print_stream(stdout, a->main_path, s);
	if (a->vmdesc && s->has_vmdesc)
		print_vmdesc(s, main_map->p);
	for (size_t i = 0; i < a->nchans; i++)
		mdump_print_channel(stdout, a->chan_paths[i], &ch[i]);
	if (a->nchans)
		print_totals(s, ch, a->nchans);
	return 0;
}

/* ---- decoding ------------------------------------------------------------ */

static void heading(const struct args *a, const char *what, const char *path)
{
	if (a->o.verbose && a->o.trace)
		fprintf(a->o.trace, "== %s %s\n", what, path);
}

/* 0, 2 (something malformed) or 1 (out of memory). */
static int decode_all(const struct args *a, const struct mapped *maps,
		      struct mdump_stream *s, struct mdump_channel *ch)
{
	int status = 0, ret;

	heading(a, "main stream", a->main_path);
	ret = mdump_stream_decode(maps[0].p, maps[0].len, &a->o, s);
	if (ret == -ENOMEM)
		return 1;
	if (ret)
		status = 2;
	for (size_t i = 0; i < a->nchans; i++) {
		heading(a, "multifd channel", a->chan_paths[i]);
		ret = mdump_channel_decode(maps[i + 1].p, maps[i + 1].len,
					   &a->o, s, &ch[i]);
		if (ret == -ENOMEM)
			return 1;
		if (ret)
			status = 2;
	}
	return status;
}

static int run(const struct args *a)
{
	struct mapped *maps = calloc(a->nchans + 1, sizeof(*maps));
	struct mdump_channel *ch = calloc(a->nchans + 1, sizeof(*ch));
	struct mdump_stream s = {0};
	size_t nmapped = 0;
	int status = 1;

	if (!maps || !ch)
		goto out;
	for (; nmapped <= a->nchans; nmapped++)
		if (map_file(nmapped ? a->chan_paths[nmapped - 1]
				     : a->main_path,
			     &maps[nmapped]))
			goto out;
	status = decode_all(a, maps, &s, ch);
	if (status != 1 && report(a, &s, &maps[0], ch))
		status = 1;
	if (status == 1)
		fprintf(stderr, "migdump: out of memory\n");
out:
	for (size_t i = 0; ch && i < a->nchans; i++)
		mdump_channel_free(&ch[i]);
	mdump_stream_free(&s);
	while (nmapped)
		unmap_file(&maps[--nmapped]);
	free(maps);
	free(ch);
	return status;
}

int main(int argc, char **argv)
{
	struct args a = {0};

	if (parse_args(argc, argv, &a)) {
		usage(stderr);
		return 1;
	}
	a.o.trace = a.json ? stderr : stdout;
	return run(&a);
}
