/* qmp_json.c — QMP JSON input (see qmp_json.h): a byte-at-a-time lexer that
 * cuts tokens, a streamer that counts braces/brackets to find the end of each
 * top-level value and enforces limits, and a recursive-descent parser over
 * the collected tokens that builds jansson values with QEMU's error
 * messages. Control thread only. */
#include "control/qmp_json.h"
#include "util/parse.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum tok_type {
	TOK_LCURLY,
	TOK_RCURLY,
	TOK_LSQUARE,
	TOK_RSQUARE,
	TOK_COMMA,
	TOK_COLON,
	TOK_STRING,
	TOK_INTEGER,
	TOK_FLOAT,
	TOK_KEYWORD,
	TOK_ERROR,
};

struct token {
	enum tok_type type;
	size_t off, len; /* into the stream's text buffer */
};

enum lex_state {
	LX_START,
	LX_STRING,
	LX_ESCAPE,
	LX_UESCAPE, /* inside \uXXXX, lex_hex digits seen */
	LX_NUMBER,
	LX_KEYWORD,
};

struct qmp_json_stream {
	qmp_json_emit_fn emit;
	void *opaque;
	/* lexer */
	enum lex_state state;
	char quote;
	int hex_seen;
	char *text; /* token text of the current message */
	size_t text_len, text_cap;
	size_t tok_start;
	/* streamer */
	struct token *toks;
	size_t ntoks, cap_toks;
	unsigned braces, brackets;
	bool recovering; /* after an error: drop tokens until balanced */
};

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return n;
}

