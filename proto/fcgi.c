/*
 * FastCGI 1.0 records: an incremental decoder for the responder side of
 * one connection, and the encoders a responder needs.
 *
 * The decoder walks one record at a time through three phases: the
 * 8-byte header, the content, the padding.  What the content means
 * depends only on the record's type, its request id and the active
 * request, so it can arrive split at any byte.  Small records (BEGIN,
 * GET_VALUES) are collected whole in p->rec; PARAMS and STDIN go to
 * their streams, bounded by the limits; everything else is skipped.
 *
 * One request at a time (FCGI_MPXS_CONNS is 0): a BEGIN for another id
 * while one is active is refused with FCGI_CANT_MPX_CONN, and records
 * for ids that are not active are skipped.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Answers a peer may leave unread in out before we call it broken. */
#define FCGI_OUT_MAX	(1024 * 1024)
/* Stream buffers larger than this are freed between requests. */
#define FCGI_KEEP_MAX	(128 * 1024)
/* Longest length a name-value pair can encode (31 bits). */
#define FCGI_PAIR_MAX	0x7fffffffUL

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

static const struct fcgi_limits fcgi_default_limits = {
	64 * 1024,	/* max_params */
	64 * 1024,	/* max_body */
	512		/* max_nparams */
};

/* What we answer to FCGI_GET_VALUES. */
static const struct {
	const char	*name;
	const char	*value;
} fcgi_values[] = {
	{ "FCGI_MAX_CONNS",	"1" },
	{ "FCGI_MAX_REQS",	"1" },
	{ "FCGI_MPXS_CONNS",	"0" },
};

static const uint8_t fcgi_zeros[8];

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Stream buffers: keep small ones for the next request. */
static void
buf_trim(struct buf *b)
{
	if (b->cap > FCGI_KEEP_MAX)
		buf_free(b);
	else
		buf_reset(b);
}

/* ------------------------------------------------------------------ */
/* encoders                                                            */
/* ------------------------------------------------------------------ */

static int
put_header(struct buf *b, uint8_t type, uint16_t id, size_t clen,
    size_t plen)
{
	uint8_t	 h[FCGI_HEADER_LEN];

	h[0] = FCGI_VERSION_1;
	h[1] = type;
	h[2] = (uint8_t)(id >> 8);
	h[3] = (uint8_t)id;
	h[4] = (uint8_t)(clen >> 8);
	h[5] = (uint8_t)clen;
	h[6] = (uint8_t)plen;
	h[7] = 0;
	return buf_add(b, h, sizeof(h));
}

static size_t
pad_len(size_t clen)
{
	return (8 - clen % 8) % 8;
}

/* One record of at most FCGI_MAX_CONTENT bytes, padded to 8; -1 if
 * the content is too long or memory ran out. */
int
fcgi_put_record(struct buf *b, uint8_t type, uint16_t id, const void *data,
    size_t len)
{
	size_t	 pad;

	if (len > FCGI_MAX_CONTENT)
		return -1;
	pad = pad_len(len);
	if (buf_reserve(b, FCGI_HEADER_LEN + len + pad) == -1 ||
	    put_header(b, type, id, len, pad) == -1 ||
	    buf_add(b, data, len) == -1 ||
	    buf_add(b, fcgi_zeros, pad) == -1)
		return -1;
	return 0;
}

int
fcgi_put_stdout(struct buf *b, uint16_t id, const void *data, size_t len)
{
	const uint8_t	*s = data;
	size_t		 n;

	if (len == 0)
		return fcgi_put_record(b, FCGI_STDOUT, id, NULL, 0);
	while (len > 0) {
		n = min_size(len, FCGI_MAX_CONTENT);
		if (fcgi_put_record(b, FCGI_STDOUT, id, s, n) == -1)
			return -1;
		s += n;
		len -= n;
	}
	return 0;
}

