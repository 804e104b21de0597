/*
 * keys.c — who a request comes from, and API keys.
 *
 *	/users/keys		GET (list), POST (create)	login token
 *	/users/keys/<id>	DELETE (revoke)			login token
 *
 * A request shows a login token (a JWT, "Authorization: [Bearer] JWT")
 * or an API key ("X-Api-Key: sk_..." or "Authorization: [Bearer]
 * sk_...").  A key is "sk_<id>_<secret>": the id finds its row by
 * primary key, the secret's SHA-256 is compared in constant time with
 * the stored one.  Every request that shows a key reads its row: no
 * worker keeps a key, so a revocation (or a deleted account) is seen
 * by the very next request on any worker of any host.  Only the time
 * of last use is kept in memory, written in batches (keys_flush()).
 *
 * A key works wherever a token does, except to manage keys, change the
 * password or delete the account: those answer a key 403.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "workers.h"

#define ALLOW_KEYS	"GET, HEAD, POST"
#define ALLOW_KEY	"DELETE"
#define KEYS_MAX	100		/* active keys a user may hold */
#define KEYS_USED_MAX	64		/* keys a worker remembers using */
#define KEY_EXPIRES_MAX	(100LL * 366 * 86400 * 1000000)	/* us ahead */

/* The keys this worker saw used since its last flush. */
static struct {
	char	 id[KEY_ID_LEN + 1];
	int64_t	 used_us;
} keys_used[KEYS_USED_MAX];
static size_t	 keys_nused;
static int64_t	 keys_since_ms;		/* first use not yet written */

/* The credential text of a request: X-Api-Key, else Authorization
 * without its "Bearer" scheme; blanks trimmed.  *len gets its length. */
static const char *
cred_text(const struct request *req, size_t *len)
{
	const char	*tok = request_param(req, "HTTP_X_API_KEY");
	size_t		 n;

	if (tok == NULL) {
		tok = req->authorization != NULL ? req->authorization : "";
		tok += strspn(tok, " \t");
		if (strncasecmp(tok, "bearer", 6) == 0 &&
		    (tok[6] == ' ' || tok[6] == '\t' || tok[6] == '\0')) {
			tok += 6;
			tok += strspn(tok, " \t");
		}
	} else
		tok += strspn(tok, " \t");
	n = strlen(tok);
	while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
		n--;
	*len = n;
	return tok;
}

int
cred_is_key(const struct request *req)
{
	size_t	 len;
	const char *t = cred_text(req, &len);

	return request_param(req, "HTTP_X_API_KEY") != NULL ||
	    (len >= 3 && memcmp(t, "sk_", 3) == 0);
}

static int
keys_b62(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= 'a' && s[i] <= 'z')))
			return 0;
	return 1;
}

static int
keys_hash(const char *secret, size_t len, unsigned char out[32])
{
	unsigned int	 n = 0;

	return EVP_Digest(secret, len, out, &n, EVP_sha256(), NULL) == 1 &&
	    n == 32 ? 0 : -1;
}

/* Remember that key id was used at now_us, for the next flush. */
static void
keys_note_use(struct worker_ctx *ctx, const char *id, int64_t now_us)
{
	size_t	 i;

	for (i = 0; i < keys_nused; i++)
		if (strcmp(keys_used[i].id, id) == 0) {
			keys_used[i].used_us = now_us;
			return;
		}
	if (keys_nused == KEYS_USED_MAX)
		keys_flush(ctx);	/* rare: many keys in one interval */
	if (keys_nused == 0)
		keys_since_ms = mono_ms();
	snprintf(keys_used[keys_nused].id, sizeof(keys_used[0].id), "%s", id);
	keys_used[keys_nused].used_us = now_us;
	keys_nused++;
}

static void
keys_refuse(struct response *resp, const char *message)
{
	response_free(resp);
	response_init(resp);
	response_error(resp, 403, "forbidden", message);
}

/*
 * An API key: its shape, its row, its secret, its state.  0 and the
 * claims, or -1 with the 403 (503) in resp.
 */
