/*
 * linkcsv.c — a user's links as CSV (RFC 4180, csv.c):
 *
 *	/export		GET, HEAD	every link of the caller, streamed
 *	/import		POST		links from a CSV body
 *
 * Both take a login token or an API key, like every owner route.
 *
 * The export is read in pages of EXPORT_PAGE links by keyset (the
 * (user, created_us, id) index, oldest first) and each page is sent to
 * the front end as soon as it is made (response_stream), so a worker
 * holds one page, not the whole file, at a million links.  A database
 * failure before the first byte is the usual 503; after it, the status
 * is gone and the stream is broken off (the client sees a cut answer).
 *
 * The import reads shortd's own export, YOURLS's and Bitly's (the
 * header row says which; docs/management.md has the mapping).  Every
 * record is checked first, and the good ones go in with one transaction
 * (db_import.c), so a database failure leaves nothing half-imported.
 * A row whose id is the caller's already, to the same URL, is skipped
 * ("exists": importing an export again changes nothing); an id held
 * otherwise is replaced by a new random one, listed in "renamed".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "workers.h"

#define ALLOW_EXPORT	"GET, HEAD"
#define ALLOW_IMPORT	"POST"
#define EXPORT_PAGE	1000		/* links per database read */
#define EXPORT_TYPE	"text/csv; charset=utf-8"
#define IMPORT_TRIES	3		/* a race on an id: check again */
#define ARENA_BLOCK	(1 << 20)
#define MESSAGE_MAX	256

static const char export_header[] =
    "id,url,title,tags,created_at,expires_at,max_visits,visits\r\n";

/* ------------------------------------------------------------------ */
/* export                                                              */
/* ------------------------------------------------------------------ */

/* Append one link as a record. */
static void
export_row(struct buf *b, const struct db_item *it)
{
	char	 t[RFC3339_MAX];
	int	 n;

	csv_put(b, it->u.id, strlen(it->u.id), 1);
	csv_put(b, it->u.value, it->u.len, 0);
	csv_put(b, it->m.title, it->m.has_title ? strlen(it->m.title) : 0, 0);
	csv_put(b, it->m.tags, strlen(it->m.tags), 0);
	n = rfc3339_format(it->u.created_us, t, sizeof(t));
	csv_put(b, t, n > 0 ? (size_t)n : 0, 0);
	n = it->u.expires_us != 0 ? rfc3339_format(it->u.expires_us, t,
	    sizeof(t)) : 0;
	csv_put(b, t, n > 0 ? (size_t)n : 0, 0);
	if (it->u.max_visits != 0)
		buf_printf(b, ",%lld", (long long)it->u.max_visits);
	else
		buf_add(b, ",", 1);
	buf_printf(b, ",%lld", (long long)it->u.visits);
	csv_end(b);
}

/* Send the status and headers: Content-Disposition's file name is
 * shortd-<user>-<YYYY-MM-DD>.csv, the user name kept to [A-Za-z0-9._-]
 * (others become '_').  0, or -1 (the stream broke). */
static int
export_start(struct response *resp, const char *user)
{
	char		 name[JWT_SUB_MAX + 1], day[16];
	struct tm	 tm;
	time_t		 now = time(NULL);
	size_t		 i;

	for (i = 0; user[i] != '\0' && i < JWT_SUB_MAX; i++)
		name[i] = (user[i] >= 'a' && user[i] <= 'z') ||
		    (user[i] >= 'A' && user[i] <= 'Z') ||
		    (user[i] >= '0' && user[i] <= '9') || user[i] == '.' ||
		    user[i] == '-' ? user[i] : '_';
	name[i] = '\0';
	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	response_header(resp, "Content-Disposition",
	    "attachment; filename=\"shortd-%s-%s.csv\"", name, day);
	response_header(resp, "Cache-Control", "no-store");
	return response_stream_start(resp, 200, EXPORT_TYPE);
}

