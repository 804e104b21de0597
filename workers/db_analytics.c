/*
 * db_analytics.c — the visits and visits_daily tables (schema 4): the
 * visit records a flush writes, and the reads of GET /<id>/visits and
 * the stats summaries.  Statements are run by db.c's helpers (db.h).
 *
 * Records go in with multi-row INSERTs of 64, 32, ... 1 rows (the
 * binary digits of the count: at most seven statements for any
 * remainder, each prepared once per connection), inside the flush's
 * transaction, after the counts (db_visits.c): the transaction holds
 * the link rows already, so the foreign key's check waits for nothing.
 * INSERT IGNORE drops the records of a link deleted meanwhile (the
 * foreign key fails for them alone) and the unlikely visit whose
 * (id, at_ms, uniq) is taken, instead of failing the batch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define DB_REC_COLS	8
#define DB_REC_SIZES	7		/* 64, 32, ..., 1 rows */
#define DB_REC_MAX	64

#define DB_R1	"(?, ?, ?, ?, ?, ?, ?, ?)"
#define DB_R2	DB_R1 ", " DB_R1
#define DB_R4	DB_R2 ", " DB_R2
#define DB_R8	DB_R4 ", " DB_R4
#define DB_R16	DB_R8 ", " DB_R8
#define DB_R32	DB_R16 ", " DB_R16
#define DB_R64	DB_R32 ", " DB_R32
#define DB_REC_INSERT	"INSERT IGNORE INTO visits (id, at_ms, uniq, " \
	"referer, country, browser, os, device) VALUES "

static const struct db_sql q_visit_records[DB_REC_SIZES] = {
	{ "visit records", 1, DB_REC_INSERT DB_R64 },
	{ "visit records", 1, DB_REC_INSERT DB_R32 },
	{ "visit records", 1, DB_REC_INSERT DB_R16 },
	{ "visit records", 1, DB_REC_INSERT DB_R8 },
	{ "visit records", 1, DB_REC_INSERT DB_R4 },
	{ "visit records", 1, DB_REC_INSERT DB_R2 },
	{ "visit records", 1, DB_REC_INSERT DB_R1 },
};

/* A page of a link's visits: the primary key's range, read backwards;
 * the bots filter is applied to the rows of that range. */
static const struct db_sql q_visit_list = { "visit list", 0,
    "SELECT at_ms, uniq, COALESCE(referer, ''), COALESCE(country, ''), "
    "browser, os, device FROM visits WHERE id = ? AND at_ms >= ? "
    "AND at_ms < ? AND (at_ms < ? OR (at_ms = ? AND uniq < ?)) "
    "AND (? = 0 OR (? = 1 AND device <> 4) OR (? = 2 AND device = 4)) "
    "ORDER BY at_ms DESC, uniq DESC LIMIT ?" };

/* The parameters of one record, bound by address. */
struct db_rec_param {
	int64_t		 at_ms;
	int64_t		 uniq;
	int64_t		 browser, os, device;
};

/* Bind the k-th row of a multi-row INSERT: id and record r. */
static void
db_bind_record(MYSQL_BIND *p, struct db_rec_param *q, const char *id,
    const struct visit_rec *r)
{
	q->at_ms = r->at_ms;
	q->uniq = r->uniq;
	q->browser = r->browser;
	q->os = r->os;
	q->device = r->device;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_i64(&p[1], &q->at_ms);
	db_bind_i64(&p[2], &q->uniq);
	db_bind_str(&p[3], r->ref != NULL ? r->ref : "",
	    r->ref != NULL ? strlen(r->ref) : 0);
	if (r->ref == NULL)
		p[3].buffer_type = MYSQL_TYPE_NULL;
	db_bind_str(&p[4], r->country, 2);
	if (r->country[0] == '\0')
		p[4].buffer_type = MYSQL_TYPE_NULL;
	db_bind_i64(&p[5], &q->browser);
	db_bind_i64(&p[6], &q->os);
	db_bind_i64(&p[7], &q->device);
}

