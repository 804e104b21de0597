/*
 * shortener.c — the routes nginx sends to the shortener pool ("/").
 *
 *	/	GET, HEAD (list), POST (create), DELETE (delete all)	🔒
 *	/<id>	GET, HEAD (redirect, public), PUT, DELETE		🔒 but GET
 *
 * Order of checks, as the contract fixes it: an unknown path is 404, an
 * unsupported method 405 (with Allow), then the token (403) for the
 * calls that need one, then the call's own checks.  PUT and DELETE of
 * an item look the id up (404) and its owner (403) before they read the
 * body (400).
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
#define CURSOR_RAW_MAX		(20 + 1 + ID_MAX)	/* "<us>.<id>" */
#define CURSOR_MAX		(CURSOR_RAW_MAX / 3 * 4 + 8)

static int	 short_init(struct worker_ctx *);
static void	 short_handle(struct worker_ctx *, const struct request *,
		    struct response *);

const struct service shortener_service = {
	"shortener",
	short_init,
	short_handle,
	0			/* uses the database */
};

static int64_t
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

static void
short_bad_method(struct response *resp, const char *allow)
{
	response_error(resp, 405, "method not allowed",
	    "this method is not allowed here; see the Allow header");
	response_header(resp, "Allow", "%s", allow);
}

/* Map a failed db_* call to its response. */
static void
short_db_failed(const struct worker_ctx *ctx, struct response *resp,
    enum db_status st)
{
	if (st == DB_NOTFOUND)
		short_not_found(resp, "no such short URL");
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
}

/*
 * Check the Authorization header: the raw token, or "Bearer <token>"
 * (scheme case-insensitive).  A token that verifies is still refused
 * if its user is gone or changed the password after it was issued
 * (iat before pw_changed, both in seconds: a token from the very
 * second of the change stays valid, or logging in right after a
 * change would fail).  That costs one primary-key lookup per call;
 * redirects need no token and do not pay it.  0 and the claims, or
 * -1 with the 403 (503 if the database is down) already in resp.
 */
static int
short_token(const struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct jwt_claims *claims)
{
	const struct config	*cfg = ctx->cfg;
	const char		*tok = req->authorization;
	char			 msg[128], phc[PASSWORD_HASH_MAX];
	size_t			 len;
	int64_t			 changed = 0;
	enum jwt_status		 st;
	enum db_status		 dst;

	memset(claims, 0, sizeof(*claims));
	if (tok == NULL)
		tok = "";
	tok += strspn(tok, " \t");
	if (strncasecmp(tok, "bearer", 6) == 0 &&
	    (tok[6] == ' ' || tok[6] == '\t' || tok[6] == '\0')) {
		tok += 6;
		tok += strspn(tok, " \t");
	}
	len = strlen(tok);
	while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
		len--;
	if (len == 0) {
		response_error(resp, 403, "forbidden", "missing token");
		return -1;
	}
	st = jwt_verify((const uint8_t *)cfg->jwt_secret, cfg->jwt_secret_len,
	    tok, len, (int64_t)time(NULL), cfg->jwt_leeway, claims);
	if (st == JWT_OK && !username_valid(claims->sub, strlen(claims->sub)))
		st = JWT_MISSING_CLAIM;
	if (st != JWT_OK) {
		snprintf(msg, sizeof(msg), "invalid token: %s",
		    jwt_strerror(st));
		response_error(resp, 403, "forbidden", msg);
		return -1;
	}
	dst = db_user_get(ctx->db, claims->sub, phc, sizeof(phc), &changed);
	explicit_bzero(phc, sizeof(phc));
	if (dst == DB_NOTFOUND || (dst == DB_OK && claims->iat < changed)) {
		response_error(resp, 403, "forbidden", dst == DB_NOTFOUND ?
		    "token revoked: its user no longer exists" :
		    "token revoked: the password changed after it was issued");
		return -1;
	}
	if (dst != DB_OK) {
		response_unavailable(resp, cfg->db_retry_after);
		return -1;
	}
	return 0;
}

/*
 * Read and validate the URL field of a body (names: canonical first,
 * then aliases).  0, or -1 with the 400 (or 503) already in resp.  On
 * 0 the caller owns f->value (fields_free()).
 */