void qmp_json_utf8_sanitize(const char *in, size_t len, char *out,
			    size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;

	for (size_t i = 0; i < len && o + 4 < outlen;) {
		size_t n = utf8_seq_len(s + i, len - i);

		if (n && s[i]) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else { /* U+FFFD, as QEMU's writer shows bad bytes */
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
}

/* ---- parser -------------------------------------------------------------- */

struct parser {
	const char *text;
	const struct token *toks;
	size_t ntoks, pos;
	struct mig_error *err;
};

static void parse_error(struct parser *p, const char *msg)
{
	mig_error_setg(&p->err, "JSON parse error, %s", msg);
}

static const struct token *peek(struct parser *p)
{
	return p->pos < p->ntoks ? &p->toks[p->pos] : NULL;
}

static const struct token *pop(struct parser *p)
{
	return p->pos < p->ntoks ? &p->toks[p->pos++] : NULL;
}

static json_t *parse_value(struct parser *p, unsigned depth);

static int read_hex4(const char *s, size_t left)
{
	int v = 0;

	if (left < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = parse_hex_digit(s[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes one \u escape (s points after "\u"); returns chars consumed or
 * -1. Surrogate pairs combine; lone surrogates are refused. */
static int decode_uescape(const char *s, size_t left, uint32_t *cp)
{
	int hi = read_hex4(s, left), lo;

	if (hi < 0)
		return -1;
	if (hi < 0xD800 || hi > 0xDFFF) {
		*cp = (uint32_t)hi;
		return 4;
	}
	if (hi > 0xDBFF || left < 10 || s[4] != '\\' || s[5] != 'u')
		return -1;
	lo = read_hex4(s + 6, left - 6);
	if (lo < 0xDC00 || lo > 0xDFFF)
		return -1;
	*cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) +
	      ((uint32_t)lo - 0xDC00);
	return 10;
}

static char escape_char(char c)
{
	switch (c) {
	case '"':
		return '"';
	case '\'':
		return '\'';
	case '\\':
		return '\\';
	case '/':
		return '/';
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return 0;
	}
}

static json_t *parse_string(struct parser *p, const struct token *t)
{
	const char *s = p->text + t->off + 1; /* skip the opening quote */
	size_t n = t->len - 2, o = 0;
	char *out = malloc(n + 1);
	json_t *v;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		if (s[i] != '\\') {
			out[o++] = s[i++];
			continue;
		}
		i++;
		if (s[i] == 'u') {
			uint32_t cp;
			int used = decode_uescape(s + i + 1, n - i - 1, &cp);

			if (used < 0) {
				parse_error(p, "invalid hex escape sequence in "
					       "string");
				goto err;
			}
			if (cp == 0) {
				parse_error(p, "\\u0000 is not supported");
				goto err;
			}
			o += put_utf8(out + o, cp);
			i += 1 + (size_t)used;
			continue;
		}
		if (!escape_char(s[i])) {
			parse_error(p, "invalid escape sequence in string");
			goto err;
		}
		out[o++] = escape_char(s[i++]);
	}
	v = json_stringn(out, o);
	if (!v)
		parse_error(p, "invalid UTF-8 sequence in string");
	free(out);
	return v;
err:
	free(out);
	return NULL;
}

/* Integers that fit int64 stay integers; larger ones become reals, as
 * QEMU's parser turns them into doubles (it keeps uint64 exactly; jansson
 * cannot, see docs/qmp.md). */
static json_t *parse_number(struct parser *p, const struct token *t)
{
	char buf[128];
	size_t len = t->len < sizeof(buf) - 1 ? t->len : sizeof(buf) - 1;
	char *end;
	json_t *real;

	memcpy(buf, p->text + t->off, len);
	buf[len] = '\0';
	if (t->type == TOK_INTEGER) {
		long long v;

		errno = 0;
		v = strtoll(buf, &end, 10);
		if (errno == 0 && *end == '\0')
			return json_integer(v);
	}
	real = json_real(strtod(buf, NULL));
	if (!real) /* jansson has no infinities: "1e400" */
		parse_error(p, "number out of range");
	return real;
}

static json_t *parse_keyword(struct parser *p, const struct token *t)
{
	const char *s = p->text + t->off;

	if (t->len == 4 && !memcmp(s, "true", 4))
		return json_true();
	if (t->len == 5 && !memcmp(s, "false", 5))
		return json_false();
	if (t->len == 4 && !memcmp(s, "null", 4))
		return json_null();
	{
		char shown[200];

		qmp_json_utf8_sanitize(s, t->len > 64 ? 64 : t->len, shown,
				       sizeof(shown));
		mig_error_setg(&p->err,
			       "JSON parse error, invalid keyword '%s'", shown);
	}
	return NULL;
}

static bool parse_pair(struct parser *p, json_t *obj, unsigned depth)
{
	json_t *key, *val;
	const struct token *t;

	if (!peek(p)) {
		parse_error(p, "premature EOI");
		return false;
	}
	key = parse_value(p, depth);
	if (!json_is_string(key)) {
		json_decref(key);
		parse_error(p, "key is not a string in object");
		return false;
	}
	t = pop(p);
	if (!t || t->type != TOK_COLON) {
		json_decref(key);
		parse_error(p,
			    t ? "missing : in object pair" : "premature EOI");
		return false;
	}
	val = parse_value(p, depth);
	if (!val) {
		json_decref(key);
		parse_error(p, "Missing value in dict");
		return false;
	}
	if (json_object_get(obj, json_string_value(key))) {
		json_decref(key);
		json_decref(val);
		parse_error(p, "duplicate key");
		return false;
	}
	json_object_set_new(obj, json_string_value(key), val);
	json_decref(key);
	return true;
}

static json_t *parse_object(struct parser *p, unsigned depth)
{
	json_t *obj = json_object();
	const struct token *t = peek(p);

	if (t && t->type == TOK_RCURLY) {
		pop(p);
		return obj;
	}
	for (;;) {
		if (!parse_pair(p, obj, depth))
			goto err;
		t = pop(p);
		if (!t) {
			parse_error(p, "premature EOI");
			goto err;
		}
		if (t->type == TOK_RCURLY)
			return obj;
		if (t->type != TOK_COMMA) {
			parse_error(p, "expected separator in dict");
			goto err;
		}
	}
err:
	json_decref(obj);
	return NULL;
}

static json_t *parse_array(struct parser *p, unsigned depth)
{
	json_t *arr = json_array(), *elt;
	const struct token *t = peek(p);

	if (t && t->type == TOK_RSQUARE) {
		pop(p);
		return arr;
	}
	for (;;) {
		elt = parse_value(p, depth);
		if (!elt) {
			parse_error(p, "expecting value");
			goto err;
		}
		json_array_append_new(arr, elt);
		t = pop(p);
		if (!t) {
			parse_error(p, "premature EOI");
			goto err;
		}
		if (t->type == TOK_RSQUARE)
			return arr;
		if (t->type != TOK_COMMA) {
			parse_error(p, "expected separator in list");
			goto err;
		}
	}
err:
	json_decref(arr);
	return NULL;
}

static json_t *parse_value(struct parser *p, unsigned depth)
{
	const struct token *t = pop(p);

	if (!t) {
		parse_error(p, "premature EOI");
		return NULL;
	}
	if (depth > QMP_JSON_MAX_NESTING) { /* the streamer already refuses */
		parse_error(p, "nesting too deep");
		return NULL;
	}
	switch (t->type) {
	case TOK_LCURLY:
		return parse_object(p, depth + 1);
	case TOK_LSQUARE:
		return parse_array(p, depth + 1);
	case TOK_STRING:
		return parse_string(p, t);
	case TOK_INTEGER:
	case TOK_FLOAT:
		return parse_number(p, t);
	case TOK_KEYWORD:
		return parse_keyword(p, t);
	default:
		parse_error(p, "expecting value");
		return NULL;
	}
}

static json_t *parse_tokens(const char *text, const struct token *toks,
			    size_t ntoks, struct mig_error **errp)
{
	struct parser p = {.text = text, .toks = toks, .ntoks = ntoks};
	json_t *v = parse_value(&p, 0);

	if (v && p.pos != p.ntoks) { /* cannot happen with the streamer */
		json_decref(v);
		v = NULL;
		parse_error(&p, "expecting end of input");
	}
	if (!v)
		mig_error_propagate(errp, p.err);
	else
		mig_error_free(p.err);
	return v;
}

/* ---- streamer ------------------------------------------------------------ */

struct qmp_json_stream *qmp_json_stream_new(qmp_json_emit_fn emit, void *opaque)
{
	struct qmp_json_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	st->emit = emit;
	st->opaque = opaque;
	return st;
}

void qmp_json_stream_free(struct qmp_json_stream *st)
{
	if (!st)
		return;
	free(st->text);
	free(st->toks);
	free(st);
}

static void reset_message(struct qmp_json_stream *st)
{
	st->ntoks = 0;
	st->text_len = 0;
	st->braces = st->brackets = 0;
	st->recovering = false;
	/* Give back memory a huge message made us take. */
	if (st->text_cap > 65536) {
		free(st->text);
		st->text = NULL;
		st->text_cap = 0;
	}
	if (st->cap_toks > 4096) {
		free(st->toks);
		st->toks = NULL;
		st->cap_toks = 0;
	}
}

static void emit_error(struct qmp_json_stream *st, const char *fmt,
		       const char *arg)
{
	struct mig_error *err = NULL;

	mig_error_setg(&err, fmt, arg);
	st->emit(st->opaque, NULL, err);
}

static bool over_limits(struct qmp_json_stream *st)
{
	if (st->text_len > QMP_JSON_MAX_SIZE) {
		emit_error(st, "%s", "JSON token size limit exceeded");
		return true;
	}
	if (st->ntoks > QMP_JSON_MAX_TOKENS) {
		emit_error(st, "%s", "JSON token count limit exceeded");
		return true;
	}
	if (st->braces + st->brackets > QMP_JSON_MAX_NESTING) {
		emit_error(st, "%s", "JSON nesting depth limit exceeded");
		return true;
	}
	return false;
}

static void count_nesting(struct qmp_json_stream *st, enum tok_type type)
{
	switch (type) {
	case TOK_LCURLY:
		st->braces++;
		break;
	case TOK_RCURLY:
		if (st->braces)
			st->braces--;
		break;
	case TOK_LSQUARE:
		st->brackets++;
		break;
	case TOK_RSQUARE:
		if (st->brackets)
			st->brackets--;
		break;
	default:
		break;
	}
}

static void finish_message(struct qmp_json_stream *st)
{
	struct mig_error *err = NULL;
	json_t *v = parse_tokens(st->text, st->toks, st->ntoks, &err);

	reset_message(st);
	st->emit(st->opaque, v, err);
}

/* Called with the token's text at text[tok_start..text_len). */
static void process_token(struct qmp_json_stream *st, enum tok_type type)
{
	size_t off = st->tok_start, len = st->text_len - st->tok_start;

	count_nesting(st, type);
	if (st->recovering) {
		st->text_len = st->tok_start; /* drop the token */
	} else if (type == TOK_ERROR) {
		char shown[200];

		qmp_json_utf8_sanitize(st->text + off, len > 64 ? 64 : len,
				       shown, sizeof(shown));
		emit_error(st, "JSON parse error, stray '%s'", shown);
		st->recovering = true;
	} else {
		if (st->ntoks == st->cap_toks) {
			size_t cap = st->cap_toks ? st->cap_toks * 2 : 64;
			struct token *n = realloc(st->toks, cap * sizeof(*n));

			if (!n) {
				emit_error(st, "%s",
					   "JSON token count limit exceeded");
				st->recovering = true;
				goto balanced;
			}
			st->toks = n;
			st->cap_toks = cap;
		}
		st->toks[st->ntoks++] = (struct token){type, off, len};
		if (over_limits(st))
			st->recovering = true;
	}
balanced:
	if (st->braces == 0 && st->brackets == 0) {
		if (st->recovering)
			reset_message(st);
		else
			finish_message(st);
	}
}

static bool text_push(struct qmp_json_stream *st, char c)
{
	if (st->text_len == st->text_cap) {
		size_t cap = st->text_cap ? st->text_cap * 2 : 256;
		char *n;

		if (cap > QMP_JSON_MAX_SIZE + 256)
			cap = QMP_JSON_MAX_SIZE + 256;
		if (st->text_len >= cap)
			return false;
		n = realloc(st->text, cap);
		if (!n)
			return false;
		st->text = n;
		st->text_cap = cap;
	}
	st->text[st->text_len++] = c;
	return true;
}

static bool is_delim(unsigned char c)
{
	return strchr("{}[],: \t\r\n\"'", c) != NULL || c == 0xFF || c == 0;
}

static void start_token(struct qmp_json_stream *st)
{
	st->tok_start = st->text_len;
}

/* Pushes one byte of the current token; a message past the size limit is
 * cut short and reported once. */
static void lex_push(struct qmp_json_stream *st, char c)
{
	if (st->recovering) {
		/* keep only what lexing needs: nothing */
		if (st->text_len - st->tok_start < 64)
			text_push(st, c);
		return;
	}
	if (!text_push(st, c) || st->text_len > QMP_JSON_MAX_SIZE) {
		emit_error(st, "%s", "JSON token size limit exceeded");
		st->recovering = true;
		st->text_len = st->tok_start;
	}
}

static void lex_start(struct qmp_json_stream *st, unsigned char c)
{
	static const char structural[] = "{}[],:";
	static const enum tok_type types[] = {TOK_LCURLY,  TOK_RCURLY,
					      TOK_LSQUARE, TOK_RSQUARE,
					      TOK_COMMA,   TOK_COLON};
	const char *s;

	if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		return;
	start_token(st);
	if (c != 0 && (s = strchr(structural, c))) {
		lex_push(st, (char)c);
		process_token(st, types[s - structural]);
	} else if (c == '"' || c == '\'') {
		st->quote = (char)c;
		lex_push(st, '"');
		st->state = LX_STRING;
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		lex_push(st, (char)c);
		st->state = LX_NUMBER;
	} else if (c >= 'a' && c <= 'z') {
		lex_push(st, (char)c);
		st->state = LX_KEYWORD;
	} else {
		lex_push(st, (char)c);
		process_token(st, TOK_ERROR);
	}
}

static void lex_string(struct qmp_json_stream *st, unsigned char c)
{
	if (c < 0x20) {
		st->state = LX_START;
		process_token(st, TOK_ERROR);
		return;
	}
	if (c == '\\') {
		lex_push(st, '\\');
		st->state = LX_ESCAPE;
	} else if (c == (unsigned char)st->quote) {
		lex_push(st, '"');
		st->state = LX_START;
		process_token(st, TOK_STRING);
	} else if (c ==
		   '"') { /* a double quote inside a single-quoted string */
		lex_push(st, '\\');
		lex_push(st, '"');
	} else {
		lex_push(st, (char)c);
	}
}

static void lex_escape(struct qmp_json_stream *st, unsigned char c)
{
	if (c == 'u') {
		lex_push(st, 'u');
		st->hex_seen = 0;
		st->state = LX_UESCAPE;
	} else if (escape_char((char)c)) {
		lex_push(st, (char)c);
		st->state = LX_STRING;
	} else {
		lex_push(st, (char)c);
		st->state = LX_START;
		process_token(st, TOK_ERROR);
	}
}

static void lex_uescape(struct qmp_json_stream *st, unsigned char c)
{
	lex_push(st, (char)c);
	if (parse_hex_digit((char)c) < 0) {
		st->state = LX_START;
		process_token(st, TOK_ERROR);
	} else if (++st->hex_seen == 4) {
		st->state = LX_STRING;
	}
}

/* JSON number grammar check on the finished token. */
static enum tok_type classify_number(const char *s, size_t n)
{
	size_t i = 0;
	bool is_float = false;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return TOK_ERROR;
	if (i < n && s[i] == '.') {
		size_t d = ++i;

		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return TOK_ERROR;
		is_float = true;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t d;

		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		d = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d)
			return TOK_ERROR;
		is_float = true;
	}
	if (i != n)
		return TOK_ERROR;
	return is_float ? TOK_FLOAT : TOK_INTEGER;
}

static void end_number(struct qmp_json_stream *st)
{
	st->state = LX_START;
	process_token(st, classify_number(st->text + st->tok_start,
					  st->text_len - st->tok_start));
}

static void lex_byte(struct qmp_json_stream *st, unsigned char c)
{
	switch (st->state) {
	case LX_START:
		lex_start(st, c);
		return;
	case LX_STRING:
		lex_string(st, c);
		return;
	case LX_ESCAPE:
		lex_escape(st, c);
		return;
	case LX_UESCAPE:
		lex_uescape(st, c);
		return;
	case LX_NUMBER:
		if (!is_delim(c)) {
			lex_push(st, (char)c);
			return;
		}
		end_number(st);
		lex_start(st, c);
		return;
	case LX_KEYWORD:
		if (!is_delim(c)) {
			lex_push(st, (char)c);
			return;
		}
		st->state = LX_START;
		process_token(st, TOK_KEYWORD);
		lex_start(st, c);
		return;
	}
}

void qmp_json_stream_feed(struct qmp_json_stream *st, const char *buf,
			  size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (c == 0xFF) { /* QMP's resynchronisation byte */
			st->state = LX_START;
			reset_message(st);
			continue;
		}
		lex_byte(st, c);
	}
}

bool qmp_json_stream_is_idle(const struct qmp_json_stream *st)
{
	return st->state == LX_START && !st->ntoks && !st->recovering &&
	       !st->braces && !st->brackets;
}

void qmp_json_stream_flush(struct qmp_json_stream *st)
{
	if (st->state == LX_NUMBER)
		end_number(st);
	else if (st->state == LX_KEYWORD) {
		st->state = LX_START;
		process_token(st, TOK_KEYWORD);
	} else if (st->state != LX_START) {
		st->state = LX_START;
		process_token(st, TOK_ERROR);
	}
	if (st->ntoks && !st->recovering) {
		struct mig_error *err = NULL;

		mig_error_setg(&err, "JSON parse error, premature EOI");
		reset_message(st);
		st->emit(st->opaque, NULL, err);
	}
	reset_message(st);
}

struct collect {
	json_t *value;
	struct mig_error *err;
	int count;
};

static void collect_emit(void *opaque, json_t *value, struct mig_error *err)
{
	struct collect *c = opaque;

	if (c->count++ == 0) {
		c->value = value;
		c->err = err;
		return;
	}
	json_decref(value);
	mig_error_free(err);
}

json_t *qmp_json_parse(const char *buf, size_t len, struct mig_error **errp)
{
	struct collect c = {0};
	struct qmp_json_stream *st = qmp_json_stream_new(collect_emit, &c);

	if (!st) {
		mig_error_setg(errp, "out of memory");
		return NULL;
	}
	qmp_json_stream_feed(st, buf, len);
	qmp_json_stream_flush(st);
	qmp_json_stream_free(st);
	if (c.count > 1) {
		json_decref(c.value);
		mig_error_free(c.err);
		mig_error_setg(errp,
			       "JSON parse error, expecting end of input");
		return NULL;
	}
	if (!c.value && !c.err)
		mig_error_setg(errp, "JSON parse error, premature EOI");
	mig_error_propagate(errp, c.err);
	return c.value;
}