/* Run one INSERT of rows 2^(6 - size) rows, bound in p. */
static unsigned int
db_records_run(struct db *db, int size, MYSQL_BIND *p)
{
	MYSQL_STMT	*s;
	unsigned int	 err;
	int		 executed;

	if ((err = db_try(db, &q_visit_records[size], p, &s,
	    &executed)) != 0)
		return err;
	db_done(s);
	return 0;
}

unsigned int
db_visit_records(struct db *db, const struct db_visits *v, size_t n)
{
	MYSQL_BIND		*p = NULL;
	struct db_rec_param	*q = NULL;
	size_t			 k, rows = 0;
	uint32_t		 j;
	unsigned int		 err = 0;
	int			 size;

	for (k = 0; k < n; k++)
		for (j = v[k].pending ? VISIT_REC_NONE : v[k].rec_first;
		    j != VISIT_REC_NONE; j = v[k].rec[j].next)
			rows++;
	if (rows == 0)
		return 0;
	if ((p = calloc(DB_REC_MAX * DB_REC_COLS, sizeof(*p))) == NULL ||
	    (q = calloc(DB_REC_MAX, sizeof(*q))) == NULL) {
		free(p);
		db_seterr(db, DB_CR_MIN, "out of memory");
		return DB_CR_MIN;
	}
	/* Fill up to 64 rows, then send them as the largest INSERT that
	 * they fill and carry the rest over. */
	rows = 0;
	for (k = 0; k < n && err == 0; k++) {
		if (!v[k].pending && !db_key_ok(v[k].id, ID_MAX))
			continue;
		for (j = v[k].pending ? VISIT_REC_NONE : v[k].rec_first;
		    j != VISIT_REC_NONE && err == 0; j = v[k].rec[j].next) {
			db_bind_record(&p[rows * DB_REC_COLS], &q[rows],
			    v[k].id, &v[k].rec[j]);
			if (++rows == DB_REC_MAX) {
				err = db_records_run(db, 0, p);
				rows = 0;
			}
		}
	}
	/* The remainder, by its binary digits: 32, 16, ..., 1 rows. */
	for (size = 1; size < DB_REC_SIZES && rows > 0 && err == 0; size++) {
		size_t m = (size_t)DB_REC_MAX >> size;

		if (rows < m)
			continue;
		err = db_records_run(db, size, &p[(rows - m) * DB_REC_COLS]);
		rows -= m;
	}
	free(p);
	free(q);
	return err;
}

void
db_visit_records_stale(struct db *db)
{
	int	 i;

	for (i = 0; i < DB_REC_SIZES; i++)
		db_close_stmt(db, &q_visit_records[i]);
}

enum db_status
db_visit_list(struct db *db, const char *id, int64_t since_ms,
    int64_t until_ms, int bots, int64_t before_ms, uint32_t before_uniq,
    struct db_visit_row *rows, size_t max, size_t *n)
{
	MYSQL_BIND		 p[10], r[7];
	MYSQL_STMT		*s;
	struct db_visit_row	 row;
	unsigned long		 rlen = 0, clen = 0;
	int64_t			 uniq = before_uniq, b = bots, limit, ru = 0;
	int64_t			 rb = 0, ro = 0, rd = 0;
	enum db_status		 st;
	int			 got = 0;

