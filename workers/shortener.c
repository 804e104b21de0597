/*
 * shortener.c — the routes nginx sends to the shortener pool ("/").
 *
 *	/		GET, HEAD (list), POST (create), DELETE (all)	🔒
 *	/<id>		GET, HEAD (redirect, public), PUT, DELETE	🔒 but GET
 *	/<id>/stats	GET, HEAD (visit counts)			🔒
 *	/<id>/visits	GET, HEAD (visit records: analytics.c)		🔒
 *	/stats		GET, HEAD (all the caller's links' visits)	🔒
 *	/<id>/qr	GET, HEAD (SVG QR code of the short URL, public)
 *
 * The link features (custom ids, expiry, visit limits, reuse, stats,
 * QR codes) are additive: a request in the classic contract's shape
 * gets the classic answer, byte for byte; the extra response keys
 * appear when a request uses an extra field (or, for short_url, when
 * public_url is configured).  Visits are counted in memory and flushed
 * in batches by visits.c, except for links with a visit limit, which
 * are counted one by one in the database so the limit holds.
 *
 * Redirects of links without a visit limit are answered from the
 * pool's shared cache (cache.c) while no change of the link was made since
 * it was read: every change below bumps the link's version before its
 * write and again after it, before the answer goes out.
 *
 * Order of checks, as the contract fixes it: an unknown path is 404, an
 * unsupported method 405 (with Allow), then the token (403) for the
 * calls that need one, then the call's own checks.  PUT and DELETE of
 * an item look the id up (404) and its owner (403) before they read the
 * body (400).  The checks themselves (token, body, limits, paging) are
 * in short_input.c; the sub-routes /<id>/stats and /<id>/qr in
 * short_sub.c.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workers.h"

#define ALLOW_COLLECTION	"GET, HEAD, POST, DELETE"
#define ALLOW_ITEM		"GET, HEAD, PUT, DELETE"
#define INSERT_RETRIES		5	/* new ids after a collision */
#define FLUSH_LEASE_MS		2000	/* a visit flush's turn, at most */
#define FLUSH_WAIT_MS		5	/* try again for a turn after */
#define FLUSH_FORCE_LINKS	1024	/* links waiting: flush anyway */

/* The body fields of a link's limits (short_limits()), in a field
 * array's initialiser, at the three indexes given. */
#define LIMIT_FIELDS(at, in, max)					\
	[at] = { { "expires_at", NULL }, .nullable = 1 },		\
	[in] = { { "expires_in", NULL }, .type = FIELD_INT,		\
	    .nullable = 1 },						\
	[max] = { { "max_visits", NULL }, .type = FIELD_INT,		\
	    .nullable = 1 },

static int	 short_init(struct worker_ctx *);
static void	 short_handle(struct worker_ctx *, const struct request *,
		    struct response *);
static int	 short_tick(struct worker_ctx *);
static int	 short_flush_tick(struct worker_ctx *);
static void	 short_fini(struct worker_ctx *);

const struct service shortener_service = {
	"shortener",
	short_init,
	short_handle,
	0,			/* uses the database */
	short_tick,
	short_fini
};

int64_t
short_now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
short_not_found(struct response *resp, const char *message)
{
	response_error(resp, 404, "not found", message);
}

/* Map a failed db_* call to its response. */
void
short_db_failed(const struct worker_ctx *ctx, struct response *resp,
    enum db_status st)
{
	if (st == DB_NOTFOUND)
		short_not_found(resp, "no such short URL");
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
}

/*
 * Send a finished JSON document built in b (NUL-terminated here).  A
 * buffer that ran out of memory becomes a 503, never a truncated body.
 */
void
short_send(const struct worker_ctx *ctx, struct response *resp, int status,
    struct buf *b)
{
	buf_add(b, "", 1);
	if (b->failed)
		response_unavailable(resp, ctx->cfg->db_retry_after);
	else
		response_json(resp, status, (const char *)b->data);
}

/* ------------------------------------------------------------------ */
/* link features: short_url, limits, state                             */
/* ------------------------------------------------------------------ */

