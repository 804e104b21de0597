/*
 * db_visits.c — counting visits in the urls table: one at a time for
 * a link with a visit limit (db_url_hit, checked and counted in one
 * statement), and the batched flush of the counts workers keep
 * (visits.c -> db_url_add_visits), one transaction for any number of
 * links.  Statements are run by db.c's helpers (db.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define DB_VISITS_LOCK_WAIT "1"	/* s a visit flush waits for a row lock */

/*
 * The batch of visit counts: DB_VISITS_BATCH links per statement, each
 * as "WHEN ? THEN ?" in two CASEs and one "?" in the IN list.  Unused
 * places get the empty id, which no row has.  FORCE INDEX makes the
 * IN list a primary key lookup, locking those rows only, in key order:
 * without it, on a table of up to a few hundred rows, the server reads
 * (and, under REPEATABLE READ, locks) every row, and waits for any
 * row locked anywhere.  (The SELECT may still read the whole key of a
 * table of a few dozen rows; with SKIP LOCKED it waits for none.)  A
 * flush sends its links sorted, so its statements lock in key order
 * too.  The CASE compares with the ascii_bin column's collation, so
 * ids stay case-sensitive.  A flush that must not wait for row locks
 * first locks the rows with SKIP LOCKED (MariaDB 10.6+, MySQL 8.0+)
 * and updates only those it got: a row another session holds is left
 * for a later flush (see db_url_add_visits).
 */
#define DB_W1	"WHEN ? THEN ? "
#define DB_W4	DB_W1 DB_W1 DB_W1 DB_W1
#define DB_W32	DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4 DB_W4
#define DB_Q4	"?, ?, ?, ?, "
#define DB_Q32	DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 DB_Q4 "?, ?, ?, ?"
#if DB_VISITS_BATCH != 32
#error "DB_W32 and DB_Q32 spell out DB_VISITS_BATCH places"
#endif

/* The visit limit holds under any concurrency: the row lock makes
 * check and increment one step. */
static const struct db_sql q_url_hit = { "url hit", 1,
    "UPDATE urls SET visits = visits + 1, last_visit_us = ? "
    "WHERE id = ? AND (max_visits IS NULL OR visits < max_visits) "
    "AND (expires_us IS NULL OR expires_us > ?)" };
static const struct db_sql q_url_add_visits = { "url add visits", 1,
    "UPDATE urls FORCE INDEX (PRIMARY) "
    "SET visits = visits + CASE id " DB_W32 "ELSE 0 END, "
    "last_visit_us = NULLIF(GREATEST(COALESCE(last_visit_us, 0), "
    "CASE id " DB_W32 "ELSE 0 END), 0) WHERE id IN (" DB_Q32 ")" };
static const struct db_sql q_url_lock_visits = { "url lock visits", 1,
    "SELECT id FROM urls FORCE INDEX (PRIMARY) "
    "WHERE id IN (" DB_Q32 ") FOR UPDATE SKIP LOCKED" };
/* A consistent read: it takes no lock and waits for none. */
static const struct db_sql q_url_seen_visits = { "url find visits", 0,
    "SELECT id FROM urls WHERE id IN (" DB_Q32 ")" };

enum db_status
db_url_hit(struct db *db, const char *id, int64_t now_us)
{
	MYSQL_BIND	 p[3];

	if (!db_key_ok(id, ID_MAX))
		return DB_NOTFOUND;
	db_bind_i64(&p[0], &now_us);
	db_bind_str(&p[1], id, strlen(id));
	db_bind_i64(&p[2], &now_us);
	return db_run(db, &q_url_hit, p, NULL, NULL);
}

/* Bind one statement's worth (up to DB_VISITS_BATCH) of v: (id, count)
 * per place, (id, last_us) per place, then the ids of the IN list, in
 * the order of the SQL.  Unused places get the empty id. */
