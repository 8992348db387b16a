/* switchover.h — the source side of switchover control: the return path
 * (OPEN_RETURN_PATH and PING on the main stream, the destination's
 * messages read back), the switchover-ack gate, and the switchover cost
 * model that turns downtime-limit into a pending-bytes threshold and an
 * honest expected-downtime: data at the expected bandwidth plus a fixed
 * cost (dirty sync, stopping the guest, the destination finishing) that is
 * measured and kept as a running estimate across migrations.
 * Threads: struct swo belongs to the migration thread; the history lives in
 * struct migd and is used by one migration thread at a time. */
#ifndef MIGD_CONTROL_SWITCHOVER_H
#define MIGD_CONTROL_SWITCHOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct migd;
struct qfile;
struct channel;
struct swo;
struct swo_history;

/* Return-path message types (QEMU's MIG_RP_MSG_*). */
enum swo_rp_msg {
	SWO_RP_INVALID = 0,
	SWO_RP_SHUT = 1,
	SWO_RP_PONG = 2,
	SWO_RP_REQ_PAGES_ID = 3,
	SWO_RP_REQ_PAGES = 4,
	SWO_RP_RECV_BITMAP = 5,
	SWO_RP_RESUME_ACK = 6,
	SWO_RP_SWITCHOVER_ACK = 7,
	SWO_RP__MAX,
};

/* Fixed-cost guess before anything was measured (ms). */
#define SWO_DEFAULT_RESIDUAL_MS 5.0

struct swo *swo_new(struct migd *md, bool return_path, bool switchover_ack);
void swo_free(struct swo *s);

/* After the stream header: OPEN_RETURN_PATH and PING 1 (as QEMU does). */
void swo_open_return_path(struct swo *s, struct qfile *f);
/* Handles every message the destination has sent so far; waits up to
 * timeout_ms for the first one. 0, or -errno with *errp (a broken return
 * path or a sibling error fails the migration). */
int swo_poll(struct swo *s, struct channel *ch, int timeout_ms,
	     struct mig_error **errp);
/* QEMU's migration_can_switchover(): without switchover-ack, or with the
 * guest not running, always; else once the destination acked. */
bool swo_can_switchover(const struct swo *s, bool guest_running);
bool swo_acked(const struct swo *s);
/* The destination answered PING 1 (its main channel is up). */
bool swo_ponged(const struct swo *s);
/* After the last byte: waits for the destination to finish — its SHUT
 * with the return path (then its close), else its close. */
int swo_wait_destination(struct swo *s, struct channel *ch, int timeout_ms,
			 struct mig_error **errp);

/* ---- the cost model ---------------------------------------------------- */
/* A dirty sync took ms (the final one runs with the guest stopped). */
void swo_note_sync(struct swo *s, double ms);
/* The fixed part of a switchover now (ms): sync + residual. */
double swo_fixed_cost_ms(const struct swo *s);
/* Records a finished switchover: stop_ms (stop request to stopped),
 * finish_ms (last byte sent to destination done). */
void swo_record(struct swo *s, double stop_ms, double finish_ms);

/* Pure arithmetic (tests/unit/test_switchover.c). bw in bytes/ms.
 * Bytes that may be pending for a switchover to fit in limit_ms: the
 * fixed cost comes off the limit, but a quarter of the limit is always
 * left for data so that a slow setup cannot stall convergence. */
uint64_t swo_threshold(double bw, uint64_t limit_ms, double fixed_ms);
/* Downtime (ms) of switching over with bytes pending. */
uint64_t swo_expected_downtime(uint64_t bytes, double bw, double fixed_ms);
/* Running estimate: exponential average with weight 1/4 for the new
 * sample, the first sample taken as is. */
double swo_ewma(double avg, unsigned n, double sample);

/* Daemon-wide history: freed at exit. */
void swo_history_free(struct swo_history *h);

#endif