int
fcgi_put_end(struct buf *b, uint16_t id, uint32_t app_status,
    uint8_t proto_status)
{
	uint8_t	 body[8];

	body[0] = (uint8_t)(app_status >> 24);
	body[1] = (uint8_t)(app_status >> 16);
	body[2] = (uint8_t)(app_status >> 8);
	body[3] = (uint8_t)app_status;
	body[4] = proto_status;
	body[5] = body[6] = body[7] = 0;
	return fcgi_put_record(b, FCGI_END_REQUEST, id, body, sizeof(body));
}

static int
put_pair_len(struct buf *b, size_t len)
{
	uint8_t	 l[4];

	if (len < 0x80) {
		l[0] = (uint8_t)len;
		return buf_add(b, l, 1);
	}
	l[0] = (uint8_t)(len >> 24) | 0x80;
	l[1] = (uint8_t)(len >> 16);
	l[2] = (uint8_t)(len >> 8);
	l[3] = (uint8_t)len;
	return buf_add(b, l, 4);
}

int
fcgi_put_pair(struct buf *b, const char *name, size_t namelen,
    const char *value, size_t valuelen)
{
	if (namelen > FCGI_PAIR_MAX || valuelen > FCGI_PAIR_MAX)
		return -1;
	if (put_pair_len(b, namelen) == -1 ||
	    put_pair_len(b, valuelen) == -1 ||
	    buf_add(b, name, namelen) == -1 ||
	    buf_add(b, value, valuelen) == -1)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* name-value pairs                                                    */
/* ------------------------------------------------------------------ */

/* One length at *off: 1 byte if the high bit is clear, else 4 bytes
 * with the high bit masked.  -1 if it runs past len. */
static int
pair_len(const uint8_t *s, size_t len, size_t *off, size_t *out)
{
	size_t	 o = *off;

	if (o >= len)
		return -1;
	if ((s[o] & 0x80) == 0) {
		*out = s[o];
		*off = o + 1;
		return 0;
	}
	if (len - o < 4)
		return -1;
	*out = (size_t)(s[o] & 0x7f) << 24 | (size_t)s[o + 1] << 16 |
	    (size_t)s[o + 2] << 8 | (size_t)s[o + 3];
	*off = o + 4;
	return 0;
}

/* Both lengths of the pair at *off; on success *off is at the name and
 * name and value lie within len. */
static int
pair_next(const uint8_t *s, size_t len, size_t *off, size_t *nl,
    size_t *vl)
{
	if (pair_len(s, len, off, nl) == -1 ||
	    pair_len(s, len, off, vl) == -1)
		return -1;
	if (*nl > len - *off || *vl > len - *off - *nl)
		return -1;
	return 0;
}

/*
 * The PARAMS stream has ended: decode params_raw into params_store and
 * the params array.  A first pass validates and counts so that one
 * allocation of each suffices.  Every pair spends at least two length
 * bytes, which pay for its two NULs, so the store never outgrows the
 * raw stream and the pointers into it stay put.
 *
 * A stream cut short by max_params may end inside a pair; then we keep
 * the complete pairs and the worker answers 431 anyway.  Otherwise a
 * pair running past the end is a protocol error.
 */
static enum fcgi_status
params_decode(struct fcgi_parser *p)
{
	const uint8_t		*raw = p->params_raw.data;
	struct fcgi_param	*fp;
	char			*s;
	size_t			 len = p->params_raw.len;
	size_t			 off, n, i, nl = 0, vl = 0;

	for (off = 0, n = 0; off < len; off += nl + vl, n++) {
		if (n == p->lim.max_nparams) {
			p->params_too_large = 1;
			break;
		}
		if (pair_next(raw, len, &off, &nl, &vl) == -1) {
			if (p->params_too_large)
				break;
			return FCGI_PROTO_ERROR;
		}
	}
	if (n == 0)
		return FCGI_NEED_MORE;

	free(p->params);
	p->nparams = 0;
	if ((p->params = calloc(n, sizeof(*p->params))) == NULL)
		return FCGI_PROTO_ERROR;
	buf_reset(&p->params_store);
	if (buf_reserve(&p->params_store, len) == -1)
		return FCGI_PROTO_ERROR;
	s = (char *)p->params_store.data;
	for (off = 0, i = 0; i < n; i++, off += nl + vl) {
		(void)pair_next(raw, len, &off, &nl, &vl);
		fp = &p->params[i];
		memcpy(s, raw + off, nl);
		s[nl] = '\0';
		fp->name = s;
		fp->namelen = nl;
		s += nl + 1;
		memcpy(s, raw + off + nl, vl);
		s[vl] = '\0';
		fp->value = s;
		fp->valuelen = vl;
		s += vl + 1;
	}
	p->params_store.len = (size_t)(s - (char *)p->params_store.data);
	p->nparams = n;
	return FCGI_NEED_MORE;
}

const struct fcgi_param *
fcgi_param_n(const struct fcgi_parser *p, const char *name)
{
	size_t	 i, len = strlen(name);

	for (i = 0; i < p->nparams; i++) {
		if (p->params[i].namelen == len &&
		    memcmp(p->params[i].name, name, len) == 0)
			return &p->params[i];
	}
	return NULL;
}

/* The first pair of that name wins if a front end sends it twice. */
const char *
fcgi_param(const struct fcgi_parser *p, const char *name)
{
	const struct fcgi_param	*fp;

	if ((fp = fcgi_param_n(p, name)) == NULL)
		return NULL;
	return fp->value;
}

/* ------------------------------------------------------------------ */
/* answers the decoder appends to out                                  */
/* ------------------------------------------------------------------ */

static enum fcgi_status
answer_end(struct fcgi_parser *p, uint16_t id, uint8_t proto_status)
{
	if (p->out.len > FCGI_OUT_MAX ||
	    fcgi_put_end(&p->out, id, 0, proto_status) == -1)
		return FCGI_PROTO_ERROR;
	return FCGI_NEED_MORE;
}

static enum fcgi_status
answer_unknown_type(struct fcgi_parser *p)
{
	uint8_t	 body[8];

	memset(body, 0, sizeof(body));
	body[0] = p->type;
	if (p->out.len > FCGI_OUT_MAX ||
	    fcgi_put_record(&p->out, FCGI_UNKNOWN_TYPE, 0, body,
	    sizeof(body)) == -1)
		return FCGI_PROTO_ERROR;
	return FCGI_NEED_MORE;
}

/*
 * Answer the names we know, once each, in the order asked.  The header
 * goes first with a zero length that is patched once the content is
 * known (at most a few dozen bytes).
 */
static enum fcgi_status
answer_get_values(struct fcgi_parser *p)
{
	const uint8_t	*s = p->rec.data;
	size_t		 len = p->rec.len, off, nl = 0, vl = 0, i;
	size_t		 start, clen;
	unsigned int	 done = 0;

	if (p->out.len > FCGI_OUT_MAX)
		return FCGI_PROTO_ERROR;
	start = p->out.len;
	if (put_header(&p->out, FCGI_GET_VALUES_RESULT, 0, 0, 0) == -1)
		return FCGI_PROTO_ERROR;
	for (off = 0; off < len; off += nl + vl) {
		if (pair_next(s, len, &off, &nl, &vl) == -1)
			return FCGI_PROTO_ERROR;
		for (i = 0; i < nitems(fcgi_values); i++) {
			if ((done & 1U << i) ||
			    nl != strlen(fcgi_values[i].name) ||
			    memcmp(s + off, fcgi_values[i].name, nl) != 0)
				continue;
			done |= 1U << i;
			if (fcgi_put_pair(&p->out, fcgi_values[i].name, nl,
			    fcgi_values[i].value,
			    strlen(fcgi_values[i].value)) == -1)
				return FCGI_PROTO_ERROR;
		}
	}
	clen = p->out.len - start - FCGI_HEADER_LEN;
	p->out.data[start + 4] = (uint8_t)(clen >> 8);
	p->out.data[start + 5] = (uint8_t)clen;
	p->out.data[start + 6] = (uint8_t)pad_len(clen);
	if (buf_add(&p->out, fcgi_zeros, pad_len(clen)) == -1)
		return FCGI_PROTO_ERROR;
	return FCGI_NEED_MORE;
}

/* ------------------------------------------------------------------ */
/* the decoder                                                         */
/* ------------------------------------------------------------------ */

void
fcgi_init(struct fcgi_parser *p, const struct fcgi_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = lim != NULL ? *lim : fcgi_default_limits;
	p->body_max = p->lim.max_body;
	buf_init(&p->rec);
	buf_init(&p->params_raw);
	buf_init(&p->params_store);
	buf_init(&p->body);
	buf_init(&p->out);
	p->params = NULL;
}

void
fcgi_free(struct fcgi_parser *p)
{
	free(p->params);
	p->params = NULL;
	p->nparams = 0;
	buf_free(&p->rec);
	buf_free(&p->params_raw);
	buf_free(&p->params_store);
	buf_free(&p->body);
	buf_free(&p->out);
}

/* The record state is left alone: the stream goes on where it was. */
void
fcgi_next(struct fcgi_parser *p)
{
	p->id = 0;
	p->role = 0;
	p->keep_conn = 0;
	p->params_done = 0;
	p->stdin_done = 0;
	p->params_too_large = 0;
	p->body_too_large = 0;
	free(p->params);
	p->params = NULL;
	p->nparams = 0;
	buf_trim(&p->params_raw);
	buf_trim(&p->params_store);
	buf_trim(&p->body);
	p->body_max = p->lim.max_body;
	p->body_total = 0;
}

void
fcgi_shrink(struct fcgi_parser *p)
{
	if (p->id != 0)
		return;
	buf_free(&p->params_raw);
	buf_free(&p->params_store);
	buf_free(&p->body);
	if (p->hdrlen == 0 && p->clen == 0 && p->plen == 0)
		buf_free(&p->rec);
	if (p->out.len == 0)
		buf_free(&p->out);
}

static int
request_ready(const struct fcgi_parser *p)
{
	return p->id != 0 && p->params_done && p->stdin_done;
}

/* The record is for the active request. */
static int
record_active(const struct fcgi_parser *p)
{
	return p->rid != 0 && p->rid == p->id;
}

/* The record's content is collected whole in rec. */
static int
record_collected(const struct fcgi_parser *p)
{
	if (p->rid == 0)
		return p->type == FCGI_GET_VALUES;
	return p->type == FCGI_BEGIN_REQUEST;
}

/* A complete header: check it and load the record state. */
static enum fcgi_status
record_start(struct fcgi_parser *p)
{
	if (p->hdr[0] != FCGI_VERSION_1)
		return FCGI_PROTO_ERROR;
	p->type = p->hdr[1];
	p->rid = (uint16_t)(p->hdr[2] << 8 | p->hdr[3]);
	p->clen = (size_t)p->hdr[4] << 8 | p->hdr[5];
	p->plen = p->hdr[6];
	buf_reset(&p->rec);
	if (p->rid != 0 && p->type == FCGI_BEGIN_REQUEST && p->clen != 8)
		return FCGI_PROTO_ERROR;
	return FCGI_NEED_MORE;
}

/* Append up to what the limit allows; note that bytes were dropped. */
static enum fcgi_status
stream_add(struct buf *b, size_t max, int *too_large, const uint8_t *s,
    size_t n)
{
	size_t	 room = b->len < max ? max - b->len : 0;

	if (n > room) {
		*too_large = 1;
		n = room;
	}
	return buf_add(b, s, n) == -1 ? FCGI_PROTO_ERROR : FCGI_NEED_MORE;
}

/* n content bytes of the current record. */
static enum fcgi_status
record_content(struct fcgi_parser *p, const uint8_t *s, size_t n)
{
	if (record_collected(p))
		return buf_add(&p->rec, s, n) == -1 ? FCGI_PROTO_ERROR :
		    FCGI_NEED_MORE;
	if (!record_active(p))
		return FCGI_NEED_MORE;
	if (p->type == FCGI_PARAMS && !p->params_done)
		return stream_add(&p->params_raw, p->lim.max_params,
		    &p->params_too_large, s, n);
	if (p->type == FCGI_STDIN && !p->stdin_done) {
		p->body_total = p->body_total > SIZE_MAX - n ? SIZE_MAX :
		    p->body_total + n;
		return stream_add(&p->body, p->body_max,
		    &p->body_too_large, s, n);
	}
	return FCGI_NEED_MORE;
}

/* A BEGIN_REQUEST's 8 bytes are in rec. */
static enum fcgi_status
begin_request(struct fcgi_parser *p)
{
	const uint8_t	*b = p->rec.data;
	uint16_t	 role;

	if (p->rec.len != 8)
		return FCGI_PROTO_ERROR;
	if (p->id != 0) {
		/* the same id again while it runs makes no sense */
		if (p->rid == p->id)
			return FCGI_PROTO_ERROR;
		return answer_end(p, p->rid, FCGI_CANT_MPX_CONN);
	}
	role = (uint16_t)(b[0] << 8 | b[1]);
	if (role != FCGI_RESPONDER)
		return answer_end(p, p->rid, FCGI_UNKNOWN_ROLE);
	p->id = p->rid;
	p->role = role;
	p->keep_conn = (b[2] & FCGI_KEEP_CONN) != 0;
	return FCGI_NEED_MORE;
}

/* The current record's content is complete (padding may follow). */
static enum fcgi_status
record_content_done(struct fcgi_parser *p)
{
	enum fcgi_status st;
	int		 empty = p->hdr[4] == 0 && p->hdr[5] == 0;

	if (p->rid == 0) {
		if (p->type == FCGI_GET_VALUES)
			return answer_get_values(p);
		return answer_unknown_type(p);
	}
	if (p->type == FCGI_BEGIN_REQUEST)
		return begin_request(p);
	if (!record_active(p) || !empty)
		return FCGI_NEED_MORE;
	if (p->type == FCGI_PARAMS && !p->params_done) {
		p->params_done = 1;
		st = params_decode(p);
		if (st == FCGI_NEED_MORE && p->lim.body_limit != NULL)
			p->body_max = p->lim.body_limit(p, p->lim.arg);
		return st;
	}
	if (p->type == FCGI_STDIN)
		p->stdin_done = 1;
	return FCGI_NEED_MORE;
}

/* The whole record, padding included, is consumed. */
static enum fcgi_status
record_end(struct fcgi_parser *p)
{
	p->hdrlen = 0;
	if (p->type == FCGI_ABORT_REQUEST && record_active(p))
		return FCGI_ABORTED;
	if (request_ready(p))
		return FCGI_READY;
	return FCGI_NEED_MORE;
}

/*
 * Consume input until it runs out, a request is complete or aborted,
 * or the stream turns out broken.  A request is reported at the end of
 * the record that completed it, so what follows stays with the caller.
 */
enum fcgi_status
fcgi_feed(struct fcgi_parser *p, const uint8_t *in, size_t len,
    size_t *used)
{
	enum fcgi_status	 st = FCGI_NEED_MORE;
	size_t			 off = 0, n;

	if (request_ready(p)) {
		st = FCGI_READY;
		goto out;
	}
	while (off < len) {
		if (p->hdrlen < FCGI_HEADER_LEN) {
			n = min_size(FCGI_HEADER_LEN - p->hdrlen, len - off);
			memcpy(p->hdr + p->hdrlen, in + off, n);
			p->hdrlen += n;
			off += n;
			if (p->hdrlen < FCGI_HEADER_LEN)
				break;
			if ((st = record_start(p)) != FCGI_NEED_MORE)
				goto out;
			if (p->clen == 0 &&
			    (st = record_content_done(p)) != FCGI_NEED_MORE)
				goto out;
		} else if (p->clen > 0) {
			n = min_size(p->clen, len - off);
			st = record_content(p, in + off, n);
			p->clen -= n;
			off += n;
			if (st != FCGI_NEED_MORE)
				goto out;
			if (p->clen == 0 &&
			    (st = record_content_done(p)) != FCGI_NEED_MORE)
				goto out;
		} else {
			n = min_size(p->plen, len - off);
			p->plen -= n;
			off += n;
		}
		if (p->clen == 0 && p->plen == 0 &&
		    (st = record_end(p)) != FCGI_NEED_MORE)
			goto out;
	}
out:
	*used = off;
	return st;
}
