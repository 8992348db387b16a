/* snapstore.c — snapshot stores: node names, directories, tag checks and
 * tag file paths (see snapstore.h). Control thread only. */
#include "control/snapstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/jobs.h"

struct snapstore {
	struct snapstore_node *nodes;
	size_t n;
};

struct snapstore *snapstore_new(void)
{
	return calloc(1, sizeof(struct snapstore));
}

void snapstore_free(struct snapstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->nodes[i].name);
		free(s->nodes[i].dir);
	}
	free(s->nodes);
	free(s);
}

const struct snapstore_node *snapstore_find(const struct snapstore *s,
					    const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->nodes[i].name, name) == 0)
			return &s->nodes[i];
	return NULL;
}

static int check_dir(const char *dir, struct mig_error **errp)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		int e = errno;

		mig_error_setg(errp, "Could not open '%s': %s", dir,
			       strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		mig_error_setg(errp,
			       "'%s' is not a directory (a migd snapshot store "
			       "is a directory)",
			       dir);
		return -ENOTDIR;
	}
	return 0;
}

int snapstore_add(struct snapstore *s, const char *name, const char *dir,
		  struct mig_error **errp)
{
	struct snapstore_node *arr, *n;
	int ret;

	if (strlen(name) > SNAPSTORE_NODE_NAME_MAX ||
	    !jobs_id_is_wellformed(name)) {
		mig_error_setg(errp, "Invalid node-name: '%s'", name);
		return -EINVAL;
	}
	if (snapstore_find(s, name)) {
		mig_error_setg(errp, "Duplicate nodes with node-name='%s'",
			       name);
		return -EEXIST;
	}
	ret = check_dir(dir, errp);
	if (ret)
		return ret;
	arr = realloc(s->nodes, (s->n + 1) * sizeof(*arr));
	if (!arr)
		goto oom;
	s->nodes = arr;
	n = &s->nodes[s->n];
	n->name = strdup(name);
	n->dir = strdup(dir);
	if (!n->name || !n->dir) {
		free(n->name);
		free(n->dir);
		goto oom;
	}
	s->n++;
	return 0;
oom:
	mig_error_setg(errp, "Out of memory");
	return -ENOMEM;
}

int snapstore_check_tag(const char *tag, size_t len, struct mig_error **errp)
{
	const char *why = NULL;

	if (len == 0)
		why = "it is empty";
	else if (strlen(tag) != len)
		why = "it contains a NUL character";
	else if (len > SNAPSTORE_TAG_MAX)
		why = "it is longer than 200 bytes";
	else if (strchr(tag, '/'))
		why = "it contains '/'";
	else if (strcmp(tag, ".") == 0 || strcmp(tag, "..") == 0)
		why = "it names a directory";
	for (size_t i = 0; !why && i < len; i++)
		if ((unsigned char)tag[i] < 0x20 || tag[i] == 0x7f)
			why = "it contains a control character";
	if (!why)
		return 0;
	/* Never echo a tag that failed the checks: it may be huge or
	 * contain bytes a terminal interprets. */
	mig_error_setg(errp, "Invalid snapshot tag: %s", why);
	return -EINVAL;
}

char *snapstore_path(const struct snapstore_node *n, const char *tag)
{
	char *p;

	if (asprintf(&p, "%s/%s" SNAPSTORE_SUFFIX, n->dir, tag) < 0)
		return NULL;
	return p;
}

char *snapstore_part_path(const struct snapstore_node *n, const char *tag)
{
	char *p;

	if (asprintf(&p, "%s/.%s" SNAPSTORE_SUFFIX SNAPSTORE_PART_SUFFIX,
		     n->dir, tag) < 0)
		return NULL;
	return p;
}

bool snapstore_has(const struct snapstore_node *n, const char *tag)
{
	char *p = snapstore_path(n, tag);
	struct stat st;
	bool has = p && lstat(p, &st) == 0;

	free(p);
	return has;
}

int snapstore_mark(const struct snapstore_node *n, const char *tag,
		   struct mig_error **errp)
{
	char *p = snapstore_path(n, tag);
	int fd, ret = 0;

	if (!p) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		mig_error_setg(errp, "Could not create '%s': %s", p,
			       strerror(errno));
	} else {
		close(fd);
	}
	free(p);
	return ret;
}

int snapstore_remove(const struct snapstore_node *n, const char *tag,
		     struct mig_error **errp)
{
	char *p = snapstore_path(n, tag);
	int ret = 0;

	if (!p) {
		mig_error_setg(errp, "Out of memory");
		return -ENOMEM;
	}
	if (unlink(p) < 0 && errno != ENOENT) {
		ret = -errno;
		mig_error_setg(errp,
			       "Error while deleting snapshot on '%s': %s",
			       n->name, strerror(errno));
	}
	free(p);
	return ret;
}