/* GET /export: the header row, then page after page as it is read. */
static void
linkcsv_export(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct jwt_claims	 claims;
	struct db_search	 q;
	struct db_item		*items = NULL;
	struct buf		 b;
	char			 after[ID_MAX + 1];
	size_t			 n = 0, i;
	uint64_t		 rows = 0;
	enum db_status		 st;

	buf_init(&b);
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0) {
		response_bad_method(resp, ALLOW_EXPORT);
		return;
	}
	if (cred_check(ctx, req, resp, &claims) == -1)
		return;
	if (strcmp(req->method, "HEAD") == 0) {
		resp->head_only = 1;
		(void)export_start(resp, claims.sub);
		return;
	}
	if ((items = calloc(EXPORT_PAGE, sizeof(*items))) == NULL) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		return;
	}
	/* However long this takes, requests nginx sends on this worker's
	 * other kept connections go to the pool's other workers. */
	ctx->let_go(ctx);
	memset(&q, 0, sizeof(q));
	q.user = claims.sub;
	q.sort = SORT_CREATED_ASC;
	buf_add(&b, export_header, sizeof(export_header) - 1);
	for (;;) {
		st = db_search(ctx->db, &q, items, EXPORT_PAGE, &n);
		if (st != DB_OK) {
			if (!resp->streamed) {
				response_unavailable(resp,
				    ctx->cfg->db_retry_after);
				break;
			}
			log_warnx("#%llu: export: the database failed after "
			    "%llu rows; breaking the stream off",
			    (unsigned long long)req->rid,
			    (unsigned long long)rows);
			resp->broken = 1;
			break;
		}
		for (i = 0; i < n; i++)
			export_row(&b, &items[i]);
		rows += n;
		if (n > 0) {
			q.after_key = items[n - 1].key;
			memcpy(after, items[n - 1].u.id, sizeof(after));
			q.after_id = after;
		}
		db_items_clear(items, n);
		if (b.failed) {
			if (!resp->streamed)
				response_unavailable(resp,
				    ctx->cfg->db_retry_after);
			else
				resp->broken = 1;
			break;
		}
		if (!resp->streamed && export_start(resp, claims.sub) == -1)
			break;
		if (b.len > 0 && response_stream(resp, b.data, b.len) == -1)
			break;
		buf_reset(&b);
		if (n < EXPORT_PAGE)
			break;
	}
	free(items);
	buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* import: reading the file                                            */
/* ------------------------------------------------------------------ */

/* What a column of the file becomes. */
enum import_col {
	COL_ID, COL_URL, COL_TITLE, COL_TAGS, COL_CREATED, COL_EXPIRES,
	COL_MAX_VISITS, COL_VISITS, COL_COUNT
};
enum import_format { FMT_SHORTD, FMT_YOURLS, FMT_BITLY };

static const char *const format_names[] = { "shortd", "YOURLS", "Bitly" };

/* Header names (lowercase, '_' for blanks) and what they map to.  A
 * name that marks a format says which file it is. */
static const struct import_name {
	const char		*name;
	enum import_col		 col;
	int			 marks;		/* 1 + enum import_format */
} import_names[] = {
	{ "id",			COL_ID,		0 },
	{ "url",		COL_URL,	0 },
	{ "title",		COL_TITLE,	0 },
	{ "tags",		COL_TAGS,	0 },
	{ "created_at",		COL_CREATED,	0 },
	{ "expires_at",		COL_EXPIRES,	0 },
	{ "max_visits",		COL_MAX_VISITS,	1 + FMT_SHORTD },
	{ "visits",		COL_VISITS,	1 + FMT_SHORTD },
	/* YOURLS: the columns of its yourls_url table */
	{ "keyword",		COL_ID,		1 + FMT_YOURLS },
	{ "timestamp",		COL_CREATED,	1 + FMT_YOURLS },
	{ "clicks",		COL_VISITS,	0 },
	/* Bitly: the API's Bitlink fields and the web export's headings */
	{ "long_url",		COL_URL,	1 + FMT_BITLY },
	{ "link",		COL_ID,		1 + FMT_BITLY },
	{ "bitlink",		COL_ID,		1 + FMT_BITLY },
	{ "date_created",	COL_CREATED,	1 + FMT_BITLY },
	{ "created",		COL_CREATED,	0 },
};