	*n = 0;
	if (max == 0 || !db_key_ok(id, ID_MAX))
		return DB_OK;
	limit = max > 100000 ? 100000 : (int64_t)max;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_i64(&p[1], &since_ms);
	db_bind_i64(&p[2], &until_ms);
	db_bind_i64(&p[3], &before_ms);
	db_bind_i64(&p[4], &before_ms);
	db_bind_i64(&p[5], &uniq);
	db_bind_i64(&p[6], &b);
	db_bind_i64(&p[7], &b);
	db_bind_i64(&p[8], &b);
	db_bind_i64(&p[9], &limit);
	if ((st = db_exec(db, &q_visit_list, p, &s)) != DB_OK)
		return st;
	memset(&row, 0, sizeof(row));
	db_bind_i64(&r[0], &row.at_ms);
	db_bind_i64(&r[1], &ru);
	db_bind_out(&r[2], row.referer, sizeof(row.referer), &rlen);
	db_bind_out(&r[3], row.country, sizeof(row.country), &clen);
	db_bind_i64(&r[4], &rb);
	db_bind_i64(&r[5], &ro);
	db_bind_i64(&r[6], &rd);
	while (*n < max && (got = db_fetch(&q_visit_list, s, r,
	    *n == 0)) == 1) {
		if (db_terminate(row.referer, sizeof(row.referer), rlen) ==
		    -1 || db_terminate(row.country, sizeof(row.country),
		    clen) == -1)
			continue;
		row.uniq = (uint32_t)ru;
		row.browser = (uint8_t)rb;
		row.os = (uint8_t)ro;
		row.device = (uint8_t)rd;
		rows[(*n)++] = row;
	}
	db_done(s);
	return got == -1 ? DB_UNAVAILABLE : DB_OK;
}

/* ------------------------------------------------------------------ */
/* summaries: GET /<id>/stats and GET /stats                           */
/* ------------------------------------------------------------------ */

/*
 * Each summary has the statement for one link (by id) and for all of
 * a user's links (idx_user_created gives the links, then each link's
 * range of the primary key, as for one link).  Bots (device 4) are
 * counted apart; the classes and tops count visits only.  Days are
 * UTC days since the epoch (at_ms DIV 86400000).
 */
#define DB_SUM_LINK	"FROM visits WHERE id = ? AND at_ms >= ? AND at_ms < ? "
#define DB_SUM_USER	"FROM urls u JOIN visits v ON v.id = u.id " \
	"WHERE u.`user` = ? AND v.at_ms >= ? AND v.at_ms < ? "
#define DB_DAYS		"SELECT at_ms DIV 86400000, " \
	"CAST(SUM(device <> 4) AS SIGNED), CAST(SUM(device = 4) AS SIGNED) "
#define DB_CLASSES	"SELECT browser, os, device, COUNT(*) "
#define DB_TOP(col)	"SELECT COALESCE(" col ", ''), COUNT(*) AS n "
#define DB_DAILY	"SELECT DATEDIFF(day, '1970-01-01'), " \
	"CAST(SUM(d.visits) AS SIGNED), CAST(SUM(d.bots) AS SIGNED) "
#define DB_DAY_RANGE	"day >= DATE('1970-01-01') + INTERVAL ? DAY AND " \
	"day <= DATE('1970-01-01') + INTERVAL ? DAY "

enum { DB_Q_DAYS, DB_Q_DAILY, DB_Q_CLASSES, DB_Q_REFERERS, DB_Q_COUNTRIES,
    DB_Q_SUMS };

