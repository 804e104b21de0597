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

#define RETENTION_FIRST_MS	2000	/* after a worker starts */
#define RETENTION_PASS_MS	3600000	/* between passes */
#define RETENTION_STEP_MS	100	/* between steps of a pass */
#define RETENTION_BUSY_MS	60000	/* another session has the lock */
#define RETENTION_STEP_LINKS	16	/* links looked at per step */

#define UA_CACHE		256	/* User-Agent classes kept, power of 2 */

/* A worker's analytics state: where its pass over the links with
 * visit rows is, and the classes of the User-Agents it saw last (a
 * site's visitors send few distinct ones): a 64-bit hash of the whole
 * string and its length are the key. */
struct analytics {
	char		 cursor[ID_MAX + 1];	/* last link done, "" start */
	int64_t		 next_ms;	/* CLOCK_MONOTONIC of the next step */
	struct {
		uint64_t	 hash;		/* 0: empty */
		size_t		 len;
		struct ua_class	 c;
	} ua[UA_CACHE];
};

int
analytics_init(struct worker_ctx *ctx)
{
	const struct config	*cfg = ctx->cfg;
	char			 err[600];

	ctx->analytics = cfg->analytics && cfg->count_visits;
	if (!ctx->analytics)
		return 0;
	if ((ctx->an = calloc(1, sizeof(*ctx->an))) == NULL) {
		log_warnx("out of memory for visit analytics");
		return -1;
	}
	if (cfg->geoip_db[0] == '\0')
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
	free(ctx->an);
	ctx->an = NULL;
}

/*
 * One step of retention: with the database's retention lock, up to
 * RETENTION_STEP_LINKS links (or one link's batch of old rows) are
 * rolled up into visits_daily and their old rows deleted.  Passes over
 * every link with visit rows begin RETENTION_FIRST_MS after the worker
 * starts, then every RETENTION_PASS_MS; each worker keeps its own
 * cursor, and the lock makes them take turns.
 */
static void
analytics_retention_step(struct worker_ctx *ctx, struct analytics *r,
    int64_t now_ms)
{
	char		 id[ID_MAX + 1];
	int64_t		 day = 86400000, cutoff;
	uint64_t	 deleted, total = 0;
	enum db_status	 st;
	int		 k, more = 0;

	cutoff = short_now_us() / 1000 / day * day -
	    (int64_t)ctx->cfg->visits_keep_days * day;
	if ((st = db_visit_retention_lock(ctx->db, 1)) != DB_OK) {
		r->next_ms = now_ms + (st == DB_NOTFOUND ? RETENTION_BUSY_MS :
		    RETENTION_PASS_MS / 60);
		return;
	}
	for (k = 0; k < RETENTION_STEP_LINKS && !more; k++) {
		if ((st = db_visit_next_link(ctx->db, r->cursor, id)) != DB_OK)
			break;
		if ((st = db_visit_rollup(ctx->db, id, cutoff, &more,
		    &deleted)) != DB_OK)
			break;
		total += deleted;
		if (!more)
			memcpy(r->cursor, id, strlen(id) + 1);
	}
	(void)db_visit_retention_lock(ctx->db, 0);
	if (total > 0)
		log_info("visits: %llu visit rows older than %d days rolled "
		    "up into per-day counts", (unsigned long long)total,
		    ctx->cfg->visits_keep_days);
	if (st == DB_NOTFOUND) {		/* the pass is over */
		r->cursor[0] = '\0';
		r->next_ms = now_ms + RETENTION_PASS_MS;
	} else if (st != DB_OK)
		r->next_ms = now_ms + RETENTION_PASS_MS / 60;
	else
		r->next_ms = now_ms + RETENTION_STEP_MS;
}

int
analytics_tick(struct worker_ctx *ctx, int64_t now_ms)
{
	struct analytics	*r = ctx->an;
	int64_t			 left;

	if (r == NULL || ctx->db == NULL)
		return -1;
	if (r->next_ms == 0)
		r->next_ms = now_ms + RETENTION_FIRST_MS;
	if (now_ms >= r->next_ms) {
		/* Requests on kept connections are not held up. */
		ctx->let_go(ctx);
		analytics_retention_step(ctx, r, now_ms);
	}
	left = r->next_ms - now_ms;
	return left < 0 ? 0 : left > 3600000 ? 3600000 : (int)left;
}