/* The times and counts of a record (import_record's order), and what
 * each must be. */
static const struct import_num {
	enum import_col	 col;
	int		 time;		/* a time, else a count */
	int64_t		 min;
	const char	*detail;
	const char	*message;
} import_nums[4] = {
	{ COL_CREATED, 1, 0, "invalid created_at", "created_at must be an "
	  "RFC 3339 date-time, e.g. 2030-01-31T12:00:00Z" },
	{ COL_EXPIRES, 1, 0, "invalid expires_at", "expires_at must be an "
	  "RFC 3339 date-time, e.g. 2030-01-31T12:00:00Z" },
	{ COL_MAX_VISITS, 0, 1, "invalid max_visits", "max_visits must be an "
	  "integer from 1 to 9007199254740991, or empty" },
	{ COL_VISITS, 0, 0, "invalid visits", "visits must be an integer from "
	  "0 to 9007199254740991, or empty" },
};

/* Strings of the rows kept, in blocks that never move. */
struct arena {
	char		*block;
	size_t		 used, size;
	char		**old;		/* blocks filled before */
	size_t		 nold;
};

static const char *
arena_dup(struct arena *a, const char *s, size_t len)
{
	char	**old, *p;
	size_t	 size;

	if (a->block == NULL || a->size - a->used < len + 1) {
		if (a->block != NULL) {
			if ((old = realloc(a->old, (a->nold + 1) *
			    sizeof(*old))) == NULL)
				return NULL;
			a->old = old;
			a->old[a->nold++] = a->block;
		}
		size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
		if ((a->block = malloc(size)) == NULL)
			return NULL;
		a->size = size;
		a->used = 0;
	}
	p = a->block + a->used;
	memcpy(p, s, len);
	p[len] = '\0';
	a->used += len + 1;
	return p;
}

static void
arena_free(struct arena *a)
{
	size_t	 i;

	for (i = 0; i < a->nold; i++)
		free(a->old[i]);
	free(a->old);
	free(a->block);
	memset(a, 0, sizeof(*a));
}

/* A row left out, and why. */
struct import_skip {
	unsigned long	 line;
	const char	*id;		/* NULL: none */
	const char	*detail;	/* a word (static) */
	const char	*message;	/* in the arena, or static */
};

/* The import in hand. */
struct import {
	enum import_format	 format;
	int			 col[COL_COUNT];	/* field index, -1 */
	size_t			 nfields;		/* of the header */
	struct arena		 arena;
	struct db_import_row	*rows;
	size_t			 nrows, caprows;
	struct import_skip	*skip;
	size_t			 nskip, capskip;
	/* the ids the rows use (given or drawn), for duplicates: open
	 * addressing, each slot 0 or 1 + an index of keys */
	uint32_t		*ids;
	size_t			 idcap;
	const char		**keys;
	size_t			 nkeys, keycap;
	int64_t			 now_us;
};

static int
import_skip(struct import *im, unsigned long line, const char *id,
    const char *detail, const char *message)
{
	struct import_skip	*s;
	size_t			 cap;

	if (im->nskip == im->capskip) {
		cap = im->capskip ? im->capskip * 2 : 64;
		if ((s = realloc(im->skip, cap * sizeof(*s))) == NULL)
			return -1;
		im->skip = s;
		im->capskip = cap;
	}
	if (id != NULL && (id = arena_dup(&im->arena, id, strlen(id))) ==
	    NULL)
		return -1;
	if (message != NULL && (message = arena_dup(&im->arena, message,
	    strlen(message))) == NULL)
		return -1;
	s = &im->skip[im->nskip++];
	s->line = line;
	s->id = id;
	s->detail = detail;
	s->message = message;
	return 0;
}

/* A header name as import_names spells it: lowercase, blanks and '-'
 * as '_', leading and trailing blanks dropped. */
static void
import_name_norm(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	for (i = 0; i < len && o + 1 < outlen; i++)
		out[o++] = s[i] == ' ' || s[i] == '-' ? '_' :
		    s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') :
		    s[i];
	out[o] = '\0';
}

