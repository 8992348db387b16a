/* qmp_json.h — QMP's JSON input: a streaming splitter and parser that
 * behaves like QEMU's json-lexer/json-streamer/json-parser. Bytes arrive in
 * arbitrary chunks; every complete top-level JSON value (or error) is handed
 * to a callback. Accepts QEMU's single-quoted string extension, resets on a
 * 0xFF byte, and enforces size/count/nesting limits with QEMU's messages.
 * Not thread-safe: one stream per monitor, used by the control thread. */
#ifndef MIGD_CONTROL_QMP_JSON_H
#define MIGD_CONTROL_QMP_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* QEMU allows 64 MiB per message; migd's QMP needs far less and a monitor
 * must not be able to make the daemon hold 64 MiB per connection, so the
 * limit is smaller (documented in docs/qmp.md). */
#define QMP_JSON_MAX_SIZE (4u << 20)
#define QMP_JSON_MAX_TOKENS (2u << 20)
#define QMP_JSON_MAX_NESTING 1024u

/* Exactly one of value/err is non-NULL; the callee takes ownership of
 * both. */
typedef void (*qmp_json_emit_fn)(void *opaque, json_t *value,
				 struct mig_error *err);

struct qmp_json_stream;

struct qmp_json_stream *qmp_json_stream_new(qmp_json_emit_fn emit,
					    void *opaque);
void qmp_json_stream_free(struct qmp_json_stream *st);
/* Feeds bytes; calls emit for each complete value or error, in order. */
void qmp_json_stream_feed(struct qmp_json_stream *st, const char *buf,
			  size_t len);
/* True when no value is partly received (between two requests). */
bool qmp_json_stream_is_idle(const struct qmp_json_stream *st);
/* End of input: a pending incomplete value is reported as an error. */
void qmp_json_stream_flush(struct qmp_json_stream *st);

/* Copies len bytes of in to out (outlen bytes, NUL-terminated), replacing
 * every byte that is not part of valid UTF-8 by U+FFFD. */
void qmp_json_utf8_sanitize(const char *in, size_t len, char *out,
			    size_t outlen);

/* Parses one complete text (must hold exactly one value). */
json_t *qmp_json_parse(const char *buf, size_t len, struct mig_error **errp);

#endif
