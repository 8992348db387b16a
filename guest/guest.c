/* guest.c — struct guest: RAM block list and runstate (see guest.h).
 * Control thread builds and frees it; readers on other threads see the
 * immutable block list and the atomic runstate. */
#include "guest/guest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest/dirty.h"
#include "guest/vcpu.h"

static const char *const runstate_names[GUEST_RUNSTATE__MAX] = {
	[GUEST_RUNSTATE_PRELAUNCH] = "prelaunch",
	[GUEST_RUNSTATE_RUNNING] = "running",
	[GUEST_RUNSTATE_PAUSED] = "paused",
	[GUEST_RUNSTATE_INMIGRATE] = "inmigrate",
	[GUEST_RUNSTATE_FINISH_MIGRATE] = "finish-migrate",
	[GUEST_RUNSTATE_POSTMIGRATE] = "postmigrate",
	[GUEST_RUNSTATE_SHUTDOWN] = "shutdown",
};

const char *guest_runstate_name(enum guest_runstate st)
{
	if ((unsigned)st >= GUEST_RUNSTATE__MAX)
		return "unknown";
	return runstate_names[st];
}

int guest_runstate_lookup(const char *name)
{
	for (int i = 0; i < GUEST_RUNSTATE__MAX; i++)
		if (strcmp(runstate_names[i], name) == 0)
			return i;
	return -1;
}

struct guest *guest_new(unsigned smp_cpus, enum guest_runstate initial)
{
	struct guest *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->smp_cpus = smp_cpus ? smp_cpus : 1;
	atomic_init(&g->runstate, (int)initial);
	g->autostart = true;
	return g;
}

void guest_free(struct guest *g)
{
	if (!g)
		return;
	/* vCPUs first: they write the blocks and their dirty logs. */
	vcpus_free(g->vcpus);
	dirty_log_fini(g);
	while (g->blocks) {
		struct ram_block *b = g->blocks;

		g->blocks = b->next;
		ram_block_free(b);
	}
	free(g);
}

int guest_add_block(struct guest *g, struct ram_block *b)
{
	struct ram_block **pp;

	if (guest_find_block(g, b->name))
		return -EEXIST;
	/* Like QEMU's ram_list: biggest first, equal sizes in add order. */
	for (pp = &g->blocks; *pp && (*pp)->used_length >= b->used_length;
	     pp = &(*pp)->next)
		;
	b->next = *pp;
	*pp = b;
	g->nblocks++;
	return 0;
}

struct ram_block *guest_find_block(const struct guest *g, const char *name)
{
	struct ram_block *b;

	guest_for_each_block(g, b) if (strcmp(b->name, name) == 0) return b;
	return NULL;
}

uint64_t guest_ram_size(const struct guest *g)
{
	struct ram_block *b;
	uint64_t total = 0;

	guest_for_each_block(g, b) total += b->used_length;
	return total;
}

enum guest_runstate guest_get_runstate(const struct guest *g)
{
	return (enum guest_runstate)atomic_load(&g->runstate);
}

void guest_set_runstate(struct guest *g, enum guest_runstate st)
{
	atomic_store(&g->runstate, (int)st);
}

bool guest_is_running(const struct guest *g)
{
	return guest_get_runstate(g) == GUEST_RUNSTATE_RUNNING;
}
