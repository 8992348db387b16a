/* migdump_json.c — migdump's machine-readable report (--json): the main
 * stream's header, configuration, every top-level item in order, RAM
 * blocks and record counts, device state, the vmdesc, and each multifd
 * channel, plus totals. Keys are dash-separated as in QMP. Strings in the
 * reports are printable ASCII already (the decoders check or escape them).
 * Single-threaded. */
#include "contrib/migdump.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Sets key to v and drops the reference; out-of-memory shows as a missing
 * key and a NULL report at the end (json_dumps of a broken tree). */
static void put(json_t *o, const char *key, json_t *v)
{
	json_object_set_new(o, key, v);
}

static json_t *jstr(const char *s)
{
	return json_string(s);
}

static json_t *counts_json(const struct mdump_counts *c)
{
	json_t *o = json_object();

	for (int r = 0; r < MDUMP_REC__MAX; r++)
		put(o, mdump_rec_name(r), json_integer((json_int_t)c->rec[r]));
	return o;
}

static json_t *error_json(const struct mig_error *err, uint64_t off,
			  bool truncated)
{
	json_t *o = json_object();

	put(o, "offset", json_integer((json_int_t)off));
	put(o, "message", jstr(err->desc));
	put(o, "truncated", json_boolean(truncated));
	return o;
}

static void status_json(json_t *o, const struct mig_error *err, uint64_t off,
			bool truncated)
{
	put(o, "status",
	    jstr(!err	     ? "ok"
		 : truncated ? "truncated"
			     : "malformed"));
	if (err)
		put(o, "error", error_json(err, off, truncated));
}