/* A Host header we may put into a URL: a name or address, a port. */
static int
short_host_ok(const char *h)
{
	size_t	 i;

	if (h == NULL || h[0] == '\0')
		return 0;
	for (i = 0; h[i] != '\0'; i++)
		if (i >= 255 || !((h[i] >= 'a' && h[i] <= 'z') ||
		    (h[i] >= 'A' && h[i] <= 'Z') ||
		    (h[i] >= '0' && h[i] <= '9') || h[i] == '.' ||
		    h[i] == '-' || h[i] == '_' || h[i] == ':' ||
		    h[i] == '[' || h[i] == ']'))
			return 0;
	return 1;
}

/*
 * The base short ids are appended to: public_url when configured,
 * else the scheme and Host of the request (REQUEST_SCHEME or HTTPS,
 * then HTTP_HOST, or SERVER_NAME and SERVER_PORT).  The length, or -1
 * when the request names no usable host.
 */
int
short_base(const struct worker_ctx *ctx, const struct request *req,
    char *out, size_t outlen)
{
	const char	*scheme = "http", *v, *host, *port;
	int		 n;

	if (ctx->cfg->public_url[0] != '\0')
		n = snprintf(out, outlen, "%s", ctx->cfg->public_url);
	else {
		if ((v = request_param(req, "REQUEST_SCHEME")) != NULL &&
		    (strcasecmp(v, "https") == 0 || strcasecmp(v, "http") == 0))
			scheme = strcasecmp(v, "https") == 0 ? "https" : "http";
		else if ((v = request_param(req, "HTTPS")) != NULL &&
		    v[0] != '\0' && strcasecmp(v, "off") != 0)
			scheme = "https";
		host = request_param(req, "HTTP_HOST");
		port = NULL;
		if (!short_host_ok(host)) {
			host = request_param(req, "SERVER_NAME");
			port = request_param(req, "SERVER_PORT");
			if (!short_host_ok(host))
				return -1;
			if (port != NULL && (!short_host_ok(port) ||
			    strcmp(port, strcmp(scheme, "https") == 0 ?
			    "443" : "80") == 0))
				port = NULL;
		}
		n = snprintf(out, outlen, "%s://%s%s%s", scheme, host,
		    port != NULL ? ":" : "", port != NULL ? port : "");
	}
	return n < 0 || (size_t)n >= outlen ? -1 : n;
}

/* Append a time as an RFC 3339 string, 0 as null. */
void
short_put_time(struct buf *b, int64_t us)
{
	rfc3339_put(b, us);
}

static void
short_put_count(struct buf *b, int64_t v)
{
	if (v == 0)
		buf_puts(b, "null");
	else
		buf_printf(b, "%lld", (long long)v);
}

/* 1 if the link answers 410 at now_us. */
static int
short_expired(const struct db_url *u, int64_t now_us)
{
	return (u->expires_us != 0 && u->expires_us <= now_us) ||
	    (u->max_visits != 0 && u->visits >= u->max_visits);
}

/* ,"expires_at":...,"max_visits":...,"state":"active"|"expired" */
void
short_put_limits(struct buf *b, const struct db_url *u, int64_t now_us)
{
	buf_puts(b, ",\"expires_at\":");
	short_put_time(b, u->expires_us);
	buf_puts(b, ",\"max_visits\":");
	short_put_count(b, u->max_visits);
	buf_puts(b, short_expired(u, now_us) ? ",\"state\":\"expired\"" :
	    ",\"state\":\"active\"");
}

/* ------------------------------------------------------------------ */
/* the collection: /                                                   */
/* ------------------------------------------------------------------ */

/* The fields of POST /, in this order. */
enum { CF_VALUE, CF_ID, CF_REUSE, CF_EXPIRES_AT, CF_EXPIRES_IN,
    CF_MAX_VISITS, CF_TITLE, CF_TAGS, CF_COUNT };

/*
 * The answer to a create: {"id"} in the classic shape, else also
 * short_url (when a base is known) and the limits.
 */
