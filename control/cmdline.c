/* cmdline.c — parsing of migd's command line (see cmdline.h). One table
 * maps option names to handlers; each handler parses its argument with
 * util/opts and reports problems with QEMU's wording, and the dispatcher
 * prefixes the option as QEMU's error location does ("-m foo: ...").
 * Main thread only. */
#include "control/cmdline.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "control/migd.h"
#include "control/objects.h"
#include "guest/guest.h"
#include "util/opts.h"
#include "util/size.h"

#define RAM_SIZE_ALIGN 8192 /* QEMU rounds -m up to 8 KiB */

typedef int (*opt_fn)(struct cmdline *cl, const char *arg,
		      struct mig_error **errp);

struct option_def {
	const char *name;
	bool has_arg;
	opt_fn fn;
};

/* ---- small helpers ------------------------------------------------------- */

static int set_str(char **dst, const char *src, struct mig_error **errp)
{
	char *copy = strdup(src);

	if (!copy) {
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	free(*dst);
	*dst = copy;
	return 0;
}

static void *grow_array(void *arr, size_t n, size_t elem)
{
	return realloc(arr, (n + 1) * elem);
}

/* QEMU's id_wellformed(): a letter, then letters, digits, '-', '.', '_'.
 * migd also bounds it: the id may become a RAM block name on the wire. */
static bool id_is_wellformed(const char *id)
{
	if (!isalpha((unsigned char)id[0]) || strlen(id) > RAM_BLOCK_NAME_MAX)
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
			return false;
	return true;
}

static int opts_or_error(struct opts **o, const char *arg, const char *implied,
			 struct mig_error **errp)
{
	*o = opts_parse(arg, implied, errp);
	return *o ? 0 : -EINVAL;
}

/* Reports the first key no handler read, QemuOpts style. */
static int check_unused(const struct opts *o, struct mig_error **errp)
{
	const char *bad = opts_first_unused(o);

	if (!bad)
		return 0;
	mig_error_setg(errp, "Invalid parameter '%s'", bad);
	return -EINVAL;
}

/* ---- -m ------------------------------------------------------------------ */

/* QemuOpts validates the size in bytes first; then a suffix-less value is
 * taken as MiB (QEMU's "legacy suffix-less format"). */
static int parse_ram_size(const char *s, uint64_t *out, struct mig_error **errp)
{
	uint64_t bytes;
	int ret = size_parse(s, 'B', &bytes);

	if (ret == 0 && *s && isdigit((unsigned char)s[strlen(s) - 1]))
		ret = size_parse(s, 'M', &bytes);
	if (ret == -ERANGE) {
		mig_error_setg(
			errp, "Value '%s' is out of range for parameter 'size'",
			s);
		return ret;
	}
	if (ret < 0) {
		mig_error_setg(errp, "Parameter 'size' expects a non-negative "
				     "number below 2^64\n"
				     "Optional suffix k, M, G, T, P or E means "
				     "kilo-, mega-, giga-, tera-, peta-\n"
				     "and exabytes, respectively.");
		return ret;
	}
	if (bytes > UINT64_MAX - RAM_SIZE_ALIGN) {
		mig_error_setg(errp, "ram size too large");
		return -ERANGE;
	}
	*out = (bytes + RAM_SIZE_ALIGN - 1) / RAM_SIZE_ALIGN * RAM_SIZE_ALIGN;
	return 0;
}

static int opt_m(struct cmdline *cl, const char *arg, struct mig_error **errp)
{
	struct opts *o;
	const char *size;
	int ret = opts_or_error(&o, arg, "size", errp);

	if (ret < 0)
		return ret;
	size = opts_get(o, "size");
	if (opts_has(o, "slots") || opts_has(o, "maxmem")) {
		mig_error_setg(errp, "memory hotplug (slots, maxmem) is not "
				     "supported by machine 'none'");
		ret = -EINVAL;
		goto out;
	}
	ret = check_unused(o, errp);
	/* "-m 0" and "-m size=0" mean the default, as in QEMU. */
	if (!ret && size)
		ret = parse_ram_size(size, &cl->ram_size, errp);
out:
	opts_free(o);
	return ret;
}

/* ---- -machine ------------------------------------------------------------ */

static int opt_machine(struct cmdline *cl, const char *arg,
		       struct mig_error **errp)
{
	const char *type, *backend, *bad;
	struct opts *o;
	int ret = opts_or_error(&o, arg, "type", errp);

	if (ret < 0)
		return ret;
	type = opts_get(o, "type");
	backend = opts_get(o, "memory-backend");
	bad = opts_first_unused(o);
	if (type && (!strcmp(type, "help") || !strcmp(type, "?"))) {
		cl->show_machines = true;
	} else if (type && strcmp(type, "none") != 0) {
		mig_error_setg(errp,
			       "unsupported machine type: \"%s\"\n"
			       "Use -machine help to list supported machines",
			       type);
		ret = -EINVAL;
	} else if (bad) {
		mig_error_setg(errp, "Property 'none-machine.%s' not found",
			       bad);
		ret = -EINVAL;
	} else if (backend) {
		ret = set_str(&cl->memory_backend, backend, errp);
	}
	opts_free(o);
	return ret;
}

/* ---- -object ------------------------------------------------------------- */

static const char *const backend_types[] = {
	[RAM_BACKING_ANON] = "memory-backend-ram",
	[RAM_BACKING_MEMFD] = "memory-backend-memfd",
	[RAM_BACKING_FILE] = "memory-backend-file",
};

static int lookup_backend_type(const char *type)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(type, backend_types[i]) == 0)
			return i;
	return -1;
}