/* Read the header record: the format and the columns.  0, or -1 with
 * the 400 in resp. */
static int
import_header(struct import *im, const struct csv_record *rec,
    struct response *resp)
{
	char	 name[32];
	size_t	 i, k;
	int	 marks = 0;

	for (k = 0; k < COL_COUNT; k++)
		im->col[k] = -1;
	im->nfields = rec->nfields;
	for (i = 0; i < rec->nfields; i++) {
		import_name_norm(rec->field[i], rec->len[i], name,
		    sizeof(name));
		for (k = 0; k < sizeof(import_names) /
		    sizeof(import_names[0]); k++) {
			if (strcmp(name, import_names[k].name) != 0)
				continue;
			/* The first column of a kind counts: Bitly's
			 * "id" and "link" both name the link. */
			if (im->col[import_names[k].col] == -1)
				im->col[import_names[k].col] = (int)i;
			if (marks == 0)
				marks = import_names[k].marks;
			break;
		}
	}
	if (im->col[COL_URL] == -1) {
		response_error(resp, 400, "error", "the first line must name "
		    "the columns: shortd's export has id,url,title,tags,"
		    "created_at,expires_at,max_visits,visits (url required); "
		    "YOURLS's keyword,url,title,timestamp,ip,clicks; Bitly's "
		    "long_url (or \"Long URL\"), link or bitlink, title, "
		    "created_at, tags");
		return -1;
	}
	im->format = marks > 0 ? (enum import_format)(marks - 1) : FMT_SHORTD;
	return 0;
}

/* A time of the file: RFC 3339, or what the other formats write:
 * "YYYY-MM-DD HH:MM:SS" (UTC), an offset without its colon (+0000),
 * a date alone (midnight UTC).  0, or -1. */
static int
import_time(const char *s, size_t len, int64_t *us)
{
	char	 t[RFC3339_MAX + 8];
	size_t	 n;

	if (rfc3339_parse(s, len, us) == 0)
		return 0;
	if (len < 10 || len > RFC3339_MAX)
		return -1;
	memcpy(t, s, len);
	n = len;
	if (n == 10) {
		memcpy(t + n, "T00:00:00", 9);
		n += 9;
	}
	if (t[10] == ' ')
		t[10] = 'T';
	/* +hhmm at the end: +hh:mm */
	if (n >= 24 && (t[n - 5] == '+' || t[n - 5] == '-') &&
	    t[n - 3] != ':') {
		memmove(t + n - 1, t + n - 2, 2);
		t[n - 2] = ':';
		n++;
	} else if (t[n - 1] != 'Z' && t[n - 1] != 'z' && t[n - 6] != '+' &&
	    t[n - 6] != '-')
		t[n++] = 'Z';
	return rfc3339_parse(t, n, us);
}

/* A count of the file: an integer, 0 or more.  0, or -1. */
static int
import_count(const char *s, size_t len, int64_t *v)
{
	return field_parse_int(s, len, v) == 0 && *v >= 0 ? 0 : -1;
}

/* Another format's tags into shortd's: split on '|' or ',', blanks
 * trimmed, lowercase, inner blanks as '-'.  The joined text is written
 * to out ('|'-separated). */
static size_t
import_tags_norm(const char *s, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0, start;
	int	 pending = 0;

	for (i = 0; i < len; ) {
		while (i < len && (s[i] == ' ' || s[i] == '|' || s[i] == ','))
			i++;
		if (i >= len)
			break;
		if (pending && o + 1 < outlen)
			out[o++] = '|';
		start = o;
		for (; i < len && s[i] != '|' && s[i] != ','; i++)
			if (o + 1 < outlen)
				out[o++] = s[i] == ' ' ? '-' : s[i] >= 'A' &&
				    s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') :
				    s[i];
		while (o > start && out[o - 1] == '-')
			o--;
		pending = o > start;
	}
	out[o] = '\0';
	return o;
}

/* Record rec's field for column k, or NULL (no such column). */
static const char *
import_field(const struct import *im, const struct csv_record *rec,
    enum import_col k, size_t *len)
{
	if (im->col[k] == -1) {
		*len = 0;
		return NULL;
	}
	*len = rec->len[im->col[k]];
	return rec->field[im->col[k]];
}