static void
short_created(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, int status, const char *id, int extended,
    const struct short_limits *lim)
{
	struct buf	 b;
	char		 base[BASE_MAX];

	buf_init(&b);
	buf_puts(&b, "{\"id\":");
	json_put_str(&b, id, strlen(id));
	if (extended) {
		if (short_base(ctx, req, base, sizeof(base)) >= 0) {
			buf_puts(&b, ",\"short_url\":\"");
			/* Both parts are plain ASCII without quotes. */
			buf_printf(&b, "%s/%s\"", base, id);
		}
		buf_puts(&b, ",\"expires_at\":");
		short_put_time(&b, lim->expires_us);
		buf_puts(&b, ",\"max_visits\":");
		short_put_count(&b, lim->max_visits);
	}
	buf_puts(&b, "}");
	short_send(ctx, resp, status, &b);
	buf_free(&b);
}

/*
 * POST / — a new short link owned by the token's user: a random id,
 * or the custom one asked for (409 when taken).  With "reuse": true
 * the caller's existing link to the same URL, if there is one (200).
 *
 * The token arrives verified but not yet checked against its user
 * (cred_live()): a create that succeeds does that check in its
 * insert, one round trip.  Any other outcome looks the user up first,
 * so that a revoked token is answered 403 before the request's own
 * 400 or 409, as the contract orders them.
 */
static void
short_create(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims)
{
	struct field		 f[CF_COUNT] = {
		[CF_VALUE] = { { "value", NULL }, 1 },
		[CF_ID] = { { "id", NULL } },
		[CF_REUSE] = { { "reuse", NULL }, .type = FIELD_BOOL },
		LIMIT_FIELDS(CF_EXPIRES_AT, CF_EXPIRES_IN, CF_MAX_VISITS)
		[CF_TITLE] = { { "title", NULL }, .nullable = 1 },
		[CF_TAGS] = { { "tags", NULL }, .type = FIELD_LIST,
		    .nullable = 1 },
	};
	struct db_meta_change	 mc;
	struct db_url_new	 nu;
	char			 tags[TAGS_MAX][TAG_MAX + 1];
	struct short_limits	 lim;
	char			 id[ID_MAX + 1], err[128];
	int64_t			 now_us = short_now_us();
	enum db_status		 st = DB_UNAVAILABLE;
	int			 tries, extended, i;

	if (body_read(ctx, req, resp, f, CF_COUNT) == -1 ||
	    short_url_ok(resp, &f[CF_VALUE]) == -1)
		goto refused;
	extended = ctx->cfg->public_url[0] != '\0';
	for (i = CF_ID; i < CF_COUNT; i++)
		extended |= f[i].present;
	if (f[CF_ID].present && id_alias_check(f[CF_ID].value,
	    f[CF_ID].len, err, sizeof(err)) == -1) {
		response_error(resp, 400, "error", err);
		goto refused;
	}
	if (short_limits(resp, &f[CF_EXPIRES_AT], &f[CF_EXPIRES_IN],
	    &f[CF_MAX_VISITS], now_us, 1, &lim) == -1 ||
	    links_meta(resp, &f[CF_TITLE], &f[CF_TAGS], tags, &mc) == -1)
		goto refused;
	if (f[CF_REUSE].present && f[CF_REUSE].num) {
		if (f[CF_ID].present || lim.expires_us != 0 ||
		    lim.max_visits != 0 || mc.title != NULL || mc.ntags > 0) {
			response_error(resp, 400, "error", "reuse cannot be "
			    "combined with id, expires_at, expires_in, "
			    "max_visits, title or tags");
			goto refused;
		}
		if (cred_live(ctx, resp, claims) == -1)
			goto out;
		st = db_url_find(ctx->db, claims->sub, f[CF_VALUE].value,
		    f[CF_VALUE].len, id);
		if (st == DB_OK) {
			short_created(ctx, req, resp, 200, id, 1, &lim);
			goto out;
		}
		if (st != DB_NOTFOUND) {
			response_unavailable(resp, ctx->cfg->db_retry_after);
			goto out;
		}
	}
	if (f[CF_ID].present)
		memcpy(id, f[CF_ID].value, f[CF_ID].len + 1);
	for (tries = 0; tries <= INSERT_RETRIES; tries++) {
		if (!f[CF_ID].present && id_generate(id) == -1) {
			log_warnx("#%llu: no randomness for a new id",
			    (unsigned long long)req->rid);
			st = DB_UNAVAILABLE;
			break;
		}
		nu.id = id;
		nu.owner = claims->sub;
		nu.issued = claims->iat;
		nu.value = f[CF_VALUE].value;
		nu.len = f[CF_VALUE].len;
		nu.now_us = now_us;
		nu.expires_us = lim.expires_us;
		nu.max_visits = lim.max_visits;
		if (mc.title != NULL || mc.ntags > 0)
			st = db_url_create_meta(ctx->db, &nu, &mc);
		else
			st = db_url_insert_limited(ctx->db, id, claims->sub,
			    claims->iat, nu.value, nu.len, now_us,
			    lim.expires_us, lim.max_visits);
		/* No row: the user is gone or the token revoked (403),
		 * unless that changed since; then the insert goes again. */
		if (st == DB_NOTFOUND &&
		    cred_live(ctx, resp, claims) == -1)
			goto out;
		if (st != DB_NOTFOUND &&
		    (st != DB_DUPLICATE || f[CF_ID].present))
			break;
	}
	switch (st) {
	case DB_OK:
		/* Nothing caches an unknown id today; if a 404 ever is,
		 * this keeps it from outliving the create. */
		cache_bump(ctx->sbc, id);
		short_created(ctx, req, resp, 201, id, extended, &lim);
		break;
	case DB_DUPLICATE:
		/* The insert's SELECT found the user: the token is good. */
		if (f[CF_ID].present) {
			response_error(resp, 409, "duplicate",
			    "this id is already taken");
			break;
		}
		log_warnx("#%llu: no free id in %d tries",
		    (unsigned long long)req->rid, INSERT_RETRIES + 1);
		/* FALLTHROUGH */
	default:
		response_unavailable(resp, ctx->cfg->db_retry_after);
		break;
	}
	goto out;
refused:
	/* The request's own refusal (400, or 503 out of memory) comes
	 * after the token's, which replaces it when the token is
	 * revoked or the database cannot tell. */
	(void)cred_live(ctx, resp, claims);
out:
	fields_free(f, CF_COUNT);
}

