/* postcopy_dst.h — postcopy on the destination (incoming) side: the entry
 * points other control modules call. The machinery (listen thread, uffd
 * placement, return-path page requests, recovery) lives in
 * control/postcopy_dst*.c and multifd/loadvm_postcopy*.c.
 * Control thread only. */
#ifndef MIGD_CONTROL_POSTCOPY_DST_H
#define MIGD_CONTROL_POSTCOPY_DST_H

#include <stdbool.h>

#include "util/error.h"

struct migd;

/* migrate-pause on a destination (hps's QMP handler calls this when migd
 * is not a postcopy source): when the incoming migration is
 * postcopy-active, shuts its channels down so it becomes postcopy-paused
 * (guest blocked on missing pages) and returns 0. Otherwise -EINVAL with
 * QEMU's error ("migrate-pause is currently only supported during postcopy-
 * active or postcopy-recover state"). When no incoming migration exists
 * returns -ENOENT with no *errp set, so the caller can try the source side. */
int incoming_postcopy_pause(struct migd *md, struct mig_error **errp);

/* Whether an incoming migration exists and is in a postcopy state
 * (postcopy-active, -paused, -recover). */
bool incoming_postcopy_in_progress(struct migd *md);

/* Whether guest RAM may still have missing pages that only the postcopy
 * source can fill (postcopy-active, -paused, -recover, or a postcopy that
 * failed after LISTEN and left the guest blocked): reading RAM from the
 * control thread would block it, possibly forever. */
bool incoming_postcopy_ram_missing(struct migd *md);

#endif
