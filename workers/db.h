/*
 * db.h — what db.c shares with the files that hold the statements of
 * one table each (db_users.c, db_links.c, db_visits.c, ...), and
 * nothing else includes: the connection, the retry policy's entry
 * points and the prepared-statement helper.  workers.h is the
 * interface the rest of the worker sees.
 *
 * A new statement is a few lines in the file of the table it touches:
 *
 *	static const struct db_sql q_user_age = { "user age", 0,
 *	    "SELECT created FROM users WHERE username = ?" };
 *
 *	MYSQL_BIND	 p[1], r[1];
 *
 *	db_bind_str(&p[0], user, strlen(user));
 *	db_bind_i64(&r[0], &created);
 *	return db_run(db, &q_user_age, p, r, NULL);
 *
 * db_run() prepares it on first use (kept until the connection goes),
 * binds, executes under the retry policy of db.c and fetches the first
 * row.  A statement that reads many rows, or a column at its full
 * length, uses the steps db_run() is made of: db_exec(), db_fetch(),
 * db_done().
 */
#ifndef SHORTD_DB_H
#define SHORTD_DB_H

#include <stdint.h>

#include <mysql.h>

#include "workers.h"

#define DB_KEY_MAX	64		/* ids, usernames: VARCHAR(64) */
#define DB_NODES_MAX	16
#define DB_STMTS_MAX	96		/* distinct statements a worker keeps */

/*
 * Server and client error numbers, spelled here because MySQL's and
 * MariaDB's headers do not define the same set of names.
 */
enum {
	DB_ER_TOO_MANY_STMTS = 1,	/* ours: DB_STMTS_MAX is too small */
	DB_ER_UNKNOWN_COM = 1047,	/* Galera: node not ready */
	DB_ER_SERVER_SHUTDOWN = 1053,
	DB_ER_DUP_ENTRY = 1062,
	DB_ER_NO_SUCH_TABLE = 1146,
	DB_ER_UNKNOWN_SYSTEM_VARIABLE = 1193,
	DB_ER_LOCK_WAIT_TIMEOUT = 1205,
	DB_ER_LOCK_DEADLOCK = 1213,
	DB_ER_NO_REFERENCED_ROW = 1216,
	DB_ER_UNKNOWN_STMT = 1243,
	DB_ER_NO_REFERENCED_ROW_2 = 1452,
	DB_ER_DUP_ENTRY_WITH_KEY = 1586,
	DB_ER_NEED_REPREPARE = 1615,
	DB_ER_CONNECTION_KILLED = 1927,	/* MariaDB */
	DB_ER_CLIENT_IDLE = 4031,	/* MySQL 8: idle client dropped */
	DB_CR_MIN = 2000,		/* client library errors */
	DB_CR_MAX = 2999
};

enum db_errclass {
	DBE_LOST,		/* the connection is unusable */
	DBE_STALE,		/* the statement handle is; not executed */
	DBE_LOCK,		/* rolled back by the server: retry */
	DBE_DUPLICATE,
	DBE_NOREF,		/* foreign key parent missing */
	DBE_OTHER
};

/* One statement: defined once, static const, in the file of its
 * table; its address is its key in the connection's cache. */
struct db_sql {
	const char	*name;		/* for log lines */
	int		 write;		/* not retried after a lost link */
	const char	*sql;
};

/* One server of db_host's list. */
struct db_node {
	char		 host[256];	/* "localhost": the unix socket */
	unsigned int	 port;
	int		 failed;	/* failed_ms is set */
	int64_t		 failed_ms;	/* CLOCK_MONOTONIC of the failure */
};

struct db {
	const struct config	*cfg;
	MYSQL			*mysql;		/* NULL when not connected */
	int			 connected;
	struct db_node		 node[DB_NODES_MAX];
	int			 nnodes;	/* 0: db_host did not parse */
	int			 cur;		/* the node connected to */
	int64_t			 last_used_ms;	/* CLOCK_MONOTONIC */
	unsigned int		 last_errno;	/* of the last failure */
	uint64_t		 connects;	/* successful connects */
	char			 errmsg[256];
	/* Statements prepared on this connection, lazily: stmt[i] is
	 * sql[i]'s handle or NULL; a slot keeps its sql for good. */
	const struct db_sql	*sql[DB_STMTS_MAX];
	MYSQL_STMT		*stmt[DB_STMTS_MAX];
	int			 nstmts;
};

/* db.c: the connection and the retry policy */
/* 1 if s can be a key of the ascii columns (ids, usernames). */
int		 db_key_ok(const char *s, size_t max);
void		 db_seterr(struct db *, unsigned int err, const char *msg);
/* Record the client library's last error on the connection. */
unsigned int	 db_myerr(struct db *);
void		 db_close_stmt(struct db *, const struct db_sql *);
void		 db_disconnect(struct db *);
void		 db_node_failed(struct db *, int node);
void		 db_check_link(struct db *, int write);
enum db_errclass db_classify(unsigned int err);
unsigned int	 db_try(struct db *, const struct db_sql *, MYSQL_BIND *param,
		    MYSQL_STMT **out, int *executed);
enum db_status	 db_exec(struct db *, const struct db_sql *,
		    MYSQL_BIND *param, MYSQL_STMT **out);
void		 db_done(MYSQL_STMT *);
int		 db_fetch(const struct db_sql *, MYSQL_STMT *,
		    MYSQL_BIND *result, int first);
enum db_status	 db_run(struct db *, const struct db_sql *,
		    MYSQL_BIND *param, MYSQL_BIND *result, uint64_t *rows);

/* db.c: binding parameters and results */
void		 db_bind_str(MYSQL_BIND *, const char *, size_t);
void		 db_bind_i64(MYSQL_BIND *, int64_t *);
void		 db_bind_i64_or_null(MYSQL_BIND *, int64_t *);
void		 db_bind_out(MYSQL_BIND *, char *buf, size_t size,
		    unsigned long *len);
int		 db_terminate(char *buf, size_t size, unsigned long len);

/* db_links.c: urls.value_hash, the SHA-256 of a URL.  0 or -1. */
#define DB_HASH_LEN	32
int		 db_value_hash(const char *value, size_t len,
		    unsigned char out[DB_HASH_LEN]);
/* db_search.c: one statement inside the transaction gen (db_tx_begin),
 * tried once: DB_OK with *out to release (db_done), DB_DUPLICATE,
 * DB_NOTFOUND (a foreign key's parent is missing), DB_UNAVAILABLE. */
enum db_status	 db_tx_exec(struct db *, uint64_t gen, const struct db_sql *,
		    MYSQL_BIND *param, MYSQL_STMT **out);

/* db_analytics.c: inside a visit flush's transaction (db_visits.c),
 * after the counts: insert the visit records of the links of v not
 * pending.  0, or the error number (message in db->errmsg).  _stale
 * drops its prepared statements after a DBE_STALE. */
unsigned int	 db_visit_records(struct db *, const struct db_visits *,
		    size_t n);
void		 db_visit_records_stale(struct db *);

#endif /* SHORTD_DB_H */
