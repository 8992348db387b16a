/* incoming_priv.h — what incoming.c (command, status, results) and
 * incoming_conn.c (listener, channels, threads, idle policy) share: the
 * struct incoming of the daemon's one incoming migration. Not for other
 * modules.
 *
 * Ownership: the control thread owns every field except those marked
 * (lock) — guarded by lock — and the atomics. The data plane (rl, mfd,
 * main_ch, main_f, ld) is built on the control thread before any thread
 * that uses it starts, and freed by teardown after every such thread was
 * joined, so worker threads may use those pointers without the lock.
 *
 * Ending: 'ending' is set once, by whoever ends the migration first:
 * incoming_fail() (any thread; its error is the one reported) or the
 * control thread completing a loaded stream. */
#ifndef MIGD_CONTROL_INCOMING_PRIV_H
#define MIGD_CONTROL_INCOMING_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "control/migcfg.h"
#include "multifd/loadvm.h"
#include "socket/sockaddr.h"
#include "util/error.h"

struct channel;
struct qmp_server;
struct incoming_tls;
struct rdma_listener;
struct rdma_ram;
struct migd;
struct mfd_recv;
struct qfile;
struct ram_load;
struct ram_load_file;

#define INCOMING_MAX_LISTEN 16
#define INCOMING_MAX_PENDING 64

/* An accepted connection whose first bytes have not told what it is. */
struct incoming_pending {
	struct channel *ch;
	uint64_t since_ms;
};

/* Results posted by worker threads (lock), handled in this order. */
enum {
	INCOMING_EV_ACTIVE = 1u << 0, /* the incoming thread started */
	INCOMING_EV_LOADED = 1u << 1, /* the stream loaded completely */
	INCOMING_EV_FAILED = 1u << 2, /* incoming_fail() ran */
	/* postcopy (control/postcopy_dst.c) */
	INCOMING_EV_PC_LISTEN = 1u << 3,  /* RAM registered */
	INCOMING_EV_PC_RUN = 1u << 4,	  /* start the vCPUs */
	INCOMING_EV_PC_PAUSED = 1u << 5,  /* the main stream broke */
	INCOMING_EV_PC_RESUMED = 1u << 6, /* RESUME_ACK sent */
};

/* Postcopy on the destination (postcopy_dst.c). Control thread, except
 * the fields marked (lock). */
struct incoming_pc {
	bool enabled;	/* postcopy-ram in the snapshot */
	bool preempt;	/* postcopy-preempt */
	bool listened;	/* LISTEN handled: postcopy states from here */
	bool keep_uffd; /* failed after LISTEN: the guest stays blocked */
	struct channel *preempt_ch;
	struct qfile *preempt_f;
	pthread_t preempt_thread;
	bool preempt_started;
	/* Pause and recovery. */
	pthread_cond_t cond;	     /* (lock) the paused load thread waits */
	bool paused;		     /* (lock) the load thread waits */
	struct channel *new_main_ch; /* (lock) handed over by a recovery */
	struct qfile *new_main_f;    /* (lock) */
	atomic_bool recovering;	     /* status postcopy-recover */
	/* Blocktime kept for query-migrate after completion. */
	bool has_blocktime;
	uint32_t blocktime;
	uint32_t *vcpu_blocktime;
	unsigned nvcpu_blocktime;
};

struct incoming {
	struct migd *md;
	bool started;  /* QEMU's 'once': migrate-incoming succeeded */
	bool finished; /* teardown done (completed or failed) */
	enum mig_status status;
	struct mig_addr addr;
	int lfds[INCOMING_MAX_LISTEN];
	int nlfds;
	json_t *socket_address; /* SocketAddress list while listening */
	/* fd:/exec: the stream migrate-incoming opened, watched until its
	 * first bytes arrive (QEMU's watch), then a new connection. */
	struct channel *stream_ch;
	/* file: the main channel under its counting wrapper (borrowed, for
	 * positioned I/O) and the mapped-ram reader (incoming_file.c) */
	struct channel *file_ch;
	struct ram_load_file *rlf;
	/* TLS handshakes in progress, when tls-creds is set
	 * (incoming_tls.c); built with the data plane. */
	struct incoming_tls *tls;
	/* rdma: the listener (incoming_rdma.c) and the accepted main channel
	 * (borrowed: main_ch owns it, under its counting wrapper). */
	struct rdma_listener *rdma_listener;
	struct channel *rdma_ch;
	int64_t rdma_timer; /* accept deadline (incoming_rdma.c), 0: none */

