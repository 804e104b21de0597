/*
 * db_links.c — the urls table: a link's row, created, read, changed,
 * deleted, listed page by page, and found again by its value for
 * "reuse".  Counting visits is in db_visits.c.  Statements are run by
 * db.c's helper (db.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "db.h"


/* One row of a listing or a lookup, before it is copied out. */
struct db_row {
	char		 id[ID_MAX + 1];
	unsigned long	 idlen;
	char		 owner[JWT_SUB_MAX + 1];
	unsigned long	 ownerlen;
	char		 value[URL_MAX + 1];
	unsigned long	 valuelen;
	int64_t		 created_us;
	int64_t		 updated_us;
	int64_t		 visits;
	int64_t		 last_visit_us;
	int64_t		 expires_us;
	int64_t		 max_visits;
};

/* The row goes in only if its owner exists and has not changed the
 * password after the token was issued (pw_changed <= iat, both in
 * seconds): the token's revocation check and the insert in one round
 * trip.  The SELECT's shared lock on the user row is the one the
 * foreign key check takes anyway. */
static const struct db_sql q_url_insert = { "url insert", 1,
    "INSERT INTO urls (id, `user`, value, value_hash, created_us, "
    "updated_us, expires_us, max_visits) "
    "SELECT ?, username, ?, ?, ?, ?, ?, ? FROM users "
    "WHERE username = ? AND pw_changed <= ?" };
static const struct db_sql q_url_get = { "url get", 0,
    "SELECT `user`, value, created_us, updated_us, visits, "
    "COALESCE(last_visit_us, 0), COALESCE(expires_us, 0), "
    "COALESCE(max_visits, 0) FROM urls WHERE id = ?" };
/* Each column changes only when its flag is set, in one statement: a
 * PUT is applied whole or not at all. */
static const struct db_sql q_url_update = { "url update", 1,
    "UPDATE urls SET value = IF(?, ?, value), "
    "value_hash = IF(?, ?, value_hash), "
    "expires_us = IF(?, ?, expires_us), "
    "max_visits = IF(?, ?, max_visits), updated_us = ? "
    "WHERE id = ?" };
static const struct db_sql q_url_delete = { "url delete", 1,
    "DELETE FROM urls WHERE id = ?" };
static const struct db_sql q_url_delete_all = { "url delete all", 1,
    "DELETE FROM urls WHERE `user` = ?" };
/* A page of an owner's links, newest first: the first, or the one
 * after a cursor (created_us, id). */
#define DB_LIST_SELECT	"SELECT id, value, created_us, visits, " \
    "COALESCE(expires_us, 0), COALESCE(max_visits, 0) FROM urls " \
    "WHERE `user` = ? "
#define DB_LIST_ORDER	"ORDER BY created_us DESC, id DESC LIMIT ?"
static const struct db_sql q_url_list_first = { "url list", 0,
    DB_LIST_SELECT DB_LIST_ORDER };
static const struct db_sql q_url_list_next = { "url list next", 0,
    DB_LIST_SELECT "AND (created_us < ? OR (created_us = ? AND id < ?)) "
    DB_LIST_ORDER };
/* idx_user_value finds the candidates; value = ? rules out a hash
 * collision. */
static const struct db_sql q_url_find = { "url find", 0,
    "SELECT id FROM urls WHERE `user` = ? AND value_hash = ? "
    "AND value = ? AND expires_us IS NULL AND max_visits IS NULL "
    "ORDER BY created_us, id LIMIT 1" };

/* urls.value_hash: SHA-256 of the value's bytes, which is what
 * UNHEX(SHA2(value, 256)) gives for the rows the upgrade fills. */
