/* evloop.h — the control thread's event loop: epoll over file descriptors,
 * one-shot timers, and a thread-safe queue of deferred calls.
 * Only the loop's own thread may add/remove fds and timers; ev_loop_post()
 * and ev_loop_stop() may be called from any thread. */
#ifndef MIGD_UTIL_EVLOOP_H
#define MIGD_UTIL_EVLOOP_H

#include <stdint.h>

struct ev_loop;

/* events is a mask of EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP. */
typedef void (*ev_fd_fn)(struct ev_loop *loop, int fd, uint32_t events,
			 void *opaque);
typedef void (*ev_call_fn)(struct ev_loop *loop, void *opaque);

struct ev_loop *ev_loop_new(void);
void ev_loop_free(struct ev_loop *loop);

/* Watches fd for events; one watch per fd. Returns 0 or -errno. */
int ev_loop_add_fd(struct ev_loop *loop, int fd, uint32_t events, ev_fd_fn fn,
		   void *opaque);
int ev_loop_mod_fd(struct ev_loop *loop, int fd, uint32_t events);
/* Safe to call from inside the fd's own callback. */
void ev_loop_del_fd(struct ev_loop *loop, int fd);

/* One-shot timer after delay_ms; returns an id > 0, or a negative errno. */
int64_t ev_loop_add_timer(struct ev_loop *loop, uint64_t delay_ms,
			  ev_call_fn fn, void *opaque);
void ev_loop_cancel_timer(struct ev_loop *loop, int64_t id);

/* Queues fn(opaque) to run on the loop's thread. Any thread. 0 or -errno. */
int ev_loop_post(struct ev_loop *loop, ev_call_fn fn, void *opaque);

/* Runs the calls posted so far (at shutdown, so none is lost). Loop
 * thread. */
void ev_loop_run_posted(struct ev_loop *loop);

/* Runs until ev_loop_stop(). Returns 0 or -errno on epoll failure. */
int ev_loop_run(struct ev_loop *loop);
void ev_loop_stop(struct ev_loop *loop);

/* Monotonic clock in ns/ms, and wall clock in µs since the epoch. */
uint64_t ev_now_ns(void);
uint64_t ev_now_ms(void);
int64_t ev_wall_us(void);

#endif