/* The id of a record: after the last '/' (Bitly's links are
 * "bit.ly/abc" or "https://bit.ly/abc"). */
static const char *
import_id(const char *s, size_t *len)
{
	const char	*slash;

	while ((slash = memchr(s, '/', *len)) != NULL) {
		*len -= (size_t)(slash - s) + 1;
		s = slash + 1;
	}
	return s;
}

static int
import_row_add(struct import *im, const struct db_import_row *r)
{
	struct db_import_row	*n;
	size_t			 cap;

	if (im->nrows == im->caprows) {
		cap = im->caprows ? im->caprows * 2 : 1024;
		if ((n = realloc(im->rows, cap * sizeof(*n))) == NULL)
			return -1;
		im->rows = n;
		im->caprows = cap;
	}
	im->rows[im->nrows++] = *r;
	return 0;
}

/*
 * Check one data record and keep it as a row, or note why not.  0, or
 * -1 (out of memory).
 */
static int
import_record(struct import *im, const struct csv_record *rec)
{
	struct db_import_row	 r;
	char			 err[MESSAGE_MAX], idbuf[ID_MAX + 1];
	char			 tags[TAGS_MAX][TAG_MAX + 1];
	char			 norm[TAGS_TEXT_MAX * 2 + 1];
	const struct import_num	*n;
	const char		*s, *id = NULL, *detail = NULL;
	int64_t			*nums[4];
	size_t			 len, idlen = 0, k;
	int			 ntags;

	memset(&r, 0, sizeof(r));
	r.line = rec->line;
	if (rec->nfields != im->nfields) {
		snprintf(err, sizeof(err), "%zu fields where the header has "
		    "%zu", rec->nfields, im->nfields);
		return import_skip(im, rec->line, NULL, "malformed", err);
	}
	if ((s = import_field(im, rec, COL_ID, &len)) != NULL && len > 0) {
		id = import_id(s, &len);
		idlen = len;
		snprintf(idbuf, sizeof(idbuf), "%.*s", (int)(len > ID_MAX ?
		    ID_MAX : len), id);
		if (id_alias_check(id, idlen, err, sizeof(err)) == -1) {
			detail = id_valid(id, idlen) && id_reserved(id,
			    idlen) ? "reserved" : "invalid id";
			return import_skip(im, rec->line, idbuf, detail, err);
		}
	}
	s = import_field(im, rec, COL_URL, &len);
	if (url_validate(s, len, err, sizeof(err)) == -1)
		detail = "invalid url";
	else if ((r.value = arena_dup(&im->arena, s, len)) == NULL)
		return -1;
	r.len = len;
	if (detail == NULL &&
	    (s = import_field(im, rec, COL_TITLE, &len)) != NULL && len > 0) {
		if (!utf8_valid(s, len) || !title_valid(s, len)) {
			detail = "invalid title";
			snprintf(err, sizeof(err), "title: up to %d characters "
			    "of UTF-8, no control characters", TITLE_MAX);
		} else if ((r.title = arena_dup(&im->arena, s, len)) == NULL)
			return -1;
		r.title_len = len;
	}
	if (detail == NULL &&
	    (s = import_field(im, rec, COL_TAGS, &len)) != NULL && len > 0) {
		if (im->format != FMT_SHORTD) {
			len = import_tags_norm(s, len, norm, sizeof(norm));
			s = norm;
		}
		if ((ntags = tags_split(s, len, '|', tags, err,
		    sizeof(err))) == -1)
			detail = "invalid tags";
		else {
			for (len = 0, k = 0; k < (size_t)ntags; k++)
				len += (size_t)snprintf(norm + len,
				    sizeof(norm) - len, "%s%s", k > 0 ? "|" :
				    "", tags[k]);
			if ((r.tags = arena_dup(&im->arena, norm, len)) ==
			    NULL)
				return -1;
			r.tags_len = len;
		}
	}
	if (r.tags == NULL)
		r.tags = "";
	r.created_us = im->now_us;
	nums[0] = &r.created_us;
	nums[1] = &r.expires_us;
	nums[2] = &r.max_visits;
	nums[3] = &r.visits;
	for (k = 0; k < 4 && detail == NULL; k++) {
		n = &import_nums[k];
		if ((s = import_field(im, rec, n->col, &len)) == NULL ||
		    len == 0)
			continue;
		if (n->time ? import_time(s, len, nums[k]) == -1 :
		    import_count(s, len, nums[k]) == -1 ||
		    *nums[k] < n->min || *nums[k] > MAX_VISITS_MAX) {
			detail = n->detail;
			snprintf(err, sizeof(err), "%s", n->message);
		}
	}
	if (detail != NULL)
		return import_skip(im, rec->line, id != NULL ? idbuf : NULL,
		    detail, err);
	if (id != NULL) {
		memcpy(r.id, id, idlen);
		r.id[idlen] = '\0';
		if ((r.given = arena_dup(&im->arena, id, idlen)) == NULL)
			return -1;
	}
	return import_row_add(im, &r);
}

