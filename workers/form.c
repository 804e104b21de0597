/*
 * form.c — application/x-www-form-urlencoded bodies (the HTML form
 * encoding of the WHATWG URL standard), read into the same fields as
 * JSON bodies, and the percent-decoder the query string uses too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

long
url_decode(const char *src, size_t srclen, char *dst, size_t dstlen,
    int plus)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	if (dstlen == 0)
		return -1;
	for (i = 0; i < srclen; i++) {
		char c = src[i];

		if (c == '%') {
			if (srclen - i < 3 ||
			    (hi = hex_value(src[i + 1])) == -1 ||
			    (lo = hex_value(src[i + 2])) == -1)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus)
			c = ' ';
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return (long)o;
}

/*
 * A form carries text only: an integer field takes decimal digits, a
 * boolean true/false (or 1/0), and a nullable field an empty value as
 * null.
 */
static enum body_status
form_typed(struct field *m, const char *val, size_t len, char *err,
    size_t errlen)
{
	if (m->nullable && len == 0)
		m->is_null = 1;
	else if (m->type == FIELD_INT) {
		if (field_parse_int(val, len, &m->num) == -1) {
			field_err(err, errlen, "field '%s' must be an integer",
			    m->names[0]);
			return BODY_INVALID;
		}
	} else if (m->type == FIELD_BOOL) {
		if (strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
			m->num = 1;
		else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
			m->num = 0;
		else {
			field_err(err, errlen, "field '%s' must be true or "
			    "false", m->names[0]);
			return BODY_INVALID;
		}
	} else {
		field_err(err, errlen, "field '%s' must be text", m->names[0]);
		return BODY_INVALID;
	}
	m->present = 1;
	return BODY_OK;
}

/*
 * One "key=value" pair s[0, len).  The value of a wanted key is decoded
 * into a malloc'd copy owned by its field.
 */
static enum body_status
form_pair(const char *s, size_t len, struct field *f, size_t n,
    char *err, size_t errlen)
{
	const char	*eq;
	struct field	*m;
	char		*key = NULL, *val = NULL;
	size_t		 klen, vlen;
	long		 kl, vl, j;
	enum body_status st = BODY_OK;

	eq = memchr(s, '=', len);
	klen = eq != NULL ? (size_t)(eq - s) : len;
	vlen = eq != NULL ? len - klen - 1 : 0;
	if ((key = malloc(klen + 1)) == NULL ||
	    (val = malloc(vlen + 1)) == NULL) {
		field_err(err, errlen, "out of memory");
		st = BODY_NOMEM;
		goto out;
	}
	if ((kl = url_decode(s, klen, key, klen + 1, 1)) == -1 ||
	    (vl = url_decode(eq != NULL ? eq + 1 : "", vlen, val, vlen + 1,
	    1)) == -1) {
		field_err(err, errlen, "%s",
		    "request body has a bad percent escape");
		st = BODY_MALFORMED;
		goto out;
	}
	if ((m = field_match(f, n, key, (size_t)kl)) == NULL)
		goto out;
	if (m->present) {
		field_err(err, errlen, "duplicate field '%s'", m->names[0]);
		st = BODY_INVALID;
		goto out;
	}
	if (!utf8_valid(val, (size_t)vl)) {
		field_err(err, errlen,
		    "field '%s' must be UTF-8 text without NUL", m->names[0]);
		st = BODY_INVALID;
		goto out;
	}
	if (m->type == FIELD_LIST && !(m->nullable && vl == 0)) {
		/* "a,b,c"; empty: no items */
		m->num = vl == 0 ? 0 : 1;
		for (j = 0; j < vl; j++)
			m->num += val[j] == ',';
	} else if (m->type != FIELD_STRING || (m->nullable && vl == 0)) {
		st = form_typed(m, val, (size_t)vl, err, errlen);
		goto out;
	}
	m->value = val;
	m->len = (size_t)vl;
	m->present = 1;
	val = NULL;
out:
	free(key);
	free(val);
	return st;
}

enum body_status
form_parse_fields(const char *s, size_t len, struct field *f, size_t n,
    char *err, size_t errlen)
{
	const char	*amp;
	size_t		 plen;
	enum body_status st;

	fields_reset(f, n);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (s == NULL)
		len = 0;
	while (len > 0) {
		amp = memchr(s, '&', len);
		plen = amp != NULL ? (size_t)(amp - s) : len;
		/* Empty pairs ("a=1&&b=2") are skipped, as browsers do. */
		if (plen > 0 &&
		    (st = form_pair(s, plen, f, n, err, errlen)) != BODY_OK)
			goto fail;
		if (amp == NULL)
			break;
		s += plen + 1;
		len -= plen + 1;
	}
	if ((st = fields_required(f, n, err, errlen)) != BODY_OK)
		goto fail;
	return BODY_OK;
fail:
	fields_free(f, n);
	return st;
}
