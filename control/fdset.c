/* fdset.c — fd sets with QEMU's rules: add, remove, query and the
 * /dev/fdset/N lookup. The QMP commands are fdset_cmds.c; named fds
 * (getfd) are monfd.c.
 * Locking: sets->lock guards the set list; fdsets_open()/fdsets_close_dup()
 * may run on any thread, the rest on the control thread. */
#include "control/fdset.h"
#include "util/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MSG_NO_FD "No file descriptor supplied via SCM_RIGHTS"

/* A member of a set: an fd the client passed with add-fd. */
struct fdset_fd {
	struct fdset_fd *next;
	int fd;
	char *opaque; /* NULL when the client gave none */
};

/* A duplicate handed out by fdsets_open(): owned by its caller, tracked so
 * the set is kept while it is in use. */
struct fdset_dup {
	struct fdset_dup *next;
	int fd;
};

/* Invariants: ids are unique and >= 0; the list is sorted by ascending id;
 * fds are kept newest first (QEMU inserts at the head, which decides both
 * which fd /dev/fdset/N picks and query-fdsets' order); a set with neither
 * fds nor dups is freed at once. */
struct fdset {
	struct fdset *next;
	int64_t id;
	struct fdset_fd *fds;
	struct fdset_dup *dups;
};

struct fdsets {
	pthread_mutex_t lock;
	struct fdset *head;
};

struct fdsets *fdsets_new(void)
{
	struct fdsets *sets = calloc(1, sizeof(*sets));

	if (!sets)
		return NULL;
	if (pthread_mutex_init(&sets->lock, NULL)) {
		free(sets);
		return NULL;
	}
	return sets;
}

static void fd_free(struct fdset_fd *f)
{
	close(f->fd);
	free(f->opaque);
	free(f);
}

static void set_free(struct fdset *set)
{
	while (set->fds) {
		struct fdset_fd *f = set->fds;

		set->fds = f->next;
		fd_free(f);
	}
	while (set->dups) {
		struct fdset_dup *d = set->dups;

		set->dups = d->next;
		free(d);
	}
	free(set);
}

void fdsets_free(struct fdsets *sets)
{
	if (!sets)
		return;
	while (sets->head) {
		struct fdset *set = sets->head;

		sets->head = set->next;
		set_free(set);
	}
	pthread_mutex_destroy(&sets->lock);
	free(sets);
}

/* Finds set id; *link gets the pointer that points (or would point) at it
 * in the sorted list. */
static struct fdset *set_find(struct fdsets *sets, int64_t id,
			      struct fdset ***link)
{
	struct fdset **pp = &sets->head;

	while (*pp && (*pp)->id < id)
		pp = &(*pp)->next;
	if (link)
		*link = pp;
	return *pp && (*pp)->id == id ? *pp : NULL;
}

/* Unlinks and frees set when it holds nothing any more. */
static void set_free_if_empty(struct fdsets *sets, struct fdset *set)
{
	struct fdset **link;

	if (set->fds || set->dups)
		return;
	if (set_find(sets, set->id, &link) == set) {
		*link = set->next;
		free(set);
	}
}

/* The lowest id no set uses (the list is sorted, so the first gap). */
static int64_t lowest_free_id(const struct fdsets *sets)
{
	int64_t id = 0;

	for (const struct fdset *s = sets->head; s && s->id == id; s = s->next)
		id++;
	return id;
}

static struct fdset *set_get_or_create(struct fdsets *sets, int64_t id)
{
	struct fdset **link;
	struct fdset *set = set_find(sets, id, &link);

	if (set)
		return set;
	set = calloc(1, sizeof(*set));
	if (!set)
		return NULL;
	set->id = id;
	set->next = *link;
	*link = set;
	return set;
}

static int add_fd_locked(struct fdsets *sets, int fd, bool has_id, int64_t id,
			 const char *opaque, int64_t *out_id,
			 struct mig_error **errp)
{
	struct fdset_fd *f;
	struct fdset *set;

