/*
 * linkio.c — links in and out: a link's title and tags, the listing
 * of GET / with its filters (?tag=, ?q=, ?sort=).
 *
 * The checks of titles, tags and search text at the top are pure: no
 * logging, no database; the caller turns -1 into its 400.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#define QUERY_WORDS	16	/* words of ?q= that count */
#define QUERY_WORD_MIN	3	/* shorter words are not indexed */

/* 1 if s is a tag: 1 to TAG_MAX of [a-z0-9_-]. */
int
tag_valid(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || len > TAG_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * Split len bytes at s on sep into tags (each NUL-terminated in
 * out[k]), dropping repeats.  "" is no tag.  The count, or -1 with the
 * reason in err.
 */
int
tags_split(const char *s, size_t len, char sep,
    char out[TAGS_MAX][TAG_MAX + 1], char *err, size_t errlen)
{
	size_t	 n = 0, k, i = 0, j;
	int	 dup;

	while (len > 0 && i <= len) {
		for (j = i; j < len && s[j] != sep; j++)
			;
		if (!tag_valid(s + i, j - i)) {
			snprintf(err, errlen, "invalid tags: each tag is 1 to "
			    "%d of a-z, 0-9, '_' and '-'", TAG_MAX);
			return -1;
		}
		for (dup = 0, k = 0; k < n; k++)
			dup |= strlen(out[k]) == j - i &&
			    memcmp(out[k], s + i, j - i) == 0;
		if (!dup) {
			if (n == TAGS_MAX) {
				snprintf(err, errlen, "invalid tags: at most "
				    "%d tags", TAGS_MAX);
				return -1;
			}
			memcpy(out[n], s + i, j - i);
			out[n++][j - i] = '\0';
		}
		i = j + 1;
	}
	return (int)n;
}

/* The characters of s (valid UTF-8) if it holds no control character,
 * else -1: what a title and a key's name are checked with. */
long
text_chars(const char *s, size_t len)
{
	size_t	 i;
	long	 chars = 0;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			chars++;
	}
	return chars;
}

/* 1 if s (valid UTF-8) can be a title: up to TITLE_MAX characters, no
 * control characters. */
int
title_valid(const char *s, size_t len)
{
	long	 chars = text_chars(s, len);

	return chars >= 0 && chars <= TITLE_MAX;
}

static int
query_word_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

/*
 * The FULLTEXT boolean query for the text q: each word (letters,
 * digits, '_', any non-ASCII character) of QUERY_WORD_MIN characters
 * or more, as "+word*" (it must begin a word of the link), the first
 * QUERY_WORDS of them.  The operators of boolean mode never pass: they
 * are not word characters.  The number of words, or -1 if out is too
 * small.
 */
int
search_query(const char *q, size_t len, char *out, size_t outlen)
{
	size_t	 i = 0, j, o = 0, chars, k;
	int	 words = 0;

	out[0] = '\0';
	while (i < len && words < QUERY_WORDS) {
		while (i < len && !query_word_char((unsigned char)q[i]))
			i++;
		for (j = i, chars = 0; j < len &&
		    query_word_char((unsigned char)q[j]); j++)
			chars += ((unsigned char)q[j] & 0xc0) != 0x80;
		if (chars >= QUERY_WORD_MIN) {
			if (o + (j - i) + 4 >= outlen)
				return -1;
			out[o++] = words > 0 ? ' ' : '+';
			if (words > 0)
				out[o++] = '+';
			for (k = i; k < j; k++)
				out[o++] = q[k];
			out[o++] = '*';
			out[o] = '\0';
			words++;
		}
		i = j;
	}
	return words;
}

/*
 * The values of every key=value of query whose key is key, decoded,
 * into out (up to max of them, each at most outlen - 1 bytes).  The
 * count, or -1 if there are more than max or one does not fit or
 * decode.
 */
