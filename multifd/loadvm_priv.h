/* loadvm_priv.h — what loadvm.c (the main-stream loop) and
 * loadvm_postcopy.c (postcopy commands, return-path page requests,
 * recovery) share. The loading thread, except loadvm_rp_write(). */
#ifndef MIGD_MULTIFD_LOADVM_PRIV_H
#define MIGD_MULTIFD_LOADVM_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "multifd/loadvm.h"
#include "util/error.h"

/* loadvm.c */
int loadvm_load_item(struct loadvm *ld, bool *eof, struct mig_error **errp);
/* Writes a return-path message under the lock. -ENOTCONN while paused.
 * Any thread. */
int loadvm_rp_write(struct loadvm *ld, const void *buf, size_t len);

/* loadvm_postcopy.c */
/* The payload of a postcopy command (ADVISE, DISCARD, PACKAGED, LISTEN,
 * RUN, RESUME, RECV_BITMAP) whose header passed pc_cmd_check(). */
int loadvm_pc_command(struct loadvm *ld, uint16_t cmd, uint16_t len,
		      struct mig_error **errp);
/* ret failed the main stream: while postcopy runs and ret is a network
 * error, pauses (QEMU's postcopy_pause_incoming) and returns 0 once a new
 * main channel replaced ld->f; otherwise returns ret. */
int loadvm_pc_maybe_pause(struct loadvm *ld, int ret, struct mig_error **errp);
/* The main stream ended after LISTEN: every page of every registered
 * block must be present (placed, or kept from precopy), or the guest
 * would read zeros where the source's data belongs once RAM is
 * unregistered. With postcopy-preempt, waits up to PC_COMPLETE_WAIT_MS
 * for pages still on the preempt channel (QEMU's
 * postcopy_ram_incoming_cleanup() waits for the requested ones).
 * 0, or -EINVAL naming the first incomplete block. */
int loadvm_pc_check_complete(struct loadvm *ld, struct mig_error **errp);
#define PC_COMPLETE_WAIT_MS 10000

#endif
