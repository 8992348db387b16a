/* incoming_tls.c — TLS for the incoming migration (see incoming_tls.h).
 * Each accepted connection gets a short-lived thread ("mig/dst/tls") that
 * runs the server handshake and, with multifd, reads the first bytes that
 * tell the main channel (QEVM, pushed back into the TLS channel so the
 * stream reader sees them) from a multifd channel (its 64-byte init) —
 * MSG_PEEK cannot look through TLS. A connection that sends nothing
 * until every channel exists, or then starts with neither, is a late one:
 * postcopy's preempt channel or a recovery's main channel, which have no
 * magic (its bytes are pushed back). The result is posted to the control
 * loop, which goes on as for a plain connection. A handshake that takes
 * longer than x-incoming-idle-timeout is kicked (shutdown of a dup of the
 * socket, so the kick never races with the thread closing its channel).
 * Control thread, except job_thread. */
#include "control/incoming_tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/migcfg.h"
#include "control/migd.h"
#include "control/objects.h"
#include "multifd/byteorder.h"
#include "multifd/mfd_recv.h"
#include "multifd/packet.h"
#include "multifd/qemufile.h"
#include "socket/channel.h"
#include "socket/tls.h"
#include "util/evloop.h"
#include "util/log.h"

#define MAX_JOBS 64

struct tls_job {
	struct incoming_tls *owner; /* NULL once the migration ended */
	struct ev_loop *loop;
	struct tls_ctx *ctx;
	const char *authz; /* owner's, valid while the thread runs */
	const atomic_bool *all_channels; /* owner's, likewise */
	bool multifd, strict_multifd_eof;
	struct channel *raw; /* the thread's until it ends */
	int kick_fd;	     /* a dup of raw's socket */
	bool kicked, joined;
	bool not_tls; /* the peer sent no TLS record: dropped, not failed */
	uint64_t since_ms;
	pthread_t thread;
	/* results, read by the control thread after the post */
	struct channel *ch;
	struct mig_error *err;
	uint8_t first[MFD_INIT_SIZE];
	size_t nfirst;
	struct tls_job *next;
};

struct incoming_tls {
	struct incoming *inc;
	struct tls_ctx *ctx;
	char *authz; /* tls-authz's identity, NULL: anyone */
	struct tls_job *jobs;
	unsigned njobs;
	/* main and every multifd channel exist: later connections are late
	 * (set by the control thread, read by the jobs) */
	atomic_bool all_channels;
};

struct incoming_tls *incoming_tls_new(struct incoming *inc,
				      struct mig_error **errp)
{
	struct mig_objects *objs = inc->md->objects;
	const char *creds = mig_config_param_str(inc->cfg, MIG_PARAM_TLS_CREDS);
	const char *authz = mig_config_param_str(inc->cfg, MIG_PARAM_TLS_AUTHZ);
	struct incoming_tls *t = calloc(1, sizeof(*t));

	if (!t) {
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	t->inc = inc;
	atomic_init(&t->all_channels, false);
	t->ctx = mig_objects_load_tls(objs, creds, true, errp);
	if (t->ctx && authz[0])
		t->authz = mig_objects_authz_identity(objs, authz, errp);
	if (!t->ctx || (authz[0] && !t->authz)) {
		incoming_tls_free(t);
		return NULL;
	}
	return t;
}

/* ---- the handshake thread --------------------------------------------------
 */

/* A late connection's first bytes (none, or no magic) go back into the
 * stream. */
static int push_back_late(struct tls_job *j, struct channel *ch, size_t n)
{
	int ret = n ? tls_channel_unread(ch, j->first, n) : 0;

	tls_channel_set_allow_truncation(ch, true);
	j->nfirst = 0;
	return ret;
}

/* With multifd: waits for the first bytes, unless every channel exists
 * before any arrives (late connection: 1). 0 when there is input. */
static int wait_first(struct tls_job *j, struct channel *ch)
{
	while (!atomic_load(j->all_channels))
		if (tls_channel_wait_input(ch, 100))
			return 0;
	return 1;
}

/* With multifd: 4 bytes tell QEVM (pushed back) from a multifd init (read
 * to its 64 bytes); once every channel exists, anything else is a late
 * connection. 0 or -errno with *errp. */
static int read_first(struct tls_job *j, struct channel *ch,
		      struct mig_error **errp)
{
	uint32_t magic;
	int ret;