/* ------------------------------------------------------------------ */
/* import: ids, the write, the answer                                  */
/* ------------------------------------------------------------------ */

/* The set of ids in use by the file's rows (given or drawn): 1 if id
 * is in it; else 0, and with add it is added (it must stay put); -1
 * if it is full. */
static int
import_ids_has(struct import *im, const char *id, int add)
{
	size_t	 mask = im->idcap - 1, i;

	for (i = id_hash(id) & mask; im->ids[i] != 0; i = (i + 1) & mask)
		if (strcmp(im->keys[im->ids[i] - 1], id) == 0)
			return 1;
	if (add) {
		if (im->nkeys == im->keycap)
			return -1;
		im->keys[im->nkeys++] = id;
		im->ids[i] = (uint32_t)im->nkeys;
	}
	return 0;
}

/* A new random id for row r, in use by no other row.  0, or -1. */
static int
import_draw(struct import *im, struct db_import_row *r)
{
	const char	*key;

	do {
		if (id_generate(r->id) == -1)
			return -1;
	} while (import_ids_has(im, r->id, 0));
	/* r->id may change again (a retry): the set keeps a copy. */
	if ((key = arena_dup(&im->arena, r->id, strlen(r->id))) == NULL)
		return -1;
	return import_ids_has(im, key, 1) == 0 ? 0 : -1;
}

/* Drop row i (skipped) from the rows to write. */
static int
import_drop(struct import *im, size_t *i, const char *detail,
    const char *message)
{
	struct db_import_row	*r = &im->rows[*i];

	if (import_skip(im, r->line, r->given, detail, message) == -1)
		return -1;
	memmove(r, r + 1, (im->nrows - *i - 1) * sizeof(*r));
	im->nrows--;
	(*i)--;
	return 0;
}

/* The ids set and the first draw: duplicates in the file are
 * skipped (the first one wins), rows without an id get one.  0, or
 * -1 (out of memory, no randomness). */
static int
import_ids(struct import *im)
{
	size_t	 i, cap = 16;

	/* Keys: every given id, and at most one draw per row at first
	 * and per try; the table at most half full. */
	im->keycap = im->nrows * (2 + IMPORT_TRIES) + 16;
	while (cap < im->keycap * 2)
		cap *= 2;
	im->idcap = cap;
	if ((im->ids = calloc(cap, sizeof(*im->ids))) == NULL ||
	    (im->keys = calloc(im->keycap, sizeof(*im->keys))) == NULL)
		return -1;
	for (i = 0; i < im->nrows; i++) {
		if (im->rows[i].given == NULL)
			continue;
		switch (import_ids_has(im, im->rows[i].given, 1)) {
		case 1:
			if (import_drop(im, &i, "duplicate", "this id came "
			    "earlier in the file") == -1)
				return -1;
			break;
		case -1:
			return -1;
		}
	}
	for (i = 0; i < im->nrows; i++)
		if (im->rows[i].given == NULL &&
		    import_draw(im, &im->rows[i]) == -1)
			return -1;
	return 0;
}

