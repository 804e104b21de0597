/*
 * short_sub.c — the sub-routes of one link, GET and HEAD only:
 *
 *	/<id>/stats	the owner's view: visit counts, times, limits	🔒
 *	/<id>/visits	the visit records (analytics.c)			🔒
 *	/<id>/qr	an SVG QR code of the short URL, public
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "workers.h"

#define ALLOW_SUB		"GET, HEAD"
#define QR_RENDER		"qr1"	/* bump when qr.c draws anew */

/* GET /<id>/stats — the owner's view of a link: 403 (token), 404,
 * 403 (owner).  visits lags the redirects by up to visits_flush_ms for
 * links without a visit limit. */
static void
short_stats(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	struct jwt_claims	 claims;
	struct db_url		 u;
	struct db_meta		 m;
	struct buf		 b;
	enum db_status		 st;

	memset(&u, 0, sizeof(u));
	buf_init(&b);
	if (cred_check(ctx, req, resp, &claims) == -1 ||
	    short_owned(ctx, resp, id, &claims, &u) == -1)
		goto out;
	if ((st = db_meta_get(ctx->db, id, &m)) != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	buf_puts(&b, "{\"id\":");
	json_put_str(&b, id, strlen(id));
	buf_puts(&b, ",\"value\":");
	json_put_str(&b, u.value, u.len);
	buf_printf(&b, ",\"visits\":%lld", (long long)u.visits);
	buf_puts(&b, ",\"created_at\":");
	short_put_time(&b, u.created_us);
	buf_puts(&b, ",\"updated_at\":");
	short_put_time(&b, u.updated_us);
	buf_puts(&b, ",\"last_visit_at\":");
	short_put_time(&b, u.last_visit_us);
	short_put_limits(&b, &u, short_now_us());
	links_put_meta(&b, &m, 1);
	if (analytics_link_summary(ctx, req, resp, id, &b) == -1)
		goto out;
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	db_url_clear(&u);
	buf_free(&b);
}

/* A strong validator for the QR drawing: it depends only on the short
 * URL and on how qr.c draws (QR_RENDER).  FNV-1a, 64 bits. */
static void
short_qr_etag(const char *text, char *out, size_t outlen)
{
	const char	*parts[2] = { QR_RENDER, text }, *p;
	uint64_t	 h = 14695981039346656037ULL;
	int		 i;

	for (i = 0; i < 2; i++) {
		for (p = parts[i]; *p != '\0'; p++) {
			h ^= (unsigned char)*p;
			h *= 1099511628211ULL;
		}
		h ^= 0xff;	/* a separator no text holds */
		h *= 1099511628211ULL;
	}
	snprintf(out, outlen, "\"%s-%016llx\"", QR_RENDER,
	    (unsigned long long)h);
}

/* 1 if If-None-Match names etag (or is "*"). */
static int
short_not_modified(const struct request *req, const char *etag)
{
	const char	*inm = request_param(req, "HTTP_IF_NONE_MATCH");

	if (inm == NULL)
		return 0;
	inm += strspn(inm, " \t");
	return strcmp(inm, "*") == 0 || strstr(inm, etag) != NULL;
}

/*
 * GET /<id>/qr — public: an SVG QR code of the link's short URL, for
 * any link that exists (404 otherwise).  The drawing only changes with
 * the short URL, so it is cached (qr_max_age) and validated by ETag;
 * when the base comes from the request's Host, caches must key on it.
 */
static void
short_qr(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id)
{
	const struct config	*cfg = ctx->cfg;
	struct db_url		 u;
	struct buf		 svg;
	char			 text[BASE_MAX + ID_MAX + 2], etag[48];
	enum db_status		 st;
	int			 n;

	memset(&u, 0, sizeof(u));
	buf_init(&svg);
	if ((st = db_url_get(ctx->db, id, &u)) != DB_OK) {
		short_db_failed(ctx, resp, st);
		goto out;
	}
	if ((n = short_base(ctx, req, text, BASE_MAX)) < 0) {
		response_error(resp, 400, "error", "the request names no "
		    "host to build the short URL from (set public_url)");
		goto out;
	}
	snprintf(text + n, sizeof(text) - (size_t)n, "/%s", id);
	short_qr_etag(text, etag, sizeof(etag));
	if (short_not_modified(req, etag))
		response_no_content(resp, 304);
	else if (qr_svg(text, strlen(text), &svg) == -1) {
		response_unavailable(resp, cfg->db_retry_after);
		goto out;
	} else
		response_body(resp, 200, "image/svg+xml", svg.data, svg.len);
	response_header(resp, "ETag", "%s", etag);
	response_header(resp, "Cache-Control", "public, max-age=%d",
	    cfg->qr_max_age);
	response_header(resp, "X-Content-Type-Options", "nosniff");
	if (cfg->public_url[0] == '\0')
		response_header(resp, "Vary", "Host");
out:
	db_url_clear(&u);
	buf_free(&svg);
}

/* /<id>/stats, /<id>/visits and /<id>/qr: GET and HEAD only. */
void
short_sub(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const char *id, const char *sub)
{
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0)
		response_bad_method(resp, ALLOW_SUB);
	else if (strcmp(sub, "stats") == 0)
		short_stats(ctx, req, resp, id);
	else if (strcmp(sub, "visits") == 0)
		analytics_visits(ctx, req, resp, id);
	else
		short_qr(ctx, req, resp, id);
}