static int
short_body_url(const struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct field *f)
{
	char			 err[256];
	enum body_status	 bs;

	err[0] = '\0';
	if ((bs = body_parse(req, f, 1, err, sizeof(err))) != BODY_OK) {
		if (bs == BODY_NOMEM)
			response_unavailable(resp, ctx->cfg->db_retry_after);
		else
			response_error(resp, 400, "error",
			    err[0] != '\0' ? err : "malformed body");
		return -1;
	}
	if (url_validate(f->value, f->len, err, sizeof(err)) == -1) {
		response_error(resp, 400, "error", err);
		return -1;
	}
	return 0;
}

/*
 * Send a finished JSON document built in b (NUL-terminated here).  A
 * buffer that ran out of memory becomes a 503, never a truncated body.
 */
static void
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
/* paging                                                              */
/* ------------------------------------------------------------------ */

/* The opaque cursor: base64url of "<created_us>.<id>" of the last item
 * a page showed.  0, or -1 if out does not hold it. */
static int
short_cursor_encode(int64_t created_us, const char *id, char *out,
    size_t outlen)
{
	char	 raw[CURSOR_RAW_MAX + 1];
	int	 n;

	n = snprintf(raw, sizeof(raw), "%lld.%s", (long long)created_us, id);
	if (n < 0 || (size_t)n >= sizeof(raw))
		return -1;
	return b64url_encode((const uint8_t *)raw, (size_t)n, out,
	    outlen) < 0 ? -1 : 0;
}

/* The inverse; -1 for anything a cursor we made cannot look like. */
static int
short_cursor_decode(const char *s, size_t len, int64_t *created_us,
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
	*created_us = v;
	return 0;
}

/* ?limit=: 1..list_max_limit, absent or empty gives the default.
 * The number, or -1 with the 400 in resp. */
static long
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

/* ------------------------------------------------------------------ */
/* the collection: /                                                   */
/* ------------------------------------------------------------------ */

/* POST / — a new short link owned by the token's user. */
static void
short_create(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims)
{
	struct field	 f[1] = { { { "value", NULL }, 1, NULL, 0, 0 } };
	struct buf	 b;
	char		 id[ID_LEN + 1];
	enum db_status	 st = DB_UNAVAILABLE;
	int		 tries;

	buf_init(&b);
	if (short_body_url(ctx, req, resp, f) == -1)
		goto out;
	for (tries = 0; tries <= INSERT_RETRIES; tries++) {
		if (id_generate(id) == -1) {
			log_warnx("#%llu: no randomness for a new id",
			    (unsigned long long)req->rid);
			st = DB_UNAVAILABLE;
			break;
		}
		st = db_url_insert(ctx->db, id, claims->sub, f[0].value,
		    f[0].len, short_now_us());
		if (st != DB_DUPLICATE)
			break;
	}
	switch (st) {
	case DB_OK:
		buf_puts(&b, "{\"id\":");
		json_put_str(&b, id, strlen(id));
		buf_puts(&b, "}");
		short_send(ctx, resp, 201, &b);
		break;
	case DB_NOTFOUND:	/* the foreign key: the user is gone */
		response_error(resp, 403, "forbidden",
		    "the token's user no longer exists");
		break;
	case DB_DUPLICATE:
		log_warnx("#%llu: %d id collisions in a row",
		    (unsigned long long)req->rid, INSERT_RETRIES + 1);
		/* FALLTHROUGH */
	default:
		response_unavailable(resp, ctx->cfg->db_retry_after);
		break;
	}
out:
	fields_free(f, 1);
	buf_free(&b);
}

/* GET / — the caller's links, newest first, a page at a time.  One row
 * more than the page is fetched to know whether another page follows. */
