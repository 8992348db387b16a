/* fuzz_qmp.c — libFuzzer target for the QMP input path.
 * Even first byte: the rest goes to a fresh QMP server's in-process monitor
 * (qmp_server_handle_text) with the real command tables registered, and
 * every reply is checked (CRLF-terminated ASCII JSON objects with exactly
 * one of return/error, one per message the streamer finds). Odd first
 * byte: the rest goes to qmp_json_stream in pseudo-random chunk sizes and
 * must produce exactly what one feed of the whole input produces; every
 * value must survive a dump/parse round trip, every error message must be
 * valid UTF-8.
 * Single-threaded; state lives for one input, except the event loop. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/fdset.h"
#include "control/migcfg.h"
#include "control/migd.h"
#include "control/qmp.h"
#include "control/qmp_json.h"
#include "util/evloop.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The loop is only a handle for the server (no fds are added for the
 * in-process monitor), so one serves every input. */
static struct ev_loop *fuzz_loop;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_loop = ev_loop_new();
	CHECK(fuzz_loop);
	return 0;
}

/* ---- path 1: the QMP server ------------------------------------------- */

static void check_reply_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(line, len, 0, &jerr);
	json_t *err;

	CHECK(v && json_is_object(v));
	CHECK(!json_object_get(v, "return") != !json_object_get(v, "error"));
	err = json_object_get(v, "error");
	if (err) {
		CHECK(json_is_string(json_object_get(err, "class")));
		CHECK(json_is_string(json_object_get(err, "desc")));
		CHECK(json_object_size(err) == 2);
	}
	json_decref(v);
}

/* Returns the number of reply lines. */
static size_t check_replies(const char *out)
{
	const char *line = out, *crlf;
	size_t n = 0;

	for (const char *p = out; *p; p++)
		CHECK((unsigned char)*p < 0x80);
	while (*line) {
		crlf = strstr(line, "\r\n");
		CHECK(crlf);
		CHECK(!memchr(line, '\n', (size_t)(crlf - line)));
		check_reply_line(line, (size_t)(crlf - line));
		line = crlf + 2;
		n++;
	}
	return n;
}

static void count_emit(void *opaque, json_t *value, struct mig_error *err)
{
	(*(size_t *)opaque)++;
	json_decref(value);
	mig_error_free(err);
}

/* How many values and errors the streamer finds in the input: the server
 * owes exactly one reply to each. */
static size_t count_messages(const uint8_t *data, size_t size)
{
	size_t n = 0;
	struct qmp_json_stream *st = qmp_json_stream_new(count_emit, &n);

	CHECK(st);
	qmp_json_stream_feed(st, (const char *)data, size);
	qmp_json_stream_flush(st);
	qmp_json_stream_free(st);
	return n;
}

static void fuzz_server(const uint8_t *data, size_t size)
{
	struct migd md = {.loop = fuzz_loop};
	char *out;

	md.config = mig_config_new();
	md.fdsets = fdsets_new();
	md.qmp = qmp_server_new(&md, fuzz_loop);
	CHECK(md.config && md.fdsets && md.qmp);
	qmp_core_register(md.qmp);
	migcfg_register_qmp(md.qmp);
	fdset_register_qmp(md.qmp);
	out = qmp_server_handle_text(md.qmp, (const char *)data, size);
	CHECK((out ? check_replies(out) : 0) == count_messages(data, size));
	free(out);
	qmp_server_free(md.qmp);
	fdsets_free(md.fdsets);
	mig_config_free(md.config);
}

/* ---- path 2: the JSON streamer ---------------------------------------- */

/* Everything a stream emitted, as "V:<json>\n" / "E:<desc>\n" records. */
struct transcript {
	char *buf;
	size_t len, cap;
};

static void transcript_add(struct transcript *t, char tag, const char *s)
{
	size_t n = strlen(s) + 3;

	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		CHECK(t->buf);
	}
	t->len += (size_t)snprintf(t->buf + t->len, t->cap - t->len, "%c:%s\n",
				   tag, s);
}

/* A value must come back unchanged from its own dump. */
static void check_round_trip(json_t *v, const char *text)
{
	struct mig_error *err = NULL;
	json_t *again = qmp_json_parse(text, strlen(text), &err);

	CHECK(again && !err);
	CHECK(json_equal(v, again));
	json_decref(again);
}

static void record_emit(void *opaque, json_t *value, struct mig_error *err)
{
	struct transcript *t = opaque;
	char *text;

	CHECK(!value != !err); /* exactly one of them */
	if (err) {
		json_t *desc = json_string(err->desc);

		CHECK(desc); /* valid UTF-8, or no QMP reply can carry it */
		json_decref(desc);
		transcript_add(t, 'E', err->desc);
		mig_error_free(err);
		return;
	}
	text = json_dumps(value, JSON_ENCODE_ANY | JSON_ENSURE_ASCII |
					 JSON_REAL_PRECISION(17));
	CHECK(text);
	check_round_trip(value, text);
	transcript_add(t, 'V', text);
	free(text);
	json_decref(value);
}

static uint32_t xorshift(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void stream_all(const char *p, size_t n, bool chunked, uint32_t seed,
		       struct transcript *t)
{
	struct qmp_json_stream *st = qmp_json_stream_new(record_emit, t);
	size_t off = 0;

	CHECK(st);
	while (off < n) {
		/* mostly tiny chunks, sometimes large ones */
		size_t c = n - off;

		if (chunked) {
			uint32_t r = xorshift(&seed);

			c = (r & 3) ? 1 + (r >> 8) % 8 : 1 + (r >> 8) % 4096;
			if (c > n - off)
				c = n - off;
		}
		qmp_json_stream_feed(st, p + off, c);
		off += c;
	}
	qmp_json_stream_flush(st);
	qmp_json_stream_free(st);
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
	struct transcript whole = {0}, pieces = {0};
	uint32_t seed = 0x9e3779b9u;

	for (size_t i = 0; i < 4 && i < size; i++)
		seed = seed * 31 + data[i];
	if (!seed)
		seed = 1;
	stream_all((const char *)data, size, false, 0, &whole);
	stream_all((const char *)data, size, true, seed, &pieces);
	CHECK(whole.len == pieces.len);
	CHECK(!whole.len || !memcmp(whole.buf, pieces.buf, whole.len));
	free(whole.buf);
	free(pieces.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_stream(data + 1, size - 1);
	else
		fuzz_server(data + 1, size - 1);
	return 0;
}