static bool backend_exists(const struct cmdline *cl, const char *id)
{
	for (size_t i = 0; i < cl->nbackends; i++)
		if (strcmp(cl->backends[i].id, id) == 0)
			return true;
	return false;
}

static int check_object_id(const struct cmdline *cl, const char *id,
			   struct mig_error **errp)
{
	if (!id) {
		mig_error_setg(errp, "Parameter 'id' is missing");
		return -EINVAL;
	}
	if (!id_is_wellformed(id)) {
		mig_error_setg(errp, "Parameter 'id' expects an identifier\n"
				     "Identifiers consist of letters, digits, "
				     "'-', '.', '_', starting with a letter.");
		return -EINVAL;
	}
	if (backend_exists(cl, id)) {
		mig_error_setg(errp,
			       "attempt to add duplicate property '%s' to "
			       "object (type 'container')",
			       id);
		return -EINVAL;
	}
	return 0;
}

/* Reads the properties of one backend type; unknown ones are refused the
 * way QOM refuses them. */
/* x-thp=on|off|auto (default auto, guest/ram.h). */
static bool get_thp(struct opts *o, enum ram_thp *out, struct mig_error **errp)
{
	const char *s = opts_get(o, "x-thp");
	bool on;

	if (!s)
		return true;
	if (!strcmp(s, "auto")) {
		*out = RAM_THP_AUTO;
		return true;
	}
	if (opts_parse_bool(s, &on)) {
		*out = on ? RAM_THP_ON : RAM_THP_OFF;
		return true;
	}
	mig_error_setg(errp, "Parameter 'x-thp' expects 'on', 'off' or 'auto'");
	return false;
}

static int read_backend_props(struct opts *o, struct cmdline_backend *b,
			      struct mig_error **errp)
{
	uint64_t threads = 0;
	const char *path, *bad;

