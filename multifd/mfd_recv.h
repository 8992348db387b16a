/* mfd_recv.h — the destination's multifd channels: the 64-byte handshake
 * checks (magic, version, UUID, id range, duplicates), one receive thread
 * per channel ("mig/dst/recv_N") that validates each packet and reads its
 * pages straight into guest RAM, and the SYNC barrier with the incoming
 * thread (QEMU's multifd_recv_sync_main()).
 * Threads: new/accept_init/start/free on the control thread; sync on the
 * incoming thread; shutdown and idle from any thread. Lock: r->lock guards
 * the barrier (parked, generation, broken) and each channel's ch pointer;
 * channel states are atomics (read by the idle check). */
#ifndef MIGD_MULTIFD_MFD_RECV_H
#define MIGD_MULTIFD_MFD_RECV_H

#include <stdbool.h>
#include <stdint.h>

#include "multifd/packet.h"
#include "util/error.h"

struct channel;
struct ram_load;
struct mfd_recv;

struct mfd_recv_opts {
	unsigned channels; /* multifd-channels, 1..255 */
	uint8_t uuid[16];  /* the local UUID (zero when unset) */
	uint32_t method;   /* MFD_FLAG_ZLIB, MFD_FLAG_ZSTD or 0 (none) */
	/* Tests and fuzzing only: a SYNC packet does not wait for
	 * mfd_recv_sync(), so one thread can drive a channel alone. */
	bool sync_noop;
};

/* Called once per failure by the thread that met it; takes err. The
 * callee is expected to end the migration (mfd_recv_shutdown() among
 * other things); it must not call mfd_recv_free(). */
typedef void (*mfd_recv_fail_fn)(void *opaque, struct mig_error *err);

/* A transport that delivers packets itself (rdma: the packet arrives as a
 * message after its pages were RDMA-written into guest RAM; see
 * rdma/rdma_mfd.h). packet: waits for channel id's next packet into buf,
 * on the channel's thread: 0, 1 at a clean end of the stream, or -errno
 * with *errp; chan_shutdown() of the channel wakes it. Normal pages are
 * then already in RAM: they are only checked and marked received. */
struct mfd_recv_xport {
	int (*packet)(void *opaque, unsigned id, uint8_t buf[MFD_PACKET_SIZE],
		      struct mig_error **errp);
};

struct mfd_recv *mfd_recv_new(const struct mfd_recv_opts *o,
			      struct ram_load *rl, mfd_recv_fail_fn fail,
			      void *opaque);
/* Packets of every channel started from now on come through x (control
 * thread, before the channels start). Not with compression. */
void mfd_recv_set_xport(struct mfd_recv *r, const struct mfd_recv_xport *x,
			void *opaque);
/* Shuts down, joins every thread, closes every channel. NULL is fine. */
void mfd_recv_free(struct mfd_recv *r);

/* Checks a channel's 64-byte init packet and claims its id: QEMU's
 * messages for a bad magic/version/UUID, an id out of range or already
 * set up. 0 with *id set, or -EINVAL with *errp. */
int mfd_recv_accept_init(struct mfd_recv *r, const uint8_t in[MFD_INIT_SIZE],
			 unsigned *id, struct mig_error **errp);
/* Starts the receive thread of claimed channel id on ch (taken, closed at
 * free; closed at once on failure). 0 or -errno with *errp. */
int mfd_recv_start(struct mfd_recv *r, unsigned id, struct channel *ch,
		   struct mig_error **errp);
/* True when every channel has connected. */
bool mfd_recv_all_connected(struct mfd_recv *r);

/* The incoming thread's side of a sync point: waits until every channel
 * has received its SYNC packet (and the pages before it), then releases
 * them. Fails when the barrier is broken (failure, shutdown) or a channel
 * ended without its SYNC. 0 or -errno with *errp. */
int mfd_recv_sync(struct mfd_recv *r, struct mig_error **errp);

/* Breaks the barrier and shuts every channel down so blocked threads
 * return; threads then exit without reporting errors. Any thread. */
void mfd_recv_shutdown(struct mfd_recv *r);
/* True when every channel waits for a packet's first byte, has ended, or
 * has not connected yet: none is inside a packet or sits at a SYNC (a
 * source pauses between sections, after the main stream asked for its
 * SYNCs). Any thread. */
bool mfd_recv_idle(struct mfd_recv *r);
/* True when some channel sits at a SYNC, waiting for mfd_recv_sync().
 * Any thread. */
bool mfd_recv_any_parked(struct mfd_recv *r);

/* The receive loop of one channel on the calling thread (what each
 * thread runs): 0 at a clean end of stream, or -errno with *errp. For
 * tests and fuzzing; ch stays the caller's. */
int mfd_recv_run_channel(struct mfd_recv *r, unsigned id, struct channel *ch,
			 struct mig_error **errp);

#endif