/* The class of User-Agent ua (may be NULL), from the worker's cache
 * or ua.c. */
static void
analytics_ua(struct analytics *a, const char *ua, struct ua_class *c)
{
	uint64_t	 h = 14695981039346656037ULL;
	size_t		 len, i;

	if (ua == NULL || a == NULL) {
		ua_classify(ua, ua != NULL ? strlen(ua) : 0, c);
		return;
	}
	for (len = 0; ua[len] != '\0'; len++) {
		h ^= (unsigned char)ua[len];
		h *= 1099511628211ULL;
	}
	h |= 1;
	i = (size_t)(h >> 32) & (UA_CACHE - 1);
	if (a->ua[i].hash == h && a->ua[i].len == len) {
		*c = a->ua[i].c;
		return;
	}
	ua_classify(ua, len, c);
	a->ua[i].hash = h;
	a->ua[i].len = len;
	a->ua[i].c = *c;
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
	analytics_ua(ctx->an, h, &c);
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

/* ------------------------------------------------------------------ */
/* summaries: GET /<id>/stats (appended) and GET /stats                */
/* ------------------------------------------------------------------ */

#define STATS_DEFAULT_DAYS	30
#define STATS_MAX_DAYS		3660
#define DAY_MS			86400000LL

/* One entry of a class top: its name (NULL: unknown) and visits. */
struct analytics_entry {
	const char	*name;
	int64_t		 visits;
};

static int
analytics_entry_cmp(const void *a, const void *b)
{
	const struct analytics_entry *x = a, *y = b;

	if (x->visits != y->visits)
		return x->visits < y->visits ? 1 : -1;
	if (x->name == NULL || y->name == NULL)
		return x->name == NULL ? (y->name == NULL ? 0 : 1) : -1;
	return strcmp(x->name, y->name);
}

/* ,"key":[{"name","visits"},...] of the n entries (sorted here), the
 * top DB_TOP_MAX and the rest of total as "other". */
static void
analytics_put_top(struct buf *b, const char *key,
    struct analytics_entry *e, size_t n, int64_t total)
{
	size_t	 i, shown = 0;
	int64_t	 sum = 0;

	qsort(e, n, sizeof(*e), analytics_entry_cmp);
	buf_printf(b, ",\"%s\":[", key);
	for (i = 0; i < n && shown < DB_TOP_MAX; i++) {
		if (e[i].visits <= 0)
			continue;
		buf_puts(b, shown++ > 0 ? ",{\"name\":" : "{\"name\":");
		analytics_put_name(b, e[i].name);
		buf_printf(b, ",\"visits\":%lld}", (long long)e[i].visits);
		sum += e[i].visits;
	}
	if (total > sum)
		buf_printf(b, "%s{\"name\":\"other\",\"visits\":%lld}",
		    shown > 0 ? "," : "", (long long)(total - sum));
	buf_puts(b, "]");
}

/* A class top from counts by id, names from name(). */
static void
analytics_put_classes(struct buf *b, const char *key, const int64_t *count,
    size_t n, const char *(*name)(unsigned int), int64_t total)
{
	struct analytics_entry	 e[UA_BROWSERS];
	size_t			 i;

	for (i = 0; i < n && i < UA_BROWSERS; i++) {
		e[i].name = name((unsigned int)i);
		e[i].visits = count[i];
	}
	analytics_put_top(b, key, e, i, total);
}

/* A top the database gave (names, "" for none). */
static void
analytics_put_db_top(struct buf *b, const char *key, const struct db_top *t,
    size_t n, int64_t total)
{
	struct analytics_entry	 e[DB_TOP_MAX];
	size_t			 i;

	for (i = 0; i < n && i < DB_TOP_MAX; i++) {
		e[i].name = t[i].name[0] != '\0' ? t[i].name : NULL;
		e[i].visits = t[i].visits;
	}
	analytics_put_top(b, key, e, i, total);
}

/*
 * Read ?since= and ?until= (default: the last 30 days) and summarise
 * the visits of link key, or of all of user key's links, into b as
 * JSON members (each starting with a comma).  0, or -1 with the 400
 * (or 503) in resp.
 */
static int
analytics_summary(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *key, int user, struct buf *b)
{
	struct db_summary	 s;
	char			 day[RFC3339_MAX];
	int64_t			 last_day, sum = 0;
	size_t			 i;
	int			 rc = -1;

	memset(&s, 0, sizeof(s));
	if (analytics_period(req, resp, STATS_DEFAULT_DAYS, &s.since_ms,
	    &s.until_ms) == -1)
		return -1;
	s.first_day = s.since_ms / DAY_MS;
	last_day = (s.until_ms > s.since_ms ? s.until_ms - 1 : s.since_ms) /
	    DAY_MS;
	if (last_day - s.first_day + 1 > STATS_MAX_DAYS) {
		response_error(resp, 400, "error", "since: the period is at "
		    "most 3660 days");
		return -1;
	}
	s.ndays = (size_t)(last_day - s.first_day + 1);
	if ((s.day_visits = calloc(s.ndays, sizeof(int64_t))) == NULL ||
	    (s.day_bots = calloc(s.ndays, sizeof(int64_t))) == NULL ||
	    db_visit_summary(ctx->db, key, user, &s) != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	buf_puts(b, ",\"since\":");
	short_put_time(b, s.since_ms * 1000);
	buf_puts(b, ",\"until\":");
	short_put_time(b, s.until_ms * 1000);
	buf_puts(b, ",\"by_day\":[");
	for (i = 0; i < s.ndays; i++) {
		/* "YYYY-MM-DD" of the day's midnight, UTC */
		if (rfc3339_format(((int64_t)i + s.first_day) * DAY_MS * 1000,
		    day, sizeof(day)) < 10)
			goto out;
		day[10] = '\0';
		buf_printf(b, "%s{\"date\":\"%s\",\"visits\":%lld,"
		    "\"bots\":%lld}", i > 0 ? "," : "", day,
		    (long long)s.day_visits[i], (long long)s.day_bots[i]);
		sum += s.day_visits[i];
	}
	buf_puts(b, "]");
	if (user)
		buf_printf(b, ",\"visits\":%lld", (long long)sum);
	buf_printf(b, ",\"bots\":%lld", (long long)s.bots);
	analytics_put_db_top(b, "referers", s.referers, s.nreferers,
	    s.visits);
	analytics_put_db_top(b, "countries", s.countries, s.ncountries,
	    s.visits);
	analytics_put_classes(b, "browsers", s.browsers, UA_BROWSERS,
	    ua_browser_name, s.visits);
	analytics_put_classes(b, "os", s.oses, UA_OSES, ua_os_name, s.visits);
	analytics_put_classes(b, "devices", s.devices, UA_DEVICES,
	    ua_device_name, s.visits);
	rc = 0;
out:
	if (rc == -1 && resp->status == 200)
		response_unavailable(resp, ctx->cfg->db_retry_after);
	free(s.day_visits);
	free(s.day_bots);
	return rc;
}

int
analytics_link_summary(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id, struct buf *b)
{
	return analytics_summary(ctx, req, resp, id, 0, b);
}

/* GET /stats — the summary over all of the caller's links. */
void
analytics_user_stats(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct jwt_claims	 claims;
	struct buf		 b;

	buf_init(&b);
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0) {
		response_bad_method(resp, "GET, HEAD");
		goto out;
	}
	if (short_token(ctx, req, resp, &claims) == -1)
		goto out;
	buf_puts(&b, "{\"user\":");
	json_put_str(&b, claims.sub, strlen(claims.sub));
	if (analytics_summary(ctx, req, resp, claims.sub, 1, &b) == -1)
		goto out;
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	buf_free(&b);
}