	if (!opts_get_size(o, "size", 'B', &b->size, errp) ||
	    !opts_get_bool(o, "share", &b->share, errp) ||
	    !opts_get_bool(o, "prealloc", &b->prealloc, errp) ||
	    !opts_get_uint(o, "prealloc-threads", &threads, errp))
		return -EINVAL;
	if (b->backing == RAM_BACKING_MEMFD &&
	    !opts_get_bool(o, "seal", &b->seal, errp))
		return -EINVAL;
	if (b->backing == RAM_BACKING_ANON && !get_thp(o, &b->thp, errp))
		return -EINVAL;
	path = b->backing == RAM_BACKING_FILE ? opts_get(o, "mem-path") : NULL;
	bad = opts_first_unused(o);
	if (bad) {
		mig_error_setg(errp, "Property '%s.%s' not found",
			       backend_types[b->backing], bad);
		return -EINVAL;
	}
	if (threads > 256) {
		mig_error_setg(errp, "Parameter 'prealloc-threads' expects "
				     "a value between 1 and 256");
		return -EINVAL;
	}
	b->prealloc_threads = (unsigned)threads;
	if (b->backing == RAM_BACKING_FILE && !path) {
		mig_error_setg(errp, "mem-path property not set");
		return -EINVAL;
	}
	if (!b->size) {
		mig_error_setg(errp, "can't create backend with size 0");
		return -EINVAL;
	}
	return path ? set_str(&b->mem_path, path, errp) : 0;
}

static void backend_fini(struct cmdline_backend *b)
{
	free(b->id);
	free(b->arg);
	free(b->mem_path);
}

static int add_backend(struct cmdline *cl, struct opts *o, int type,
		       const char *arg, struct mig_error **errp)
{
	struct cmdline_backend b = {
		.backing = (enum ram_backing)type,
		/* QEMU's defaults: memfd is shared and sealed. */
		.share = type == RAM_BACKING_MEMFD,
		.seal = true,
	};
	const char *id = opts_get(o, "id");
	struct cmdline_backend *arr;
	int ret = check_object_id(cl, id, errp);

	if (ret < 0)
		return ret;
	ret = read_backend_props(o, &b, errp);
	if (!ret && (set_str(&b.id, id, errp) || set_str(&b.arg, arg, errp)))
		ret = -ENOMEM;
	arr = ret ? NULL : grow_array(cl->backends, cl->nbackends, sizeof(b));
	if (!arr) {
		backend_fini(&b);
		if (!ret)
			mig_error_setg(errp, "out of memory");
		return ret ? ret : -ENOMEM;
	}
	cl->backends = arr;
	cl->backends[cl->nbackends++] = b;
	return 0;
}

/* Non-memory objects are only collected here (their id checked against
 * the backends); main() creates them once migd's context exists. */
static int add_other_object(struct cmdline *cl, struct opts *o, const char *arg,
			    struct mig_error **errp)
{
	int ret = check_object_id(cl, opts_get(o, "id"), errp);
	char **arr;

	if (ret < 0)
		return ret;
	arr = grow_array(cl->objects, cl->nobjects, sizeof(*arr));
	if (!arr) {
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	cl->objects = arr;
	cl->objects[cl->nobjects] = NULL;
	if (set_str(&cl->objects[cl->nobjects], arg, errp))
		return -ENOMEM;
	cl->nobjects++;
	return 0;
}

static int opt_object(struct cmdline *cl, const char *arg,
		      struct mig_error **errp)
{
	struct opts *o;
	const char *type;
	int ret = opts_or_error(&o, arg, "qom-type", errp), kind;

