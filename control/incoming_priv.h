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
struct incoming_tls;
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
void incoming_tls_connected(struct incoming *inc, struct channel *ch,
			    const uint8_t *first, size_t n);

#endif
