/* incoming_file.h — the incoming mapped-ram 'file:' migration's setup
 * (incoming_file.c), called by incoming_conn.c's prepare(). Control
 * thread. */
#ifndef MIGD_CONTROL_INCOMING_FILE_H
#define MIGD_CONTROL_INCOMING_FILE_H

#include "util/error.h"

struct incoming;
struct ram_load_opts;

/* With 'file:' and mapped-ram: opens the multifd file channels, sets
 * inc->rlf and ro->file. A no-op for anything else. 0 or -errno with
 * *errp. inc->rlf is freed by the teardown. */
int incoming_file_prepare(struct incoming *inc, struct ram_load_opts *ro,
			  struct mig_error **errp);

#endif
