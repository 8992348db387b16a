/* migration_priv.h — what control/migration.c (the migration thread and
 * its state machine) and control/migration_qmp.c (the QMP commands) share:
 * the struct migration and the state helpers. Threads as migration.c's
 * header comment says. */
#ifndef MIGD_CONTROL_MIGRATION_PRIV_H
#define MIGD_CONTROL_MIGRATION_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "control/converge.h"
#include "control/migcfg.h"
#include "multifd/migstats.h"
#include "multifd/vmstate.h"
#include "socket/sockaddr.h"
#include "util/error.h"

struct migd;
struct channel;
struct mfd_send;
struct qfile;
struct ram_save;
struct swo;
struct ram_save_file;
struct pcs;

struct migration {
	struct migd *md;
	struct mig_config *cfg; /* snapshot taken by 'migrate' */
	struct mig_addr addr;
	pthread_t thread;
	bool thread_started;
	_Atomic int tid;
	_Atomic int status;
	_Atomic uint64_t max_bandwidth;	      /* live: bytes/s, 0 = unlimited */
	_Atomic uint64_t downtime_limit;      /* live: ms */
	_Atomic uint64_t avail_switchover_bw; /* live: bytes/s */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mig_error *error; /* first error: error-desc */
	bool continue_requested; /* migrate-continue in pre-switchover */
	bool vm_stop_done;	 /* control thread ran the stop */
	bool vm_was_running;
	char runstate_at_stop[32];
	/* statistics, under lock */
	uint64_t start_ms, setup_time, total_time, downtime;
	uint64_t expected_downtime;
	double mbps;
	uint64_t pages_per_second;

	struct mig_counters ctr;
	struct channel *main_ch; /* under lock while it may be kicked */
	/* eventfd made readable by migration_kick() (never drained): ends an
	 * rdma: connect at once (transport_rdma_connect). -1 if none. */
	int connect_cancel_fd;
	/* fd:/exec: the stream 'migrate' opened (control thread), taken by
	 * connect_channels(); freed with the migration if never taken. */
	struct channel *opened_ch;
	struct mfd_send *mfd;
	struct ram_save_file *file; /* mapped-ram to file: (migration_file.c) */
	struct qfile *f;
	struct ram_save *rs;
	struct vms_opts vms;

	/* migration thread only */
	uint64_t win_start_ms, win_start_bytes, win_start_pages;
	uint64_t iter_start_ms;
	uint64_t threshold_bytes;
	double bw_hist[3]; /* bytes/ms of the last windows */
	unsigned bw_n;
	uint64_t rate_period_start_ms, rate_period_pages;
	uint64_t last_sync_ms; /* end of the last dirty sync */
	uint64_t rate_peek_ms; /* last live dirty-rate estimate */
	struct swo *swo;       /* return path, switchover-ack, cost model
				* (control/switchover.h) */
	struct converge conv;  /* auto-converge, dirty-limit (converge.h) */

	/* postcopy, source side (control/postcopy_src.c) */
	_Atomic bool start_postcopy;	  /* migrate-start-postcopy ran */
	_Atomic uint64_t max_postcopy_bw; /* live: bytes/s, 0 = unlimited */
	struct pcs *pcs;		  /* NULL without postcopy-ram */
	bool postcopy;			  /* switched (migration thread) */
	bool package_sent; /* the destination may run the guest */
	/* migrate resume:true (under lock): the new address and, for fd:
	 * and exec:, the stream the control thread opened */
	bool resume_requested;
	struct mig_addr resume_addr;
	struct channel *resume_ch;
};

enum mig_status migration_status(struct migration *m);
/* Compare-and-swap of the status; on success the control thread is told
 * (MIGRATION event, md->mig_status). */
bool migration_set_status(struct migration *m, enum mig_status from,
			  enum mig_status to);
/* Shuts every channel down and wakes the thread's waits. Any thread. */
void migration_kick(struct migration *m);
/* Records the first error (error-desc); takes err. Any thread. */
void migration_set_error(struct migration *m, struct mig_error *err);
/* Joins the thread if it was started. Control thread. */
void migration_join(struct migration *m);
uint64_t migration_wall_ms(void);
/* ---- migration thread helpers (shared with postcopy_src.c) ---- */
/* MIGRATION_PASS for the current dirty-sync-count. */
void migration_post_pass(struct migration *m);
void migration_window_reset(struct migration *m, uint64_t now);
/* At a window's end: mbps, threshold, expected downtime; new window. */
void migration_update_counters(struct migration *m, uint64_t now);
/* The window's budget (max-bandwidth, or max-postcopy-bandwidth once in
 * postcopy) is spent. */
bool migration_rate_exceeded(struct migration *m);
/* ram_save_stop_fn: budget spent, time slice over or cancelling. */
bool migration_iterate_should_stop(void *opaque);
/* pause-before-switchover (active -> pre-switchover -> to); 0 or
 * -ECANCELED. */
int migration_maybe_pause(struct migration *m, enum mig_status to);
/* Has the control thread stop the guest (STOP event); 0 or -ECANCELED. */
int migration_stop_vm(struct migration *m);
uint64_t migration_pages_done(struct migration *m);
/* At completion: total-time and, as QEMU's migration_calculate_complete(),
 * mbps and pages-per-second averaged over the whole transfer. */
void migration_record_totals(struct migration *m);
/* The migration thread's body (pthread start routine). */
void *migration_thread_main(void *opaque);

#endif
