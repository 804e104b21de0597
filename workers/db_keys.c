/*
 * db_keys.c — the statements of API keys and of account deletion.
 *
 * A key is looked up by its id, the primary key, on every request that
 * presents it: nothing caches a key, so a revocation committed through
 * any node is refused by the next request on any worker of any host.
 * last_used_us is written by db_key_touch in batches (keys.c), never
 * on the request path.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "db.h"

static const struct db_sql q_key_insert = { "key insert", 1,
    "INSERT INTO api_keys (id, `user`, name, secret_hash, created_us, "
    "expires_us) VALUES (?, ?, ?, ?, ?, ?)" };
static const struct db_sql q_key_get = { "key get", 0,
    "SELECT `user`, name, secret_hash, created_us, "
    "COALESCE(expires_us, 0), COALESCE(last_used_us, 0), revoked "
    "FROM api_keys WHERE id = ?" };
static const struct db_sql q_key_list = { "key list", 0,
    "SELECT id, name, created_us, COALESCE(expires_us, 0), "
    "COALESCE(last_used_us, 0) FROM api_keys "
    "WHERE `user` = ? AND revoked = 0 "
    "ORDER BY created_us DESC, id DESC LIMIT ?" };
static const struct db_sql q_key_count = { "key count", 0,
    "SELECT COUNT(*) FROM api_keys WHERE `user` = ? AND revoked = 0" };
static const struct db_sql q_key_revoke = { "key revoke", 1,
    "UPDATE api_keys SET revoked = 1 WHERE id = ? AND `user` = ?" };
/* Several workers may touch one key: the latest time wins. */
static const struct db_sql q_key_touch = { "key touch", 1,
    "UPDATE api_keys SET last_used_us = GREATEST(COALESCE(last_used_us, "
    "0), ?) WHERE id = ?" };
/* Links (and through them their tags), keys and the visit counts the
 * links hold go with the user, by the foreign keys' ON DELETE
 * CASCADE, in this one statement. */
static const struct db_sql q_user_delete = { "user delete", 1,
    "DELETE FROM users WHERE username = ?" };

enum db_status
db_key_insert(struct db *db, const struct db_key *k)
{
	MYSQL_BIND	 p[6];
	int64_t		 created = k->created_us, expires = k->expires_us;

	if (!db_key_ok(k->user, JWT_SUB_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], k->id, strlen(k->id));
	db_bind_str(&p[1], k->user, strlen(k->user));
	db_bind_str(&p[2], k->name, strlen(k->name));
	db_bind_str(&p[3], (const char *)k->hash, sizeof(k->hash));
	db_bind_i64(&p[4], &created);
	db_bind_i64_or_null(&p[5], &expires);
	return db_run(db, &q_key_insert, p, NULL, NULL);
}

enum db_status
db_key_get(struct db *db, const char *id, struct db_key *k)
{
	MYSQL_BIND	 p[1], r[7];
	MYSQL_STMT	*s;
	unsigned long	 ulen = 0, nlen = 0, hlen = 0;
	char		 hash[sizeof(k->hash) + 1];
	int64_t		 revoked = 0;
	enum db_status	 st;

	memset(k, 0, sizeof(*k));
	if (!db_key_ok(id, KEY_ID_LEN))
		return DB_NOTFOUND;
	db_bind_str(&p[0], id, strlen(id));
	if ((st = db_exec(db, &q_key_get, p, &s)) != DB_OK)
		return st;
	db_bind_out(&r[0], k->user, sizeof(k->user), &ulen);
	db_bind_out(&r[1], k->name, sizeof(k->name), &nlen);
	db_bind_out(&r[2], hash, sizeof(hash), &hlen);
	db_bind_i64(&r[3], &k->created_us);
	db_bind_i64(&r[4], &k->expires_us);
	db_bind_i64(&r[5], &k->last_used_us);
	db_bind_i64(&r[6], &revoked);
	switch (db_fetch(&q_key_get, s, r, 1)) {
	case 0:
		st = DB_NOTFOUND;
		break;
	case 1:
		if (db_terminate(k->user, sizeof(k->user), ulen) == -1 ||
		    db_terminate(k->name, sizeof(k->name), nlen) == -1 ||
		    hlen != sizeof(k->hash)) {
			log_warnx("db: key get: a row of key %s does not fit",
			    id);
			st = DB_UNAVAILABLE;
			break;
		}
		memcpy(k->hash, hash, sizeof(k->hash));
		snprintf(k->id, sizeof(k->id), "%s", id);
		k->revoked = revoked != 0;
		break;
	default:
		st = DB_UNAVAILABLE;
		break;
	}
	db_done(s);
	return st;
}