static json_t *uuid_json(const uint8_t u[16])
{
	char buf[37];

	snprintf(buf, sizeof(buf),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%"
		 "02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
	return jstr(buf);
}

static json_t *config_json(const struct mdump_stream *s)
{
	json_t *o = json_object(), *caps = json_array();

	put(o, "machine", jstr(s->machine));
	for (unsigned i = 0; i < s->ncaps; i++)
		json_array_append_new(caps, jstr(s->caps[i]));
	put(o, "capabilities", caps);
	if (s->has_uuid)
		put(o, "uuid", uuid_json(s->uuid));
	put(o, "target-page-bits", json_integer(s->target_page_bits));
	return o;
}

static json_t *event_json(const struct mdump_stream *s,
			  const struct mdump_event *ev)
{
	static const char *const kinds[] = {"section", "command", "EOF",
					    "VMDESCRIPTION"};
	json_t *o = json_object();

	put(o, "offset", json_integer((json_int_t)ev->offset));
	put(o, "bytes", json_integer((json_int_t)ev->bytes));
	if (ev->kind == MDUMP_EV_SECTION) {
		const struct mdump_se *se = &s->se[ev->se];

		put(o, "type", jstr(mdump_section_type_name(ev->type)));
		put(o, "id", json_integer(ev->id));
		put(o, "idstr", jstr(se->idstr));
		put(o, "instance", json_integer(se->instance));
		put(o, "version", json_integer(se->version));
		if (!strcmp(se->idstr, "ram"))
			put(o, "records", counts_json(&ev->counts));
		if (ev->opaque)
			put(o, "opaque", json_true());
		return o;
	}
	put(o, "type",
	    jstr(ev->kind == MDUMP_EV_COMMAND ? "COMMAND" : kinds[ev->kind]));
	if (ev->kind == MDUMP_EV_COMMAND) {
		put(o, "command", jstr(mdump_command_name(ev->cmd)));
		put(o, "cmd", json_integer(ev->cmd));
		put(o, "length", json_integer(ev->cmd_len));
		if (ev->cmd_len == 4)
			put(o, "value",
			    json_integer((json_int_t)ev->cmd_value));
	}
	return o;
}

/* Every item by kind, including those past MDUMP_EVENTS_MAX. */
static json_t *type_counts_json(const struct mdump_stream *s)
{
	static const char *const types[] = {"START", "PART", "END", "FULL"};
	json_t *o = json_object(), *cmds = json_object();

	for (int t = 0; t < 4; t++)
		put(o, types[t],
		    json_integer((json_int_t)s->type_counts[t + 1]));
	for (uint16_t c = 1; c < MDUMP_CMDS; c++)
		if (s->cmd_counts[c])
			put(cmds, mdump_command_name(c),
			    json_integer((json_int_t)s->cmd_counts[c]));
	put(o, "COMMAND", cmds);
	return o;
}

static json_t *block_json(const struct mdump_block *b)
{
	json_t *o = json_object(), *mr;

	put(o, "name", jstr(b->name));
	put(o, "used-length", json_integer((json_int_t)b->used_length));
	if (b->page_size)
		put(o, "page-size", json_integer((json_int_t)b->page_size));
	if (b->has_addr)
		put(o, "addr", json_integer((json_int_t)b->addr));
	put(o, "records", counts_json(&b->counts));
	put(o, "multifd-normal", json_integer((json_int_t)b->mfd_normal));
	put(o, "multifd-zero", json_integer((json_int_t)b->mfd_zero));
	if (!b->mapped_ram)
		return o;
	mr = json_object();
	put(mr, "version", json_integer(b->mr_version));
	put(mr, "page-size", json_integer((json_int_t)b->mr_page_size));
	put(mr, "bitmap-offset", json_integer((json_int_t)b->bitmap_offset));
	put(mr, "pages-offset", json_integer((json_int_t)b->pages_offset));
	put(mr, "present-pages", json_integer((json_int_t)b->present_pages));
	put(o, "mapped-ram", mr);
	return o;
}

static json_t *ram_json(const struct mdump_stream *s)
{
	json_t *o = json_object(), *blocks = json_array();

	put(o, "total-bytes", json_integer((json_int_t)s->ram_total));
	put(o, "page-bytes", json_integer((json_int_t)s->page_bytes));
	put(o, "records", counts_json(&s->counts));
	for (size_t i = 0; i < s->nblocks; i++)
		json_array_append_new(blocks, block_json(&s->blocks[i]));
	put(o, "blocks", blocks);
	return o;
}

static void devices_json(json_t *o, const struct mdump_stream *s)
{
	json_t *t;

	if (s->has_timer) {
		t = json_object();
		put(t, "cpu-ticks-offset", json_integer(s->cpu_ticks_offset));
		put(t, "cpu-clock-offset", json_integer(s->cpu_clock_offset));
		put(o, "timer", t);
	}
	if (s->has_globalstate) {
		t = json_object();
		put(t, "runstate", jstr(s->runstate));
		put(t, "size", json_integer(s->gs_size));
		if (s->vm_was_suspended >= 0)
			put(t, "vm-was-suspended",
			    json_boolean(s->vm_was_suspended));
		put(o, "globalstate", t);
	}
}

/* The vmdesc parsed, or its text when it is not JSON. */
static json_t *vmdesc_json(const struct mdump_stream *s, const uint8_t *buf,
			   bool with_text)
{
	json_t *o = json_object(), *doc;

	put(o, "offset", json_integer((json_int_t)s->vmdesc_offset));
	put(o, "length", json_integer((json_int_t)s->vmdesc_len));
	if (!with_text)
		return o;
	doc = json_loadb((const char *)buf + s->vmdesc_offset, s->vmdesc_len, 0,
			 NULL);
	if (doc)
		put(o, "json", doc);
	else
		put(o, "invalid-json", json_true());
	return o;
}

static json_t *stream_json(const char *path, const struct mdump_stream *s,
			   const uint8_t *buf, bool with_vmdesc)
{
	json_t *o = json_object(), *h = json_object(), *evs = json_array();

	put(o, "file", jstr(path));
	put(o, "bytes", json_integer((json_int_t)s->size));
	put(o, "end-offset", json_integer((json_int_t)s->end));
	status_json(o, s->err, s->err_offset, s->truncated);
	put(h, "magic", json_integer(s->magic));
	put(h, "version", json_integer(s->version));
	put(o, "header", h);
	if (s->has_config)
		put(o, "configuration", config_json(s));
	for (size_t i = 0; i < s->nev; i++)
		json_array_append_new(evs, event_json(s, &s->ev[i]));
	put(o, "sections", evs);
	put(o, "sections-omitted", json_integer((json_int_t)s->events_dropped));
	put(o, "section-counts", type_counts_json(s));
	if (s->has_mem_size)
		put(o, "ram", ram_json(s));
	devices_json(o, s);
	if (s->has_eof)
		put(o, "eof-offset", json_integer((json_int_t)s->eof_offset));
	if (s->has_vmdesc)
		put(o, "vmdesc", vmdesc_json(s, buf, with_vmdesc));
	return o;
}

static json_t *channel_json(const char *path, const struct mdump_channel *c)
{
	json_t *o = json_object();

	put(o, "file", jstr(path));
	put(o, "bytes", json_integer((json_int_t)c->size));
	put(o, "end-offset", json_integer((json_int_t)c->end));
	status_json(o, c->err, c->err_offset, c->truncated);
	if (c->has_init) {
		put(o, "id", json_integer(c->id));
		put(o, "uuid", uuid_json(c->uuid));
	}
	put(o, "packets", json_integer((json_int_t)c->packets));
	put(o, "sync-packets", json_integer((json_int_t)c->syncs));
	put(o, "data-packets", json_integer((json_int_t)c->data_packets));
	put(o, "device-state-packets",
	    json_integer((json_int_t)c->device_state_packets));
	put(o, "normal-pages", json_integer((json_int_t)c->normal));
	put(o, "zero-pages", json_integer((json_int_t)c->zero));
	put(o, "payload-bytes", json_integer((json_int_t)c->payload_bytes));
	put(o, "stale-next-packet-size",
	    json_integer((json_int_t)c->stale_next));
	put(o, "compression", jstr(mdump_method_name(c->method)));
	return o;
}

static json_t *totals_json(const struct mdump_stream *s,
			   const struct mdump_channel *chans, size_t n)
{
	json_t *o = json_object();
	uint64_t normal = s->counts.rec[MDUMP_REC_PAGE];
	uint64_t zero = s->counts.rec[MDUMP_REC_ZERO];
	bool ok = !s->err;

	for (size_t i = 0; i < n; i++) {
		normal += chans[i].normal;
		zero += chans[i].zero;
		ok = ok && !chans[i].err;
	}
	put(o, "normal-pages", json_integer((json_int_t)normal));
	put(o, "zero-pages", json_integer((json_int_t)zero));
	put(o, "ok", json_boolean(ok));
	return o;
}

char *mdump_json_report(const char *main_path, const struct mdump_stream *s,
			const uint8_t *buf, bool with_vmdesc,
			const char *const *chan_paths,
			const struct mdump_channel *chans, size_t nchans)
{
	json_t *root = json_object(), *arr = json_array();
	char *text;

	put(root, "main", stream_json(main_path, s, buf, with_vmdesc));
	for (size_t i = 0; i < nchans; i++)
		json_array_append_new(arr,
				      channel_json(chan_paths[i], &chans[i]));
	put(root, "channels", arr);
	put(root, "totals", totals_json(s, chans, nchans));
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}