	if (has_id && id < 0) {
		mig_error_setg(errp, "Parameter '%s' expects %s", "fdset-id",
			       "a non-negative value");
		return -EINVAL;
	}
	f = calloc(1, sizeof(*f));
	if (!f || (opaque && !(f->opaque = strdup(opaque))))
		goto err_nomem;
	set = set_get_or_create(sets, has_id ? id : lowest_free_id(sets));
	if (!set)
		goto err_nomem;
	f->fd = fd;
	f->next = set->fds;
	set->fds = f;
	*out_id = set->id;
	return 0;

err_nomem:
	if (f)
		free(f->opaque);
	free(f);
	mig_error_setg(errp, "Out of memory");
	return -ENOMEM;
}

int fdsets_add_fd(struct fdsets *sets, int fd, bool has_id, int64_t id,
		  const char *opaque, int64_t *out_id, struct mig_error **errp)
{
	int ret;

	if (fd < 0) {
		mig_error_setg(errp, MSG_NO_FD);
		return -EBADF;
	}
	pthread_mutex_lock(&sets->lock);
	ret = add_fd_locked(sets, fd, has_id, id, opaque, out_id, errp);
	pthread_mutex_unlock(&sets->lock);
	if (ret < 0)
		close(fd);
	return ret;
}

/* Closes the matching members of set; returns how many. */
static int set_remove_fds(struct fdset *set, bool has_fd, int64_t fd)
{
	struct fdset_fd **pp = &set->fds;
	int n = 0;

	while (*pp) {
		struct fdset_fd *f = *pp;

		if (has_fd && f->fd != fd) {
			pp = &f->next;
			continue;
		}
		*pp = f->next;
		fd_free(f);
		n++;
		if (has_fd)
			break;
	}
	return n;
}

int fdsets_remove_fd(struct fdsets *sets, int64_t id, bool has_fd, int64_t fd,
		     struct mig_error **errp)
{
	struct fdset *set;
	int ret = 0;

	pthread_mutex_lock(&sets->lock);
	set = set_find(sets, id, NULL);
	if (!set || (set_remove_fds(set, has_fd, fd) == 0 && has_fd))
		ret = -ENOENT;
	else
		set_free_if_empty(sets, set);
	pthread_mutex_unlock(&sets->lock);
	if (ret == 0)
		return 0;
	/* QEMU reuses its "named fd" message with the ids as the name. */
	if (has_fd)
		mig_error_setg(errp,
			       "File descriptor named 'fdset-id:%lld, "
			       "fd:%lld' not found",
			       (long long)id, (long long)fd);
	else
		mig_error_setg(
			errp, "File descriptor named 'fdset-id:%lld' not found",
			(long long)id);
	return ret;
}