/* DELETE / — all of the caller's links; 404 is the classic contract's
 * answer, with the count. */
static void
short_delete_all(struct worker_ctx *ctx, struct response *resp,
    const struct jwt_claims *claims)
{
	char		 json[96];
	uint64_t	 deleted = 0;
	enum db_status	 st;

	/* The cache cannot tell the caller's links from others': all of
	 * them are read anew. */
	cache_bump_all(ctx->sbc);
	st = db_url_delete_all(ctx->db, claims->sub, &deleted);
	cache_bump_all(ctx->sbc);
	if (st != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		return;
	}
	snprintf(json, sizeof(json), "{\"detail\":\"not found\","
	    "\"deleted\":%llu}", (unsigned long long)deleted);
	response_json(resp, 404, json);
}

static void
short_collection(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct jwt_claims	 claims;
	const char		*m = req->method;

	if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
	    strcmp(m, "POST") != 0 && strcmp(m, "DELETE") != 0) {
		response_bad_method(resp, ALLOW_COLLECTION);
		return;
	}
	/* A create checks the token's user itself, in its insert. */
	if (strcmp(m, "POST") == 0) {
		if (cred_verify(ctx, req, resp, &claims) == 0)
			short_create(ctx, req, resp, &claims);
		return;
	}
	if (cred_check(ctx, req, resp, &claims) == -1)
		return;
	if (strcmp(m, "DELETE") == 0)
		short_delete_all(ctx, resp, &claims);
	else
		links_list(ctx, req, resp, &claims);
}

/* ------------------------------------------------------------------ */
/* one link: /<id>                                                     */
/* ------------------------------------------------------------------ */

/* 1 if a stored value can go into a Location header as it is.  Values
 * were validated when written; this guards against rows put there by
 * other hands, since a CR or LF would split the response. */