	if (ret < 0)
		return ret;
	type = opts_get(o, "qom-type");
	kind = type ? lookup_backend_type(type) : -1;
	if (!type) {
		mig_error_setg(errp, "Parameter 'qom-type' is missing");
		ret = -EINVAL;
	} else if (kind < 0 && mig_objects_handles_type(type)) {
		ret = add_other_object(cl, o, arg, errp);
	} else if (kind < 0) {
		mig_error_setg(errp,
			       "object type '%s' is not supported by migd",
			       type);
		ret = -EINVAL;
	} else {
		ret = add_backend(cl, o, kind, arg, errp);
	}
	opts_free(o);
	return ret;
}

/* ---- -smp ---------------------------------------------------------------- */

static const char *const smp_topology[] = {"sockets", "dies", "clusters",
					   "cores", "threads"};

/* Reads -smp's keys; 0 stands for "not given". */
static int read_smp(struct opts *o, uint64_t *cpus, uint64_t *maxcpus,
		    uint64_t *product, struct mig_error **errp)
{
	bool zero = false;

	*product = 1;
	if (!opts_get_uint(o, "cpus", cpus, errp) ||
	    !opts_get_uint(o, "maxcpus", maxcpus, errp))
		return -EINVAL;
	zero = (opts_has(o, "cpus") && !*cpus) ||
	       (opts_has(o, "maxcpus") && !*maxcpus);
	for (size_t i = 0; i < 5; i++) {
		uint64_t v = 1;

		if (!opts_get_uint(o, smp_topology[i], &v, errp))
			return -EINVAL;
		zero |= !v;
		*product = v && *product <= UINT32_MAX / v ? *product * v
							   : UINT32_MAX;
	}
	if (zero) {
		mig_error_setg(errp, "Invalid CPU topology: CPU topology "
				     "parameters must be greater than zero");
		return -EINVAL;
	}
	return check_unused(o, errp);
}

static int opt_smp(struct cmdline *cl, const char *arg, struct mig_error **errp)
{
	uint64_t cpus = 0, maxcpus = 0, product, n;
	struct opts *o;
	int ret = opts_or_error(&o, arg, "cpus", errp);

	if (ret < 0)
		return ret;
	ret = read_smp(o, &cpus, &maxcpus, &product, errp);
	opts_free(o);
	if (ret < 0)
		return ret;
	/* migd runs one thread per vCPU; hotplug (maxcpus) has no meaning. */
	n = cpus ? cpus : (maxcpus ? maxcpus : product);
	if (maxcpus && maxcpus < n) {
		mig_error_setg(errp, "Invalid CPU topology: maxcpus must be "
				     "equal to or greater than smp");
		return -EINVAL;
	}
	if (n > GUEST_SMP_MAX || maxcpus > GUEST_SMP_MAX) {
		mig_error_setg(errp,
			       "Invalid SMP CPUs %llu. The max CPUs supported "
			       "by machine 'none' is %d",
			       (unsigned long long)(maxcpus > n ? maxcpus : n),
			       GUEST_SMP_MAX);
		return -EINVAL;
	}
	cl->smp_cpus = (unsigned)n;
	return 0;
}

/* ---- -name, -uuid -------------------------------------------------------- */

static int opt_name(struct cmdline *cl, const char *arg,
		    struct mig_error **errp)
{
	bool debug_threads = false;
	const char *guest;
	json_t *probe;
	struct opts *o;
	int ret = opts_or_error(&o, arg, "guest", errp);

