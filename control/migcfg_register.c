/* migcfg_register.c — adds the migration-configuration commands
 * (migcfg_qmp.c) to the QMP server. Kept apart so that unit tests of the
 * handlers link without the server. Control thread only, at startup. */
#include "control/migcfg.h"

#include <stdio.h>

#include "control/qmp.h"

void migcfg_register_qmp(struct qmp_server *srv)
{
	size_t n;
	const struct qmp_command *cmds = migcfg_qmp_commands(&n);

	if (qmp_register(srv, cmds, n) < 0)
		fprintf(stderr, "migd: migration config commands registered "
				"twice\n");
}
