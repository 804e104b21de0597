/*
 * db_import.c — the statements of POST /import (linkcsv.c): who holds
 * the ids a file names, and the links and their tags written in one
 * transaction.  (GET /export reads with db_search(), oldest first.)
 *
 * Rows go in with multi-row statements of IMPORT_BATCH rows, then 16,
 * then 1 for the remainder (at most 15 + 15 more statements), each
 * prepared once per connection.  A statement of 256 rows takes a few
 * milliseconds, and InnoDB locks only the rows it inserts (and the
 * user's row, shared, for the foreign key): other users' requests
 * never wait for an import, however long it runs.  A failure of any
 * statement, or of the COMMIT, leaves nothing written.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

#define IMPORT_BATCH	256
#define IMPORT_SIZES	3		/* 256, 16, 1 rows */
#define URL_COLS	11
#define TAG_COLS	4

/* Rows of each statement size. */
static const size_t import_rows[IMPORT_SIZES] = { IMPORT_BATCH, 16, 1 };

#define U1	"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define U2	U1 ", " U1
#define U4	U2 ", " U2
#define U8	U4 ", " U4
#define U16	U8 ", " U8
#define U32	U16 ", " U16
#define U64	U32 ", " U32
#define U128	U64 ", " U64
#define U256	U128 ", " U128
#define URL_INSERT "INSERT INTO urls (id, `user`, value, value_hash, " \
	"created_us, updated_us, visits, expires_us, max_visits, title, " \
	"tags) VALUES "

#define T1	"(?, ?, ?, ?)"
#define T2	T1 ", " T1
#define T4	T2 ", " T2
#define T8	T4 ", " T4
#define T16	T8 ", " T8
#define T32	T16 ", " T16
#define T64	T32 ", " T32
#define T128	T64 ", " T64
#define T256	T128 ", " T128
#define TAG_INSERT "INSERT INTO url_tags (`user`, tag, created_us, id) " \
	"VALUES "

#define Q1	"?"
#define Q2	Q1 ", " Q1
#define Q4	Q2 ", " Q2
#define Q8	Q4 ", " Q4
#define Q16	Q8 ", " Q8
#define Q32	Q16 ", " Q16
#define Q64	Q32 ", " Q32
#define Q128	Q64 ", " Q64
#define Q256	Q128 ", " Q128
#define ID_LOOKUP "SELECT id, `user`, value FROM urls WHERE id IN "

static const struct db_sql q_import_urls[IMPORT_SIZES] = {
	{ "import urls", 1, URL_INSERT U256 },
	{ "import urls", 1, URL_INSERT U16 },
	{ "import urls", 1, URL_INSERT U1 },
};
static const struct db_sql q_import_tags[IMPORT_SIZES] = {
	{ "import tags", 1, TAG_INSERT T256 },
	{ "import tags", 1, TAG_INSERT T16 },
	{ "import tags", 1, TAG_INSERT T1 },
};
static const struct db_sql q_import_lookup[IMPORT_SIZES] = {
	{ "import lookup", 0, ID_LOOKUP "(" Q256 ")" },
	{ "import lookup", 0, ID_LOOKUP "(" Q16 ")" },
	{ "import lookup", 0, ID_LOOKUP "(" Q1 ")" },
};

/* What a row's parameters point to, bound by address. */
struct import_slot {
	unsigned char	 hash[DB_HASH_LEN];
	int64_t		 created_us, visits, expires_us, max_visits;
};

/* Rows gathered for the next statement, IMPORT_BATCH at most. */
struct import_batch {
	struct db		*db;
	uint64_t		 gen;
	const struct db_sql	*q;		/* [IMPORT_SIZES] */
	size_t			 cols;
	MYSQL_BIND		*p;		/* IMPORT_BATCH * cols */
	struct import_slot	*slot;		/* IMPORT_BATCH */
	size_t			 n;
	void			(*progress)(void *);
	void			*arg;
};

static int
import_batch_init(struct import_batch *b, struct db *db, uint64_t gen,
    const struct db_sql *q, size_t cols)
{
	memset(b, 0, sizeof(*b));
	b->db = db;
	b->gen = gen;
	b->q = q;
	b->cols = cols;
	b->p = calloc(IMPORT_BATCH * cols, sizeof(*b->p));
	b->slot = calloc(IMPORT_BATCH, sizeof(*b->slot));
	if (b->p == NULL || b->slot == NULL) {
		log_warnx("db: import: out of memory");
		return -1;
	}
	return 0;
}