static void
db_bind_visits(MYSQL_BIND *p, const struct db_visits *v, size_t n,
    int64_t *count, int64_t *last)
{
	size_t		 k, b = DB_VISITS_BATCH;

	for (k = 0; k < b; k++) {
		const char *id = k < n && db_key_ok(v[k].id, ID_MAX) ?
		    v[k].id : "";

		count[k] = k < n ? v[k].count : 0;
		last[k] = k < n ? v[k].last_us : 0;
		db_bind_str(&p[2 * k], id, strlen(id));
		db_bind_i64(&p[2 * k + 1], &count[k]);
		db_bind_str(&p[2 * b + 2 * k], id, strlen(id));
		db_bind_i64(&p[2 * b + 2 * k + 1], &last[k]);
		db_bind_str(&p[4 * b + k], id, strlen(id));
	}
}

/* The IN list alone, for the SELECTs of a flush. */
static void
db_bind_visit_ids(MYSQL_BIND *p, const struct db_visits *v, size_t n)
{
	size_t		 k;

	for (k = 0; k < DB_VISITS_BATCH; k++) {
		const char *id = k < n && db_key_ok(v[k].id, ID_MAX) ?
		    v[k].id : "";

		db_bind_str(&p[k], id, strlen(id));
	}
}

/*
 * Run SELECT q (ids of v, bound in p) and set seen[k] for each link
 * of v whose id comes back.  0, or the error number (message in
 * db->errmsg).
 */
static unsigned int
db_visits_select(struct db *db, const struct db_sql *q, MYSQL_BIND *p,
    const struct db_visits *v, size_t n, char *seen)
{
	MYSQL_STMT	*s;
	MYSQL_BIND	 r;
	char		 id[ID_MAX + 1];
	unsigned long	 len = 0;
	unsigned int	 err;
	size_t		 k;
	int		 executed, got, first = 1;

	memset(seen, 0, n);
	if ((err = db_try(db, q, p, &s, &executed)) != 0)
		return err;
	db_bind_out(&r, id, sizeof(id), &len);
	while ((got = db_fetch(q, s, &r, first)) == 1) {
		first = 0;
		if (db_terminate(id, sizeof(id), len) == -1)
			continue;
		for (k = 0; k < n; k++)
			if (strcmp(v[k].id, id) == 0)
				seen[k] = 1;
	}
	db_done(s);
	if (got == -1) {
		db_seterr(db, DB_CR_MIN, "cannot read the ids");
		return DB_CR_MIN;
	}
	return 0;
}

/*
 * Up to DB_VISITS_BATCH links of a flush, inside its transaction, all
 * marked pending 0 (written if the transaction commits).  With skip,
 * first lock their rows, skipping those another session holds; if
 * some did not come back, a plain read tells a row held by someone
 * (its link waits: pending stays 1) from a link that is gone (nothing
 * to write); then update only the rows locked.  0, or the error number
 * (message in db->errmsg).
 */
static unsigned int
db_visits_batch(struct db *db, struct db_visits *v, size_t n,
    MYSQL_BIND *p, int skip)
{
	struct db_visits w[DB_VISITS_BATCH];
	MYSQL_STMT	*s;
	int64_t		 count[DB_VISITS_BATCH], last[DB_VISITS_BATCH];
	char		 locked[DB_VISITS_BATCH], exists[DB_VISITS_BATCH];
	unsigned int	 err;
	size_t		 k, nw = 0;
	int		 executed;

	if (!skip) {
		for (k = 0; k < n; k++)
			v[k].pending = 0;
		db_bind_visits(p, v, n, count, last);
		if ((err = db_try(db, &q_url_add_visits, p, &s,
		    &executed)) != 0)
			return err;
		db_done(s);
		return 0;
	}
	db_bind_visit_ids(p, v, n);
	if ((err = db_visits_select(db, &q_url_lock_visits, p, v, n,
	    locked)) != 0)
		return err;
	for (k = 0; k < n; k++)
		if (locked[k])
			w[nw++] = v[k];
	memset(exists, 0, sizeof(exists));
	if (nw < n && (err = db_visits_select(db, &q_url_seen_visits, p, v,
	    n, exists)) != 0)
		return err;
	for (k = 0; k < n; k++)
		if (locked[k] || !exists[k])
			v[k].pending = 0;
	if (nw == 0)
		return 0;
	db_bind_visits(p, w, nw, count, last);
	if ((err = db_try(db, &q_url_add_visits, p, &s, &executed)) != 0)
		return err;
	db_done(s);
	return 0;
}