static const struct db_sql q_sum[2][DB_Q_SUMS] = {
	{	/* one link */
		{ "visit days", 0, DB_DAYS DB_SUM_LINK "GROUP BY 1" },
		{ "visit daily", 0, DB_DAILY "FROM visits_daily d "
		    "WHERE d.id = ? AND " DB_DAY_RANGE "GROUP BY 1" },
		{ "visit classes", 0, DB_CLASSES DB_SUM_LINK
		    "AND device <> 4 GROUP BY 1, 2, 3" },
		{ "visit referers", 0, DB_TOP("referer") DB_SUM_LINK
		    "AND device <> 4 GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10" },
		{ "visit countries", 0, DB_TOP("country") DB_SUM_LINK
		    "AND device <> 4 GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10" },
	}, {	/* all of a user's links */
		{ "user visit days", 0, "SELECT v.at_ms DIV 86400000, "
		    "CAST(SUM(v.device <> 4) AS SIGNED), "
		    "CAST(SUM(v.device = 4) AS SIGNED) " DB_SUM_USER
		    "GROUP BY 1" },
		{ "user visit daily", 0, DB_DAILY "FROM urls u JOIN "
		    "visits_daily d ON d.id = u.id WHERE u.`user` = ? AND "
		    DB_DAY_RANGE "GROUP BY 1" },
		{ "user visit classes", 0, "SELECT v.browser, v.os, v.device, "
		    "COUNT(*) " DB_SUM_USER "AND v.device <> 4 GROUP BY 1, 2, 3" },
		{ "user visit referers", 0, "SELECT COALESCE(v.referer, ''), "
		    "COUNT(*) AS n " DB_SUM_USER "AND v.device <> 4 GROUP BY 1 "
		    "ORDER BY n DESC, 1 LIMIT 10" },
		{ "user visit countries", 0, "SELECT COALESCE(v.country, ''), "
		    "COUNT(*) AS n " DB_SUM_USER "AND v.device <> 4 GROUP BY 1 "
		    "ORDER BY n DESC, 1 LIMIT 10" },
	},
};

/* Add rows (day, visits, bots) of a run statement into s's days. */
static int
db_sum_days(const struct db_sql *q, MYSQL_STMT *st, struct db_summary *s)
{
	MYSQL_BIND	 r[3];
	int64_t		 day = 0, v = 0, b = 0;
	int		 got, first = 1;

	db_bind_i64(&r[0], &day);
	db_bind_i64(&r[1], &v);
	db_bind_i64(&r[2], &b);
	while ((got = db_fetch(q, st, r, first)) == 1) {
		first = 0;
		s->bots += b;
		if (day < s->first_day || day >= s->first_day +
		    (int64_t)s->ndays)
			continue;
		s->day_visits[day - s->first_day] += v;
		s->day_bots[day - s->first_day] += b;
	}
	return got;
}

/* Rows (browser, os, device, n): the visits of each class. */
static int
db_sum_classes(const struct db_sql *q, MYSQL_STMT *st, struct db_summary *s)
{
	MYSQL_BIND	 r[4];
	int64_t		 c[4] = { 0, 0, 0, 0 };
	int		 got, first = 1, i;

	for (i = 0; i < 4; i++)
		db_bind_i64(&r[i], &c[i]);
	while ((got = db_fetch(q, st, r, first)) == 1) {
		first = 0;
		if (c[0] >= 0 && c[0] < UA_BROWSERS)
			s->browsers[c[0]] += c[3];
		if (c[1] >= 0 && c[1] < UA_OSES)
			s->oses[c[1]] += c[3];
		if (c[2] >= 0 && c[2] < UA_DEVICES)
			s->devices[c[2]] += c[3];
		s->visits += c[3];
	}
	return got;
}

/* Rows (name, n), the top ones first, into top (up to DB_TOP_MAX). */
static int
db_sum_top(const struct db_sql *q, MYSQL_STMT *st, struct db_top *top,
    size_t *n)
{
	MYSQL_BIND	 r[2];
	struct db_top	 t;
	unsigned long	 len = 0;
	int		 got, first = 1;

	memset(&t, 0, sizeof(t));
	db_bind_out(&r[0], t.name, sizeof(t.name), &len);
	db_bind_i64(&r[1], &t.visits);
	*n = 0;
	while ((got = db_fetch(q, st, r, first)) == 1) {
		first = 0;
		if (*n >= DB_TOP_MAX || db_terminate(t.name, sizeof(t.name),
		    len) == -1)
			continue;
		top[(*n)++] = t;
	}
	return got;
}

