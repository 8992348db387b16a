/* monfd.c — a monitor's table of named fds (see monfd.h). A plain array:
 * a monitor holds a handful of names, so linear search is the right tool.
 * Control thread only. */
#include "control/monfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void monfd_table_init(struct monfd_table *t)
{
	memset(t, 0, sizeof(*t));
}

void monfd_table_fini(struct monfd_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		close(t->v[i].fd);
		free(t->v[i].name);
	}
	free(t->v);
	monfd_table_init(t);
}

static ssize_t find(const struct monfd_table *t, const char *name)
{
	if (!name)
		return -1;
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].name, name))
			return (ssize_t)i;
	return -1;
}

/* Drops entry i without closing its fd; order is not meaningful. */
static void remove_at(struct monfd_table *t, size_t i)
{
	free(t->v[i].name);
	t->v[i] = t->v[t->n - 1];
	t->n--;
}

static int grow(struct monfd_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 4;
	struct monfd_entry *v;

	if (t->n < t->cap)
		return 0;
	v = realloc(t->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	t->cap = cap;
	return 0;
}

int monfd_add(struct monfd_table *t, const char *name, int fd)
{
	ssize_t i;
	char *copy;

	if (fd < 0)
		return -EINVAL;
	if (!name)
		goto err_close;
	i = find(t, name);
	if (i >= 0) {
		int old = t->v[i].fd;

		t->v[i].fd = fd;
		close(old);
		return 0;
	}
	copy = strdup(name);
	if (!copy || grow(t) < 0) {
		free(copy);
		close(fd);
		return -ENOMEM;
	}
	t->v[t->n].name = copy;
	t->v[t->n].fd = fd;
	t->n++;
	return 0;

err_close:
	close(fd);
	return -EINVAL;
}

int monfd_close(struct monfd_table *t, const char *name)
{
	ssize_t i = find(t, name);
	int fd;

	if (i < 0)
		return -ENOENT;
	fd = t->v[i].fd;
	remove_at(t, (size_t)i);
	close(fd);
	return 0;
}

int monfd_dup(struct monfd_table *t, const char *name)
{
	ssize_t i = find(t, name);
	int fd;

	if (i < 0)
		return -ENOENT;
	fd = fcntl(t->v[i].fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

int monfd_take(struct monfd_table *t, const char *name)
{
	ssize_t i = find(t, name);
	int fd;

	if (i < 0)
		return -ENOENT;
	fd = t->v[i].fd;
	remove_at(t, (size_t)i);
	return fd;
}

int monfd_peek(const struct monfd_table *t, const char *name)
{
	ssize_t i = find(t, name);

	return i < 0 ? -ENOENT : t->v[i].fd;
}

size_t monfd_count(const struct monfd_table *t)
{
	return t->n;
}