/*
 * Start a flush's transaction, its row lock waits bounded by
 * DB_VISITS_LOCK_WAIT seconds for this session until db_visits_end()
 * puts back what it had (the user variable keeps it: the value the
 * server or its init_connect gave).  A server without the variable
 * runs the flush unbounded rather than not at all.  0, or the error
 * number.
 */
static unsigned int
db_visits_begin(struct db *db, int *bounded)
{
	static const char	 q[] = "SET @shortd_lock_wait = "
	    "@@SESSION.innodb_lock_wait_timeout, "
	    "SESSION innodb_lock_wait_timeout = " DB_VISITS_LOCK_WAIT;

	*bounded = 0;
	if (mysql_real_query(db->mysql, q, sizeof(q) - 1) == 0)
		*bounded = 1;
	else if (mysql_errno(db->mysql) != DB_ER_UNKNOWN_SYSTEM_VARIABLE)
		return db_myerr(db);
	if (mysql_autocommit(db->mysql, 0) != 0)
		return db_myerr(db);
	return 0;
}

/*
 * After a flush's COMMIT or ROLLBACK: autocommit on and the session's
 * own lock wait back, which every other statement relies on (a PUT
 * waits for a row as long as the server says).  A connection that
 * cannot be put back is dropped: a new one starts with both.
 */
static void
db_visits_end(struct db *db, int bounded)
{
	static const char	 q[] = "SET SESSION innodb_lock_wait_timeout = "
	    "@shortd_lock_wait";

	if (mysql_autocommit(db->mysql, 1) == 0 && (!bounded ||
	    mysql_real_query(db->mysql, q, sizeof(q) - 1) == 0))
		return;
	log_info("db: url add visits: resetting the session: %s, "
	    "reconnecting", mysql_error(db->mysql));
	db_disconnect(db);
}

/*
 * One try at the whole of v in one transaction (db_visits_batch per
 * DB_VISITS_BATCH links, with skip or not), then COMMIT.  A statement
 * that waits for a row lock gives up after DB_VISITS_LOCK_WAIT s and
 * the whole transaction is rolled back, here and explicitly: a lock
 * wait timeout rolls back only the statement unless the server runs
 * with innodb_rollback_on_timeout.
 *
 * On return v[k].pending is 1 if link k's count was surely not
 * written (its row was held by another session and skipped, or the
 * transaction rolled back or never began), 0 if it was written, if its
 * link is gone, or if COMMIT failed other than by a rollback (the
 * connection went during it: it may or may not have applied it).
 * *retry is set when nothing was applied
 * and trying again at once, skipping locked rows, may work: a lock
 * wait timeout while waiting was allowed, a deadlock or a Galera
 * certification conflict (1213, both roll the transaction back), a
 * stale statement, a connection lost before COMMIT.
 */