	if (wait_first(j, ch))
		return push_back_late(j, ch, 0);
	ret = chan_read_all(ch, j->first, 4);
	magic = mfd_load_be32(j->first);
	if (!ret && magic == QEVM_MAGIC) {
		ret = tls_channel_unread(ch, j->first, 4);
		tls_channel_set_allow_truncation(ch, true);
		j->nfirst = 0;
	} else if (!ret && magic != MFD_MAGIC && atomic_load(j->all_channels)) {
		ret = push_back_late(j, ch, 4);
	} else if (!ret) {
		ret = chan_read_all(ch, j->first + 4, MFD_INIT_SIZE - 4);
		tls_channel_set_allow_truncation(ch, !j->strict_multifd_eof);
		j->nfirst = MFD_INIT_SIZE;
	}
	if (ret == -EPROTO || ret == -EPIPE)
		mig_error_setg(errp, "Unexpected end-of-file before all data "
				     "were read");
	else if (ret)
		mig_error_setg(errp, "Unable to read from the TLS channel: %s",
			       strerror(-ret));
	return ret;
}

/* Whether the peer's first byte opens a TLS handshake record (content
 * type 22). A peer that closes without a byte (a port probe) or talks
 * something else is no TLS migration source: it is dropped and the
 * destination keeps listening, as QEMU's does after a failed handshake;
 * a real TLS peer that fails its handshake still fails the migration. */
static bool peer_speaks_tls(int fd)
{
	uint8_t b;
	ssize_t n;

	do
		n = recv(fd, &b, 1, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	return n == 1 && b == 0x16;
}

static void job_done(struct ev_loop *loop, void *opaque);

static void *job_thread(void *opaque)
{
	struct tls_job *j = opaque;
	struct tls_session_opts o = {.authz_identity = j->authz,
				     .allow_truncation = true};

	pthread_setname_np(pthread_self(), "mig/dst/tls");
	if (!peer_speaks_tls(j->raw->fd)) {
		j->not_tls = true;
		chan_close(j->raw);
		j->raw = NULL;
		goto out;
	}
	j->ch = tls_channel_new(j->ctx, j->raw, &o, &j->err);
	j->raw = NULL; /* taken (closed on failure) */
	if (j->ch && j->multifd && read_first(j, j->ch, &j->err)) {
		chan_close(j->ch);
		j->ch = NULL;
	}
out:
	if (ev_loop_post(j->loop, job_done, j) < 0)
		log_warn("incoming migration: cannot report a TLS handshake");
	return NULL;
}

/* ---- control thread
 * ------------------------------------------------------------ */

static void job_free(struct tls_job *j)
{
	if (!j->joined)
		pthread_join(j->thread, NULL);
	chan_close(j->ch);
	mig_error_free(j->err);
	tls_ctx_unref(j->ctx);
	close(j->kick_fd);
	free(j);
}

static void unlink_job(struct incoming_tls *t, struct tls_job *j)
{
	for (struct tls_job **p = &t->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			t->njobs--;
			return;
		}
	}
}

/* Tells the waiting jobs once main and every multifd channel exist (the
 * control thread's view; incoming_conn.c's have_all_channels()). */
static void note_channels(struct incoming_tls *t)
{
	struct incoming *inc = t->inc;

	if (inc->main_ch && (!inc->mfd || mfd_recv_all_connected(inc->mfd)))
		atomic_store(&t->all_channels, true);
}

static void job_done(struct ev_loop *loop, void *opaque)
{
	struct tls_job *j = opaque;
	struct incoming_tls *t = j->owner;
	struct channel *ch = j->ch;

	if (!j->joined)
		pthread_join(j->thread, NULL);
	j->joined = true;
	if (!t) { /* the migration ended meanwhile */
		job_free(j);
		return;
	}
	unlink_job(t, j);
	if (!ch && j->kicked) {
		log_warn("incoming migration: dropping a connection: its TLS "
			 "handshake did not finish in time");
	} else if (j->not_tls) {
		log_warn("incoming migration: dropping a connection that sent "
			 "no TLS handshake");
	} else if (!ch) {
		log_warn("incoming migration: %s", j->err->desc);
		incoming_fail(t->inc, j->err);
		j->err = NULL;
	} else {
		log_info("incoming migration: TLS from %s (%s)", ch->desc,
			 tls_channel_cipher(ch));
		j->ch = NULL;
		incoming_tls_connected(t->inc, ch, j->first, j->nfirst);
	}
	note_channels(t);
	job_free(j);
}

void incoming_tls_accept(struct incoming_tls *t, struct channel *ch)
{
	struct tls_job *j = NULL;

	if (t->njobs >= MAX_JOBS || !(j = calloc(1, sizeof(*j))) ||
	    (j->kick_fd = dup(ch->fd)) < 0) {
		log_warn("incoming migration: too many TLS handshakes; "
			 "dropping %s",
			 ch->desc);
		free(j);
		chan_close(ch);
		return;
	}
	j->owner = t;
	j->loop = t->inc->md->loop;
	j->ctx = tls_ctx_ref(t->ctx);
	j->authz = t->authz;
	j->all_channels = &t->all_channels;
	j->multifd = t->inc->multifd;
	j->strict_multifd_eof = mig_config_knob(
		t->inc->cfg, MIG_KNOB_MULTIFD_CLEAN_TLS_TERMINATION);
	j->raw = ch;
	j->since_ms = ev_now_ms();
	if (pthread_create(&j->thread, NULL, job_thread, j)) {
		tls_ctx_unref(j->ctx);
		close(j->kick_fd);
		free(j);
		chan_close(ch);
		return;
	}
	j->next = t->jobs;
	t->jobs = j;
	t->njobs++;
}

void incoming_tls_expire(struct incoming_tls *t, unsigned timeout_s)
{
	uint64_t now = ev_now_ms();

	for (struct tls_job *j = t ? t->jobs : NULL; j; j = j->next) {
		if (!j->kicked && now - j->since_ms >= timeout_s * 1000ull) {
			j->kicked = true;
			shutdown(j->kick_fd, SHUT_RDWR);
		}
	}
}

void incoming_tls_free(struct incoming_tls *t)
{
	if (!t)
		return;
	/* Kick and join every thread; its posted job_done frees the job. */
	for (struct tls_job *j = t->jobs; j; j = j->next) {
		shutdown(j->kick_fd, SHUT_RDWR);
		pthread_join(j->thread, NULL);
		j->joined = true;
		j->owner = NULL;
	}
	tls_ctx_unref(t->ctx);
	free(t->authz);
	free(t);
}
