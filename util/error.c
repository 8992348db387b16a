/* error.c — struct mig_error construction and formatting. Thread-safe: no
 * shared state. */
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const class_names[] = {
	[MIG_ERR_GENERIC] = "GenericError",
	[MIG_ERR_COMMAND_NOT_FOUND] = "CommandNotFound",
	[MIG_ERR_DEVICE_NOT_ACTIVE] = "DeviceNotActive",
	[MIG_ERR_DEVICE_NOT_FOUND] = "DeviceNotFound",
	[MIG_ERR_KVM_MISSING_CAP] = "KVMMissingCap",
};

const char *mig_error_class_name(enum mig_error_class cls)
{
	if ((unsigned)cls >= sizeof(class_names) / sizeof(class_names[0]))
		return "GenericError";
	return class_names[cls];
}

void mig_error_vset(struct mig_error **errp, enum mig_error_class cls,
		    const char *fmt, va_list ap)
{
	struct mig_error *err;

	if (!errp || *errp)
		return;
	err = calloc(1, sizeof(*err));
	if (!err)
		abort(); /* out of memory while reporting: nothing sane left */
	err->cls = cls;
	if (vasprintf(&err->desc, fmt, ap) < 0)
		abort();
	*errp = err;
}

int mig_error_setg_errno(struct mig_error **errp, int err, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	mig_error_setg(errp, "%s: %s", msg ? msg : fmt, strerror(err));
	free(msg);
	return -err;
}

void mig_error_set(struct mig_error **errp, enum mig_error_class cls,
		   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mig_error_vset(errp, cls, fmt, ap);
	va_end(ap);
}

void mig_error_prepend(struct mig_error **errp, const char *fmt, ...)
{
	char *prefix, *joined;
	va_list ap;

	if (!errp || !*errp)
		return;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (asprintf(&joined, "%s%s", prefix, (*errp)->desc) < 0)
		abort();
	free(prefix);
	free((*errp)->desc);
	(*errp)->desc = joined;
}

void mig_error_propagate(struct mig_error **dst, struct mig_error *src)
{
	if (!src)
		return;
	if (dst && !*dst) {
		*dst = src;
		return;
	}
	mig_error_free(src);
}

void mig_error_free(struct mig_error *err)
{
	if (!err)
		return;
	free(err->desc);
	free(err);
}
