/*
 * dbi.h — what db.c lends the files that keep their own statements
 * (db_keys.c, db_search.c): a statement runner with db.c's retry
 * policy, transactions, and the binding helpers.  Only db_*.c include
 * it; everything else goes through the db_* calls of workers.h.
 *
 * A statement of another file is a static struct db_sql with a slot of
 * its own (DBX_*): the slot keeps it prepared on the connection until
 * the connection goes, as db.c's own statements are kept.
 */
#ifndef SHORTD_DBI_H
#define SHORTD_DBI_H

#include <mysql.h>

#include "workers.h"

struct db_sql {
	const char	*name;		/* for log lines */
	int		 write;		/* not retried after a lost link */
	const char	*sql;
};

/* Statement slots of the files outside db.c. */
enum {
	DBX_KEY_INSERT,
	DBX_KEY_GET,
	DBX_KEY_LIST,
	DBX_KEY_REVOKE,
	DBX_KEY_COUNT,
	DBX_KEY_TOUCH,
	DBX_USER_DELETE,
	DBX_USER_LOCK,
	DBX_SEARCH_FIRST,		/* db_search.c: DBX_SEARCH_SHAPES */
	DBX_SEARCH_LAST = DBX_SEARCH_FIRST + 63,
	DBX_TAGS_DELETE,
	DBX_TAGS_INSERT,
	DBX_URL_META,
	DBX_URL_SET_META,
	DBX_IMPORT_URLS,
	DBX_IMPORT_TAGS,
	DBX_IMPORT_TAKEN,
	DBX_EXPORT_FIRST,
	DBX_EXPORT_NEXT,
	DB_XSLOTS
};

/*
 * Run q (prepared in slot on first use) with param bound, as db.c runs
 * its own: reads retried on a new connection, autocommit writes
 * retried after a deadlock.  Inside a transaction (db_tx_begin) one
 * attempt only.  On DB_OK *out holds the statement with its rows
 * stored; read them with db_xfetch and release with db_done.
 */
enum db_status	 db_xexec(struct db *, const struct db_sql *, int slot,
		    MYSQL_BIND *, MYSQL_STMT **out);
int		 db_xfetch(const char *name, MYSQL_STMT *, MYSQL_BIND *,
		    int first);
void		 db_done(MYSQL_STMT *);

/*
 * A transaction on the worker's connection: begin, any number of
 * db_xexec (each tried once: nothing is retried half-way), then commit
 * or rollback, which always end it (autocommit back on).  A failed
 * statement leaves the transaction open for the caller's rollback.
 * commit: DB_OK, or DB_UNAVAILABLE (rolled back, or the connection
 * went during COMMIT).
 */
enum db_status	 db_tx_begin(struct db *);
enum db_status	 db_tx_exec(struct db *, const struct db_sql *, int slot,
		    MYSQL_BIND *, MYSQL_STMT **out);
enum db_status	 db_tx_commit(struct db *);
void		 db_tx_rollback(struct db *);

int		 db_key_ok(const char *, size_t max);
void		 db_bind_str(MYSQL_BIND *, const char *, size_t);
void		 db_bind_i64(MYSQL_BIND *, int64_t *);
void		 db_bind_i64_or_null(MYSQL_BIND *, int64_t *);
void		 db_bind_out(MYSQL_BIND *, char *buf, size_t size,
		    unsigned long *len);
int		 db_terminate(char *buf, size_t size, unsigned long len);
int		 db_value_hash(const char *, size_t, unsigned char out[32]);

#endif /* SHORTD_DBI_H */