	if (ret < 0)
		return ret;
	guest = opts_get(o, "guest");
	opts_get(o, "process"); /* the host process name: accepted, unused */
	if (!opts_get_bool(o, "debug-threads", &debug_threads, errp))
		ret = -EINVAL;
	else
		ret = check_unused(o, errp);
	/* query-name returns it as a JSON string: it must be UTF-8. */
	probe = guest && !ret ? json_string(guest) : NULL;
	if (guest && !ret && !probe) {
		mig_error_setg(errp, "Parameter 'guest' expects UTF-8 text");
		ret = -EINVAL;
	}
	json_decref(probe);
	if (!ret && guest)
		ret = set_str(&cl->name, guest, errp);
	opts_free(o);
	return ret;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 8-4-4-4-12 hex digits, either case (QEMU's qemu_uuid_parse()). */
static bool parse_uuid(const char *s, uint8_t out[16])
{
	size_t j = 0;

	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36;) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[j++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	return true;
}

static int opt_uuid(struct cmdline *cl, const char *arg,
		    struct mig_error **errp)
{
	if (!parse_uuid(arg, cl->uuid)) {
		mig_error_setg(errp,
			       "Fail to parse UUID string. Wrong format.");
		return -EINVAL;
	}
	cl->has_uuid = true;
	return 0;
}

/* ---- -qmp, -incoming, -global -------------------------------------------- */

static int opt_qmp(struct cmdline *cl, const char *arg, struct mig_error **errp)
{
	char **arr = grow_array(cl->qmp, cl->nqmp, sizeof(*arr));

	if (!arr) {
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	cl->qmp = arr;
	cl->qmp[cl->nqmp] = NULL;
	if (set_str(&cl->qmp[cl->nqmp], arg, errp) < 0)
		return -ENOMEM;
	cl->nqmp++;
	return 0;
}

static int opt_incoming(struct cmdline *cl, const char *arg,
			struct mig_error **errp)
{
	return set_str(&cl->incoming, arg, errp);
}

/* Splits "DRIVER.PROP=VALUE", or QemuOpts' "driver=D,property=P,value=V". */
static int split_global(const char *arg, char **driver, char **prop,
			char **value, struct mig_error **errp)
{
	size_t dlen = strcspn(arg, ".="), plen;
	struct opts *o;
	int ret;

	plen = arg[dlen] == '.' ? strcspn(arg + dlen + 1, "=") : 0;
	if (dlen && plen && arg[dlen + 1 + plen] == '=') {
		*driver = strndup(arg, dlen);
		*prop = strndup(arg + dlen + 1, plen);
		*value = strdup(arg + dlen + 1 + plen + 1);
		return 0;
	}
	ret = opts_or_error(&o, arg, NULL, errp);
	if (ret < 0)
		return ret;
	if (!opts_get(o, "driver") || !opts_get(o, "property") ||
	    !opts_get(o, "value")) {
		mig_error_setg(errp, "options 'driver', 'property', and "
				     "'value' are required");
		ret = -EINVAL;
	} else if (!(ret = check_unused(o, errp))) {
		*driver = strdup(opts_get(o, "driver"));
		*prop = strdup(opts_get(o, "property"));
		*value = strdup(opts_get(o, "value"));
	}
	opts_free(o);
	return ret;
}

static int add_global(struct cmdline *cl, char *prop, char *value,
		      const char *arg, struct mig_error **errp)
{
	struct cmdline_global *arr;
	char *arg_copy = strdup(arg);

	arr = arg_copy ? grow_array(cl->globals, cl->nglobals, sizeof(*arr))
		       : NULL;
	if (!arr) {
		free(arg_copy);
		mig_error_setg(errp, "out of memory");
		return -ENOMEM;
	}
	cl->globals = arr;
	cl->globals[cl->nglobals++] =
		(struct cmdline_global){prop, value, arg_copy};
	return 0;
}

static int opt_global(struct cmdline *cl, const char *arg,
		      struct mig_error **errp)
{
	char *driver = NULL, *prop = NULL, *value = NULL;
	int ret = split_global(arg, &driver, &prop, &value, errp);

	if (!ret && (!driver || !prop || !value)) {
		mig_error_setg(errp, "out of memory");
		ret = -ENOMEM;
	}
	if (!ret && strcmp(driver, "migration") != 0) {
		mig_error_setg(errp,
			       "driver '%s' is not supported: migd has only "
			       "the 'migration' object's properties",
			       driver);
		ret = -EINVAL;
	}
	if (!ret)
		ret = add_global(cl, prop, value, arg, errp);
	free(driver);
	if (ret < 0) {
		free(prop);
		free(value);
	}
	return ret;
}

/* ---- flags and plain strings --------------------------------------------- */

static int opt_paused(struct cmdline *cl, const char *arg,
		      struct mig_error **errp)
{
	cl->start_paused = true;
	return 0;
}

static int opt_daemonize(struct cmdline *cl, const char *arg,
			 struct mig_error **errp)
{
	cl->daemonize = true;
	return 0;
}

static int opt_pidfile(struct cmdline *cl, const char *arg,
		       struct mig_error **errp)
{
	return set_str(&cl->pidfile, arg, errp);
}

static int opt_logfile(struct cmdline *cl, const char *arg,
		       struct mig_error **errp)
{
	return set_str(&cl->logfile, arg, errp);
}

/* -nodefaults, -nographic: migd has no default devices and no display. */
static int opt_noop(struct cmdline *cl, const char *arg,
		    struct mig_error **errp)
{
	return 0;
}

static int opt_display(struct cmdline *cl, const char *arg,
		       struct mig_error **errp)
{
	size_t len = strcspn(arg, ",");

	if (len != 4 || strncmp(arg, "none", 4) != 0) {
		mig_error_setg(errp, "Display '%.*s' is not available",
			       (int)len, arg);
		return -EINVAL;
	}
	if (arg[len] && arg[len + 1]) {
		mig_error_setg(errp, "Invalid parameter '%.*s'",
			       (int)strcspn(arg + len + 1, ",="),
			       arg + len + 1);
		return -EINVAL;
	}
	return 0;
}

static int opt_help(struct cmdline *cl, const char *arg,
		    struct mig_error **errp)
{
	cl->show_help = true;
	return 0;
}

static int opt_version(struct cmdline *cl, const char *arg,
		       struct mig_error **errp)
{
	cl->show_version = true;
	return 0;
}

/* ---- -workload ----------------------------------------------------------- */

/* The last -workload wins, as repeated QEMU options do. */
static int opt_workload(struct cmdline *cl, const char *arg,
			struct mig_error **errp)
{
	if (workload_parse(&cl->workload, arg, errp) < 0)
		return -EINVAL;
	return set_str(&cl->workload_arg, arg, errp);
}

/* ---- -blockdev ----------------------------------------------------------- */

/* Only driver=file, whose filename is a snapshot store directory: migd has
 * no disks, a node only holds snapshot-save/-load files. */
static int read_blockdev(struct opts *o, struct cmdline_blockdev *b,
			 struct mig_error **errp)
{
	const char *driver = opts_get(o, "driver");
	const char *name = opts_get(o, "node-name");
	const char *file = opts_get(o, "filename");

	if (!driver) {
		mig_error_setg(errp, "Parameter 'driver' is missing");
		return -EINVAL;
	}
	if (strcmp(driver, "file") != 0) {
		mig_error_setg(errp,
			       "Block driver '%s' is not supported by migd "
			       "(only 'file', naming a snapshot store "
			       "directory)",
			       driver);
		return -EINVAL;
	}
	if (!name || !file) {
		mig_error_setg(errp, "Parameter '%s' is missing",
			       name ? "filename" : "node-name");
		return -EINVAL;
	}
	if (check_unused(o, errp))
		return -EINVAL;
	if (set_str(&b->node_name, name, errp) ||
	    set_str(&b->filename, file, errp))
		return -ENOMEM;
	return 0;
}

static int opt_blockdev(struct cmdline *cl, const char *arg,
			struct mig_error **errp)
{
	struct cmdline_blockdev b = {0}, *arr;
	struct opts *o;
	int ret = opts_or_error(&o, arg, NULL, errp);

	if (ret < 0)
		return ret;
	ret = read_blockdev(o, &b, errp);
	opts_free(o);
	if (!ret)
		ret = set_str(&b.arg, arg, errp);
	arr = ret ? NULL
		  : grow_array(cl->blockdevs, cl->nblockdevs, sizeof(*arr));
	if (!arr) {
		free(b.node_name);
		free(b.filename);
		free(b.arg);
		if (!ret)
			mig_error_setg(errp, "out of memory");
		return ret ? ret : -ENOMEM;
	}
	cl->blockdevs = arr;
	cl->blockdevs[cl->nblockdevs++] = b;
	return 0;
}

/* ---- dispatch ------------------------------------------------------------ */

static const struct option_def options[] = {
	{"h", false, opt_help},
	{"help", false, opt_help},
	{"version", false, opt_version},
	{"m", true, opt_m},
	{"machine", true, opt_machine},
	{"M", true, opt_machine},
	{"object", true, opt_object},
	{"smp", true, opt_smp},
	{"name", true, opt_name},
	{"uuid", true, opt_uuid},
	{"S", false, opt_paused},
	{"qmp", true, opt_qmp},
	{"incoming", true, opt_incoming},
	{"global", true, opt_global},
	{"daemonize", false, opt_daemonize},
	{"pidfile", true, opt_pidfile},
	{"D", true, opt_logfile},
	{"nodefaults", false, opt_noop},
	{"nographic", false, opt_noop},
	{"display", true, opt_display},
	{"workload", true, opt_workload},
	{"blockdev", true, opt_blockdev},
};

/* "-foo" and "--foo" name option foo; anything else is no option. */
static const struct option_def *lookup_option(const char *word)
{
	const char *name;

	if (word[0] != '-')
		return NULL;
	name = word[1] == '-' ? word + 2 : word + 1;
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

static void cmdline_init(struct cmdline *cl)
{
	memset(cl, 0, sizeof(*cl));
	cl->smp_cpus = 1;
	workload_config_init(&cl->workload);
}

int cmdline_parse(struct cmdline *cl, int argc, char **argv,
		  struct mig_error **errp)
{
	cmdline_init(cl);
	for (int i = 1; i < argc;) {
		const struct option_def *def = lookup_option(argv[i]);
		const char *arg = NULL;

		if (!def) {
			mig_error_setg(errp, "%s: invalid option", argv[i]);
			return -EINVAL;
		}
		if (def->has_arg && i + 1 >= argc) {
			mig_error_setg(errp, "%s: requires an argument",
				       argv[i]);
			return -EINVAL;
		}
		if (def->has_arg)
			arg = argv[i + 1];
		if (def->fn(cl, arg, errp) < 0) {
			mig_error_prepend(errp, "%s%s%s: ", argv[i],
					  arg ? " " : "", arg ? arg : "");
			return -EINVAL;
		}
		i += def->has_arg ? 2 : 1;
	}
	return 0;
}

void cmdline_fini(struct cmdline *cl)
{
	for (size_t i = 0; i < cl->nbackends; i++)
		backend_fini(&cl->backends[i]);
	free(cl->backends);
	for (size_t i = 0; i < cl->nobjects; i++)
		free(cl->objects[i]);
	free(cl->objects);
	for (size_t i = 0; i < cl->nqmp; i++)
		free(cl->qmp[i]);
	free(cl->qmp);
	for (size_t i = 0; i < cl->nglobals; i++) {
		free(cl->globals[i].prop);
		free(cl->globals[i].value);
		free(cl->globals[i].arg);
	}
	free(cl->globals);
	free(cl->memory_backend);
	free(cl->name);
	free(cl->incoming);
	free(cl->pidfile);
	free(cl->logfile);
	free(cl->workload_arg);
	for (size_t i = 0; i < cl->nblockdevs; i++) {
		free(cl->blockdevs[i].node_name);
		free(cl->blockdevs[i].filename);
		free(cl->blockdevs[i].arg);
	}
	free(cl->blockdevs);
	memset(cl, 0, sizeof(*cl));
}

/* ---- machine RAM --------------------------------------------------------- */

static const struct cmdline_backend *find_backend(const struct cmdline *cl,
						  const char *id)
{
	for (size_t i = 0; i < cl->nbackends; i++)
		if (strcmp(cl->backends[i].id, id) == 0)
			return &cl->backends[i];
	return NULL;
}

static void backend_to_config(const struct cmdline_backend *b,
			      struct ram_block_config *cfg)
{
	*cfg = (struct ram_block_config){
		.name = b->id,
		.size = b->size,
		.backing = b->backing,
		.mem_path = b->mem_path,
		.share = b->share,
		.prealloc = b->prealloc,
		.seal = b->seal,
		.prealloc_threads = b->prealloc_threads,
		.thp = b->thp,
	};
}

int cmdline_ram_config(const struct cmdline *cl, struct ram_block_config *cfg,
		       const char **arg, struct mig_error **errp)
{
	const struct cmdline_backend *b;

	*arg = NULL;
	if (cl->memory_backend) {
		b = find_backend(cl, cl->memory_backend);
		if (!b) {
			mig_error_setg(errp, "Memory backend '%s' not found",
				       cl->memory_backend);
			return -ENOENT;
		}
		if (cl->ram_size && cl->ram_size != b->size) {
			mig_error_setg(errp,
				       "Machine memory size does not match "
				       "the size of the memory backend");
			return -EINVAL;
		}
		backend_to_config(b, cfg);
		*arg = b->arg;
		return 0;
	}
	if (find_backend(cl, "ram")) {
		mig_error_setg(
			errp,
			"object's id 'ram' is reserved for the default RAM "
			"backend, it can't be used for any other purposes\n"
			"Change the object's 'id' to something else or disable "
			"automatic creation of the default RAM backend by "
			"setting 'memory-backend=ram' with '-machine'.");
		return -EINVAL;
	}
	*cfg = (struct ram_block_config){
		.name = "ram",
		.size = cl->ram_size ? cl->ram_size : CMDLINE_DEFAULT_RAM_SIZE,
		.backing = RAM_BACKING_ANON,
	};
	return 0;
}

/* ---- help ---------------------------------------------------------------- */

void cmdline_print_version(FILE *f)
{
	fprintf(f, "migd version %s (QEMU QAPI %d.%d.%d)\n", MIGD_VERSION,
		MIGD_QEMU_MAJOR, MIGD_QEMU_MINOR, MIGD_QEMU_MICRO);
}

void cmdline_print_machines(FILE *f)
{
	fprintf(f, "Supported machines are:\n"
		   "none                 empty machine (default)\n");
}

void cmdline_print_help(FILE *f)
{
	cmdline_print_version(f);
	fputs("usage: migd [options]\n"
	      "\n"
	      "Guest:\n"
	      "-m [size=]SIZE        guest RAM (default 128M; no suffix = "
	      "MiB)\n"
	      "-machine [type=]none[,memory-backend=ID]   (also -M)\n"
	      "-object "
	      "memory-backend-ram,id=ID,size=SIZE[,share=on|off][,prealloc=on|"
	      "off]\n"
	      "-object "
	      "memory-backend-memfd,id=ID,size=SIZE[,share=on|off][,seal=on|"
	      "off][,prealloc=on|off]\n"
	      "-object "
	      "memory-backend-file,id=ID,size=SIZE,mem-path=PATH[,share=on|off]"
	      "[,prealloc=on|off]\n"
	      "-object tls-creds-x509,id=ID,dir=DIR[,endpoint=client|server]"
	      "[,verify-peer=on|off]\n"
	      "-object tls-creds-psk,id=ID,dir=DIR[,endpoint=client|server]"
	      "[,username=NAME]\n"
	      "-object authz-simple,id=ID,identity=NAME\n"
	      "-smp [cpus=]N         vCPU threads (1..256)\n"
	      "-name [guest=]NAME    guest name (query-name)\n"
	      "-uuid UUID            guest UUID (query-uuid)\n"
	      "-S                    start paused (runstate prelaunch)\n"
	      "-workload [dirty-rate=]MB/s|idle[,working-set=SIZE]"
	      "[,pattern=sequential|random|hotcold]\n"
	      "          [,content=random|text|zero|mixed][,write-size=N]"
	      "[,per-vcpu-rate=MB/s]...\n"
	      "                      what the vCPUs write (x-guest-workload)\n"
	      "\n"
	      "Control and migration:\n"
	      "-qmp unix:PATH,server=on,wait=off   QMP monitor (repeatable)\n"
	      "-qmp tcp:HOST:PORT,server=on,wait=off\n"
	      "-incoming URI|defer   wait for an incoming migration\n"
	      "-global migration.PROP=VALUE   migration object property\n"
	      "-blockdev driver=file,node-name=NAME,filename=DIR\n"
	      "                      snapshot store for snapshot-save/-load\n"
	      "\n"
	      "Process:\n"
	      "-daemonize            detach once the QMP sockets listen\n"
	      "-pidfile PATH         write the process id to PATH\n"
	      "-D LOGFILE            write the log to LOGFILE\n"
	      "-nodefaults, -nographic, -display none   accepted (no effect)\n"
	      "-h, -help             this text\n"
	      "-version              version\n",
	      f);
}
