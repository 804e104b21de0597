/*
 * short_input.c — what a request to the shortener brings, checked: the
 * token (its signature, then its user), the URL, a link's limits, and
 * the paging parameters of a listing (the body: body_read()).  Each
 * check either fills what the handler needs or puts the refusal (400,
 * 403, 503) in the response; the order of checks is the handlers'
 * (shortener.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workers.h"

#define EXPIRES_IN_MAX		(100LL * 366 * 86400)	/* s */

/* 0 if the URL field f holds an acceptable target, else -1 with the
 * 400 in resp. */
int
short_url_ok(struct response *resp, const struct field *f)
{
	char	 err[256];

	if (url_validate(f->value, f->len, err, sizeof(err)) == -1) {
		response_error(resp, 400, "error", err);
		return -1;
	}
	return 0;
}

/* The opaque cursor: base64url of "<key>.<id>" of the last item
 * a page showed.  0, or -1 if out does not hold it. */
int
short_cursor_encode(int64_t key, const char *id, char *out,
    size_t outlen)
{
	char	 raw[CURSOR_RAW_MAX + 1];
	int	 n;

	n = snprintf(raw, sizeof(raw), "%lld.%s", (long long)key, id);
	if (n < 0 || (size_t)n >= sizeof(raw))
		return -1;
	return b64url_encode((const uint8_t *)raw, (size_t)n, out,
	    outlen) < 0 ? -1 : 0;
}

/* The inverse; -1 for anything a cursor we made cannot look like. */
int
short_cursor_decode(const char *s, size_t len, int64_t *key,
    char id[ID_MAX + 1])
{
	uint8_t		 raw[CURSOR_RAW_MAX + 1];
	long		 n;
	size_t		 i, idlen;
	int64_t		 v = 0;

	if (len > CURSOR_MAX ||
	    (n = b64url_decode(s, len, raw, sizeof(raw) - 1)) <= 0)
		return -1;
	for (i = 0; i < (size_t)n && raw[i] >= '0' && raw[i] <= '9'; i++) {
		if (i >= 18)		/* stays well inside int64_t */
			return -1;
		v = v * 10 + (raw[i] - '0');
	}
	if (i == 0 || i >= (size_t)n || raw[i] != '.')
		return -1;
	idlen = (size_t)n - i - 1;
	if (!id_valid((const char *)raw + i + 1, idlen))
		return -1;
	memcpy(id, raw + i + 1, idlen);
	id[idlen] = '\0';
	*key = v;
	return 0;
}

/* ?limit=: 1..list_max_limit, absent or empty gives the default.
 * The number, or -1 with the 400 in resp. */
long
short_limit(const struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	const struct config	*cfg = ctx->cfg;
	char			 s[16], msg[96];
	long			 v = 0;
	int			 n, i;

	n = request_query(req, "limit", s, sizeof(s));
	if (n == -1 || n == 0) {
		v = cfg->list_default_limit;
		if (v < 1)
			v = 1;
		if (v > cfg->list_max_limit)
			v = cfg->list_max_limit;
		return v;
	}
	for (i = 0; n > 0 && i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > cfg->list_max_limit) {
			v = 0;
			break;
		}
		v = v * 10 + (s[i] - '0');
	}
	if (n < 0 || v < 1 || v > cfg->list_max_limit) {
		snprintf(msg, sizeof(msg),
		    "limit must be an integer from 1 to %d",
		    cfg->list_max_limit);
		response_error(resp, 400, "error", msg);
		return -1;
	}
	return v;
}

/*
 * expires_at (RFC 3339), expires_in (seconds from now) and max_visits
 * of a body into lim; null clears a limit.  A new link may not expire
 * in the past; an existing one may (that expires it now).  0, or -1
 * with the 400 in resp.
 */
int
short_limits(struct response *resp, const struct field *at,
    const struct field *in, const struct field *max, int64_t now_us,
    int creating, struct short_limits *lim)
{
	const char	*why = NULL;
	int64_t		 t;

	memset(lim, 0, sizeof(*lim));
	if (at->present && in->present)
		why = "give expires_at or expires_in, not both";
	else if (at->present) {
		lim->set_expires = 1;
		if (at->is_null)
			;
		else if (rfc3339_parse(at->value, at->len, &t) == -1)
			why = "expires_at must be an RFC 3339 date-time, "
			    "e.g. 2030-01-31T12:00:00Z";
		else if (creating && t <= now_us)
			why = "expires_at is in the past";
		else
			lim->expires_us = t;
	} else if (in->present) {
		lim->set_expires = 1;
		if (in->is_null)
			;
		else if (in->num < 1 || in->num > EXPIRES_IN_MAX)
			why = "expires_in must be a number of seconds from 1 "
			    "to 3162240000 (100 years)";
		else
			lim->expires_us = now_us + in->num * 1000000;
	}
	if (why == NULL && max->present) {
		lim->set_max_visits = 1;
		if (max->is_null)
			;
		else if (max->num < 1 || max->num > MAX_VISITS_MAX)
			why = "max_visits must be an integer from 1 to "
			    "9007199254740991";
		else
			lim->max_visits = max->num;
	}
	if (why == NULL)
		return 0;
	response_error(resp, 400, "error", why);
	return -1;
}