int
query_all(const char *query, const char *key, char *out, size_t outlen,
    size_t max)
{
	const char	*p = query, *amp, *eq;
	size_t		 klen = strlen(key), plen, n = 0;
	long		 v;

	while (p != NULL && *p != '\0') {
		amp = strchr(p, '&');
		plen = amp != NULL ? (size_t)(amp - p) : strlen(p);
		eq = memchr(p, '=', plen);
		if (eq != NULL && (size_t)(eq - p) == klen &&
		    memcmp(p, key, klen) == 0) {
			if (n == max)
				return -1;
			v = url_decode(eq + 1, plen - klen - 1,
			    out + n * outlen, outlen, 1);
			if (v < 0)
				return -1;
			n++;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return (int)n;
}

/* ------------------------------------------------------------------ */
/* GET / with ?tag=, ?q=, ?sort=                                       */
/* ------------------------------------------------------------------ */

/* ,"title":...,"tags":[...] of a link that has them. */
void
links_put_meta(struct buf *b, const struct db_meta *m, int always)
{
	const char	*t = m->tags, *bar;
	size_t		 len;
	int		 first = 1;

	if (m->has_title || always) {
		buf_puts(b, ",\"title\":");
		if (m->has_title)
			json_put_str(b, m->title, strlen(m->title));
		else
			buf_puts(b, "null");
	}
	if (t[0] == '\0' && !always)
		return;
	buf_puts(b, ",\"tags\":[");
	while (*t != '\0') {
		bar = strchr(t, '|');
		len = bar != NULL ? (size_t)(bar - t) : strlen(t);
		if (!first)
			buf_puts(b, ",");
		json_put_str(b, t, len);
		first = 0;
		t += len + (bar != NULL);
	}
	buf_puts(b, "]");
}

/*
 * The filters of a listing from the query string into q (match gets
 * the FULLTEXT query, tags the tag names).  0, or -1 with the 400 in
 * resp.
 */
static int
links_filters(const struct request *req, struct response *resp,
    struct db_search *q, char match[LINKS_MATCH_MAX],
    char tags[TAGS_MAX][TAG_MAX + 1])
{
	char		 s[LINKS_Q_MAX * 4 + 8], raw[TAGS_MAX][TAG_MAX + 2];
	int		 n, k;

	n = request_query(req, "sort", s, sizeof(s));
	if (n == -1 || n == 0 || strcmp(s, "-created") == 0)
		q->sort = SORT_CREATED_DESC;
	else if (strcmp(s, "created") == 0)
		q->sort = SORT_CREATED_ASC;
	else if (strcmp(s, "-visits") == 0)
		q->sort = SORT_VISITS_DESC;
	else if (strcmp(s, "visits") == 0)
		q->sort = SORT_VISITS_ASC;
	else {
		response_error(resp, 400, "error", "invalid sort: created, "
		    "-created, visits or -visits");
		return -1;
	}
	n = query_all(req->query, "tag", (char *)raw, sizeof(raw[0]),
	    TAGS_MAX);
	for (k = 0; n > 0 && k < n; k++)
		if (!tag_valid(raw[k], strlen(raw[k])))
			n = -1;
	if (n < 0) {
		response_error(resp, 400, "error", "invalid tag: up to 20 "
		    "?tag= of 1 to 32 of a-z, 0-9, '_' and '-'");
		return -1;
	}
	for (k = 0; k < n; k++) {
		memcpy(tags[k], raw[k], strlen(raw[k]) + 1);
		q->tags[k] = tags[k];
	}
	q->ntags = (size_t)n;
	n = request_query(req, "q", s, sizeof(s));
	if (n == -2 || (n > 0 && !utf8_valid(s, (size_t)n))) {
		response_error(resp, 400, "error", "invalid q: at most 200 "
		    "characters of text");
		return -1;
	}
	if (n > 0) {
		if (search_query(s, (size_t)n, match, LINKS_MATCH_MAX) <= 0) {
			response_error(resp, 400, "error", "invalid q: give "
			    "a word of 3 or more letters or digits");
			return -1;
		}
		q->match = match;
	}
	return 0;
}

void
links_list(struct worker_ctx *ctx, const struct request *req,
    struct response *resp, const struct jwt_claims *claims)
{
	struct db_search q;
	struct db_item	*items = NULL;
	struct buf	 b;
	char		 after[CURSOR_MAX + 2], id[ID_MAX + 1];
	char		 cursor[CURSOR_MAX + 1], match[LINKS_MATCH_MAX];
	char		 tags[TAGS_MAX][TAG_MAX + 1];
	int64_t		 now_us;
	size_t		 n = 0, i, shown;
	long		 limit;
	int		 alen;

	buf_init(&b);
	memset(&q, 0, sizeof(q));
	q.user = claims->sub;
	if ((limit = short_limit(ctx, req, resp)) == -1 ||
	    links_filters(req, resp, &q, match, tags) == -1)
		goto out;
	alen = request_query(req, "after", after, sizeof(after));
	if (alen == -2 || (alen > 0 && short_cursor_decode(after,
	    (size_t)alen, &q.after_key, id) == -1)) {
		response_error(resp, 400, "error", "invalid cursor in ?after=");
		goto out;
	}
	if (alen > 0)
		q.after_id = id;
	if ((items = calloc((size_t)limit + 1, sizeof(*items))) == NULL ||
	    db_search(ctx->db, &q, items, (size_t)limit + 1, &n) != DB_OK) {
		n = 0;
		response_unavailable(resp, ctx->cfg->db_retry_after);
		goto out;
	}
	shown = n > (size_t)limit ? (size_t)limit : n;
	now_us = short_now_us();
	buf_puts(&b, "{\"items\":[");
	for (i = 0; i < shown; i++) {
		buf_puts(&b, i > 0 ? ",{\"id\":" : "{\"id\":");
		json_put_str(&b, items[i].u.id, strlen(items[i].u.id));
		buf_puts(&b, ",\"value\":");
		json_put_str(&b, items[i].u.value, items[i].u.len);
		/* A link with limits shows them and its state, one with a
		 * title or tags those; others keep the classic
		 * {"id","value"}. */
		if (items[i].u.expires_us != 0 || items[i].u.max_visits != 0)
			short_put_limits(&b, &items[i].u, now_us);
		links_put_meta(&b, &items[i].m, 0);
		buf_puts(&b, "}");
	}
	buf_puts(&b, "],\"next\":");
	if (n > shown && short_cursor_encode(items[shown - 1].key,
	    items[shown - 1].u.id, cursor, sizeof(cursor)) == 0)
		json_put_str(&b, cursor, strlen(cursor));
	else
		buf_puts(&b, "null");
	buf_puts(&b, "}");
	short_send(ctx, resp, 200, &b);
out:
	if (items != NULL)
		db_items_clear(items, n);
	free(items);
	buf_free(&b);
}

int
links_meta(struct response *resp, const struct field *title,
    const struct field *tags, char tags_buf[TAGS_MAX][TAG_MAX + 1],
    struct db_meta_change *c)
{
	char	 err[128];
	int	 n;
	size_t	 k;

	memset(c, 0, sizeof(*c));
	if (title->present) {
		c->set_title = 1;
		if (!title->is_null && title->len > 0) {
			if (!title_valid(title->value, title->len)) {
				response_error(resp, 400, "error", "invalid "
				    "title: at most 200 characters, no "
				    "control characters");
				return -1;
			}
			c->title = title->value;
		}
	}
	if (tags->present) {
		c->set_tags = 1;
		if (!tags->is_null) {
			/* [""] is one empty tag, not none */
			n = tags->num > 0 && tags->len == 0 ? -1 :
			    tags_split(tags->value, tags->len, ',', tags_buf,
			    err, sizeof(err));
			if (n == -1) {
				response_error(resp, 400, "error", "invalid "
				    "tags: each tag is 1 to 32 of a-z, 0-9, "
				    "'_' and '-', at most 20");
				return -1;
			}
			for (k = 0; k < (size_t)n; k++)
				c->tags[k] = tags_buf[k];
			c->ntags = (size_t)n;
		}
	}
	return 0;
}

void
links_put_change(struct buf *b, const struct db_meta_change *c)
{
	size_t	 k;

	if (c->set_title) {
		buf_puts(b, ",\"title\":");
		if (c->title != NULL)
			json_put_str(b, c->title, strlen(c->title));
		else
			buf_puts(b, "null");
	}
	if (c->set_tags) {
		buf_puts(b, ",\"tags\":[");
		for (k = 0; k < c->ntags; k++) {
			if (k > 0)
				buf_puts(b, ",");
			json_put_str(b, c->tags[k], strlen(c->tags[k]));
		}
		buf_puts(b, "]");
	}
}