	/* Data plane, built at the first connection. */
	bool prepared;
	struct mig_config *cfg; /* snapshot at the first connection */
	bool multifd;
	unsigned idle_timeout_s; /* 0: never */
	struct ram_load *rl;
	struct mfd_recv *mfd;
	struct incoming_pending pending[INCOMING_MAX_PENDING];
	int npending;
	struct channel *main_ch;
	struct qfile *main_f;
	struct loadvm ld;
	pthread_t load_thread;
	bool load_started;

	/* Idle policy (control thread). */
	int64_t timer;
	uint64_t last_progress;
	uint64_t idle_ms;

	/* Shared with the workers. */
	pthread_mutex_t lock;
	struct mig_error *error; /* (lock) the first error */
	unsigned events;	 /* (lock) INCOMING_EV_* not handled yet */
	atomic_bool ending;
	_Atomic uint64_t main_bytes;	/* received on the main channel */
	_Atomic uint64_t multifd_bytes; /* received on multifd channels */
	struct incoming_pc pc;
};

/* incoming.c */
/* Ends the migration with err (taken; dropped if it already ended):
 * breaks the multifd barrier, shuts every channel down and tells the
 * control thread. Any thread. */
void incoming_fail(struct incoming *inc, struct mig_error *err);
/* Queues ev for the control thread. Any thread. */
void incoming_post(struct incoming *inc, unsigned ev);

/* incoming_conn.c */
/* Listens on inc->addr and watches the listeners. 0 or -errno. */
int incoming_listen(struct incoming *inc, struct mig_error **errp);
/* Shuts down and joins every thread, closes channels and listeners, frees
 * the data plane. Idempotent. Control thread. */
void incoming_teardown(struct incoming *inc);
/* A connection whose TLS handshake succeeded (incoming_tls.c). Takes ch.
 * With multifd, first[0..n) are the bytes already read from it: n == 0 for
 * the main channel (its QEVM is pushed back into ch), MFD_INIT_SIZE for a
 * multifd channel's init packet. */
/* A new connection from a transport with its own listener (rdma:). Takes
 * ch. Control thread. */
void incoming_new_connection(struct incoming *inc, struct channel *ch);

/* incoming_rdma.c (control thread, except incoming_rdma_error: the load
 * thread). Listening on inc->addr; stopping; the accepted channel's RAM
 * protocol for ram_load (NULL unless rdma:); the channel's failure, the
 * root cause of a load error (false when none). */
int incoming_rdma_listen(struct incoming *inc, struct mig_error **errp);
void incoming_rdma_close(struct incoming *inc);
struct rdma_ram *incoming_rdma_ram(struct incoming *inc);
bool incoming_rdma_error(struct incoming *inc, struct mig_error **errp);
/* The idle policy (check_idle): RDMA completions and registrations, and
 * whether the source is inside a round of RDMA WRITEs (control thread). */
uint64_t incoming_rdma_progress(struct incoming *inc);
bool incoming_rdma_in_round(struct incoming *inc);

void incoming_tls_connected(struct incoming *inc, struct channel *ch,
			    const uint8_t *first, size_t n);

/* incoming.c */
void incoming_set_status(struct incoming *inc, enum mig_status st);

/* incoming_conn.c */
/* migrate-recover: closes the listeners and listens on addr (taken). */
int incoming_relisten(struct incoming *inc, struct mig_addr *addr,
		      struct mig_error **errp);

/* postcopy_dst.c */
void incoming_pc_init(struct incoming *inc);
/* After loadvm_init(): the postcopy options and hooks. */
void incoming_pc_setup_loader(struct incoming *inc);
/* Handles the INCOMING_EV_PC_* bits of ev. */
void incoming_pc_events(struct incoming *inc, unsigned ev);
/* A connection once the main (and multifd) channels exist: the preempt
 * channel, or the new main channel of a recovery. Takes ch; returns false
 * (ch untouched) when it is none of those. */
bool incoming_pc_connection(struct incoming *inc, struct channel *ch);
/* Wakes a paused load thread (the migration ends). Any thread. */
void incoming_pc_kick(struct incoming *inc);
/* Teardown: preempt thread joined, uffd freed unless the guest must stay
 * blocked. After the load thread was joined. */
void incoming_pc_teardown(struct incoming *inc);
/* At completion: keeps the blocktime for query-migrate. */
void incoming_pc_completed(struct incoming *inc);
/* x-incoming-idle-timeout ran out: in postcopy-active after RUN (the guest
 * runs) a silent network pauses, as a broken one does, instead of failing
 * for good; true when it did so. Control thread. */
bool incoming_pc_idle_pause(struct incoming *inc);
void incoming_pc_fill_query(struct incoming *inc, json_t *out);
void incoming_pc_free(struct incoming *inc);
/* Registers migrate-recover. */
void incoming_pc_register_qmp(struct qmp_server *srv);

#endif
