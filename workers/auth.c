/*
 * auth.c — the routes nginx sends to the auth pool ("/users").
 *
 *	/users		POST (sign up), PUT (change password),
 *			DELETE (the account, with a login token)
 *	/users/login	POST (a JWT for a username and password)
 *	/users/keys...	API keys (keys.c)
 *
 * Order of checks: an unknown path is 404, an unsupported method 405
 * (with Allow), a body that cannot be read or lacks a field 400, a new
 * password of the wrong length 400 (cheap, before any argon2 work),
 * then the credentials 403.  An unknown or impossible username is
 * verified against the worker's dummy hash, so it costs what a wrong
 * password costs and answers the same words: no user enumeration.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "workers.h"

#define ALLOW_USERS	"POST, PUT, DELETE"
#define ALLOW_LOGIN	"POST"
#define PASSWORD_MAX	1024		/* bytes, as the contract says */
#define TOKEN_MAX	1024
#define BAD_CREDENTIALS	"wrong username or password"

static int	 auth_init(struct worker_ctx *);
static void	 auth_handle(struct worker_ctx *, const struct request *,
		    struct response *);

const struct service auth_service = {
	"auth",
	auth_init,
	auth_handle,
	0			/* uses the database */
};

static void
auth_params(const struct config *cfg, struct argon2_params *p)
{
	p->m_kib = cfg->argon2_memory;
	p->t = cfg->argon2_iterations;
	p->p = cfg->argon2_parallelism;
}

/* The dummy hash is made once per worker, with the live parameters. */
static int
auth_init(struct worker_ctx *ctx)
{
	struct argon2_params	 p;

	auth_params(ctx->cfg, &p);
	if (password_dummy_init(&p, ctx->dummy_hash,
	    sizeof(ctx->dummy_hash)) == -1) {
		log_warnx("auth: cannot make the dummy password hash "
		    "(m=%u KiB, t=%u, p=%u)", p.m_kib, p.t, p.p);
		return -1;
	}
	return 0;
}

static void
auth_forbidden(struct response *resp)
{
	response_error(resp, 403, "forbidden", BAD_CREDENTIALS);
}

/* 0 if a password of len bytes may be set, else -1 with the 400. */
static int
auth_password_ok(const struct worker_ctx *ctx, struct response *resp,
    const char *what, size_t len)
{
	char	 msg[128];
	size_t	 min = ctx->cfg->password_min > 0 ? ctx->cfg->password_min : 1;

	if (len >= min && len <= PASSWORD_MAX)
		return 0;
	snprintf(msg, sizeof(msg), "invalid %s: must be %zu to %d bytes",
	    what, min, PASSWORD_MAX);
	response_error(resp, 400, "error", msg);
	return -1;
}

/* {"username": user} with status, or a 503 if memory ran out. */
static void
auth_send_user(const struct worker_ctx *ctx, struct response *resp,
    int status, const char *user, size_t len)
{
	struct buf	 b;

	buf_init(&b);
	buf_puts(&b, "{\"username\":");
	json_put_str(&b, user, len);
	buf_puts(&b, "}");
	if (b.failed)
		response_unavailable(resp, ctx->cfg->db_retry_after);
	else
		response_json(resp, status, (const char *)b.data);
	buf_free(&b);
}

/*
 * Check user's password.  1 if it matches (phc and *changed then hold
 * the stored hash and its change time), 0 if not (unknown user, bad
 * shape or wrong password: the response is the same 403, and the time
 * spent is one argon2 verification in every case), -1 with a 503 in
 * resp when the database is unavailable.
 */
static int
auth_check(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct field *user, const struct field *pw,
    char phc[PASSWORD_HASH_MAX], int64_t *changed)
{
	enum db_status	 st = DB_NOTFOUND;
	int		 r;

	if (username_valid(user->value, user->len))
		st = db_user_get(ctx->db, user->value, phc, PASSWORD_HASH_MAX,
		    changed);
	if (st == DB_UNAVAILABLE) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		return -1;
	}
	if (st != DB_OK) {
		(void)password_verify(ctx->dummy_hash, pw->value, pw->len);
		auth_forbidden(resp);
		return 0;
	}
	if ((r = password_verify(phc, pw->value, pw->len)) == -1)
		log_warnx("#%llu: user %s: stored password hash is unusable",
		    (unsigned long long)req->rid, user->value);
	if (r != 1) {
		auth_forbidden(resp);
		return 0;
	}
	return 1;
}