enum db_status
db_key_list(struct db *db, const char *user, struct db_key *items,
    size_t max, size_t *n)
{
	MYSQL_BIND	 p[2], r[5];
	MYSQL_STMT	*s;
	struct db_key	 k;
	unsigned long	 ilen = 0, nlen = 0;
	int64_t		 limit = (int64_t)max;
	enum db_status	 st;
	int		 got = 0;

	*n = 0;
	if (max == 0 || !db_key_ok(user, JWT_SUB_MAX))
		return DB_OK;
	db_bind_str(&p[0], user, strlen(user));
	db_bind_i64(&p[1], &limit);
	if ((st = db_exec(db, &q_key_list, p, &s)) != DB_OK)
		return st;
	memset(&k, 0, sizeof(k));
	db_bind_out(&r[0], k.id, sizeof(k.id), &ilen);
	db_bind_out(&r[1], k.name, sizeof(k.name), &nlen);
	db_bind_i64(&r[2], &k.created_us);
	db_bind_i64(&r[3], &k.expires_us);
	db_bind_i64(&r[4], &k.last_used_us);
	while (*n < max && (got = db_fetch(&q_key_list, s, r,
	    *n == 0)) == 1) {
		if (db_terminate(k.id, sizeof(k.id), ilen) == -1 ||
		    db_terminate(k.name, sizeof(k.name), nlen) == -1)
			continue;
		items[*n] = k;
		snprintf(items[*n].user, sizeof(items[*n].user), "%s", user);
		(*n)++;
	}
	if (*n < max && got == -1)
		st = DB_UNAVAILABLE;
	db_done(s);
	return st;
}

enum db_status
db_key_count(struct db *db, const char *user, int64_t *count)
{
	MYSQL_BIND	 p[1], r[1];
	enum db_status	 st;

	*count = 0;
	if (!db_key_ok(user, JWT_SUB_MAX))
		return DB_OK;
	db_bind_str(&p[0], user, strlen(user));
	db_bind_i64(&r[0], count);
	/* COUNT(*) always has its row. */
	st = db_run(db, &q_key_count, p, r, NULL);
	return st == DB_NOTFOUND ? DB_UNAVAILABLE : st;
}

/* DB_OK revoked (or already revoked), DB_NOTFOUND no such key of
 * user's. */
enum db_status
db_key_revoke(struct db *db, const char *user, const char *id)
{
	MYSQL_BIND	 p[2];

	if (!db_key_ok(id, KEY_ID_LEN) || !db_key_ok(user, JWT_SUB_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_str(&p[1], user, strlen(user));
	return db_run(db, &q_key_revoke, p, NULL, NULL);
}

enum db_status
db_key_touch(struct db *db, const char *id, int64_t used_us)
{
	MYSQL_BIND	 p[2];
	enum db_status	 st;

	if (!db_key_ok(id, KEY_ID_LEN))
		return DB_OK;
	db_bind_i64(&p[0], &used_us);
	db_bind_str(&p[1], id, strlen(id));
	st = db_run(db, &q_key_touch, p, NULL, NULL);
	return st == DB_NOTFOUND ? DB_OK : st;	/* revoked meanwhile */
}

enum db_status
db_user_delete(struct db *db, const char *user)
{
	MYSQL_BIND	 p[1];

	if (!db_key_ok(user, JWT_SUB_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], user, strlen(user));
	return db_run(db, &q_user_delete, p, NULL, NULL);
}