/* After a lookup: the caller's own link, to the same URL, is there
 * ("exists"); an id held otherwise gets a new one.  0, or -1. */
static int
import_resolve(struct import *im)
{
	struct db_import_row	*r;
	size_t			 i;

	for (i = 0; i < im->nrows; i++) {
		r = &im->rows[i];
		if (r->taken == IMPORT_TAKEN_FREE)
			continue;
		if (r->taken == IMPORT_TAKEN_SAME && r->given != NULL &&
		    strcmp(r->id, r->given) == 0) {
			if (import_drop(im, &i, "exists", "you have this link "
			    "already") == -1)
				return -1;
		} else if (import_draw(im, r) == -1)
			return -1;
	}
	return 0;
}

static void
import_progress(void *arg)
{
	struct worker_ctx	*ctx = arg;

	ctx->progress(ctx);
}

static int
import_skip_cmp(const void *a, const void *b)
{
	const struct import_skip *x = a, *y = b;

	return x->line < y->line ? -1 : x->line > y->line;
}

/* The answer: {"created","format","skipped","renamed"}. */
static void
import_answer(struct worker_ctx *ctx, struct response *resp,
    struct import *im)
{
	struct buf	 b;
	size_t		 i, k = 0;

	buf_init(&b);
	if (im->nskip > 1)
		qsort(im->skip, im->nskip, sizeof(*im->skip),
		    import_skip_cmp);
	buf_printf(&b, "{\"created\":%zu,\"format\":\"%s\",\"skipped\":[",
	    im->nrows, format_names[im->format]);
	for (i = 0; i < im->nskip; i++) {
		buf_printf(&b, "%s{\"line\":%lu,\"id\":", i > 0 ? "," : "",
		    im->skip[i].line);
		if (im->skip[i].id != NULL)
			json_put_str(&b, im->skip[i].id,
			    strlen(im->skip[i].id));
		else
			buf_puts(&b, "null");
		buf_puts(&b, ",\"detail\":");
		json_put_str(&b, im->skip[i].detail,
		    strlen(im->skip[i].detail));
		buf_puts(&b, ",\"message\":");
		json_put_str(&b, im->skip[i].message,
		    strlen(im->skip[i].message));
		buf_puts(&b, "}");
	}
	buf_puts(&b, "],\"renamed\":[");
	for (i = 0; i < im->nrows; i++) {
		if (im->rows[i].given == NULL ||
		    strcmp(im->rows[i].given, im->rows[i].id) == 0)
			continue;
		buf_printf(&b, "%s{\"line\":%lu,\"id\":", k++ > 0 ? "," : "",
		    im->rows[i].line);
		json_put_str(&b, im->rows[i].given, strlen(im->rows[i].given));
		buf_puts(&b, ",\"new_id\":");
		json_put_str(&b, im->rows[i].id, strlen(im->rows[i].id));
		buf_puts(&b, "}");
	}
	buf_puts(&b, "]}");
	short_send(ctx, resp, 200, &b);
	buf_free(&b);
}

/*
 * Write the rows: check the ids against the database, then one
 * transaction; an id taken meanwhile by someone else (DB_DUPLICATE)
 * makes it all go again, from the lookup.  The answer is in resp.
 */
static void
import_store(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct import *im, const char *user)
{
	enum db_status	 st = DB_OK;
	size_t		 i;
	int		 tries;

	if (import_ids(im) == -1) {
		response_unavailable(resp, ctx->cfg->db_retry_after);
		return;
	}
	/* Requests nginx sends on this worker's other kept connections
	 * go to the pool's other workers meanwhile. */
	ctx->let_go(ctx);
	for (tries = 0; tries < IMPORT_TRIES; tries++) {
		if ((st = db_import_lookup(ctx->db, user, im->rows,
		    im->nrows)) != DB_OK)
			break;
		if (import_resolve(im) == -1) {
			st = DB_UNAVAILABLE;
			break;
		}
		ctx->progress(ctx);
		if (im->nrows == 0)
			break;
		st = db_import_write(ctx->db, user, im->rows, im->nrows,
		    import_progress, ctx);
		if (st != DB_DUPLICATE)
			break;
		log_info("#%llu: import: an id was taken meanwhile; "
		    "checking again", (unsigned long long)req->rid);
	}
	switch (st) {
	case DB_OK:
		/* Nothing caches an unknown id today; if a 404 ever is,
		 * this keeps it from outliving the import (as a create
		 * does). */
		for (i = 0; i < im->nrows; i++)
			cache_bump(ctx->sbc, im->rows[i].id);
		import_answer(ctx, resp, im);
		break;
	case DB_NOTFOUND:
		response_error(resp, 403, "forbidden", "the account is gone");
		break;
	default:
		response_unavailable(resp, ctx->cfg->db_retry_after);
		break;
	}
}