/* POST /users — a new account. */
static void
auth_signup(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct field		 f[2] = {
		{ { "username", NULL }, 1, NULL, 0, 0 },
		{ { "password", NULL }, 1, NULL, 0, 0 },
	};
	struct argon2_params	 p;
	char			 phc[PASSWORD_HASH_MAX];
	enum db_status		 st;

	if (body_read(ctx, req, resp, f, 2) == -1)
		goto out;
	if (!username_valid(f[0].value, f[0].len)) {
		response_error(resp, 400, "error", "invalid username: "
		    "1 to 64 bytes of letters, digits, '.', '_', '@', '-'");
		goto out;
	}
	if (auth_password_ok(ctx, resp, "password", f[1].len) == -1)
		goto out;
	auth_params(ctx->cfg, &p);
	if (password_hash(&p, f[1].value, f[1].len, phc, sizeof(phc)) == -1) {
		log_warnx("#%llu: password hashing failed",
		    (unsigned long long)req->rid);
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	st = db_user_create(ctx->db, f[0].value, phc, (int64_t)time(NULL));
	if (st == DB_OK) {
		log_info("#%llu: user %s created",
		    (unsigned long long)req->rid, f[0].value);
		auth_send_user(ctx, resp, 201, f[0].value, f[0].len);
	} else if (st == DB_DUPLICATE)
		response_error(resp, 409, "duplicate",
		    "username already taken");
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
out:
	explicit_bzero(phc, sizeof(phc));
	fields_free(f, 2);
}

/* PUT /users — change a password, given the old one. */
static void
auth_change(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct field		 f[3] = {
		{ { "username", NULL }, 1, NULL, 0, 0 },
		{ { "password", "old-password", "old_password", NULL }, 1,
		    NULL, 0, 0 },
		{ { "new_password", "new-password", NULL }, 1, NULL, 0, 0 },
	};
	struct argon2_params	 p;
	char			 phc[PASSWORD_HASH_MAX];
	int64_t			 changed = 0, now;
	enum db_status		 st;

	phc[0] = '\0';
	if (cred_is_key(req)) {
		response_error(resp, 403, "forbidden", "an API key cannot "
		    "change the password");
		goto out;
	}
	if (body_read(ctx, req, resp, f, 3) == -1 ||
	    auth_password_ok(ctx, resp, "new password", f[2].len) == -1 ||
	    auth_check(ctx, req, resp, &f[0], &f[1], phc, &changed) != 1)
		goto out;
	auth_params(ctx->cfg, &p);
	if (password_hash(&p, f[2].value, f[2].len, phc, sizeof(phc)) == -1) {
		log_warnx("#%llu: password hashing failed",
		    (unsigned long long)req->rid);
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	/* The change time lets tokens issued before it be refused. */
	now = (int64_t)time(NULL);
	st = db_user_set_password(ctx->db, f[0].value, phc, now);
	if (st == DB_OK) {
		log_info("#%llu: user %s changed password",
		    (unsigned long long)req->rid, f[0].value);
		auth_send_user(ctx, resp, 200, f[0].value, f[0].len);
	} else if (st == DB_NOTFOUND)	/* deleted meanwhile */
		auth_forbidden(resp);
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
out:
	explicit_bzero(phc, sizeof(phc));
	fields_free(f, 3);
}

/*
 * A stored hash with weaker parameters than the configured ones is
 * replaced now that the password is known.  The old change time is
 * kept: a re-hash is not a password change and must not end sessions.
 * Failure only costs the upgrade.
 */
static void
auth_rehash(struct worker_ctx *ctx, const struct request *req,
    const struct field *user, const struct field *pw, const char *phc,
    int64_t changed)
{
	struct argon2_params	 p;
	char			 nphc[PASSWORD_HASH_MAX];

	auth_params(ctx->cfg, &p);
	if (!password_needs_rehash(phc, &p))
		return;
	if (password_hash(&p, pw->value, pw->len, nphc, sizeof(nphc)) == -1 ||
	    db_user_set_password(ctx->db, user->value, nphc, changed) !=
	    DB_OK)
		log_warnx("#%llu: user %s: password re-hash failed",
		    (unsigned long long)req->rid, user->value);
	explicit_bzero(nphc, sizeof(nphc));
}

/* POST /users/login — a token for a username and its password. */
static void
auth_login(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct field		 f[2] = {
		{ { "username", NULL }, 1, NULL, 0, 0 },
		{ { "password", NULL }, 1, NULL, 0, 0 },
	};
	const struct config	*cfg = ctx->cfg;
	struct buf		 b;
	char			 phc[PASSWORD_HASH_MAX], tok[TOKEN_MAX];
	int64_t			 changed = 0, now;

	buf_init(&b);
	phc[0] = '\0';
	tok[0] = '\0';
	if (body_read(ctx, req, resp, f, 2) == -1 ||
	    auth_check(ctx, req, resp, &f[0], &f[1], phc, &changed) != 1)
		goto out;
	auth_rehash(ctx, req, &f[0], &f[1], phc, changed);
	now = (int64_t)time(NULL);
	if (jwt_sign((const uint8_t *)cfg->jwt_secret, cfg->jwt_secret_len,
	    f[0].value, now, now + cfg->jwt_lifetime, tok, sizeof(tok)) == -1) {
		log_warnx("#%llu: cannot sign a token",
		    (unsigned long long)req->rid);
		response_unavailable(resp, cfg->db_retry_after);
		goto out;
	}
	buf_puts(&b, "{\"token\":");
	json_put_str(&b, tok, strlen(tok));
	buf_printf(&b, ",\"expires_in\":%d}", cfg->jwt_lifetime);
	if (b.failed)
		response_unavailable(resp, cfg->db_retry_after);
	else
		response_json(resp, 200, (const char *)b.data);
out:
	explicit_bzero(phc, sizeof(phc));
	explicit_bzero(tok, sizeof(tok));
	fields_free(f, 2);
	buf_free(&b);
}

/*
 * DELETE /users {"password"} with a login token (not a key): the
 * account, its links, tags, keys and visit counts, at once (one
 * statement: the foreign keys cascade).  Its tokens are refused from
 * then on (their user is gone), its keys too (their rows are).
 */
static void
auth_delete(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct field		 f[1] = {
		{ { "password", NULL }, 1, NULL, 0, 0 },
	};
	struct field		 user = { { "username", NULL } };
	struct jwt_claims	 claims;
	char			 phc[PASSWORD_HASH_MAX];
	int64_t			 changed = 0;
	enum db_status		 st;

	phc[0] = '\0';
	if (cred_login_only(ctx, req, resp, &claims) == -1 ||
	    body_read(ctx, req, resp, f, 1) == -1)
		goto out;
	user.value = claims.sub;
	user.len = strlen(claims.sub);
	if (auth_check(ctx, req, resp, &user, &f[0], phc, &changed) != 1)
		goto out;
	/* The user's links go with the account (ON DELETE CASCADE): the
	 * shortener pool's redirect cache reads every link anew, before
	 * the delete and again once it has committed. */
	cache_bump_all(ctx->sbc);
	st = db_user_delete(ctx->db, claims.sub);
	cache_bump_all(ctx->sbc);
	if (st == DB_OK) {
		log_info("#%llu: user %s deleted the account",
		    (unsigned long long)req->rid, claims.sub);
		response_no_content(resp, 204);
	} else if (st == DB_NOTFOUND)	/* deleted meanwhile */
		auth_forbidden(resp);
	else
		response_unavailable(resp, ctx->cfg->db_retry_after);
out:
	explicit_bzero(phc, sizeof(phc));
	fields_free(f, 1);
}

/* path is exactly p, or p with one trailing slash. */
static int
auth_path_is(const struct request *req, const char *p)
{
	size_t	 n = strlen(p);

	if (req->path == NULL || req->pathlen < n ||
	    memcmp(req->path, p, n) != 0)
		return 0;
	return req->pathlen == n ||
	    (req->pathlen == n + 1 && req->path[n] == '/');
}

static void
auth_handle(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	const char	*m = req->method != NULL ? req->method : "";

	if (keys_route(ctx, req, resp))
		return;
	if (auth_path_is(req, "/users")) {
		if (strcmp(m, "POST") == 0)
			auth_signup(ctx, req, resp);
		else if (strcmp(m, "PUT") == 0)
			auth_change(ctx, req, resp);
		else if (strcmp(m, "DELETE") == 0)
			auth_delete(ctx, req, resp);
		else
			response_bad_method(resp, ALLOW_USERS);
	} else if (auth_path_is(req, "/users/login")) {
		if (strcmp(m, "POST") == 0)
			auth_login(ctx, req, resp);
		else
			response_bad_method(resp, ALLOW_LOGIN);
	} else
		response_error(resp, 404, "not found", "no such resource");
}
