/* error.h — human-readable error values for migd.
 * Owns struct mig_error: a QMP error class plus a message that reaches a QMP
 * reply or query-migrate's error-desc. Any thread may create and free errors;
 * an error value is owned by whoever holds the pointer. */
#ifndef MIGD_UTIL_ERROR_H
#define MIGD_UTIL_ERROR_H

#include <stdarg.h>

/* QEMU's QapiErrorClass, in its order. */
enum mig_error_class {
	MIG_ERR_GENERIC,
	MIG_ERR_COMMAND_NOT_FOUND,
	MIG_ERR_DEVICE_NOT_ACTIVE,
	MIG_ERR_DEVICE_NOT_FOUND,
	MIG_ERR_KVM_MISSING_CAP,
};

struct mig_error {
	enum mig_error_class cls;
	char *desc;
};

/* Sets *errp to a new error unless errp is NULL or *errp is already set (the
 * first error wins: callers report the root cause, not its consequences). */
void mig_error_set(struct mig_error **errp, enum mig_error_class cls,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void mig_error_vset(struct mig_error **errp, enum mig_error_class cls,
		    const char *fmt, va_list ap);
/* Shorthand for the common GenericError. */
#define mig_error_setg(errp, ...)                                              \
	mig_error_set(errp, MIG_ERR_GENERIC, __VA_ARGS__)

/* QEMU's error_setg_errno(): GenericError "<message>: strerror(err)".
 * Returns -err. */
int mig_error_setg_errno(struct mig_error **errp, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prepends "prefix" to an existing error's message. No-op when *errp is NULL.
 */
void mig_error_prepend(struct mig_error **errp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Moves src into *dst (dst may be NULL: src is freed). */
void mig_error_propagate(struct mig_error **dst, struct mig_error *src);
void mig_error_free(struct mig_error *err);
const char *mig_error_class_name(enum mig_error_class cls);

#endif
