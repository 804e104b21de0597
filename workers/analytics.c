/*
 * analytics.c — visit analytics: what a redirect records, and the
 * owner's routes that read the records.
 *
 *	/<id>/visits	GET, HEAD (the link's visits, newest first)	🔒
 *
 * On the redirect path (analytics = yes) a visit becomes a struct
 * visit_rec in the worker's visit batch (visits.c): its time, the
 * Referer's host, the User-Agent's class (ua.c) and the country of
 * REMOTE_ADDR (geoip.c, when geoip_db is set).  That is CPU only, a
 * few microseconds: no database write, no allocation.  The address
 * goes no further than the country lookup; the User-Agent no further
 * than its class.  The batch writes the records in the transaction
 * of the flush that adds the link's count, as multi-row INSERTs.
 *
 * Bots (ua.c's table: crawlers, link previewers, scripts) are
 * recorded with device "bot" but never counted: not in urls.visits,
 * and not against max_visits (shortener.c skips the counting UPDATE).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#define VISITS_CURSOR_RAW	(20 + 1 + 10)	/* "<at_ms>.<uniq>" */
#define VISITS_CURSOR_MAX	(VISITS_CURSOR_RAW / 3 * 4 + 8)

int
analytics_init(struct worker_ctx *ctx)
{
	const struct config	*cfg = ctx->cfg;
	char			 err[600];

	ctx->analytics = cfg->analytics && cfg->count_visits;
	if (!ctx->analytics || cfg->geoip_db[0] == '\0')
		return 0;
	/* Checked at start-up; a file replaced since is refused here. */
	if ((ctx->geoip = geoip_open(cfg->geoip_db, err, sizeof(err))) ==
	    NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

void
analytics_fini(struct worker_ctx *ctx)
{
	geoip_close(ctx->geoip);
	ctx->geoip = NULL;
}

int
analytics_visit(const struct worker_ctx *ctx, const struct request *req,
    int64_t now_us, struct visit_rec *r, char ref[REFERER_HOST_MAX + 1])
{
	struct ua_class	 c;
	const char	*h;

	memset(r, 0, sizeof(*r));
	r->at_ms = now_us / 1000;
	h = request_param(req, "HTTP_USER_AGENT");
	ua_classify(h, h != NULL ? strlen(h) : 0, &c);
	r->browser = c.browser;
	r->os = c.os;
	r->device = c.device;
	h = request_param(req, "HTTP_REFERER");
	if (h != NULL && referer_host(h, strlen(h), ref,
	    REFERER_HOST_MAX + 1) > 0)
		r->ref = ref;
	if (ctx->geoip != NULL)
		(void)geoip_country(ctx->geoip, req->remote_addr, r->country);
	return c.bot;
}

/* ------------------------------------------------------------------ */
/* query parameters                                                    */
/* ------------------------------------------------------------------ */

/*
 * ?name= as an RFC 3339 time, in ms: 1 and *ms when given, 0 when
 * absent or empty, -1 with the 400 (naming the parameter) in resp.
 */
static int
analytics_time(const struct request *req, struct response *resp,
    const char *name, int64_t *ms)
{
	char	 s[RFC3339_MAX + 8], msg[160];
	int64_t	 us;
	int	 n;

	if ((n = request_query(req, name, s, sizeof(s))) == -1 || n == 0)
		return 0;
	if (n > 0 && rfc3339_parse(s, (size_t)n, &us) == 0) {
		*ms = us / 1000;
		return 1;
	}
	snprintf(msg, sizeof(msg), "%s must be an RFC 3339 date-time, e.g. "
	    "2030-01-31T12:00:00Z", name);
	response_error(resp, 400, "error", msg);
	return -1;
}

/*
 * ?since= and ?until=: the period [since, until) in ms; until defaults
 * to now, since to until - default_days (0: the beginning).  0, or -1
 * with the 400 in resp.
 */
static int
analytics_period(const struct request *req, struct response *resp,
    int default_days, int64_t *since_ms, int64_t *until_ms)
{
	int	 s, u;

	*until_ms = short_now_us() / 1000 + 1;
	*since_ms = 0;
	if ((s = analytics_time(req, resp, "since", since_ms)) == -1 ||
	    (u = analytics_time(req, resp, "until", until_ms)) == -1)
		return -1;
	if (s == 0 && default_days > 0)
		*since_ms = *until_ms - (int64_t)default_days * 86400000;
	if (s == 1 && u == 1 && *since_ms > *until_ms) {
		response_error(resp, 400, "error", "since must not be after "
		    "until");
		return -1;
	}
	if (*since_ms > *until_ms)
		*since_ms = *until_ms;	/* an empty period */
	return 0;
}

/* ?bots=include|exclude|only (default include): DB_BOTS_*, or -1
 * with the 400 in resp. */
static int
analytics_bots(const struct request *req, struct response *resp, int def)
{
	char	 s[16];
	int	 n;

	if ((n = request_query(req, "bots", s, sizeof(s))) == -1 || n == 0)
		return def;
	if (n > 0 && strcmp(s, "include") == 0)
		return DB_BOTS_INCLUDE;
	if (n > 0 && strcmp(s, "exclude") == 0)
		return DB_BOTS_EXCLUDE;
	if (n > 0 && strcmp(s, "only") == 0)
		return DB_BOTS_ONLY;
	response_error(resp, 400, "error", "bots must be include, exclude "
	    "or only");
	return -1;
}

/* The cursor of GET /<id>/visits: base64url of "<at_ms>.<uniq>" of
 * the last visit a page showed. */
static void
analytics_cursor_put(struct buf *b, int64_t at_ms, uint32_t uniq)
{
	char	 raw[VISITS_CURSOR_RAW + 1], out[VISITS_CURSOR_MAX + 1];
	int	 n;

	n = snprintf(raw, sizeof(raw), "%lld.%u", (long long)at_ms, uniq);
	if (n < 0 || (size_t)n >= sizeof(raw) || b64url_encode(
	    (const uint8_t *)raw, (size_t)n, out, sizeof(out)) < 0)
		buf_puts(b, "null");
	else
		json_put_str(b, out, strlen(out));
}

/* ?cursor= (or ?after=, as GET / names it): 1 and the position, 0
 * when absent, -1 with the 400 in resp. */
static int
analytics_cursor_get(const struct request *req, struct response *resp,
    int64_t *at_ms, uint32_t *uniq)
{
	char		 s[VISITS_CURSOR_MAX + 2];
	uint8_t		 raw[VISITS_CURSOR_RAW + 1];
	long		 n;
	int		 len;
	char		*dot, *end;
	unsigned long long a, u;

	if ((len = request_query(req, "cursor", s, sizeof(s))) == -1)
		len = request_query(req, "after", s, sizeof(s));
	if (len == -1 || len == 0)
		return 0;
	if (len < 0 || len > VISITS_CURSOR_MAX ||
	    (n = b64url_decode(s, (size_t)len, raw, sizeof(raw) - 1)) <= 0)
		goto bad;
	raw[n] = '\0';
	if (raw[0] < '0' || raw[0] > '9' ||
	    (dot = strchr((char *)raw, '.')) == NULL || dot[1] < '0' ||
	    dot[1] > '9' || dot - (char *)raw > 18)
		goto bad;
	a = strtoull((char *)raw, &end, 10);
	if (end != dot)
		goto bad;
	u = strtoull(dot + 1, &end, 10);
	if (*end != '\0' || u > UINT32_MAX || strlen(dot + 1) > 10)
		goto bad;
	*at_ms = (int64_t)a;
	*uniq = (uint32_t)u;
	return 1;
bad:
	response_error(resp, 400, "error", "invalid cursor");
	return -1;
}

/* ------------------------------------------------------------------ */
/* GET /<id>/visits                                                    */
/* ------------------------------------------------------------------ */

/* A name (or null) as a JSON value. */
static void
analytics_put_name(struct buf *b, const char *name)
{
	if (name == NULL || name[0] == '\0')
		buf_puts(b, "null");
	else
		json_put_str(b, name, strlen(name));
}

static void
analytics_put_visit(struct buf *b, const struct db_visit_row *v)
{
	buf_puts(b, "{\"at\":");
	short_put_time(b, v->at_ms * 1000);
	buf_puts(b, ",\"referer\":");
	analytics_put_name(b, v->referer);
	buf_puts(b, ",\"country\":");
	analytics_put_name(b, v->country);
	buf_puts(b, ",\"browser\":");
	analytics_put_name(b, ua_browser_name(v->browser));
	buf_puts(b, ",\"os\":");
	analytics_put_name(b, ua_os_name(v->os));
	buf_puts(b, ",\"device\":");
	analytics_put_name(b, ua_device_name(v->device));
	buf_puts(b, v->device == UA_D_BOT ? ",\"bot\":true}" :
	    ",\"bot\":false}");
}

/*
 * GET /<id>/visits — the owner's view of a link's visits, newest
 * first, a page at a time: 403 (token), 404, 403 (owner), then 400
 * for a bad parameter.  One row more than the page is read to know
 * whether another page follows.
 */
void
analytics_visits(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	struct jwt_claims	 claims;
	struct db_url		 u;
	struct db_visit_row	*rows = NULL;
	struct buf		 b;
	int64_t			 since, until, at = INT64_MAX;
	uint32_t		 uniq = UINT32_MAX;
	size_t			 n = 0, i, shown;
	long			 limit;
	int			 bots;

	memset(&u, 0, sizeof(u));
	buf_init(&b);
	if (short_token(ctx, req, resp, &claims) == -1 ||
	    short_owned(ctx, resp, id, &claims, &u) == -1 ||
	    (limit = short_limit(ctx, req, resp)) == -1 ||
	    analytics_period(req, resp, 0, &since, &until) == -1 ||
	    (bots = analytics_bots(req, resp, DB_BOTS_INCLUDE)) == -1 ||
	    analytics_cursor_get(req, resp, &at, &uniq) == -1)
		goto out;
	if ((rows = calloc((size_t)limit + 1, sizeof(*rows))) == NULL ||
	    db_visit_list(ctx->db, id, since, until, bots, at, uniq, rows,
	    (size_t)limit + 1, &n) != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	shown = n > (size_t)limit ? (size_t)limit : n;
	buf_puts(&b, "{\"items\":[");
	for (i = 0; i < shown; i++) {
		if (i > 0)
			buf_puts(&b, ",");
		analytics_put_visit(&b, &rows[i]);
	}
	buf_puts(&b, "],\"next\":");
	if (n > shown)
		analytics_cursor_put(&b, rows[shown - 1].at_ms,
		    rows[shown - 1].uniq);
	else
		buf_puts(&b, "null");
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	free(rows);
	db_url_clear(&u);
	buf_free(&b);
}