static void
import_batch_free(struct import_batch *b)
{
	free(b->p);
	free(b->slot);
}

/* Run the statement of size index k on rows [from, from + its rows). */
static enum db_status
import_run(struct import_batch *b, int k, size_t from)
{
	MYSQL_STMT	*s;
	enum db_status	 st;

	st = db_tx_exec(b->db, b->gen, &b->q[k], &b->p[from * b->cols], &s);
	if (st != DB_OK)
		return st;
	db_done(s);
	return DB_OK;
}

/* Send what is gathered: a full batch, or (all) the remainder by 16s
 * and 1s. */
static enum db_status
import_flush(struct import_batch *b, int all)
{
	enum db_status	 st = DB_OK;
	size_t		 k = 0;
	int		 size;

	if (b->n == IMPORT_BATCH)
		st = import_run(b, 0, 0);
	else if (all)
		for (size = 1; size < IMPORT_SIZES && st == DB_OK; size++)
			for (; b->n - k >= import_rows[size] && st == DB_OK;
			    k += import_rows[size])
				st = import_run(b, size, k);
	else
		return DB_OK;
	b->n = 0;
	if (b->progress != NULL)
		b->progress(b->arg);
	return st;
}

/* Bind row r as the next row of a urls batch. */
static int
import_bind_url(struct import_batch *b, const char *user,
    const struct db_import_row *r)
{
	MYSQL_BIND		*p = &b->p[b->n * URL_COLS];
	struct import_slot	*q = &b->slot[b->n];

	if (db_value_hash(r->value, r->len, q->hash) == -1)
		return -1;
	q->created_us = r->created_us;
	q->visits = r->visits;
	q->expires_us = r->expires_us;
	q->max_visits = r->max_visits;
	db_bind_str(&p[0], r->id, strlen(r->id));
	db_bind_str(&p[1], user, strlen(user));
	db_bind_str(&p[2], r->value, r->len);
	db_bind_str(&p[3], (const char *)q->hash, DB_HASH_LEN);
	db_bind_i64(&p[4], &q->created_us);
	db_bind_i64(&p[5], &q->created_us);
	db_bind_i64(&p[6], &q->visits);
	db_bind_i64_or_null(&p[7], &q->expires_us);
	db_bind_i64_or_null(&p[8], &q->max_visits);
	db_bind_str(&p[9], r->title != NULL ? r->title : "", r->title_len);
	if (r->title == NULL)
		p[9].buffer_type = MYSQL_TYPE_NULL;
	db_bind_str(&p[10], r->tags, r->tags_len);
	if (r->tags_len == 0)
		p[10].buffer_type = MYSQL_TYPE_NULL;
	b->n++;
	return 0;
}

/* Bind tag (len bytes at tag) of row r as the next row of a url_tags
 * batch. */
static void
import_bind_tag(struct import_batch *b, const char *user,
    const struct db_import_row *r, const char *tag, size_t len)
{
	MYSQL_BIND		*p = &b->p[b->n * TAG_COLS];
	struct import_slot	*q = &b->slot[b->n];

	q->created_us = r->created_us;
	db_bind_str(&p[0], user, strlen(user));
	db_bind_str(&p[1], tag, len);
	db_bind_i64(&p[2], &q->created_us);
	db_bind_str(&p[3], r->id, strlen(r->id));
	b->n++;
}

/* The tags of rows, after their links (the foreign key). */
static enum db_status
import_tags(struct import_batch *b, const char *user,
    const struct db_import_row *rows, size_t n)
{
	const char	*t, *bar;
	size_t		 i, len;
	enum db_status	 st = DB_OK;

	for (i = 0; i < n && st == DB_OK; i++)
		for (t = rows[i].tags, len = rows[i].tags_len; len > 0 &&
		    st == DB_OK; ) {
			bar = memchr(t, '|', len);
			import_bind_tag(b, user, &rows[i], t,
			    bar != NULL ? (size_t)(bar - t) : len);
			if (bar == NULL)
				len = 0;
			else {
				len -= (size_t)(bar - t) + 1;
				t = bar + 1;
			}
			st = import_flush(b, 0);
		}
	return st == DB_OK ? import_flush(b, 1) : st;
}

