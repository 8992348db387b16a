/* migration_file.h — the outgoing mapped-ram 'file:' migration's setup and
 * release (migration_file.c), called by the migration thread
 * (migration.c). The writer itself is multifd/ram_save_file.c. */
#ifndef MIGD_CONTROL_MIGRATION_FILE_H
#define MIGD_CONTROL_MIGRATION_FILE_H

#include "util/error.h"

struct migration;

/* With 'file:' and mapped-ram: opens the multifd file channels and sets
 * m->file (the writer ram_save.c uses). A no-op for anything else. 0 or
 * -errno with *errp (QEMU's open messages). Call once m->main_ch is
 * set. */
int migration_file_setup(struct migration *m, struct mig_error **errp);
/* Frees m->file (joins its threads). Safe when there is none. */
void migration_file_release(struct migration *m);

#endif