enum db_status
db_visit_summary(struct db *db, const char *key, int user,
    struct db_summary *s)
{
	const struct db_sql	*q = q_sum[user ? 1 : 0];
	MYSQL_BIND		 p[3];
	MYSQL_STMT		*st;
	int64_t			 last_day;
	enum db_status		 rc;
	int			 i, got = 0;

	if (!db_key_ok(key, DB_KEY_MAX))
		return DB_OK;
	last_day = s->first_day + (int64_t)s->ndays - 1;
	for (i = 0; i < DB_Q_SUMS; i++) {
		db_bind_str(&p[0], key, strlen(key));
		if (i == DB_Q_DAILY) {
			db_bind_i64(&p[1], &s->first_day);
			db_bind_i64(&p[2], &last_day);
		} else {
			db_bind_i64(&p[1], &s->since_ms);
			db_bind_i64(&p[2], &s->until_ms);
		}
		if ((rc = db_exec(db, &q[i], p, &st)) != DB_OK)
			return rc;
		switch (i) {
		case DB_Q_DAYS:
		case DB_Q_DAILY:
			got = db_sum_days(&q[i], st, s);
			break;
		case DB_Q_CLASSES:
			got = db_sum_classes(&q[i], st, s);
			break;
		case DB_Q_REFERERS:
			got = db_sum_top(&q[i], st, s->referers, &s->nreferers);
			break;
		default:
			got = db_sum_top(&q[i], st, s->countries,
			    &s->ncountries);
			break;
		}
		db_done(st);
		if (got == -1)
			return DB_UNAVAILABLE;
	}
	return DB_OK;
}

/* ------------------------------------------------------------------ */
/* retention: visits_keep_days                                         */
/* ------------------------------------------------------------------ */

/*
 * Old rows go link by link, oldest first, DB_RETENTION_ROWS at most
 * per transaction: the transaction adds them to visits_daily and
 * deletes them, so a day is counted in one table or the other, never
 * both, whatever fails.  A named lock makes one worker (of any shortd
 * sharing the database) do a step at a time; steps are idempotent, so
 * workers that take turns only repeat a look-up.
 */
#define DB_RETENTION_ROWS	5000
#define DB_RETENTION_LOCK	"'shortd_visits_retention'"

static const struct db_sql q_ret_lock = { "retention lock", 0,
    "SELECT COALESCE(GET_LOCK(" DB_RETENTION_LOCK ", 0), 0)" };
static const struct db_sql q_ret_unlock = { "retention unlock", 0,
    "SELECT COALESCE(RELEASE_LOCK(" DB_RETENTION_LOCK "), 0)" };
/* The next link with visit rows: one dive into the primary key. */
static const struct db_sql q_ret_next = { "retention next link", 0,
    "SELECT COALESCE(MIN(id), '') FROM visits WHERE id > ?" };
/* Where a step of at most DB_RETENTION_ROWS rows ends. */
static const struct db_sql q_ret_bound = { "retention bound", 0,
    "SELECT at_ms FROM visits WHERE id = ? AND at_ms < ? "
    "ORDER BY at_ms LIMIT 1 OFFSET 4999" };	/* DB_RETENTION_ROWS */
static const struct db_sql q_ret_rollup = { "retention rollup", 1,
    "INSERT INTO visits_daily (id, day, visits, bots) "
    "SELECT id, DATE('1970-01-01') + INTERVAL (at_ms DIV 86400000) DAY, "
    "SUM(device <> 4), SUM(device = 4) FROM visits "
    "WHERE id = ? AND at_ms <= ? GROUP BY id, 2 "
    "ON DUPLICATE KEY UPDATE visits = visits_daily.visits + "
    "VALUES(visits), bots = visits_daily.bots + VALUES(bots)" };
static const struct db_sql q_ret_delete = { "retention delete", 1,
    "DELETE FROM visits WHERE id = ? AND at_ms <= ?" };

/* A server without named locks (Galera refuses GET_LOCK: 1235, "not
 * supported yet") runs the steps without one, which only costs the
 * workers some repeated look-ups. */