enum db_status
db_import_write(struct db *db, const char *user,
    const struct db_import_row *rows, size_t n, void (*progress)(void *),
    void *arg)
{
	struct import_batch	 b;
	uint64_t		 gen;
	size_t			 i;
	enum db_status		 st;

	if (!db_key_ok(user, DB_KEY_MAX))
		return DB_NOTFOUND;
	for (i = 0; i < n; i++)
		if (!db_key_ok(rows[i].id, ID_MAX)) {
			log_warnx("db: import: unusable id");
			return DB_UNAVAILABLE;
		}
	if ((st = db_tx_begin(db, &gen)) != DB_OK)
		return st;
	if (import_batch_init(&b, db, gen, q_import_urls, URL_COLS) == -1) {
		st = DB_UNAVAILABLE;
		goto out;
	}
	b.progress = progress;
	b.arg = arg;
	for (i = 0; i < n && st == DB_OK; i++) {
		if (import_bind_url(&b, user, &rows[i]) == -1)
			st = DB_UNAVAILABLE;
		else
			st = import_flush(&b, 0);
	}
	if (st == DB_OK)
		st = import_flush(&b, 1);
	import_batch_free(&b);
	if (st == DB_OK) {
		if (import_batch_init(&b, db, gen, q_import_tags,
		    TAG_COLS) == -1)
			st = DB_UNAVAILABLE;
		else {
			b.progress = progress;
			b.arg = arg;
			st = import_tags(&b, user, rows, n);
		}
		import_batch_free(&b);
	}
out:
	if (st == DB_OK)
		return db_tx_commit(db, gen);
	db_tx_rollback(db, gen);
	return st;
}

/* Read the rows of one lookup of ids [from, from + its rows). */
static enum db_status
import_lookup_run(struct db *db, int k, const char *user,
    struct db_import_row *rows, size_t from, MYSQL_BIND *p)
{
	MYSQL_BIND	 r[3];
	MYSQL_STMT	*s;
	char		 id[ID_MAX + 1], owner[DB_KEY_MAX + 1];
	char		*value;
	unsigned long	 idlen = 0, ownerlen = 0, valuelen = 0;
	size_t		 i, m = import_rows[k];
	enum db_status	 st;
	int		 got = 0;

	for (i = 0; i < m; i++)
		db_bind_str(&p[i], rows[from + i].id,
		    strlen(rows[from + i].id));
	if ((value = malloc(URL_MAX * 4 + 1)) == NULL)
		return DB_UNAVAILABLE;
	if ((st = db_exec(db, &q_import_lookup[k], p, &s)) != DB_OK) {
		free(value);
		return st;
	}
	db_bind_out(&r[0], id, sizeof(id), &idlen);
	db_bind_out(&r[1], owner, sizeof(owner), &ownerlen);
	db_bind_out(&r[2], value, URL_MAX * 4 + 1, &valuelen);
	while ((got = db_fetch(&q_import_lookup[k], s, r,
	    got == 0)) == 1) {
		if (db_terminate(id, sizeof(id), idlen) == -1)
			continue;
		for (i = from; i < from + m; i++) {
			if (strcmp(rows[i].id, id) != 0)
				continue;
			rows[i].taken = IMPORT_TAKEN_OTHER;
			/* A value too long to fetch here is no URL
			 * shortd accepts, so no import's URL either. */
			if (db_terminate(owner, sizeof(owner),
			    ownerlen) == 0 && strcmp(owner, user) == 0 &&
			    valuelen == rows[i].len && valuelen <=
			    URL_MAX * 4 && memcmp(value, rows[i].value,
			    valuelen) == 0)
				rows[i].taken = IMPORT_TAKEN_SAME;
		}
	}
	if (got == -1)
		st = DB_UNAVAILABLE;
	db_done(s);
	free(value);
	return st;
}

enum db_status
db_import_lookup(struct db *db, const char *user,
    struct db_import_row *rows, size_t n)
{
	MYSQL_BIND	 p[IMPORT_BATCH];
	size_t		 from = 0, i;
	enum db_status	 st = DB_OK;
	int		 k;

	for (i = 0; i < n; i++) {
		rows[i].taken = IMPORT_TAKEN_FREE;
		if (!db_key_ok(rows[i].id, ID_MAX))
			return DB_UNAVAILABLE;
	}
	for (k = 0; k < IMPORT_SIZES && st == DB_OK; k++)
		for (; n - from >= import_rows[k] && st == DB_OK;
		    from += import_rows[k])
			st = import_lookup_run(db, k, user, rows, from, p);
	return st;
}