static int
cred_key(struct worker_ctx *ctx, struct response *resp, const char *t,
    size_t len, struct jwt_claims *claims)
{
	struct db_key	 k;
	unsigned char	 h[32];
	char		 id[KEY_ID_LEN + 1];
	int64_t		 now_us = short_now_us();
	enum db_status	 st;

	if (len != KEY_TEXT_LEN || memcmp(t, "sk_", 3) != 0 ||
	    !keys_b62(t + 3, KEY_ID_LEN) || t[3 + KEY_ID_LEN] != '_' ||
	    !keys_b62(t + 4 + KEY_ID_LEN, KEY_SECRET_LEN)) {
		keys_refuse(resp, "invalid API key: malformed");
		return -1;
	}
	memcpy(id, t + 3, KEY_ID_LEN);
	id[KEY_ID_LEN] = '\0';
	if ((st = db_key_get(ctx->db, id, &k)) == DB_UNAVAILABLE) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		return -1;
	}
	if (keys_hash(t + 4 + KEY_ID_LEN, KEY_SECRET_LEN, h) == -1 ||
	    st != DB_OK || CRYPTO_memcmp(h, k.hash, sizeof(h)) != 0) {
		keys_refuse(resp, "invalid API key");
		return -1;
	}
	if (k.revoked) {
		keys_refuse(resp, "invalid API key: revoked");
		return -1;
	}
	if (k.expires_us != 0 && k.expires_us <= now_us) {
		keys_refuse(resp, "invalid API key: expired");
		return -1;
	}
	memset(claims, 0, sizeof(*claims));
	snprintf(claims->sub, sizeof(claims->sub), "%s", k.user);
	claims->iat = INT64_MAX;
	claims->exp = INT64_MAX;
	claims->key = 1;
	snprintf(claims->key_id, sizeof(claims->key_id), "%s", id);
	keys_note_use(ctx, id, now_us);
	return 0;
}

int
cred_verify(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct jwt_claims *claims)
{
	const struct config	*cfg = ctx->cfg;
	const char		*tok;
	char			 msg[128];
	size_t			 len;
	enum jwt_status		 st;

	memset(claims, 0, sizeof(*claims));
	tok = cred_text(req, &len);
	if (cred_is_key(req))
		return cred_key(ctx, resp, tok, len, claims);
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
	return 0;
}

/*
 * A token that verifies is still refused if its user is gone or
 * changed the password after it was issued (iat before pw_changed,
 * both in seconds: a token from the very second of the change stays
 * valid, or logging in right after a change would fail).  That costs
 * one primary-key lookup; redirects need no token and do not pay it.
 */
int
cred_live(struct worker_ctx *ctx, struct response *resp,
    const struct jwt_claims *claims)
{
	char			 phc[PASSWORD_HASH_MAX];
	int64_t			 changed = 0;
	enum db_status		 dst;

	if (claims->key)
		return 0;
	dst = db_user_get(ctx->db, claims->sub, phc, sizeof(phc), &changed);
	explicit_bzero(phc, sizeof(phc));
	if (dst == DB_OK && claims->iat >= changed)
		return 0;
	response_free(resp);
	response_init(resp);
	if (dst == DB_NOTFOUND || dst == DB_OK)
		response_error(resp, 403, "forbidden", dst == DB_NOTFOUND ?
		    "token revoked: its user no longer exists" :
		    "token revoked: the password changed after it was issued");
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
	return -1;
}

int
cred_check(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct jwt_claims *claims)
{
	if (cred_verify(ctx, req, resp, claims) == -1 ||
	    cred_live(ctx, resp, claims) == -1)
		return -1;
	return 0;
}

int
cred_login_only(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct jwt_claims *claims)
{
	if (cred_is_key(req)) {
		response_error(resp, 403, "forbidden", "an API key cannot do "
		    "this: use a login token");
		return -1;
	}
	return cred_check(ctx, req, resp, claims);
}

/* ------------------------------------------------------------------ */
/* the last use of keys, in batches                                    */
/* ------------------------------------------------------------------ */

int
keys_due(const struct worker_ctx *ctx, int64_t now_ms)
{
	int64_t	 left;

	if (keys_nused == 0)
		return -1;
	left = keys_since_ms + ctx->cfg->visits_flush_ms - now_ms;
	return left < 0 ? 0 : (int)left;
}

/* One UPDATE per key used since the last flush (few: a worker sees a
 * handful of keys in an interval); a failure drops the times (it is
 * only the time of last use). */