static json_t *fd_info(const struct fdset_fd *f)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (json_object_set_new(o, "fd", json_integer(f->fd)) ||
	    (f->opaque &&
	     json_object_set_new(o, "opaque", json_string(f->opaque)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* QEMU builds the reply by prepending while walking its lists, so fds come
 * out oldest first (the reverse of how they are kept). */
static json_t *set_info(const struct fdset *set)
{
	json_t *o = json_object(), *fds = json_array();

	if (!o || !fds)
		goto err;
	for (const struct fdset_fd *f = set->fds; f; f = f->next)
		if (json_array_insert_new(fds, 0, fd_info(f)))
			goto err;
	if (json_object_set_new(o, "fdset-id", json_integer(set->id)))
		goto err;
	if (json_object_set_new(o, "fds", fds))
		goto err_fds_stolen;
	return o;

err:
	json_decref(fds);
err_fds_stolen:
	json_decref(o);
	return NULL;
}

/* Sets are listed by descending id, for the same reason as set_info(). */
json_t *fdsets_query(struct fdsets *sets)
{
	json_t *list = json_array();

	if (!list)
		return NULL;
	pthread_mutex_lock(&sets->lock);
	for (const struct fdset *s = sets->head; s; s = s->next) {
		if (json_array_insert_new(list, 0, set_info(s))) {
			json_decref(list);
			list = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&sets->lock);
	return list;
}

/* ---- /dev/fdset/N --------------------------------------------------- */

/* dup()s fd and makes the duplicate's status flags follow flags as far as
 * F_SETFL can; O_SYNC cannot be changed, so it must already agree. The
 * duplicate shares its open file description (and so its flags) with fd. */
static int dup_with_flags(int fd, int flags)
{
	int settable = O_APPEND | O_ASYNC | O_NONBLOCK | O_NOATIME | O_DIRECT;
	int nfd, cur, err;

	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (nfd < 0)
		return -errno;
	cur = fcntl(nfd, F_GETFL);
	if (cur < 0)
		goto err_errno;
	if ((flags & O_SYNC) != (cur & O_SYNC)) {
		err = -EINVAL;
		goto err_close;
	}
	cur = (cur & ~settable) | (flags & settable);
	if (fcntl(nfd, F_SETFL, cur) < 0)
		goto err_errno;
	if ((flags & O_TRUNC) ||
	    (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		if (ftruncate(nfd, 0) < 0)
			goto err_errno;
	return nfd;

err_errno:
	err = -errno;
err_close:
	close(nfd);
	return err;
}

/* The newest member whose access mode and O_DIRECT state equal flags'. */
static int set_pick_fd(const struct fdset *set, int flags,
		       struct mig_error **errp)
{
	const int mask = O_ACCMODE | O_DIRECT;

	for (const struct fdset_fd *f = set->fds; f; f = f->next) {
		int cur = fcntl(f->fd, F_GETFL);

		if (cur < 0) {
			int err = -errno;

			mig_error_setg(errp,
				       "Failed to read file status flags for "
				       "fd=%d",
				       f->fd);
			return err;
		}
		if ((cur & mask) == (flags & mask))
			return f->fd;
	}
	mig_error_setg(errp,
		       "Failed to find file descriptor with matching "
		       "flags=0x%x",
		       flags);
	return -EACCES;
}

static int open_locked(struct fdsets *sets, int64_t id, int flags,
		       struct mig_error **errp)
{
	struct fdset *set = set_find(sets, id, NULL);
	struct fdset_dup *d;
	int fd, dupfd;

	if (!set) {
		mig_error_setg(errp,
			       "Failed to find fdset " FDSET_PATH_PREFIX "%lld",
			       (long long)id);
		return -ENOENT;
	}
	fd = set_pick_fd(set, flags, errp);
	if (fd < 0)
		return fd;
	d = calloc(1, sizeof(*d));
	if (!d) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	dupfd = dup_with_flags(fd, flags);
	if (dupfd < 0) {
		free(d);
		mig_error_setg(errp,
			       "Failed to dup() given file descriptor fd=%d",
			       fd);
		return dupfd;
	}
	d->fd = dupfd;
	d->next = set->dups;
	set->dups = d;
	return dupfd;
}

int fdsets_open(struct fdsets *sets, const char *path, int flags,
		struct mig_error **errp)
{
	size_t plen = strlen(FDSET_PATH_PREFIX);
	int64_t id;
	int ret;

	if (!path || strncmp(path, FDSET_PATH_PREFIX, plen)) {
		mig_error_setg(errp, "'%s' is not an fd set path",
			       path ? path : "");
		return -EINVAL;
	}
	id = parse_fd_number(path + plen);
	if (id < 0) {
		mig_error_setg(errp, "Could not parse fdset %s", path);
		return -EINVAL;
	}
	pthread_mutex_lock(&sets->lock);
	ret = open_locked(sets, id, flags, errp);
	pthread_mutex_unlock(&sets->lock);
	return ret;
}

/* Forgets dup fd if some set handed it out; true when one did. */
static bool untrack_dup(struct fdsets *sets, int fd)
{
	for (struct fdset *s = sets->head; s; s = s->next) {
		for (struct fdset_dup **pp = &s->dups; *pp; pp = &(*pp)->next) {
			struct fdset_dup *d = *pp;

			if (d->fd != fd)
				continue;
			*pp = d->next;
			free(d);
			set_free_if_empty(sets, s);
			return true;
		}
	}
	return false;
}

int fdsets_close_dup(struct fdsets *sets, int fd)
{
	if (fd < 0)
		return -EBADF;
	/* Untrack before closing: once closed, the number may be reused by
	 * another thread's open and must not match a stale record. */
	pthread_mutex_lock(&sets->lock);
	untrack_dup(sets, fd);
	pthread_mutex_unlock(&sets->lock);
	return close(fd) < 0 ? -errno : 0;
}