#define DB_ER_NOT_SUPPORTED_YET	1235

enum db_status
db_visit_retention_lock(struct db *db, int lock)
{
	static int	 unlocked;	/* the server has no named locks */
	MYSQL_BIND	 r[1];
	int64_t		 got = 0;
	enum db_status	 st;

	if (unlocked)
		return DB_OK;
	db_bind_i64(&r[0], &got);
	st = db_run(db, lock ? &q_ret_lock : &q_ret_unlock, NULL, r, NULL);
	if (st == DB_UNAVAILABLE && db->last_errno == DB_ER_NOT_SUPPORTED_YET) {
		log_info("visits: retention without a named lock: the server "
		    "has none (Galera)");
		unlocked = 1;
		return DB_OK;
	}
	if (st == DB_OK && got != 1)
		st = DB_NOTFOUND;
	return st;
}

enum db_status
db_visit_next_link(struct db *db, const char *after, char id[ID_MAX + 1])
{
	MYSQL_BIND	 p[1], r[1];
	unsigned long	 len = 0;
	enum db_status	 st;

	db_bind_str(&p[0], after, strlen(after));
	db_bind_out(&r[0], id, ID_MAX + 1, &len);
	if ((st = db_run(db, &q_ret_next, p, r, NULL)) != DB_OK)
		return st;
	if (len == 0 || db_terminate(id, ID_MAX + 1, len) == -1)
		return DB_NOTFOUND;
	return DB_OK;
}

/* One statement of the step's transaction: 0 or the error number. */
static unsigned int
db_ret_run(struct db *db, const struct db_sql *q, MYSQL_BIND *p,
    uint64_t *rows)
{
	MYSQL_STMT	*s;
	unsigned int	 err;
	int		 executed;

	if ((err = db_try(db, q, p, &s, &executed)) != 0)
		return err;
	if (rows != NULL)
		*rows = (uint64_t)mysql_stmt_affected_rows(s);
	db_done(s);
	return 0;
}

enum db_status
db_visit_rollup(struct db *db, const char *id, int64_t cutoff_ms, int *more,
    uint64_t *deleted)
{
	MYSQL_BIND	 p[2], r[1];
	int64_t		 bound = cutoff_ms - 1;
	unsigned int	 err;
	enum db_status	 st;

	*more = 0;
	*deleted = 0;
	if (!db_key_ok(id, ID_MAX))
		return DB_OK;
	db_bind_str(&p[0], id, strlen(id));
	db_bind_i64(&p[1], &cutoff_ms);
	db_bind_i64(&r[0], &bound);
	st = db_run(db, &q_ret_bound, p, r, NULL);
	if (st == DB_OK)
		*more = 1;
	else if (st == DB_NOTFOUND)
		bound = cutoff_ms - 1;
	else
		return st;
	db_bind_i64(&p[1], &bound);
	db_check_link(db, 1);
	if (db_ensure(db) != DB_OK)
		return DB_UNAVAILABLE;
	if (mysql_autocommit(db->mysql, 0) != 0) {
		err = db_myerr(db);
		goto fail;
	}
	if ((err = db_ret_run(db, &q_ret_rollup, p, NULL)) != 0 ||
	    (err = db_ret_run(db, &q_ret_delete, p, deleted)) != 0)
		goto fail;
	if (mysql_commit(db->mysql) != 0) {
		err = db_myerr(db);
		goto fail;
	}
	if (mysql_autocommit(db->mysql, 1) != 0)
		db_disconnect(db);
	return DB_OK;
fail:
	log_warnx("db: visits retention of %s: %s (%u)", id, db->errmsg, err);
	if (mysql_rollback(db->mysql) != 0 ||
	    mysql_autocommit(db->mysql, 1) != 0)
		db_disconnect(db);
	*more = 0;
	*deleted = 0;
	return DB_UNAVAILABLE;
}
