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