void
keys_flush(struct worker_ctx *ctx)
{
	size_t	 i;

	for (i = 0; i < keys_nused; i++)
		if (db_key_touch(ctx->db, keys_used[i].id,
		    keys_used[i].used_us) != DB_OK) {
			log_warnx("keys: last use of %zu keys not written",
			    keys_nused - i);
			break;
		}
	keys_nused = 0;
}

/* ------------------------------------------------------------------ */
/* /users/keys                                                         */
/* ------------------------------------------------------------------ */

/* A key's name: 1 to KEY_NAME_MAX characters, no control ones. */
static int
keys_name_ok(const char *s, size_t len)
{
	long	 chars = text_chars(s, len);

	return chars >= 1 && chars <= KEY_NAME_MAX;
}

/* POST /users/keys {"name", "expires_at"} -> 201 with the key, once. */
static void
keys_create(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims)
{
	struct field	 f[2] = {
		{ { "name", NULL }, 1 },
		{ { "expires_at", NULL }, .nullable = 1 },
	};
	struct db_key	 k;
	struct buf	 b;
	char		 err[256], secret[KEY_SECRET_LEN + 1];
	char		 text[KEY_TEXT_LEN + 1];
	int64_t		 now_us = short_now_us(), active = 0;
	enum body_status bs;
	enum db_status	 st;
	int		 tries;

	buf_init(&b);
	memset(&k, 0, sizeof(k));
	err[0] = '\0';
	if ((bs = body_parse(req, f, 2, err, sizeof(err))) != BODY_OK) {
		if (bs == BODY_NOMEM)
			response_unavailable(resp, ctx->cfg->db_retry_after);
		else
			response_error(resp, 400, "error",
			    err[0] != '\0' ? err : "malformed body");
		goto out;
	}
	if (!keys_name_ok(f[0].value, f[0].len)) {
		response_error(resp, 400, "error", "invalid name: 1 to 100 "
		    "characters, no control characters");
		goto out;
	}
	if (f[1].present && !f[1].is_null && (rfc3339_parse(f[1].value,
	    f[1].len, &k.expires_us) == -1 || k.expires_us <= now_us ||
	    k.expires_us - now_us > KEY_EXPIRES_MAX)) {
		k.expires_us = 0;
		response_error(resp, 400, "error", "invalid expires_at: an "
		    "RFC 3339 date-time in the next 100 years, or null");
		goto out;
	}
	if ((st = db_key_count(ctx->db, claims->sub, &active)) != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	if (active >= KEYS_MAX) {
		response_error(resp, 400, "error", "too many keys: a user may "
		    "hold 100; revoke one first");
		goto out;
	}
	snprintf(k.user, sizeof(k.user), "%s", claims->sub);
	snprintf(k.name, sizeof(k.name), "%s", f[0].value);
	k.created_us = now_us;
	st = DB_DUPLICATE;
	for (tries = 0; tries < 3 && st == DB_DUPLICATE; tries++) {
		if (id_base62(k.id, KEY_ID_LEN) == -1 ||
		    id_base62(secret, KEY_SECRET_LEN) == -1 ||
		    keys_hash(secret, KEY_SECRET_LEN, k.hash) == -1) {
			st = DB_UNAVAILABLE;
			break;
		}
		st = db_key_insert(ctx->db, &k);
	}
	if (st == DB_NOTFOUND) {	/* the user went meanwhile */
		response_error(resp, 403, "forbidden",
		    "token revoked: its user no longer exists");
		goto out;
	}
	if (st != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	snprintf(text, sizeof(text), "sk_%s_%s", k.id, secret);
	log_info("#%llu: user %s created API key %s",
	    (unsigned long long)req->rid, k.user, k.id);
	buf_puts(&b, "{\"id\":");
	json_put_str(&b, k.id, strlen(k.id));
	buf_puts(&b, ",\"name\":");
	json_put_str(&b, k.name, strlen(k.name));
	buf_puts(&b, ",\"key\":");
	json_put_str(&b, text, strlen(text));
	buf_puts(&b, ",\"created_at\":");
	rfc3339_put(&b, k.created_us);
	buf_puts(&b, ",\"expires_at\":");
	rfc3339_put(&b, k.expires_us);
	buf_puts(&b, "}");
	short_send(ctx, resp, 201, &b);
	response_header(resp, "Cache-Control", "no-store");
out:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(text, sizeof(text));
	buf_free(&b);
	fields_free(f, 2);
}

/* GET /users/keys -> {"items": [...]}, no secrets. */
static void
keys_list(struct worker_ctx *ctx, struct response *resp,
    const struct jwt_claims *claims)
{
	struct db_key	*items;
	struct buf	 b;
	size_t		 n = 0, i;

	buf_init(&b);
	if ((items = calloc(KEYS_MAX, sizeof(*items))) == NULL ||
	    db_key_list(ctx->db, claims->sub, items, KEYS_MAX, &n) != DB_OK) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	buf_puts(&b, "{\"items\":[");
	for (i = 0; i < n; i++) {
		buf_puts(&b, i > 0 ? ",{\"id\":" : "{\"id\":");
		json_put_str(&b, items[i].id, strlen(items[i].id));
		buf_puts(&b, ",\"name\":");
		json_put_str(&b, items[i].name, strlen(items[i].name));
		buf_puts(&b, ",\"created_at\":");
		rfc3339_put(&b, items[i].created_us);
		buf_puts(&b, ",\"expires_at\":");
		rfc3339_put(&b, items[i].expires_us);
		buf_puts(&b, ",\"last_used_at\":");
		rfc3339_put(&b, items[i].last_used_us);
		buf_puts(&b, "}");
	}
	buf_puts(&b, "]}");
	short_send(ctx, resp, 200, &b);
out:
	free(items);
	buf_free(&b);
}

/* DELETE /users/keys/<id> -> 204; 404 unknown (or revoked), 403 someone
 * else's. */
static void
keys_revoke(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims, const char *id)
{
	struct db_key	 k;
	enum db_status	 st;

	st = db_key_get(ctx->db, id, &k);
	if (st == DB_OK && k.revoked)
		st = DB_NOTFOUND;
	if (st == DB_OK && strcmp(k.user, claims->sub) != 0) {
		response_error(resp, 403, "forbidden",
		    "this key belongs to another user");
		return;
	}
	if (st == DB_OK)
		st = db_key_revoke(ctx->db, claims->sub, id);
	if (st == DB_NOTFOUND)
		response_error(resp, 404, "not found", "no such key");
	else if (st != DB_OK)
		response_unavailable(resp, ctx->cfg->db_retry_after);
	else {
		log_info("#%llu: user %s revoked API key %s",
		    (unsigned long long)req->rid, claims->sub, id);
		response_no_content(resp, 204);
	}
}

int
keys_route(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	static const char	 base[] = "/users/keys";
	struct jwt_claims	 claims;
	const char		*m = req->method != NULL ? req->method : "";
	const char		*p = req->path;
	size_t			 n = sizeof(base) - 1, idlen;
	char			 id[KEY_ID_LEN + 1];

	if (p == NULL || req->pathlen < n || memcmp(p, base, n) != 0 ||
	    (req->pathlen > n && p[n] != '/'))
		return 0;
	if (req->pathlen <= n + 1) {		/* the collection */
		if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
		    strcmp(m, "POST") != 0)
			response_bad_method(resp, ALLOW_KEYS);
		else if (cred_login_only(ctx, req, resp, &claims) == 0) {
			if (strcmp(m, "POST") == 0)
				keys_create(ctx, req, resp, &claims);
			else
				keys_list(ctx, resp, &claims);
		}
		if (strcmp(m, "HEAD") == 0)
			resp->head_only = 1;
		return 1;
	}
	idlen = req->pathlen - n - 1;
	if (idlen != KEY_ID_LEN || !keys_b62(p + n + 1, idlen)) {
		response_error(resp, 404, "not found", "no such key");
		return 1;
	}
	memcpy(id, p + n + 1, idlen);
	id[idlen] = '\0';
	if (strcmp(m, "DELETE") != 0)
		response_bad_method(resp, ALLOW_KEY);
	else if (cred_login_only(ctx, req, resp, &claims) == 0)
		keys_revoke(ctx, req, resp, &claims, id);
	return 1;
}