static void
short_list(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims)
{
	struct db_url	*items = NULL;
	struct buf	 b;
	char		 after[CURSOR_MAX + 2], id[ID_MAX + 1];
	char		 cursor[CURSOR_MAX + 1];
	int64_t		 after_us = 0;
	size_t		 n = 0, i, shown;
	long		 limit;
	int		 alen;
	enum db_status	 st;

	buf_init(&b);
	if ((limit = short_limit(ctx, req, resp)) == -1)
		goto out;
	alen = request_query(req, "after", after, sizeof(after));
	if (alen == -2 || (alen > 0 && short_cursor_decode(after,
	    (size_t)alen, &after_us, id) == -1)) {
		response_error(resp, 400, "error", "invalid cursor in ?after=");
		goto out;
	}
	if ((items = calloc((size_t)limit + 1, sizeof(*items))) == NULL) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	st = db_url_list(ctx->db, claims->sub, after_us, alen > 0 ? id : NULL,
	    items, (size_t)limit + 1, &n);
	if (st != DB_OK) {
		n = 0;
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}

	shown = n > (size_t)limit ? (size_t)limit : n;
	buf_puts(&b, "{\"items\":[");
	for (i = 0; i < shown; i++) {
		buf_puts(&b, i > 0 ? ",{\"id\":" : "{\"id\":");
		json_put_str(&b, items[i].id, strlen(items[i].id));
		buf_puts(&b, ",\"value\":");
		json_put_str(&b, items[i].value, items[i].len);
		buf_puts(&b, "}");
	}
	buf_puts(&b, "],\"next\":");
	if (n > shown && short_cursor_encode(items[shown - 1].created_us,
	    items[shown - 1].id, cursor, sizeof(cursor)) == 0)
		json_put_str(&b, cursor, strlen(cursor));
	else
		buf_puts(&b, "null");
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	for (i = 0; i < n; i++)
		db_url_clear(&items[i]);
	free(items);
	buf_free(&b);
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

	if ((st = db_url_delete_all(ctx->db, claims->sub, &deleted)) !=
	    DB_OK) {
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
		short_bad_method(resp, ALLOW_COLLECTION);
		return;
	}
	if (short_token(ctx, req, resp, &claims) == -1)
		return;
	if (strcmp(m, "POST") == 0)
		short_create(ctx, req, resp, &claims);
	else if (strcmp(m, "DELETE") == 0)
		short_delete_all(ctx, resp, &claims);
	else
		short_list(ctx, req, resp, &claims);
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

/* GET and HEAD /<id> — public.  The redirect status, Location and
 * Cache-Control come from the configuration; legacy_redirect answers
 * 301 with the body only, for clients that follow redirects. */
static void
short_redirect(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	const struct config	*cfg = ctx->cfg;
	struct db_url		 u;
	struct buf		 b;
	enum db_status		 st;

	memset(&u, 0, sizeof(u));
	buf_init(&b);
	if ((st = db_url_get(ctx->db, id, &u)) != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	if (!cfg->legacy_redirect && !short_header_safe(u.value, u.len)) {
		log_warnx("#%llu: stored URL of %s cannot be a Location",
		    (unsigned long long)req->rid, id);
		short_not_found(resp, "this short URL has an unusable target");
		goto out;
	}
	buf_puts(&b, "{\"value\":");
	json_put_str(&b, u.value, u.len);
	buf_puts(&b, "}");
	if (cfg->legacy_redirect) {
		short_send(ctx, resp, 301, &b);
		goto out;
	}
	short_send(ctx, resp, cfg->redirect_status, &b);
	if (resp->status == cfg->redirect_status) {
		response_header(resp, "Location", "%.*s", (int)u.len, u.value);
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
static int
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

/* PUT /<id> — point a link elsewhere: 404, then 403, then 400. */
static void
short_update(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id, const struct jwt_claims *claims)
{
	struct field	 f[1] = { { { "url", "value", NULL }, 1, NULL, 0, 0 } };
	struct db_url	 u;
	struct buf	 b;
	enum db_status	 st;

	memset(&u, 0, sizeof(u));
	buf_init(&b);
	if (short_owned(ctx, resp, id, claims, &u) == -1)
		goto out;
	if (short_body_url(ctx, req, resp, f) == -1)
		goto out;
	if ((st = db_url_update(ctx->db, id, f[0].value, f[0].len,
	    short_now_us())) != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	buf_puts(&b, "{\"id\":");
	json_put_str(&b, id, strlen(id));
	buf_puts(&b, ",\"value\":");
	json_put_str(&b, f[0].value, f[0].len);
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	db_url_clear(&u);
	fields_free(f, 1);
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
	if ((st = db_url_delete(ctx->db, id)) != DB_OK) {
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
		short_bad_method(resp, ALLOW_ITEM);
		return;
	}
	if (short_token(ctx, req, resp, &claims) == -1)
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
	(void)ctx;
	return 0;
}

/* "/" is the collection, "/<id>" an item, anything else is 404. */
static void
short_handle(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	char	 id[ID_MAX + 1];

	if (req->pathlen == 1 && req->path[0] == '/')
		short_collection(ctx, req, resp);
	else if (req->pathlen >= 2 && req->path[0] == '/' &&
	    id_valid(req->path + 1, req->pathlen - 1)) {
		memcpy(id, req->path + 1, req->pathlen - 1);
		id[req->pathlen - 1] = '\0';
		short_item(ctx, req, resp, id);
	} else
		short_not_found(resp, "no such path");
	if (strcmp(req->method, "HEAD") == 0)
		resp->head_only = 1;
}