int
db_value_hash(const char *value, size_t len, unsigned char out[DB_HASH_LEN])
{
	unsigned int	 n = 0;

	if (EVP_Digest(value, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != DB_HASH_LEN) {
		log_warnx("db: SHA-256 failed");
		return -1;
	}
	return 0;
}

/*
 * Copy the value column (number col) of the current row into a new
 * allocation.  The bound buffer holds any URL shortd accepts; a longer
 * stored value (the column allows 2048 characters, up to 8 KiB) is
 * fetched again at its full length rather than cut.
 */
static int
db_copy_value(MYSQL_STMT *s, unsigned int col, const struct db_row *r,
    char **out, size_t *outlen)
{
	MYSQL_BIND	 b;
	unsigned long	 len;
	char		*v;

	if ((v = malloc((size_t)r->valuelen + 1)) == NULL) {
		log_warnx("db: out of memory for a %lu byte value",
		    r->valuelen);
		return -1;
	}
	if (r->valuelen <= sizeof(r->value) - 1)
		memcpy(v, r->value, r->valuelen);
	else {
		db_bind_out(&b, v, (size_t)r->valuelen + 1, &len);
		if (mysql_stmt_fetch_column(s, &b, col, 0) != 0 ||
		    len != r->valuelen) {
			log_warnx("db: fetch value: %s", mysql_stmt_error(s));
			free(v);
			return -1;
		}
	}
	v[r->valuelen] = '\0';
	*out = v;
	*outlen = r->valuelen;
	return 0;
}

/* An owner that cannot exist gives DB_NOTFOUND, as the foreign key
 * does for one that no longer exists. */
enum db_status
db_url_insert(struct db *db, const char *id, const char *owner,
    const char *value, size_t len, int64_t now_us)
{
	return db_url_insert_limited(db, id, owner, INT64_MAX, value, len,
	    now_us, 0, 0);
}

enum db_status
db_url_insert_limited(struct db *db, const char *id, const char *owner,
    int64_t issued, const char *value, size_t len, int64_t now_us,
    int64_t expires_us, int64_t max_visits)
{
	MYSQL_BIND	 p[9];
	unsigned char	 hash[DB_HASH_LEN];

	if (!db_key_ok(id, DB_KEY_MAX)) {
		log_warnx("db: url insert: unusable id");
		return DB_UNAVAILABLE;
	}
	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_NOTFOUND;
	if (db_value_hash(value, len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_str(&p[1], value, len);
	db_bind_str(&p[2], (const char *)hash, sizeof(hash));
	db_bind_i64(&p[3], &now_us);
	db_bind_i64(&p[4], &now_us);
	db_bind_i64_or_null(&p[5], &expires_us);
	db_bind_i64_or_null(&p[6], &max_visits);
	db_bind_str(&p[7], owner, strlen(owner));
	db_bind_i64(&p[8], &issued);
	/* No row: the SELECT found no such user, or a later change. */
	return db_run(db, &q_url_insert, p, NULL, NULL);
}

enum db_status
db_url_find(struct db *db, const char *owner, const char *value, size_t len,
    char id[ID_MAX + 1])
{
	MYSQL_BIND	 p[3], r[1];
	unsigned char	 hash[DB_HASH_LEN];
	char		 got[ID_MAX + 1];
	unsigned long	 gotlen = 0;
	enum db_status	 st;

	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_NOTFOUND;
	if (db_value_hash(value, len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_str(&p[0], owner, strlen(owner));
	db_bind_str(&p[1], (const char *)hash, sizeof(hash));
	db_bind_str(&p[2], value, len);
	db_bind_out(&r[0], got, sizeof(got), &gotlen);
	if ((st = db_run(db, &q_url_find, p, r, NULL)) != DB_OK)
		return st;
	if (db_terminate(got, sizeof(got), gotlen) == -1)
		return DB_UNAVAILABLE;
	memcpy(id, got, (size_t)gotlen + 1);
	return DB_OK;
}

/* u is overwritten; on anything but DB_OK u->value is NULL. */
enum db_status
db_url_get(struct db *db, const char *id, struct db_url *u)
{
	MYSQL_BIND	 p[1], r[8];
	MYSQL_STMT	*s;
	struct db_row	*row;
	enum db_status	 st;

	memset(u, 0, sizeof(*u));
	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	if ((row = calloc(1, sizeof(*row))) == NULL) {
		log_warnx("db: url get: out of memory");
		return DB_UNAVAILABLE;
	}
	db_bind_str(&p[0], id, strlen(id));
	if ((st = db_exec(db, &q_url_get, p, &s)) != DB_OK)
		goto out;
	db_bind_out(&r[0], row->owner, sizeof(row->owner), &row->ownerlen);
	db_bind_out(&r[1], row->value, sizeof(row->value), &row->valuelen);
	db_bind_i64(&r[2], &row->created_us);
	db_bind_i64(&r[3], &row->updated_us);
	db_bind_i64(&r[4], &row->visits);
	db_bind_i64(&r[5], &row->last_visit_us);
	db_bind_i64(&r[6], &row->expires_us);
	db_bind_i64(&r[7], &row->max_visits);
	switch (db_fetch(&q_url_get, s, r, 1)) {
	case 0:
		st = DB_NOTFOUND;
		break;
	case 1:
		if (db_terminate(row->owner, sizeof(row->owner),
		    row->ownerlen) == -1 ||
		    db_copy_value(s, 1, row, &u->value, &u->len) == -1) {
			st = DB_UNAVAILABLE;
			break;
		}
		memcpy(u->id, id, strlen(id) + 1);
		memcpy(u->owner, row->owner, (size_t)row->ownerlen + 1);
		u->created_us = row->created_us;
		u->updated_us = row->updated_us;
		u->visits = row->visits;
		u->last_visit_us = row->last_visit_us;
		u->expires_us = row->expires_us;
		u->max_visits = row->max_visits;
		break;
	default:
		st = DB_UNAVAILABLE;
		break;
	}
	db_done(s);
out:
	free(row);
	return st;
}

enum db_status
db_url_update(struct db *db, const char *id, const char *value, size_t len,
    int64_t now_us)
{
	struct db_url_change	 c;

	memset(&c, 0, sizeof(c));
	c.value = value;
	c.len = len;
	return db_url_change(db, id, &c, now_us);
}

enum db_status
db_url_change(struct db *db, const char *id, const struct db_url_change *c,
    int64_t now_us)
{
	MYSQL_BIND	 p[10];
	unsigned char	 hash[DB_HASH_LEN];
	int64_t		 set_value = c->value != NULL, set_exp = c->set_expires,
			 set_max = c->set_max_visits, expires = c->expires_us,
			 max = c->max_visits;

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	memset(hash, 0, sizeof(hash));
	if (set_value && db_value_hash(c->value, c->len, hash) == -1)
		return DB_UNAVAILABLE;
	db_bind_i64(&p[0], &set_value);
	db_bind_str(&p[1], set_value ? c->value : "", set_value ? c->len : 0);
	db_bind_i64(&p[2], &set_value);
	db_bind_str(&p[3], (const char *)hash, sizeof(hash));
	db_bind_i64(&p[4], &set_exp);
	db_bind_i64_or_null(&p[5], &expires);
	db_bind_i64(&p[6], &set_max);
	db_bind_i64_or_null(&p[7], &max);
	db_bind_i64(&p[8], &now_us);
	db_bind_str(&p[9], id, strlen(id));
	return db_run(db, &q_url_update, p, NULL, NULL);
}

enum db_status
db_url_delete(struct db *db, const char *id)
{
	MYSQL_BIND	 p[1];

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], id, strlen(id));
	return db_run(db, &q_url_delete, p, NULL, NULL);
}

enum db_status
db_url_delete_all(struct db *db, const char *owner, uint64_t *deleted)
{
	MYSQL_BIND	 p[1];
	enum db_status	 st;

	*deleted = 0;
	if (!db_key_ok(owner, DB_KEY_MAX))
		return DB_OK;
	db_bind_str(&p[0], owner, strlen(owner));
	st = db_run(db, &q_url_delete_all, p, NULL, deleted);
	return st == DB_NOTFOUND ? DB_OK : st;
}

/*
 * Copy the fetched rows into items.  On failure the items already
 * filled are cleared and -1 returned.
 */
static int
db_list_rows(const struct db_sql *q, MYSQL_STMT *s, MYSQL_BIND *r,
    struct db_row *row, const char *owner, struct db_url *items, size_t max,
    size_t *n)
{
	struct db_url	*u;
	int		 got = 0;

	while (*n < max && (got = db_fetch(q, s, r, *n == 0)) == 1) {
		u = &items[*n];
		memset(u, 0, sizeof(*u));
		if (db_terminate(row->id, sizeof(row->id), row->idlen) == -1 ||
		    db_copy_value(s, 1, row, &u->value, &u->len) == -1)
			goto fail;
		memcpy(u->id, row->id, (size_t)row->idlen + 1);
		snprintf(u->owner, sizeof(u->owner), "%s", owner);
		u->created_us = row->created_us;
		u->visits = row->visits;
		u->expires_us = row->expires_us;
		u->max_visits = row->max_visits;
		(*n)++;
	}
	if (*n < max && got == -1)
		goto fail;
	return 0;
fail:
	while (*n > 0)
		db_url_clear(&items[--*n]);
	return -1;
}

enum db_status
db_url_list(struct db *db, const char *owner, int64_t after_us,
    const char *after_id, struct db_url *items, size_t max, size_t *n)
{
	MYSQL_BIND	 p[5], r[6];
	MYSQL_STMT	*s;
	struct db_row	*row;
	const struct db_sql *which;
	enum db_status	 st;
	int64_t		 limit;

	*n = 0;
	/* Nobody owns a non-ascii name; no id sorts after a non-ascii
	 * cursor.  Either way the page is empty, not an error. */
	if (max == 0 || !db_key_ok(owner, DB_KEY_MAX) ||
	    (after_id != NULL && after_id[0] != '\0' &&
	    !db_key_ok(after_id, SIZE_MAX)))
		return DB_OK;
	if ((row = calloc(1, sizeof(*row))) == NULL) {
		log_warnx("db: url list: out of memory");
		return DB_UNAVAILABLE;
	}
	limit = max > 100000 ? 100000 : (int64_t)max;
	db_bind_str(&p[0], owner, strlen(owner));
	if (after_id == NULL) {
		which = &q_url_list_first;
		db_bind_i64(&p[1], &limit);
	} else {
		which = &q_url_list_next;
		db_bind_i64(&p[1], &after_us);
		db_bind_i64(&p[2], &after_us);
		db_bind_str(&p[3], after_id, strlen(after_id));
		db_bind_i64(&p[4], &limit);
	}
	if ((st = db_exec(db, which, p, &s)) != DB_OK)
		goto out;
	db_bind_out(&r[0], row->id, sizeof(row->id), &row->idlen);
	db_bind_out(&r[1], row->value, sizeof(row->value), &row->valuelen);
	db_bind_i64(&r[2], &row->created_us);
	db_bind_i64(&r[3], &row->visits);
	db_bind_i64(&r[4], &row->expires_us);
	db_bind_i64(&r[5], &row->max_visits);
	if (db_list_rows(which, s, r, row, owner, items, max, n) == -1)
		st = DB_UNAVAILABLE;
	db_done(s);
out:
	free(row);
	return st;
}

void
db_url_clear(struct db_url *u)
{
	free(u->value);
	u->value = NULL;
	u->len = 0;
}
