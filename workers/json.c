/*
 * json.c — strict reading of JSON request bodies, and string escaping
 * for the JSON we write.
 *
 * jsmn tokenises into a fixed token array; it is lenient about the
 * grammar between tokens (missing commas, stray colons, several top
 * level values), so every token is then walked and the bytes between
 * tokens are checked: only whitespace and exactly the separator the
 * grammar expects.  Strings are decoded (escapes, surrogate pairs) and
 * primitives checked against the true/false/null/number grammar, so
 * what passes here is RFC 8259 JSON.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "workers.h"

/* Bounds the work and the nesting depth of one body. */
#define JSON_MAX_TOKENS	128
/* Raw keys longer than this cannot spell a field name. */
#define JSON_KEY_MAX	512

struct jdoc {
	const char	*js;
	size_t		 len;
	jsmntok_t	*tok;
	int		 ntok;
};

static const char *const json_hex = "0123456789abcdef";

static int
json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The bytes js[from, to) between two tokens must be whitespace holding
 * exactly one sep (or none when sep is 0).  Shared with jwt.c, which
 * walks its header and payload the same way.
 */
int
json_gap_ok(const char *js, size_t len, int from, int to, char sep)
{
	int	 seen = 0;

	if (from < 0 || to < from || (size_t)to > len)
		return -1;
	for (; from < to; from++) {
		if (json_ws(js[from]))
			continue;
		if (sep != '\0' && js[from] == sep && !seen) {
			seen = 1;
			continue;
		}
		return -1;
	}
	return (sep == '\0' || seen) ? 0 : -1;
}

static int
json_gap(const struct jdoc *d, int from, int to, char sep)
{
	return json_gap_ok(d->js, d->len, from, to, sep);
}