static int
short_header_safe(const char *v, size_t len)
{
	size_t	 i;

	if (v == NULL || len == 0 || len > URL_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * Count a GET of link u, at now_us.  A link with a visit limit is
 * counted here and now, by a conditional UPDATE that fails once the
 * limit is reached, whichever worker or host serves the visit: 0
 * counted, 1 the limit was reached meanwhile (410), -1 the database
 * failed (503).  Other links are counted in this worker's memory,
 * flushed by short_tick(): no database write on this path.  With
 * analytics the visit is also recorded (analytics.c), and a bot's is
 * recorded only: never counted, so it uses up no limit.
 */
static int
short_count(struct worker_ctx *ctx, const struct request *req,
    const struct db_url *u, int64_t now_us)
{
	struct visit_rec	 rec;
	char			 ref[REFERER_HOST_MAX + 1];
	enum db_status		 st;
	int			 bot = 0;

	if (ctx->visits != NULL && ctx->analytics)
		bot = analytics_visit(ctx, req, now_us, &rec, ref);
	if (u->max_visits != 0 && !bot &&
	    (st = db_url_hit(ctx->db, u->id, now_us)) != DB_OK)
		return st == DB_NOTFOUND ? 1 : -1;
	if (ctx->visits != NULL && (ctx->analytics || u->max_visits == 0))
		(void)visits_record(ctx->visits, u->id,
		    u->max_visits == 0 && !bot, ctx->analytics ? &rec : NULL,
		    now_us, mono_ms());
	return 0;
}

/*
 * The cached answer for id, if the pool's cache has a good one: 0
 * and hit filled as a view (hit->value is url, nothing to clear), or
 * -1.  The visit limit of a cached link is none: links with one are
 * never cached.
 */
static int
short_cached(struct worker_ctx *ctx, const char *id,
    const struct cache_stamp *stamp, int64_t now_ms,
    char url[CACHE_VALUE_MAX + 1], struct db_url *hit)
{
	int	 got;

	memset(hit, 0, sizeof(*hit));
	got = cache_get(ctx->cache, id, stamp, now_ms, url, &hit->len,
	    &hit->expires_us);
	cache_count(ctx->sbc, got);
	if (got != 0)
		return -1;
	memcpy(hit->id, id, strlen(id) + 1);
	hit->value = url;
	return 0;
}

/* GET and HEAD /<id> — public.  The redirect status, Location and
 * Cache-Control come from the configuration; legacy_redirect answers
 * 301 with the body only, for clients that follow redirects.  An
 * expired link answers 410 and is not counted; HEAD is never counted
 * (link checkers and previews must not use up a limited link).  The
 * link comes from the pool's cache when it holds it (stamped before
 * the database is read, see cache.c), the answer is the same. */
static void
short_redirect(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	const struct config	*cfg = ctx->cfg;
	const struct db_url	*link;
	struct db_url		 u, hit;
	struct cache_stamp	 stamp;
	struct buf		 b;
	char			 url[CACHE_VALUE_MAX + 1];
	int64_t			 now_us, now_ms = 0;
	enum db_status		 st;
	int			 c = 0;

	memset(&u, 0, sizeof(u));
	memset(&stamp, 0, sizeof(stamp));
	buf_init(&b);
	link = &u;
	if (ctx->cache != NULL) {
		now_ms = mono_ms();
		cache_stamp(ctx->sbc, id, &stamp);
		if (short_cached(ctx, id, &stamp, now_ms, url, &hit) == 0)
			link = &hit;
	}
	if (link == &u) {
		if ((st = db_url_get(ctx->db, id, &u)) != DB_OK) {
			if (st == DB_NOTFOUND && ctx->orphan_visits != NULL &&
			    strcmp(req->method, "GET") == 0)
				atomic_fetch_add_explicit(ctx->orphan_visits,
				    1, memory_order_relaxed);
			short_db_failed(ctx, resp, st);
			goto out;
		}
		if (ctx->cache != NULL && u.max_visits == 0)
			(void)cache_put(ctx->cache, id, &stamp, now_ms, u.value,
			    u.len, u.expires_us);
	}
	now_us = short_now_us();
	if (short_expired(link, now_us) || (strcmp(req->method, "GET") == 0 &&
	    (c = short_count(ctx, req, link, now_us)) == 1)) {
		response_error(resp, 410, "expired",
		    "this short URL has expired");
		goto out;
	}
	if (c == -1) {
		response_unavailable(resp, cfg->db_retry_after);
		goto out;
	}
	if (!cfg->legacy_redirect && !short_header_safe(link->value,
	    link->len)) {
		log_warnx("#%llu: stored URL of %s cannot be a Location",
		    (unsigned long long)req->rid, id);
		short_not_found(resp, "this short URL has an unusable target");
		goto out;
	}
	buf_puts(&b, "{\"value\":");
	json_put_str(&b, link->value, link->len);
	buf_puts(&b, "}");
	if (cfg->legacy_redirect) {
		short_send(ctx, resp, 301, &b);
		goto out;
	}
	short_send(ctx, resp, cfg->redirect_status, &b);
	if (resp->status == cfg->redirect_status) {
		response_header(resp, "Location", "%.*s", (int)link->len,
		    link->value);
		/* A browser must come back to a link that runs out of
		 * visits, and must not keep one past its expiry. */
		if (link->max_visits != 0)
			response_header(resp, "Cache-Control", "no-store");
		else if (link->expires_us != 0 && (link->expires_us -
		    now_us) / 1000000 < cfg->redirect_max_age)
			response_header(resp, "Cache-Control", "max-age=%lld",
			    (long long)((link->expires_us - now_us) / 1000000));
		else
			response_header(resp, "Cache-Control", "max-age=%d",
			    cfg->redirect_max_age);
	}
out:
	db_url_clear(&u);
	buf_free(&b);
}

/*
 * Look up id for a change by the token's user: 0 with u filled, or -1
 * with the 404 (unknown id) or 403 (someone else's) in resp.
 */
int
short_owned(struct worker_ctx *ctx, struct response *resp, const char *id,
    const struct jwt_claims *claims, struct db_url *u)
{
	enum db_status	 st;

	if ((st = db_url_get(ctx->db, id, u)) != DB_OK) {
		short_db_failed(ctx, resp, st);
		return -1;
	}
	if (strcmp(u->owner, claims->sub) != 0) {
		response_error(resp, 403, "forbidden",
		    "this short URL belongs to another user");
		return -1;
	}
	return 0;
}

/* The fields of PUT /<id>, in this order. */
enum { UF_URL, UF_EXPIRES_AT, UF_EXPIRES_IN, UF_MAX_VISITS, UF_TITLE,
    UF_TAGS, UF_COUNT };

/*
 * PUT /<id> — point a link elsewhere, or change its limits: 404, then
 * 403, then 400.  The URL may be left out when a limit is given; a
 * request that gives a limit gets the limits and state back as well.
 */
static void
short_update(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id, const struct jwt_claims *claims)
{
	struct field		 f[UF_COUNT] = {
		[UF_URL] = { { "url", "value", NULL } },
		LIMIT_FIELDS(UF_EXPIRES_AT, UF_EXPIRES_IN, UF_MAX_VISITS)
		[UF_TITLE] = { { "title", NULL }, .nullable = 1 },
		[UF_TAGS] = { { "tags", NULL }, .type = FIELD_LIST,
		    .nullable = 1 },
	};
	struct db_meta_change	 mc;
	char			 tags[TAGS_MAX][TAG_MAX + 1];
	struct db_url_change	 c;
	struct short_limits	 lim;
	struct db_url		 u;
	struct buf		 b;
	int64_t			 now_us = short_now_us();
	enum db_status		 st;
	int			 limits, meta;

	memset(&u, 0, sizeof(u));
	memset(&c, 0, sizeof(c));
	buf_init(&b);
	if (short_owned(ctx, resp, id, claims, &u) == -1 ||
	    body_read(ctx, req, resp, f, UF_COUNT) == -1)
		goto out;
	limits = f[UF_EXPIRES_AT].present || f[UF_EXPIRES_IN].present ||
	    f[UF_MAX_VISITS].present;
	meta = f[UF_TITLE].present || f[UF_TAGS].present;
	if (!f[UF_URL].present && !limits && !meta) {
		response_error(resp, 400, "error", "missing field 'url'");
		goto out;
	}
	if ((f[UF_URL].present && short_url_ok(resp, &f[UF_URL]) == -1) ||
	    short_limits(resp, &f[UF_EXPIRES_AT], &f[UF_EXPIRES_IN],
	    &f[UF_MAX_VISITS], now_us, 0, &lim) == -1 ||
	    links_meta(resp, &f[UF_TITLE], &f[UF_TAGS], tags, &mc) == -1)
		goto out;
	if (f[UF_URL].present) {
		c.value = f[UF_URL].value;
		c.len = f[UF_URL].len;
	}
	c.set_expires = lim.set_expires;
	c.expires_us = lim.expires_us;
	c.set_max_visits = lim.set_max_visits;
	c.max_visits = lim.max_visits;
	cache_bump(ctx->sbc, id);
	if (meta)
		st = db_url_change_meta(ctx->db, id, &c, now_us, &mc);
	else
		st = db_url_change(ctx->db, id, &c, now_us);
	cache_bump(ctx->sbc, id);
	if (st != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	buf_puts(&b, "{\"id\":");
	json_put_str(&b, id, strlen(id));
	buf_puts(&b, ",\"value\":");
	if (c.value != NULL)
		json_put_str(&b, c.value, c.len);
	else
		json_put_str(&b, u.value, u.len);
	if (limits) {
		if (c.set_expires)
			u.expires_us = c.expires_us;
		if (c.set_max_visits)
			u.max_visits = c.max_visits;
		short_put_limits(&b, &u, now_us);
	}
	if (meta)
		links_put_change(&b, &mc);
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	db_url_clear(&u);
	fields_free(f, UF_COUNT);
	buf_free(&b);
}

/* DELETE /<id> — 404, then 403, else 204. */
static void
short_delete(struct worker_ctx *ctx, struct response *resp, const char *id,
    const struct jwt_claims *claims)
{
	struct db_url	 u;
	enum db_status	 st;

	memset(&u, 0, sizeof(u));
	if (short_owned(ctx, resp, id, claims, &u) == -1)
		goto out;
	cache_bump(ctx->sbc, id);
	st = db_url_delete(ctx->db, id);
	cache_bump(ctx->sbc, id);
	if (st != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	response_no_content(resp, 204);
out:
	db_url_clear(&u);
}

static void
short_item(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	struct jwt_claims	 claims;
	const char		*m = req->method;

	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) {
		short_redirect(ctx, req, resp, id);
		return;
	}
	if (strcmp(m, "PUT") != 0 && strcmp(m, "DELETE") != 0) {
		response_bad_method(resp, ALLOW_ITEM);
		return;
	}
	if (cred_check(ctx, req, resp, &claims) == -1)
		return;
	if (strcmp(m, "PUT") == 0)
		short_update(ctx, req, resp, id, &claims);
	else
		short_delete(ctx, resp, id, &claims);
}

/* ------------------------------------------------------------------ */
/* entry points                                                        */
/* ------------------------------------------------------------------ */

static int
short_init(struct worker_ctx *ctx)
{
	const struct config	*cfg = ctx->cfg;

	if (cfg->count_visits &&
	    (ctx->visits = visits_new(cfg->visits_flush_ms)) == NULL) {
		log_warnx("out of memory for visit counts");
		return -1;
	}
	if (analytics_init(ctx) == -1) {
		visits_free(ctx->visits);
		ctx->visits = NULL;
		return -1;
	}
	/* The cache needs the shared versions, which come with the
	 * scoreboard, and the pool's region, which the master maps. */
	if (cfg->redirect_cache != 0 && ctx->sbc != NULL &&
	    ctx->cachemap != NULL && ctx->cachemap->base != NULL &&
	    (ctx->cache = cache_attach(ctx->cachemap->base,
	    ctx->cachemap->bytes, ctx->cachemap->seed,
	    cfg->redirect_cache_ttl)) == NULL) {
		log_warnx("out of memory for the redirect cache");
		analytics_fini(ctx);
		visits_free(ctx->visits);
		ctx->visits = NULL;
		return -1;
	}
	return 0;
}

/*
 * May this worker flush its visit counts now?  A flush holds the
 * worker (it hands its kept connections over first), so the pool's
 * workers take turns: while one flushes, the others serve.  A turn is
 * a lease in the scoreboard, so a worker that dies in its flush holds
 * up the others for FLUSH_LEASE_MS at most; one whose table is filling
 * up flushes whoever else does.  0: not now; 1: yes; 2: yes, and the
 * lease is ours to give back.
 */
static int
short_flush_turn(struct worker_ctx *ctx, int64_t now)
{
	int64_t	 until;

	if (ctx->flush_lease == NULL)
		return 1;
	until = atomic_load_explicit(ctx->flush_lease, memory_order_acquire);
	if (until <= now && atomic_compare_exchange_strong(ctx->flush_lease,
	    &until, now + FLUSH_LEASE_MS))
		return 2;
	return visits_pending(ctx->visits) >= FLUSH_FORCE_LINKS;
}

/* The worker loop's periodic hook: flush visit counts when due, and
 * the retention of visit records (analytics.c). */
static int
short_tick(struct worker_ctx *ctx)
{
	int64_t	 now = mono_ms();
	int	 a, v, k;

	/* The keys' last use (keys.c), then visits and their records. */
	if (keys_due(ctx, now) == 0)
		keys_flush(ctx);
	k = keys_due(ctx, now);
	if (ctx->visits == NULL)
		return k;
	a = analytics_tick(ctx, mono_ms());
	v = short_flush_tick(ctx);
	v = a < 0 ? v : v < 0 || a < v ? a : v;
	return k < 0 ? v : v < 0 || k < v ? k : v;
}

/* Flush visit counts when due: ms until the next flush, -1 none. */
static int
short_flush_tick(struct worker_ctx *ctx)
{
	int64_t	 now;
	int	 turn;

	now = mono_ms();
	if (visits_due(ctx->visits, now) == 0) {
		if ((turn = short_flush_turn(ctx, now)) == 0)
			return FLUSH_WAIT_MS;
		ctx->let_go(ctx);
		visits_flush(ctx->visits, ctx->db, now);
		if (turn == 2)
			atomic_store_explicit(ctx->flush_lease, 0,
			    memory_order_release);
	}
	return visits_due(ctx->visits, mono_ms());
}

/* The worker is leaving: what it counted goes to the database. */
static void
short_fini(struct worker_ctx *ctx)
{
	cache_free(ctx->cache);
	ctx->cache = NULL;
	keys_flush(ctx);
	analytics_fini(ctx);
	if (ctx->visits == NULL)
		return;
	visits_flush(ctx->visits, ctx->db, mono_ms());
	visits_free(ctx->visits);
	ctx->visits = NULL;
}

/*
 * "/" is the collection, "/<id>" an item, "/<id>/stats" and
 * "/<id>/qr" its sub-routes; anything else is 404.
 */
static void
short_handle(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	char		 id[ID_MAX + 1];
	const char	*p = req->path + 1, *slash;
	size_t		 len = req->pathlen - 1, idlen;

	if (req->pathlen == 1 && req->path[0] == '/')
		short_collection(ctx, req, resp);
	else if (req->pathlen == 6 && memcmp(req->path, "/stats", 6) == 0)
		analytics_user_stats(ctx, req, resp);
	else if (linkcsv_route(ctx, req, resp))
		;	/* /export, /import */
	else if (req->pathlen < 2 || req->path[0] != '/')
		short_not_found(resp, "no such path");
	else if ((slash = memchr(p, '/', len)) == NULL) {
		if (id_valid(p, len)) {
			memcpy(id, p, len);
			id[len] = '\0';
			short_item(ctx, req, resp, id);
		} else
			short_not_found(resp, "no such path");
	} else {
		idlen = (size_t)(slash - p);
		len -= idlen + 1;
		if (id_valid(p, idlen) && ((len == 5 &&
		    memcmp(slash + 1, "stats", 5) == 0) || (len == 6 &&
		    memcmp(slash + 1, "visits", 6) == 0) || (len == 2 &&
		    memcmp(slash + 1, "qr", 2) == 0))) {
			memcpy(id, p, idlen);
			id[idlen] = '\0';
			short_sub(ctx, req, resp, id, len == 2 ? "qr" :
			    len == 6 ? "visits" : "stats");
		} else
			short_not_found(resp, "no such path");
	}
	if (strcmp(req->method, "HEAD") == 0)
		resp->head_only = 1;
}