static void
import_free(struct import *im)
{
	arena_free(&im->arena);
	free(im->rows);
	free(im->skip);
	free(im->ids);
	free(im->keys);
}

/* POST /import: read and check every record, then store the good
 * ones. */
static void
linkcsv_import(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	struct jwt_claims	 claims;
	struct csv_reader	 r;
	struct csv_record	 rec;
	struct import		 im;
	enum csv_status		 st;
	char			 msg[MESSAGE_MAX];
	size_t			 records = 0;

	if (strcmp(req->method, "POST") != 0) {
		response_bad_method(resp, ALLOW_IMPORT);
		return;
	}
	if (cred_check(ctx, req, resp, &claims) == -1)
		return;
	if (strncasecmp(req->content_type, "multipart/", 10) == 0) {
		response_error(resp, 400, "error", "send the CSV file itself "
		    "as the body (Content-Type: text/csv), not a form");
		return;
	}
	memset(&im, 0, sizeof(im));
	im.now_us = short_now_us();
	csv_reader_init(&r, (const char *)req->body, req->bodylen);
	/* The header is the first record; an empty body has none, and
	 * import_header() then says which columns it wants. */
	st = csv_next(&r, &rec);
	if (st == CSV_MALFORMED) {
		snprintf(msg, sizeof(msg), "line %lu: the header row is "
		    "malformed: %s", rec.line, r.why);
		response_error(resp, 400, "error", msg);
		goto out;
	}
	for (;;) {
		switch (st) {
		case CSV_END:
			if (records == 0)
				(void)import_header(&im, &rec, resp);
			if (records == 0 || im.col[COL_URL] == -1)
				goto out;
			import_store(ctx, req, resp, &im, claims.sub);
			goto out;
		case CSV_UNTERMINATED:
			snprintf(msg, sizeof(msg), "line %lu: a quoted field "
			    "is not closed before the end of the file",
			    rec.line);
			response_error(resp, 400, "error", msg);
			goto out;
		case CSV_RECORD:
		case CSV_MALFORMED:
			if (records++ == 0) {
				if (import_header(&im, &rec, resp) == -1)
					goto out;
				break;
			}
			if (records > IMPORT_ROWS_MAX + 1) {
				snprintf(msg, sizeof(msg), "at most %d rows "
				    "per import: split the file",
				    IMPORT_ROWS_MAX);
				response_error(resp, 413, "too large", msg);
				goto out;
			}
			if ((st == CSV_RECORD ? import_record(&im, &rec) :
			    import_skip(&im, rec.line, NULL, "malformed",
			    r.why)) == -1) {
				response_unavailable(resp,
				    ctx->cfg->db_retry_after);
				goto out;
			}
			break;
		default:	/* CSV_NOMEM */
			response_unavailable(resp, ctx->cfg->db_retry_after);
			goto out;
		}
		st = csv_next(&r, &rec);
	}
out:
	csv_reader_free(&r);
	import_free(&im);
}

int
linkcsv_route(struct worker_ctx *ctx, const struct request *req,
    struct response *resp)
{
	if (req->pathlen == 7 && memcmp(req->path, "/export", 7) == 0)
		linkcsv_export(ctx, req, resp);
	else if (req->pathlen == 7 && memcmp(req->path, "/import", 7) == 0)
		linkcsv_import(ctx, req, resp);
	else
		return 0;
	return 1;
}
