/* cmdline.h — migd's command line, in QEMU's conventions: one-dash long
 * options (two dashes accepted), key=value option strings, QEMU's error
 * wording ("-bogus: invalid option", "-m foo: Parameter 'size' expects ...").
 * Owns parsing and validation into struct cmdline; main() acts on it.
 * Main thread only, before anything else starts. */
#ifndef MIGD_CONTROL_CMDLINE_H
#define MIGD_CONTROL_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "guest/ram.h"
#include "guest/workload.h"
#include "util/error.h"

#define CMDLINE_DEFAULT_RAM_SIZE (128ull << 20) /* machine none's default */

/* -object memory-backend-{ram,memfd,file},id=ID,size=SIZE,... */
struct cmdline_backend {
	char *id;
	char *arg; /* the -object argument, for error messages */
	enum ram_backing backing;
	uint64_t size;
	char *mem_path;
	bool share, prealloc, seal;
	enum ram_thp thp; /* x-thp=on|off|auto */
	unsigned prealloc_threads;
};

/* -global DRIVER.PROP=VALUE (only driver "migration" is accepted). */
struct cmdline_global {
	char *prop;
	char *value;
	char *arg;
};

/* -blockdev driver=file,node-name=NAME,filename=DIR: a snapshot store
 * (control/snapstore.h); main() checks the directory. */
struct cmdline_blockdev {
	char *node_name;
	char *filename;
	char *arg;
};

struct cmdline {
	uint64_t ram_size;    /* -m, rounded up to 8 KiB; 0 = not given */
	char *memory_backend; /* -machine memory-backend=ID, or NULL */
	struct cmdline_backend *backends;
	size_t nbackends;
	/* -object tls-creds-x509/tls-creds-psk/authz-simple arguments, in
	 * order; main() makes them (control/objects.h) */
	char **objects;
	size_t nobjects;
	unsigned smp_cpus; /* -smp, 1 by default */
	char *name;	   /* -name guest=NAME */
	uint8_t uuid[16];
	bool has_uuid;
	bool start_paused; /* -S */
	char **qmp;	   /* -qmp specs, in order */
	size_t nqmp;
	char *incoming; /* -incoming URI|defer (last one wins) */
	struct cmdline_global *globals;
	size_t nglobals;
	bool daemonize;
	char *pidfile;
	char *logfile; /* -D */
	bool show_help, show_version, show_machines;
	/* -workload (guest/workload.h): parsed and validated on its own; the
	 * working set is checked against the RAM when the guest exists. */
	struct workload_config workload;
	char *workload_arg; /* the last -workload text, NULL when none */
	struct cmdline_blockdev *blockdevs; /* -blockdev, in order */
	size_t nblockdevs;
};

/* Parses argv into cl (which it initialises). On error returns -EINVAL with
 * *errp naming the option, as QEMU does ("-m foo: ..."); cl must still be
 * released with cmdline_fini(). */
int cmdline_parse(struct cmdline *cl, int argc, char **argv,
		  struct mig_error **errp);
void cmdline_fini(struct cmdline *cl);

/* The machine's RAM: the -machine memory-backend (named after its id, as
 * QEMU names the RAMBlock) or the default block "ram" of -m bytes. *arg gets
 * the -object argument the block came from (NULL for -m), for messages. */
int cmdline_ram_config(const struct cmdline *cl, struct ram_block_config *cfg,
		       const char **arg, struct mig_error **errp);

void cmdline_print_help(FILE *f);
void cmdline_print_version(FILE *f);
void cmdline_print_machines(FILE *f);

#endif