/* Where a token's text begins and ends, quotes included. */
static int
json_tstart(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static int
json_tend(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

static int
json_digits(const char *s, size_t len, size_t *i)
{
	size_t	 start = *i;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9')
		(*i)++;
	return *i > start ? 0 : -1;
}

/* true, false, null or an RFC 8259 number: 0, else -1.  Shared with
 * jwt.c. */
int
json_primitive_ok(const char *s, size_t len)
{
	size_t	 i = 0;

	if ((len == 4 && memcmp(s, "true", 4) == 0) ||
	    (len == 5 && memcmp(s, "false", 5) == 0) ||
	    (len == 4 && memcmp(s, "null", 4) == 0))
		return 0;
	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i >= len || s[i] < '1' || s[i] > '9' ||
	    json_digits(s, len, &i) == -1)
		return -1;
	if (i < len && s[i] == '.') {
		i++;
		if (json_digits(s, len, &i) == -1)
			return -1;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (json_digits(s, len, &i) == -1)
			return -1;
	}
	return i == len ? 0 : -1;
}

/* The value of hex digit c, or -1. */
int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long
json_hex4(const char *s)
{
	long	 v = 0;
	int	 i, h;

	for (i = 0; i < 4; i++) {
		if ((h = hex_value(s[i])) == -1)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t
json_put_utf8(char *dst, unsigned long cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xc0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xe0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		dst[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	dst[0] = (char)(0xf0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	dst[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode one \u escape (and its low surrogate if it is a high one) at
 * s[*i] (just after the 'u').  Returns the code point or -1.
 */
static long
json_unicode(const char *s, size_t len, size_t *i)
{
	long	 hi, lo;

	if (len - *i < 4 || (hi = json_hex4(s + *i)) == -1)
		return -1;
	*i += 4;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return -1;		/* lone low surrogate */
	if (hi < 0xd800 || hi > 0xdbff)
		return hi;
	if (len - *i < 6 || s[*i] != '\\' || s[*i + 1] != 'u' ||
	    (lo = json_hex4(s + *i + 2)) == -1 || lo < 0xdc00 || lo > 0xdfff)
		return -1;		/* lone high surrogate */
	*i += 6;
	return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
}

/*
 * Decode the string s[0, len) (no quotes) into dst, which has room for
 * len bytes: escapes never grow.  *nul is set if it held \u0000.
 * Returns the decoded length or -1 if the string is not valid JSON.
 */
static long
json_unescape(const char *s, size_t len, char *dst, int *nul)
{
	size_t	 i = 0, o = 0;
	long	 cp;

	*nul = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i++];

		if (c < 0x20)
			return -1;
		if (c != '\\') {
			dst[o++] = (char)c;
			continue;
		}
		if (i >= len)
			return -1;
		switch (s[i++]) {
		case '"':  dst[o++] = '"'; break;
		case '\\': dst[o++] = '\\'; break;
		case '/':  dst[o++] = '/'; break;
		case 'b':  dst[o++] = '\b'; break;
		case 'f':  dst[o++] = '\f'; break;
		case 'n':  dst[o++] = '\n'; break;
		case 'r':  dst[o++] = '\r'; break;
		case 't':  dst[o++] = '\t'; break;
		case 'u':
			if ((cp = json_unicode(s, len, &i)) == -1)
				return -1;
			if (cp == 0)
				*nul = 1;
			o += json_put_utf8(dst + o, (unsigned long)cp);
			break;
		default:
			return -1;
		}
	}
	return (long)o;
}

/*
 * Check the value starting at token *i (and its children), advancing
 * *i past it.  Every string is decoded into scratch (len bytes) to be
 * sure it is valid.
 */
static int
json_check_value(const struct jdoc *d, int *i, char *scratch)
{
	const jsmntok_t	*t;
	int		 k, pos, nul, n;

	if (*i >= d->ntok)
		return -1;
	t = &d->tok[(*i)++];
	switch (t->type) {
	case JSMN_STRING:
		if (t->size != 0)
			return -1;
		return json_unescape(d->js + t->start,
		    (size_t)(t->end - t->start), scratch, &nul) == -1 ? -1 : 0;
	case JSMN_PRIMITIVE:
		if (t->size != 0)
			return -1;
		return json_primitive_ok(d->js + t->start,
		    (size_t)(t->end - t->start));
	case JSMN_ARRAY:
	case JSMN_OBJECT:
		break;
	default:
		return -1;
	}
	pos = t->start + 1;
	n = t->size;
	for (k = 0; k < n; k++) {
		const jsmntok_t *c;

		if (*i >= d->ntok)
			return -1;
		c = &d->tok[*i];
		if (json_gap(d, pos, json_tstart(c), k ? ',' : '\0') == -1)
			return -1;
		if (t->type == JSMN_OBJECT) {
			/* A key: a string owning exactly one value. */
			if (c->type != JSMN_STRING || c->size != 1 ||
			    json_unescape(d->js + c->start,
			    (size_t)(c->end - c->start), scratch, &nul) == -1)
				return -1;
			(*i)++;
			if (*i >= d->ntok || json_gap(d, json_tend(c),
			    json_tstart(&d->tok[*i]), ':') == -1)
				return -1;
			c = &d->tok[*i];
		}
		if (json_check_value(d, i, scratch) == -1)
			return -1;
		/* For a container, end is already past its bracket. */
		pos = json_tend(c);
	}
	return json_gap(d, pos, t->end - 1, '\0');
}

void
field_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
fields_reset(struct field *f, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		f[i].value = NULL;
		f[i].len = 0;
		f[i].present = 0;
		f[i].is_null = 0;
		f[i].num = 0;
	}
}

/* BODY_OK if every required field is present, else BODY_INVALID and
 * the first one missing named in err. */
enum body_status
fields_required(const struct field *f, size_t n, char *err, size_t errlen)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (f[i].required && !f[i].present) {
			field_err(err, errlen, "missing field '%s'",
			    f[i].names[0]);
			return BODY_INVALID;
		}
	return BODY_OK;
}

/* The field one of whose names is the decoded key, or NULL. */
struct field *
field_match(struct field *f, size_t n, const char *key, size_t keylen)
{
	size_t	 i, j;

	for (i = 0; i < n; i++)
		for (j = 0; j < FIELD_NAMES && f[i].names[j] != NULL; j++)
			if (strlen(f[i].names[j]) == keylen &&
			    memcmp(f[i].names[j], key, keylen) == 0)
				return &f[i];
	return NULL;
}

/* Tokenise and validate the whole document; 0 or a status. */
static enum body_status
json_load(struct jdoc *d, char *err, size_t errlen)
{
	jsmn_parser	 p;
	char		*scratch;
	int		 r, i = 0;

	if (d->len == 0 || json_gap(d, 0, (int)d->len, '\0') == 0) {
		field_err(err, errlen, "empty request body");
		return BODY_MALFORMED;
	}
	/* jsmn stops at a NUL, so bytes must be checked first. */
	if (!utf8_valid(d->js, d->len)) {
		field_err(err, errlen, "%s",
		    "request body is not valid UTF-8 text");
		return BODY_MALFORMED;
	}
	jsmn_init(&p);
	r = jsmn_parse(&p, d->js, d->len, d->tok, JSON_MAX_TOKENS);
	if (r == JSMN_ERROR_NOMEM) {
		field_err(err, errlen, "JSON body too complex");
		return BODY_MALFORMED;
	}
	if (r < 1) {
		field_err(err, errlen, "request body is not valid JSON");
		return BODY_MALFORMED;
	}
	d->ntok = r;
	if (d->tok[0].type != JSMN_OBJECT) {
		field_err(err, errlen, "%s",
		    "request body must be a JSON object");
		return BODY_MALFORMED;
	}
	if ((scratch = malloc(d->len)) == NULL) {
		field_err(err, errlen, "out of memory");
		return BODY_NOMEM;
	}
	if (json_gap(d, 0, d->tok[0].start, '\0') == -1 ||
	    json_check_value(d, &i, scratch) == -1 || i != d->ntok ||
	    json_gap(d, d->tok[0].end, (int)d->len, '\0') == -1) {
		free(scratch);
		field_err(err, errlen, "request body is not valid JSON");
		return BODY_MALFORMED;
	}
	free(scratch);
	return BODY_OK;
}

int
field_parse_int(const char *s, size_t len, int64_t *v)
{
	size_t		 i = 0;
	uint64_t	 acc = 0, lim;
	int		 neg = 0;

	if (len > 0 && s[0] == '-') {
		neg = 1;
		i++;
	}
	if (i >= len || (s[i] == '0' && len - i > 1))
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (acc > (lim - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		acc = acc * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg)
		*v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN :
		    -(int64_t)acc;
	else
		*v = (int64_t)acc;
	return 0;
}

static const char *
json_type_name(enum field_type t)
{
	switch (t) {
	case FIELD_INT:
		return "an integer";
	case FIELD_BOOL:
		return "true or false";
	case FIELD_LIST:
		return "an array of strings";
	default:
		return "a string";
	}
}

/* A primitive token (already checked by json_load()) for an integer
 * or boolean field. */
static enum body_status
json_take_primitive(const struct jdoc *d, const jsmntok_t *v,
    struct field *f, char *err, size_t errlen)
{
	const char	*s = d->js + v->start;
	size_t		 len = (size_t)(v->end - v->start);

	if (f->type == FIELD_BOOL && len == 4 && memcmp(s, "true", 4) == 0)
		f->num = 1;
	else if (f->type == FIELD_BOOL && len == 5 &&
	    memcmp(s, "false", 5) == 0)
		f->num = 0;
	else if (f->type == FIELD_INT && len > 0 && s[0] != 't' &&
	    s[0] != 'f' && s[0] != 'n') {
		if (field_parse_int(s, len, &f->num) == -1) {
			field_err(err, errlen, "field '%s' must be an integer "
			    "(no fraction or exponent) that fits 64 bits",
			    f->names[0]);
			return BODY_INVALID;
		}
	} else {
		field_err(err, errlen, "field '%s' must be %s", f->names[0],
		    json_type_name(f->type));
		return BODY_INVALID;
	}
	f->present = 1;
	return BODY_OK;
}

/* An array of strings for a FIELD_LIST field: its items joined by
 * ','.  The items are the tokens right after v (strings have no
 * descendants; any other item is refused before it is skipped). */
static enum body_status
json_take_list(const struct jdoc *d, const jsmntok_t *v, struct field *f,
    char *err, size_t errlen)
{
	const jsmntok_t	*it;
	size_t		 cap = (size_t)(v->end - v->start) + 1, len = 0;
	long		 n;
	int		 k, nul;

	if (v->type != JSMN_ARRAY) {
		field_err(err, errlen, "field '%s' must be an array of strings",
		    f->names[0]);
		return BODY_INVALID;
	}
	if ((f->value = malloc(cap)) == NULL) {
		field_err(err, errlen, "out of memory");
		return BODY_NOMEM;
	}
	f->present = 1;
	for (k = 0; k < v->size; k++) {
		it = v + 1 + k;
		if (it->type != JSMN_STRING) {
			field_err(err, errlen, "field '%s' must be an array of "
			    "strings", f->names[0]);
			return BODY_INVALID;
		}
		if (k > 0)
			f->value[len++] = ',';
		n = json_unescape(d->js + it->start,
		    (size_t)(it->end - it->start), f->value + len, &nul);
		if (n < 0 || nul || memchr(f->value + len, ',', (size_t)n)) {
			field_err(err, errlen, "items of '%s' must not contain "
			    "NUL or ','", f->names[0]);
			return BODY_INVALID;
		}
		len += (size_t)n;
	}
	f->value[len] = '\0';
	f->len = len;
	f->num = v->size;
	return BODY_OK;
}

/* Store the value token v into field f, as f->type wants it. */
static enum body_status
json_take(const struct jdoc *d, const jsmntok_t *v, struct field *f,
    char *err, size_t errlen)
{
	long	 n;
	int	 nul;

	if (f->present) {
		field_err(err, errlen, "duplicate field '%s'", f->names[0]);
		return BODY_INVALID;
	}
	if (v->type == JSMN_PRIMITIVE && v->end - v->start == 4 &&
	    memcmp(d->js + v->start, "null", 4) == 0) {
		if (!f->nullable) {
			field_err(err, errlen, "field '%s' must be %s",
			    f->names[0], json_type_name(f->type));
			return BODY_INVALID;
		}
		f->present = 1;
		f->is_null = 1;
		return BODY_OK;
	}
	if (f->type == FIELD_LIST)
		return json_take_list(d, v, f, err, errlen);
	if (f->type != FIELD_STRING) {
		if (v->type != JSMN_PRIMITIVE) {
			field_err(err, errlen, "field '%s' must be %s",
			    f->names[0], json_type_name(f->type));
			return BODY_INVALID;
		}
		return json_take_primitive(d, v, f, err, errlen);
	}
	if (v->type != JSMN_STRING) {
		field_err(err, errlen, "field '%s' must be a string",
		    f->names[0]);
		return BODY_INVALID;
	}
	if ((f->value = malloc((size_t)(v->end - v->start) + 1)) == NULL) {
		field_err(err, errlen, "out of memory");
		return BODY_NOMEM;
	}
	f->present = 1;
	/* Already validated by json_load(). */
	n = json_unescape(d->js + v->start, (size_t)(v->end - v->start),
	    f->value, &nul);
	if (n < 0 || nul) {
		field_err(err, errlen, "field '%s' must not contain NUL",
		    f->names[0]);
		return BODY_INVALID;
	}
	f->value[n] = '\0';
	f->len = (size_t)n;
	return BODY_OK;
}

/*
 * Walk the top-level members (tokens after the object token) and fill
 * the fields whose names appear.
 */
static enum body_status
json_collect(const struct jdoc *d, struct field *f, size_t n, char *err,
    size_t errlen)
{
	char		 key[JSON_KEY_MAX];
	const jsmntok_t	*k;
	struct field	*m;
	enum body_status st;
	int		 i = 1, member, skip, nul;
	long		 kl;

	for (member = 0; member < d->tok[0].size; member++) {
		k = &d->tok[i];
		kl = -1;
		/* Escapes never grow, so the raw length bounds the key. */
		if (k->end - k->start <= (int)sizeof(key))
			kl = json_unescape(d->js + k->start,
			    (size_t)(k->end - k->start), key, &nul);
		m = NULL;
		if (kl >= 0)
			m = field_match(f, n, key, (size_t)kl);
		i++;
		if (m != NULL && (st = json_take(d, &d->tok[i], m, err,
		    errlen)) != BODY_OK)
			return st;
		/* Skip the value and all its descendants: a key's size is
		 * its one value, a container's its members. */
		for (skip = 1; skip > 0 && i < d->ntok; i++)
			skip += d->tok[i].size - 1;
	}
	return BODY_OK;
}

enum body_status
json_parse_fields(const char *js, size_t len, struct field *f, size_t n,
    char *err, size_t errlen)
{
	jsmntok_t	*tok;
	struct jdoc	 d;
	enum body_status st;

	fields_reset(f, n);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (len > INT_MAX / 2) {
		field_err(err, errlen, "request body too large");
		return BODY_MALFORMED;
	}
	if ((tok = calloc(JSON_MAX_TOKENS, sizeof(*tok))) == NULL) {
		field_err(err, errlen, "out of memory");
		return BODY_NOMEM;
	}
	d.js = js == NULL ? "" : js;
	d.len = js == NULL ? 0 : len;
	d.tok = tok;
	d.ntok = 0;
	if ((st = json_load(&d, err, errlen)) != BODY_OK ||
	    (st = json_collect(&d, f, n, err, errlen)) != BODY_OK)
		goto fail;
	if ((st = fields_required(f, n, err, errlen)) != BODY_OK)
		goto fail;
	free(tok);
	return BODY_OK;
fail:
	free(tok);
	fields_free(f, n);
	return st;
}

/*
 * The length of the valid UTF-8 sequence at s[0, len), or 0 if it is
 * not one (overlong, surrogate, above U+10FFFF, truncated, NUL).
 */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	size_t	 n, i;
	unsigned long cp;

	if (s[0] == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t	 i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(u + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

/*
 * Append s as a JSON string.  Valid UTF-8 passes through byte-exact;
 * a byte that does not start a valid sequence becomes U+FFFD so the
 * output is always valid JSON.  0, or -1 if the buffer failed.
 */
int
json_put_str(struct buf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	char	 esc[7];
	size_t	 i = 0, run, n;
	int	 rc = 0;

	rc |= buf_add(b, "\"", 1);
	while (i < len) {
		for (run = i; run < len && u[run] >= 0x20 && u[run] < 0x80 &&
		    u[run] != '"' && u[run] != '\\'; run++)
			;
		if (run > i) {
			rc |= buf_add(b, s + i, run - i);
			i = run;
			continue;
		}
		if (u[i] >= 0x80) {
			if ((n = utf8_seq(u + i, len - i)) == 0) {
				rc |= buf_add(b, "\\ufffd", 6);
				n = 1;
			} else
				rc |= buf_add(b, s + i, n);
			i += n;
			continue;
		}
		switch (u[i]) {
		case '"':  rc |= buf_add(b, "\\\"", 2); break;
		case '\\': rc |= buf_add(b, "\\\\", 2); break;
		case '\b': rc |= buf_add(b, "\\b", 2); break;
		case '\f': rc |= buf_add(b, "\\f", 2); break;
		case '\n': rc |= buf_add(b, "\\n", 2); break;
		case '\r': rc |= buf_add(b, "\\r", 2); break;
		case '\t': rc |= buf_add(b, "\\t", 2); break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = json_hex[u[i] >> 4];
			esc[5] = json_hex[u[i] & 0xf];
			rc |= buf_add(b, esc, 6);
			break;
		}
		i++;
	}
	rc |= buf_add(b, "\"", 1);
	return (rc != 0 || b->failed) ? -1 : 0;
}
