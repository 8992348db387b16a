/* evloop.c — epoll-based event loop for the control thread (see evloop.h).
 * fd watches live in a small array indexed by fd; timers in a list sorted by
 * deadline (there are only a handful); cross-thread posts go through a
 * mutex-protected queue and an eventfd. */
#include "util/evloop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct ev_watch {
	ev_fd_fn fn;
	void *opaque;
	bool active;
};

struct ev_timer {
	struct ev_timer *next;
	int64_t id;
	uint64_t deadline_ms;
	ev_call_fn fn;
	void *opaque;
};

struct ev_post {
	struct ev_post *next;
	ev_call_fn fn;
	void *opaque;
};

struct ev_loop {
	int epfd;
	int wakefd;
	atomic_bool stop;
	struct ev_watch *watches; /* indexed by fd; owner: loop thread */
	int nwatches;
	struct ev_timer *timers; /* sorted by deadline; owner: loop thread */
	int64_t next_timer_id;
	pthread_mutex_t post_lock; /* protects posts_head/posts_tail */
	struct ev_post *posts_head, *posts_tail;
};

uint64_t ev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ev_now_ms(void)
{
	return ev_now_ns() / 1000000ull;
}

int64_t ev_wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct ev_loop *ev_loop_new(void)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return NULL;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		goto err_free;
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wakefd < 0)
		goto err_epfd;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0)
		goto err_wakefd;
	pthread_mutex_init(&loop->post_lock, NULL);
	loop->next_timer_id = 1;
	return loop;

err_wakefd:
	close(loop->wakefd);
err_epfd:
	close(loop->epfd);
err_free:
	free(loop);
	return NULL;
}

void ev_loop_free(struct ev_loop *loop)
{
	if (!loop)
		return;
	while (loop->timers) {
		struct ev_timer *t = loop->timers;
		loop->timers = t->next;
		free(t);
	}
	while (loop->posts_head) {
		struct ev_post *p = loop->posts_head;
		loop->posts_head = p->next;
		free(p);
	}
	pthread_mutex_destroy(&loop->post_lock);
	close(loop->wakefd);
	close(loop->epfd);
	free(loop->watches);
	free(loop);
}

static int grow_watches(struct ev_loop *loop, int fd)
{
	int n = loop->nwatches ? loop->nwatches : 64;
	struct ev_watch *w;

	while (n <= fd)
		n *= 2;
	if (n == loop->nwatches)
		return 0;
	w = realloc(loop->watches, (size_t)n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + loop->nwatches, 0,
	       (size_t)(n - loop->nwatches) * sizeof(*w));
	loop->watches = w;
	loop->nwatches = n;
	return 0;
}

int ev_loop_add_fd(struct ev_loop *loop, int fd, uint32_t events, ev_fd_fn fn,
		   void *opaque)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	int ret;

	if (fd < 0 || !fn)
		return -EINVAL;
	ret = grow_watches(loop, fd);
	if (ret < 0)
		return ret;
	if (loop->watches[fd].active)
		return -EEXIST;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	loop->watches[fd] = (struct ev_watch){fn, opaque, true};
	return 0;
}

int ev_loop_mod_fd(struct ev_loop *loop, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	if (fd < 0 || fd >= loop->nwatches || !loop->watches[fd].active)
		return -ENOENT;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void ev_loop_del_fd(struct ev_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->nwatches || !loop->watches[fd].active)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->watches[fd].active = false;
}

int64_t ev_loop_add_timer(struct ev_loop *loop, uint64_t delay_ms,
			  ev_call_fn fn, void *opaque)
{
	struct ev_timer *t = calloc(1, sizeof(*t)), **pp;

	if (!t)
		return -ENOMEM;
	t->id = loop->next_timer_id++;
	t->deadline_ms = ev_now_ms() + delay_ms;
	t->fn = fn;
	t->opaque = opaque;
	for (pp = &loop->timers; *pp && (*pp)->deadline_ms <= t->deadline_ms;
	     pp = &(*pp)->next)
		;
	t->next = *pp;
	*pp = t;
	return t->id;
}

void ev_loop_cancel_timer(struct ev_loop *loop, int64_t id)
{
	for (struct ev_timer **pp = &loop->timers; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct ev_timer *t = *pp;
			*pp = t->next;
			free(t);
			return;
		}
	}
}

int ev_loop_post(struct ev_loop *loop, ev_call_fn fn, void *opaque)
{
	struct ev_post *p = calloc(1, sizeof(*p));
	uint64_t one = 1;

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->opaque = opaque;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->posts_tail)
		loop->posts_tail->next = p;
	else
		loop->posts_head = p;
	loop->posts_tail = p;
	pthread_mutex_unlock(&loop->post_lock);
	if (write(loop->wakefd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

void ev_loop_stop(struct ev_loop *loop)
{
	uint64_t one = 1;

	atomic_store(&loop->stop, true);
	if (write(loop->wakefd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the loop will wake
		 */
	}
}

static void run_posts(struct ev_loop *loop)
{
	struct ev_post *p;
	uint64_t v;

	if (read(loop->wakefd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing pending */
	}
	pthread_mutex_lock(&loop->post_lock);
	p = loop->posts_head;
	loop->posts_head = loop->posts_tail = NULL;
	pthread_mutex_unlock(&loop->post_lock);
	while (p) {
		struct ev_post *next = p->next;
		p->fn(loop, p->opaque);
		free(p);
		p = next;
	}
}

void ev_loop_run_posted(struct ev_loop *loop)
{
	run_posts(loop);
}

static void run_timers(struct ev_loop *loop)
{
	uint64_t now = ev_now_ms();

	while (loop->timers && loop->timers->deadline_ms <= now) {
		struct ev_timer *t = loop->timers;
		loop->timers = t->next;
		t->fn(loop, t->opaque);
		free(t);
	}
}

static int next_timeout_ms(struct ev_loop *loop)
{
	uint64_t now;

	if (!loop->timers)
		return -1;
	now = ev_now_ms();
	if (loop->timers->deadline_ms <= now)
		return 0;
	return (int)(loop->timers->deadline_ms - now);
}

int ev_loop_run(struct ev_loop *loop)
{
	struct epoll_event evs[64];

	while (!atomic_load(&loop->stop)) {
		int n = epoll_wait(loop->epfd, evs, 64, next_timeout_ms(loop));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd < 0) {
				run_posts(loop);
				continue;
			}
			/* A callback may have removed a later fd's watch. */
			if (fd < loop->nwatches && loop->watches[fd].active)
				loop->watches[fd].fn(loop, fd, evs[i].events,
						     loop->watches[fd].opaque);
		}
		run_timers(loop);
	}
	return 0;
}
