/* fdset_cmds.c — the QMP commands getfd, closefd, add-fd, remove-fd and
 * query-fdsets: argument reading and QEMU's messages on top of fdset.c (fd
 * sets) and monfd.c (a monitor's named fds). Control thread only. */
#include "control/fdset.h"

#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "control/migd.h"
#include "control/monfd.h"
#include "control/qapi.h"
#include "control/qmp.h"

#define MSG_NO_FD "No file descriptor supplied via SCM_RIGHTS"

static json_t *cmd_getfd(struct migd *md, struct qmp_monitor *mon, json_t *args,
			 struct mig_error **errp)
{
	struct qapi_in in;
	const char *name;
	json_t *ret = NULL;
	int fd;

	qapi_in_init(&in, args);
	if (!qapi_read_str(&in, "fdname", &name, errp) ||
	    !qapi_check_struct(&in, errp))
		goto out;
	fd = qmp_monitor_take_fd(mon);
	if (fd < 0) {
		mig_error_setg(errp, MSG_NO_FD);
		goto out;
	}
	if (name[0] >= '0' && name[0] <= '9') {
		close(fd);
		mig_error_setg(errp, "Parameter '%s' expects %s", "fdname",
			       "a name not starting with a digit");
		goto out;
	}
	if (monfd_add(qmp_monitor_fds(mon), name, fd) < 0) {
		mig_error_setg(errp, "Out of memory");
		goto out;
	}
	ret = json_object();
out:
	qapi_in_fini(&in);
	return ret;
}

static json_t *cmd_closefd(struct migd *md, struct qmp_monitor *mon,
			   json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	const char *name;
	json_t *ret = NULL;

	qapi_in_init(&in, args);
	if (!qapi_read_str(&in, "fdname", &name, errp) ||
	    !qapi_check_struct(&in, errp))
		goto out;
	if (monfd_close(qmp_monitor_fds(mon), name) < 0) {
		mig_error_setg(errp, "File descriptor named '%s' not found",
			       name);
		goto out;
	}
	ret = json_object();
out:
	qapi_in_fini(&in);
	return ret;
}

/* Arguments of add-fd, read in schema order. */
struct add_fd_args {
	bool has_id;
	int64_t id;
	const char *opaque;
};

static bool read_add_fd_args(json_t *args, struct add_fd_args *a,
			     struct mig_error **errp)
{
	struct qapi_in in;
	bool ok = true;

	memset(a, 0, sizeof(*a));
	qapi_in_init(&in, args);
	a->has_id = qapi_has(&in, "fdset-id");
	if (a->has_id)
		ok = qapi_read_int(&in, "fdset-id", &a->id, errp);
	if (ok && qapi_has(&in, "opaque"))
		ok = qapi_read_str(&in, "opaque", &a->opaque, errp);
	ok = ok && qapi_check_struct(&in, errp);
	qapi_in_fini(&in);
	return ok;
}

static json_t *cmd_add_fd(struct migd *md, struct qmp_monitor *mon,
			  json_t *args, struct mig_error **errp)
{
	struct add_fd_args a;
	int64_t set_id;
	json_t *ret;
	int fd;

	if (!read_add_fd_args(args, &a, errp))
		return NULL;
	fd = qmp_monitor_take_fd(mon);
	if (fd < 0) {
		mig_error_setg(errp, MSG_NO_FD);
		return NULL;
	}
	if (!md->fdsets) {
		close(fd);
		mig_error_setg(errp, "fd sets are not available");
		return NULL;
	}
	if (fdsets_add_fd(md->fdsets, fd, a.has_id, a.id, a.opaque, &set_id,
			  errp) < 0)
		return NULL;
	ret = json_pack("{s:I, s:i}", "fdset-id", (json_int_t)set_id, "fd", fd);
	if (!ret)
		mig_error_setg(errp, "Out of memory");
	return ret;
}

static json_t *cmd_remove_fd(struct migd *md, struct qmp_monitor *mon,
			     json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	int64_t id, fd = -1;
	bool has_fd = false;
	json_t *ret = NULL;

	qapi_in_init(&in, args);
	if (!qapi_read_int(&in, "fdset-id", &id, errp))
		goto out;
	has_fd = qapi_has(&in, "fd");
	if (has_fd && !qapi_read_int(&in, "fd", &fd, errp))
		goto out;
	if (!qapi_check_struct(&in, errp))
		goto out;
	if (!md->fdsets) {
		mig_error_setg(errp, "fd sets are not available");
		goto out;
	}
	if (fdsets_remove_fd(md->fdsets, id, has_fd, fd, errp) == 0)
		ret = json_object();
out:
	qapi_in_fini(&in);
	return ret;
}

static json_t *cmd_query_fdsets(struct migd *md, struct qmp_monitor *mon,
				json_t *args, struct mig_error **errp)
{
	struct qapi_in in;
	json_t *ret = NULL;

	qapi_in_init(&in, args);
	if (!qapi_check_struct(&in, errp))
		goto out;
	ret = md->fdsets ? fdsets_query(md->fdsets) : json_array();
	if (!ret)
		mig_error_setg(errp, "Out of memory");
out:
	qapi_in_fini(&in);
	return ret;
}

static const struct qmp_command fdset_commands[] = {
	{"getfd", cmd_getfd, 0},
	{"closefd", cmd_closefd, 0},
	{"add-fd", cmd_add_fd, 0},
	{"remove-fd", cmd_remove_fd, 0},
	{"query-fdsets", cmd_query_fdsets, 0},
};

void fdset_register_qmp(struct qmp_server *srv)
{
	qmp_register(srv, fdset_commands,
		     sizeof(fdset_commands) / sizeof(fdset_commands[0]));
}
