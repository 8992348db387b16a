/* mfd_file.c — the mapped-ram file workers (see mfd_file.h). One mutex
 * guards every worker's state and item pointers; one condition variable
 * wakes workers (work or stop), another the queuing thread (a worker went
 * idle). Items are swapped, never copied. Threads: as in mfd_file.h. */
#include "multifd/mfd_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socket/channel.h"

struct mfd_file_worker {
	struct mfd_file *p;
	unsigned id;
	struct channel *ch;
	void *item; /* the item being run, or the spare one when idle */
	bool busy;  /* item holds work */
	pthread_t thread;
	bool started;
};

struct mfd_file {
	pthread_mutex_t lock;
	pthread_cond_t work; /* workers wait here */
	pthread_cond_t idle; /* the queuing thread waits here */
	bool stop;
	int err; /* first error, -errno */
	struct mig_error *error;
	mfd_file_job_fn fn;
	struct channel *inline_ch;
	unsigned n;
	struct mfd_file_worker w[];
};

static void set_error(struct mfd_file *p, int err, struct mig_error *e)
{
	pthread_mutex_lock(&p->lock);
	if (!p->err) {
		p->err = err ? err : -EIO;
		p->error = e;
		e = NULL;
	}
	pthread_cond_broadcast(&p->idle);
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	mig_error_free(e);
}

static void *worker_main(void *opaque)
{
	struct mfd_file_worker *w = opaque;
	struct mfd_file *p = w->p;
	char name[16];

	snprintf(name, sizeof(name), "mig/file/%u", w->id);
	pthread_setname_np(pthread_self(), name);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct mig_error *e = NULL;
		bool skip;
		int ret;

		while (!w->busy && !p->stop)
			pthread_cond_wait(&p->work, &p->lock);
		if (p->stop)
			break;
		/* After a failure queued items are dropped, so a sync that
		 * waits for every worker (and the caller's stack, which
		 * items may point into) comes back quickly. */
		skip = p->err != 0;
		pthread_mutex_unlock(&p->lock);
		ret = skip ? 0 : p->fn(w->ch, w->item, &e);
		if (ret)
			set_error(p, ret, e);
		pthread_mutex_lock(&p->lock);
		w->busy = false;
		pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static struct mfd_file *pool_alloc(unsigned n, size_t item_size)
{
	struct mfd_file *p = calloc(1, sizeof(*p) + n * sizeof(p->w[0]));

	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (unsigned i = 0; i < n; i++) {
		p->w[i].item = calloc(1, item_size);
		if (!p->w[i].item)
			return p; /* freed by the caller through free */
		p->w[i].p = p;
		p->w[i].id = i;
		p->n = i + 1;
	}
	return p;
}

struct mfd_file *mfd_file_start(struct channel **chans, unsigned n,
				struct channel *inline_ch, size_t item_size,
				mfd_file_job_fn fn, struct mig_error **errp)
{
	struct mfd_file *p = pool_alloc(n, item_size);
	int ret;

	if (!p || p->n != n) {
		mfd_file_free(p);
		mig_error_setg(errp, "Out of memory");
		return NULL;
	}
	p->fn = fn;
	p->inline_ch = inline_ch;
	for (unsigned i = 0; i < n; i++) {
		p->w[i].ch = chans[i];
		chans[i] = NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		ret = pthread_create(&p->w[i].thread, NULL, worker_main,
				     &p->w[i]);
		if (ret) {
			mfd_file_free(p);
			mig_error_setg(errp,
				       "Unable to start a multifd file "
				       "thread: %s",
				       strerror(ret));
			return NULL;
		}
		p->w[i].started = true;
	}
	return p;
}

static int run_inline(struct mfd_file *p, void **item)
{
	struct mig_error *e = NULL;
	int ret = mfd_file_error(p, NULL);

	if (ret)
		return ret;
	ret = p->fn(p->inline_ch, *item, &e);
	if (ret)
		set_error(p, ret, e);
	return ret;
}

int mfd_file_queue(struct mfd_file *p, void **item)
{
	int ret;

	if (!p->n)
		return run_inline(p, item);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (p->err)
			break;
		for (unsigned i = 0; i < p->n; i++) {
			struct mfd_file_worker *w = &p->w[i];
			void *spare;

			if (w->busy)
				continue;
			spare = w->item;
			w->item = *item;
			*item = spare;
			w->busy = true;
			pthread_cond_broadcast(&p->work);
			pthread_mutex_unlock(&p->lock);
			return 0;
		}
		pthread_cond_wait(&p->idle, &p->lock);
	}
	ret = p->err;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

static bool any_busy(struct mfd_file *p)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->w[i].busy)
			return true;
	return false;
}

int mfd_file_sync(struct mfd_file *p)
{
	int ret;

	/* Even after a failure: queued items may point into the caller's
	 * stack, so no worker may still hold one when this returns. */
	pthread_mutex_lock(&p->lock);
	while (any_busy(p))
		pthread_cond_wait(&p->idle, &p->lock);
	ret = p->err;
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void mfd_file_kick(struct mfd_file *p)
{
	struct mig_error *e = NULL;

	if (!p)
		return;
	mig_error_setg(&e, "migration cancelled");
	set_error(p, -ECANCELED, e);
	for (unsigned i = 0; i < p->n; i++)
		if (p->w[i].ch)
			chan_shutdown(p->w[i].ch);
}

int mfd_file_error(struct mfd_file *p, struct mig_error **errp)
{
	int ret;

	pthread_mutex_lock(&p->lock);
	ret = p->err;
	if (p->error && errp && !*errp)
		mig_error_setg(errp, "%s", p->error->desc);
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void mfd_file_free(struct mfd_file *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n; i++) {
		if (p->w[i].started)
			pthread_join(p->w[i].thread, NULL);
		chan_close(p->w[i].ch);
		free(p->w[i].item);
	}
	mig_error_free(p->error);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

unsigned mfd_file_nthreads(const struct mfd_file *p)
{
	return p ? p->n : 0;
}