static enum db_status
db_visits_txn(struct db *db, struct db_visits *v, size_t n,
    MYSQL_BIND *p, int skip, int *retry)
{
	enum db_errclass c;
	unsigned int	 err;
	size_t		 k, m;
	int		 bounded = 0, committing = 0, unsure;

	*retry = 0;
	for (k = 0; k < n; k++)
		v[k].pending = 1;
	db_check_link(db, 1);
	if (db_ensure(db) != DB_OK)
		return DB_UNAVAILABLE;
	if ((err = db_visits_begin(db, &bounded)) != 0)
		goto fail;
	for (k = 0; k < n; k += m) {
		m = n - k < DB_VISITS_BATCH ? n - k : DB_VISITS_BATCH;
		if ((err = db_visits_batch(db, v + k, m, p, skip)) != 0)
			goto fail;
	}
	/* The visit records of the links written (db_analytics.c). */
	if ((err = db_visit_records(db, v, n)) != 0)
		goto fail;
	committing = 1;
	if (mysql_commit(db->mysql) != 0) {
		err = db_myerr(db);
		goto fail;
	}
	db_visits_end(db, bounded);
	return DB_OK;
fail:
	if ((c = db_classify(err)) == DBE_LOST) {
		/* The server rolls back what was not committed; what was
		 * being committed may or may not be.  The node is held back
		 * like any lost node, so the retry goes to the next one. */
		db_node_failed(db, db->cur);
		db_disconnect(db);
		unsure = committing;
		*retry = !committing;
		if (*retry)
			log_info("db: url add visits: %s (%u) before COMMIT, "
			    "nothing applied; retrying on a new connection",
			    db->errmsg, err);
	} else {
		if (c == DBE_STALE) {
			db_close_stmt(db, &q_url_add_visits);
			db_close_stmt(db, &q_url_lock_visits);
			db_close_stmt(db, &q_url_seen_visits);
			db_visit_records_stale(db);
		}
		/* A COMMIT that failed otherwise than by a rollback the
		 * server made (1213) is not known not to have applied. */
		unsure = committing && c != DBE_LOCK;
		*retry = !unsure && ((err == DB_ER_LOCK_WAIT_TIMEOUT &&
		    !skip) || err == DB_ER_LOCK_DEADLOCK || c == DBE_STALE);
		if (mysql_rollback(db->mysql) != 0)
			db_disconnect(db);	/* which rolls back */
		else
			db_visits_end(db, bounded);
		if (*retry)
			log_info("db: url add visits: %s (%u), rolled back; "
			    "retrying, skipping rows locked by others",
			    db->errmsg, err);
	}
	/* Skipped rows were in no UPDATE: they wait whatever happened. */
	if (!unsure)
		for (k = 0; k < n; k++)
			v[k].pending = 1;
	return DB_UNAVAILABLE;
}

/*
 * Add counted visits of n links (any number), sorted by id, in one
 * transaction: one commit, so one log flush, however many links.
 * Rows are locked in id order, so two workers' flushes wait for each
 * other (briefly) but never deadlock.  Waiting for a row lock is
 * bounded by DB_VISITS_LOCK_WAIT; with skip (or on the second try,
 * after a first one that applied nothing, see db_visits_txn) nothing
 * waits: a row another session holds is skipped and its link left
 * pending.  SKIP LOCKED needs MariaDB 10.6 or MySQL 8.0.
 *
 * DB_OK: committed; v[k].pending marks the links left for a later
 * flush.  Otherwise err gets why (nothing logged here) and
 * v[k].pending is 1 for every link surely not written, 0 where the
 * COMMIT may have applied it.
 */
enum db_status
db_url_add_visits(struct db *db, struct db_visits *v, size_t n, int skip,
    char *err, size_t errlen)
{
	MYSQL_BIND	*p;
	enum db_status	 st = DB_OK;
	size_t		 k;
	int		 tries, retry = 0;

	if (n == 0)
		return DB_OK;
	if ((p = calloc(5 * DB_VISITS_BATCH, sizeof(*p))) == NULL) {
		for (k = 0; k < n; k++)
			v[k].pending = 1;
		snprintf(err, errlen, "out of memory");
		return DB_UNAVAILABLE;
	}
	db->last_errno = 0;
	for (tries = 0; tries < 2; tries++, skip = 1)
		if ((st = db_visits_txn(db, v, n, p, skip, &retry)) ==
		    DB_OK || !retry)
			break;
	free(p);
	if (st != DB_OK)
		snprintf(err, errlen, "%s (%u)", db->errmsg, db->last_errno);
	return st;
}

