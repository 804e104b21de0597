/*
 * db_users.c — the users table: accounts and their password hashes.
 * Statements are run by db.c's helper (db.h); a username that cannot
 * be a key of the table is refused here, before any round trip.
 */
#include <stdint.h>
#include <string.h>

#include "db.h"

#define DB_PHC_MAX	255		/* users.password VARCHAR(255) */

static const struct db_sql q_user_create = { "user create", 1,
    "INSERT INTO users (username, password, pw_changed, created) "
    "VALUES (?, ?, ?, ?)" };
static const struct db_sql q_user_get = { "user get", 0,
    "SELECT password, pw_changed FROM users WHERE username = ?" };
static const struct db_sql q_user_set_password = { "user set password", 1,
    "UPDATE users SET password = ?, pw_changed = ? WHERE username = ?" };

enum db_status
db_user_create(struct db *db, const char *user, const char *phc,
    int64_t now)
{
	MYSQL_BIND	 p[4];

	if (!db_key_ok(user, DB_KEY_MAX)) {
		log_warnx("db: user create: unusable username");
		return DB_UNAVAILABLE;
	}
	db_bind_str(&p[0], user, strlen(user));
	db_bind_str(&p[1], phc, strlen(phc));
	db_bind_i64(&p[2], &now);
	db_bind_i64(&p[3], &now);
	return db_run(db, &q_user_create, p, NULL, NULL);
}

enum db_status
db_user_get(struct db *db, const char *user, char *phc, size_t phclen,
    int64_t *pw_changed)
{
	MYSQL_BIND	 p[1], r[2];
	char		 pw[DB_PHC_MAX + 1];
	unsigned long	 pwlen = 0;
	int64_t		 changed = 0;
	enum db_status	 st;

	if (!db_key_ok(user, DB_KEY_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], user, strlen(user));
	db_bind_out(&r[0], pw, sizeof(pw), &pwlen);
	db_bind_i64(&r[1], &changed);
	if ((st = db_run(db, &q_user_get, p, r, NULL)) != DB_OK)
		return st;
	if (db_terminate(pw, sizeof(pw), pwlen) == -1 || pwlen >= phclen) {
		log_warnx("db: user get: a %lu byte hash does not fit", pwlen);
		return DB_UNAVAILABLE;
	}
	memcpy(phc, pw, (size_t)pwlen + 1);
	*pw_changed = changed;
	return DB_OK;
}

enum db_status
db_user_set_password(struct db *db, const char *user, const char *phc,
    int64_t now)
{
	MYSQL_BIND	 p[3];

	if (!db_key_ok(user, DB_KEY_MAX))
		return DB_NOTFOUND;
	db_bind_str(&p[0], phc, strlen(phc));
	db_bind_i64(&p[1], &now);
	db_bind_str(&p[2], user, strlen(user));
	return db_run(db, &q_user_set_password, p, NULL, NULL);
}
