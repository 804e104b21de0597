/*
 * proto/: struct buf and the FastCGI record layer.  Requests are built
 * by hand (raw records with chosen padding) so the decoder is not only
 * tested against our own encoder.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/proto.h"
#include "unit.h"

static const struct fcgi_limits lim_default = { 16384, 65536, 256 };

/* A raw record with an explicit padding length. */
static void
raw_record(struct buf *b, uint8_t type, uint16_t id, const void *data,
    size_t len, uint8_t pad)
{
	uint8_t	 h[8] = { 1, type, (uint8_t)(id >> 8), (uint8_t)id,
	    (uint8_t)(len >> 8), (uint8_t)len, pad, 0 };
	uint8_t	 zeros[256];

	memset(zeros, 0xee, sizeof(zeros));	/* padding content is junk */
	buf_add(b, h, sizeof(h));
	buf_add(b, data, len);
	buf_add(b, zeros, pad);
}

static void
raw_begin(struct buf *b, uint16_t id, uint16_t role, uint8_t flags)
{
	uint8_t	 body[8] = { (uint8_t)(role >> 8), (uint8_t)role, flags,
	    0, 0, 0, 0, 0 };

	raw_record(b, FCGI_BEGIN_REQUEST, id, body, sizeof(body), 0);
}

static char longvalue[300];
static char longname[200];

static void
fill_long(void)
{
	size_t	 i;

	for (i = 0; i < sizeof(longvalue) - 1; i++)
		longvalue[i] = (char)('a' + i % 26);
	longvalue[sizeof(longvalue) - 1] = '\0';
	for (i = 0; i < sizeof(longname) - 1; i++)
		longname[i] = (char)('A' + i % 26);
	longname[sizeof(longname) - 1] = '\0';
}

/*
 * The reference request: BEGIN (keep_conn as asked), PARAMS in three
 * records with a pair split across the first two and 1- and 4-byte
 * lengths, a padded record, STDIN in three records, both empty ends.
 */
static void
build_req(struct buf *b, uint16_t id, int keep, const char *body)
{
	struct buf	 pairs;
	size_t		 cut, blen = strlen(body), third = blen / 3;

	fill_long();
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "REQUEST_METHOD", 14, "POST", 4);
	fcgi_put_pair(&pairs, "SCRIPT_NAME", 11, "/users/login", 12);
	fcgi_put_pair(&pairs, "LONG_VALUE", 10, longvalue, strlen(longvalue));
	fcgi_put_pair(&pairs, longname, strlen(longname), "x", 1);
	fcgi_put_pair(&pairs, "EMPTY", 5, "", 0);
	fcgi_put_pair(&pairs, "CONTENT_LENGTH", 14, "11", 2);

	raw_begin(b, id, FCGI_RESPONDER, keep ? FCGI_KEEP_CONN : 0);
	cut = 20;	/* inside SCRIPT_NAME's pair */
	raw_record(b, FCGI_PARAMS, id, pairs.data, cut, 3);
	raw_record(b, FCGI_PARAMS, id, pairs.data + cut, 200, 0);
	raw_record(b, FCGI_PARAMS, id, pairs.data + cut + 200,
	    pairs.len - cut - 200, 7);
	raw_record(b, FCGI_PARAMS, id, NULL, 0, 0);
	raw_record(b, FCGI_STDIN, id, body, third, 1);
	raw_record(b, FCGI_STDIN, id, body + third, third, 0);
	raw_record(b, FCGI_STDIN, id, body + 2 * third, blen - 2 * third, 5);
	raw_record(b, FCGI_STDIN, id, NULL, 0, 0);
	buf_free(&pairs);
}

static void
check_req(int *failed, const struct fcgi_parser *p, uint16_t id, int keep,
    const char *body)
{
	const struct fcgi_param	*fp;

	CHECK(p->id == id);
	CHECK(p->role == FCGI_RESPONDER);
	CHECK(p->keep_conn == keep);
	CHECK(p->params_done && p->stdin_done);
	CHECK(!p->params_too_large && !p->body_too_large);
	CHECK(p->nparams == 6);
	CHECK_STR(fcgi_param(p, "REQUEST_METHOD"), "POST");
	CHECK_STR(fcgi_param(p, "SCRIPT_NAME"), "/users/login");
	CHECK_STR(fcgi_param(p, "LONG_VALUE"), longvalue);
	CHECK_STR(fcgi_param(p, longname), "x");
	CHECK_STR(fcgi_param(p, "EMPTY"), "");
	CHECK_STR(fcgi_param(p, "CONTENT_LENGTH"), "11");
	CHECK(fcgi_param(p, "REQUEST") == NULL);
	CHECK(fcgi_param(p, "") == NULL);
	fp = fcgi_param_n(p, "LONG_VALUE");
	CHECK(fp != NULL && fp->valuelen == strlen(longvalue) &&
	    fp->namelen == 10);
	CHECK(p->body.len == strlen(body));
	CHECK(p->body_total == strlen(body));
	CHECK(p->body.len == strlen(body) &&
	    memcmp(p->body.data, body, p->body.len) == 0);
	CHECK(p->out.len == 0);
}

static const char BODY[] = "{\"username\":\"alice\",\"password\":\"pw\"}";

UNIT_TEST(buf_basics)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b);
	CHECK(b.data == NULL && b.len == 0 && !b.failed);
	CHECK(buf_add(&b, NULL, 0) == 0);
	CHECK(buf_puts(&b, "hello") == 0);
	CHECK(b.len == 5 && memcmp(b.data, "hello", 5) == 0);
	CHECK(b.data[b.len] == '\0');
	CHECK(buf_printf(&b, " %d %s", 42, "x") == 0);
	CHECK_STR((char *)b.data, "hello 42 x");
	for (i = 0; i < 1000; i++)
		CHECK(buf_printf(&b, "%05zu", i) == 0);
	CHECK(b.len == 10 + 5000);
	CHECK(memcmp(b.data + 10 + 5 * 999, "00999", 5) == 0);
	/* one printf much larger than the free space */
	buf_reset(&b);
	CHECK(b.len == 0);
	CHECK(buf_printf(&b, "%s%0*d", "a", 100000, 7) == 0);
	CHECK(b.len == 100001 && b.data[100000] == '7');
	buf_consume(&b, 99999);
	CHECK(b.len == 2 && memcmp(b.data, "07", 2) == 0);
	buf_consume(&b, 10);
	CHECK(b.len == 0);
	buf_free(&b);
	CHECK(b.data == NULL && b.cap == 0);
}

UNIT_TEST(buf_overflow)
{
	struct buf	 b;

	buf_init(&b);
	CHECK(buf_puts(&b, "ab") == 0);
	CHECK(buf_reserve(&b, SIZE_MAX) == -1);
	CHECK(b.failed);
	CHECK(b.len == 2);
	/* the failure is sticky until reset */
	CHECK(buf_puts(&b, "c") == -1);
	CHECK(buf_add(&b, NULL, 0) == -1);
	buf_reset(&b);
	CHECK(!b.failed);
	CHECK(buf_reserve(&b, SIZE_MAX - 1) == -1);
	buf_reset(&b);
	CHECK(buf_reserve(&b, (size_t)1 << 31) == -1);
	buf_reset(&b);
	CHECK(buf_puts(&b, "ok") == 0);
	buf_free(&b);
}

UNIT_TEST(request_whole)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used;

	buf_init(&b);
	build_req(&b, 1, 1, BODY);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	check_req(failed, &p, 1, 1, BODY);
	/* fed again before fcgi_next: still ready, nothing consumed */
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == 0);
	fcgi_next(&p);
	CHECK(p.id == 0 && p.nparams == 0 && p.body.len == 0);
	CHECK(fcgi_param(&p, "REQUEST_METHOD") == NULL);
	fcgi_free(&p);
	buf_free(&b);
}

UNIT_TEST(request_bytewise)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 i, used;
	enum fcgi_status	 st = FCGI_NEED_MORE;

	buf_init(&b);
	build_req(&b, 0x1234, 0, BODY);
	fcgi_init(&p, &lim_default);
	for (i = 0; i < b.len; i++) {
		st = fcgi_feed(&p, b.data + i, 1, &used);
		CHECK(used == 1);
		if (i + 1 < b.len && st != FCGI_NEED_MORE) {
			CHECK(st == FCGI_NEED_MORE);
			break;
		}
	}
	CHECK(st == FCGI_READY);
	check_req(failed, &p, 0x1234, 0, BODY);
	fcgi_free(&p);
	buf_free(&b);
}

/* Two feeds, split at every byte boundary (0 and len included). */
UNIT_TEST(request_every_split)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 k, used1, used2;
	enum fcgi_status	 st1, st2;
	int			 bad = 0;

	buf_init(&b);
	build_req(&b, 7, 1, BODY);
	for (k = 0; k <= b.len && !bad; k++) {
		fcgi_init(&p, &lim_default);
		st1 = fcgi_feed(&p, b.data, k, &used1);
		if (k < b.len) {
			st2 = fcgi_feed(&p, b.data + k, b.len - k, &used2);
			if (st1 != FCGI_NEED_MORE || used1 != k ||
			    st2 != FCGI_READY || used2 != b.len - k)
				bad = 1;
		} else if (st1 != FCGI_READY || used1 != k)
			bad = 1;
		if (bad)
			fprintf(stderr, "split at %zu failed\n", k);
		else
			check_req(failed, &p, 7, 1, BODY);
		fcgi_free(&p);
	}
	CHECK(!bad);
	buf_free(&b);
}

UNIT_TEST(pipelined)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used, first, off;

	buf_init(&b);
	build_req(&b, 1, 1, BODY);
	first = b.len;
	build_req(&b, 2, 0, "second body");
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == first);
	check_req(failed, &p, 1, 1, BODY);
	fcgi_next(&p);
	off = used;
	CHECK(fcgi_feed(&p, b.data + off, b.len - off, &used) == FCGI_READY);
	CHECK(used == b.len - off);
	check_req(failed, &p, 2, 0, "second body");
	fcgi_next(&p);
	CHECK(fcgi_feed(&p, NULL, 0, &used) == FCGI_NEED_MORE && used == 0);
	fcgi_free(&p);
	buf_free(&b);
}

/* A request without body: the empty STDIN right after the PARAMS. */
UNIT_TEST(request_minimal)
{
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	size_t			 used;

	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "REQUEST_METHOD", 14, "GET", 3);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, pairs.data, pairs.len, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, NULL);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	CHECK_STR(fcgi_param(&p, "REQUEST_METHOD"), "GET");
	CHECK(p.body.len == 0 && p.body_total == 0 && !p.keep_conn);
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

/* Empty STDIN before the PARAMS end, DATA records, an empty PARAMS
 * stream: READY needs both streams ended, whatever the order. */
UNIT_TEST(stream_order)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used;

	buf_init(&b);
	raw_begin(&b, 3, FCGI_RESPONDER, FCGI_KEEP_CONN);
	raw_record(&b, FCGI_STDIN, 3, "abc", 3, 5);
	raw_record(&b, FCGI_DATA, 3, "ignored", 7, 1);
	raw_record(&b, FCGI_STDIN, 3, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 3, "late", 4, 0);	/* after the end */
	raw_record(&b, FCGI_DATA, 3, NULL, 0, 0);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(used == b.len);
	CHECK(p.stdin_done && !p.params_done);
	buf_reset(&b);
	raw_record(&b, FCGI_PARAMS, 3, NULL, 0, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(p.nparams == 0 && p.params == NULL);
	CHECK(p.body.len == 3 && memcmp(p.body.data, "abc", 3) == 0);
	CHECK(p.keep_conn == 1);
	fcgi_free(&p);
	buf_free(&b);
}

UNIT_TEST(get_values)
{
	static const uint8_t want[] = {
		1, FCGI_GET_VALUES_RESULT, 0, 0, 0, 51, 5, 0,
		14, 1, 'F', 'C', 'G', 'I', '_', 'M', 'A', 'X', '_',
		'C', 'O', 'N', 'N', 'S', '1',
		13, 1, 'F', 'C', 'G', 'I', '_', 'M', 'A', 'X', '_',
		'R', 'E', 'Q', 'S', '1',
		15, 1, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_',
		'C', 'O', 'N', 'N', 'S', '0',
		0, 0, 0, 0, 0
	};
	static const uint8_t want_empty[] = {
		1, FCGI_GET_VALUES_RESULT, 0, 0, 0, 0, 0, 0
	};
	static const uint8_t want_one[] = {
		1, FCGI_GET_VALUES_RESULT, 0, 0, 0, 18, 6, 0,
		15, 1, 'F', 'C', 'G', 'I', '_', 'M', 'P', 'X', 'S', '_',
		'C', 'O', 'N', 'N', 'S', '0',
		0, 0, 0, 0, 0, 0
	};
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	size_t			 used, i;

	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "FCGI_MAX_CONNS", 14, "", 0);
	fcgi_put_pair(&pairs, "UNKNOWN_NAME", 12, "", 0);
	fcgi_put_pair(&pairs, "FCGI_MAX_REQS", 13, "", 0);
	fcgi_put_pair(&pairs, "FCGI_MAX_CONNS", 14, "", 0);	/* twice */
	fcgi_put_pair(&pairs, "FCGI_MPXS_CONNS", 15, "", 0);
	raw_record(&b, FCGI_GET_VALUES, 0, pairs.data, pairs.len, 2);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(used == b.len);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);

	/* byte by byte gives the same answer */
	buf_reset(&p.out);
	for (i = 0; i < b.len; i++)
		CHECK(fcgi_feed(&p, b.data + i, 1, &used) == FCGI_NEED_MORE);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);

	/* nothing we know: an empty result */
	buf_reset(&p.out);
	buf_reset(&b);
	raw_record(&b, FCGI_GET_VALUES, 0, NULL, 0, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(p.out.len == sizeof(want_empty) &&
	    memcmp(p.out.data, want_empty, sizeof(want_empty)) == 0);

	/* only what was asked */
	buf_reset(&p.out);
	buf_reset(&b);
	buf_reset(&pairs);
	fcgi_put_pair(&pairs, "FCGI_MPXS_CONNS", 15, "", 0);
	raw_record(&b, FCGI_GET_VALUES, 0, pairs.data, pairs.len, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(p.out.len == sizeof(want_one) &&
	    memcmp(p.out.data, want_one, sizeof(want_one)) == 0);

	/* malformed pairs in GET_VALUES */
	buf_reset(&b);
	raw_record(&b, FCGI_GET_VALUES, 0, "\x09\x00" "FCGI", 6, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_PROTO_ERROR);
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

/* A GET_VALUES in the middle of a request is answered and the request
 * goes on. */
UNIT_TEST(management_interleaved)
{
	struct fcgi_parser	 p;
	struct buf		 b, req, pairs;
	size_t			 used, mid;

	buf_init(&b);
	buf_init(&req);
	buf_init(&pairs);
	build_req(&req, 9, 0, BODY);
	mid = 16 + 8 + 20 + 3;	/* after BEGIN and the first PARAMS */
	buf_add(&b, req.data, mid);
	fcgi_put_pair(&pairs, "FCGI_MAX_REQS", 13, "", 0);
	raw_record(&b, FCGI_GET_VALUES, 0, pairs.data, pairs.len, 0);
	raw_record(&b, 200, 0, "xyz", 3, 0);	/* unknown management */
	buf_add(&b, req.data + mid, req.len - mid);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	CHECK(p.out.len == 24 + 16);
	CHECK(p.out.len >= 40 && p.out.data[1] == FCGI_GET_VALUES_RESULT &&
	    p.out.data[24 + 1] == FCGI_UNKNOWN_TYPE &&
	    p.out.data[24 + 8] == 200);
	buf_reset(&p.out);
	check_req(failed, &p, 9, 0, BODY);
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&req);
	buf_free(&b);
}

UNIT_TEST(unknown_type)
{
	static const uint8_t want[] = {
		1, FCGI_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0,
		99, 0, 0, 0, 0, 0, 0, 0
	};
	static const uint8_t want_begin0[] = {
		1, FCGI_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0,
		FCGI_BEGIN_REQUEST, 0, 0, 0, 0, 0, 0, 0
	};
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used;

	buf_init(&b);
	raw_record(&b, 99, 0, "some content", 12, 4);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(used == b.len);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);

	/* BEGIN_REQUEST with id 0 is a management record we do not know */
	buf_reset(&p.out);
	buf_reset(&b);
	raw_begin(&b, 0, FCGI_RESPONDER, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_NEED_MORE);
	CHECK(p.out.len == sizeof(want_begin0) &&
	    memcmp(p.out.data, want_begin0, sizeof(want_begin0)) == 0);
	CHECK(p.id == 0);

	/* unknown application record types are skipped silently */
	buf_reset(&p.out);
	buf_reset(&b);
	raw_begin(&b, 5, FCGI_RESPONDER, 0);
	raw_record(&b, 99, 5, "junk", 4, 4);
	raw_record(&b, FCGI_STDOUT, 5, "junk", 4, 0);
	raw_record(&b, FCGI_END_REQUEST, 5, "12345678", 8, 0);
	raw_record(&b, FCGI_GET_VALUES, 5, "\x01\x00X", 3, 0);
	raw_record(&b, FCGI_PARAMS, 5, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 5, NULL, 0, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len && p.out.len == 0 && p.id == 5);
	fcgi_free(&p);
	buf_free(&b);
}

/* A peer that never reads its answers is cut off, not buffered for. */
UNIT_TEST(out_bounded)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 i, used;
	enum fcgi_status	 st = FCGI_NEED_MORE;

	buf_init(&b);
	for (i = 0; i < 1000; i++)
		raw_record(&b, 77, 0, NULL, 0, 0);
	fcgi_init(&p, &lim_default);
	/* drained after every feed: no limit */
	for (i = 0; i < 200; i++) {
		st = fcgi_feed(&p, b.data, b.len, &used);
		if (st != FCGI_NEED_MORE)
			break;
		CHECK(p.out.len == 16 * 1000);
		buf_reset(&p.out);
	}
	CHECK(st == FCGI_NEED_MORE);
	/* never drained: an error past 1 MiB */
	for (i = 0; i < 200; i++) {
		st = fcgi_feed(&p, b.data, b.len, &used);
		if (st != FCGI_NEED_MORE)
			break;
	}
	CHECK(st == FCGI_PROTO_ERROR);
	CHECK(p.out.len > 1024 * 1024 && p.out.len < 1024 * 1024 + 64);
	fcgi_free(&p);
	buf_free(&b);
}

UNIT_TEST(cant_mpx)
{
	static const uint8_t want[] = {
		1, FCGI_END_REQUEST, 0, 2, 0, 8, 0, 0,
		0, 0, 0, 0, FCGI_CANT_MPX_CONN, 0, 0, 0
	};
	struct fcgi_parser	 p;
	struct buf		 b, req;
	size_t			 used, mid;

	buf_init(&b);
	buf_init(&req);
	build_req(&req, 1, 1, BODY);
	mid = 16 + 8 + 20 + 3;
	buf_add(&b, req.data, mid);
	raw_begin(&b, 2, FCGI_RESPONDER, FCGI_KEEP_CONN);
	raw_record(&b, FCGI_PARAMS, 2, "\x01\x01XY", 4, 0);
	raw_record(&b, FCGI_PARAMS, 2, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 2, "other", 5, 0);
	raw_record(&b, FCGI_STDIN, 2, NULL, 0, 0);
	raw_record(&b, FCGI_ABORT_REQUEST, 2, NULL, 0, 0);
	buf_add(&b, req.data + mid, req.len - mid);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);
	buf_reset(&p.out);
	check_req(failed, &p, 1, 1, BODY);
	fcgi_next(&p);

	/* the same id again while it is active breaks the stream */
	buf_reset(&b);
	raw_begin(&b, 4, FCGI_RESPONDER, 0);
	raw_begin(&b, 4, FCGI_RESPONDER, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_PROTO_ERROR);
	fcgi_free(&p);
	buf_free(&req);
	buf_free(&b);
}

UNIT_TEST(abort_request)
{
	struct fcgi_parser	 p;
	struct buf		 b, req;
	size_t			 used, mid, abort_end;

	buf_init(&b);
	buf_init(&req);
	build_req(&req, 1, 1, BODY);
	mid = 16 + 8 + 20 + 3;
	buf_add(&b, req.data, mid);
	raw_record(&b, FCGI_ABORT_REQUEST, 9, NULL, 0, 0);	/* not ours */
	raw_record(&b, FCGI_ABORT_REQUEST, 1, NULL, 0, 3);
	abort_end = b.len;
	buf_reset(&req);
	build_req(&req, 2, 0, "next");
	buf_add(&b, req.data, req.len);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_ABORTED);
	CHECK(used == abort_end);
	CHECK(p.id == 1);
	fcgi_put_end(&p.out, p.id, 0, FCGI_REQUEST_COMPLETE);
	fcgi_next(&p);
	CHECK(fcgi_feed(&p, b.data + used, b.len - used, &used) ==
	    FCGI_READY);
	CHECK(used == req.len);
	buf_consume(&p.out, 16);
	check_req(failed, &p, 2, 0, "next");
	fcgi_free(&p);

	/* aborted byte by byte: reported at the last byte of padding */
	fcgi_init(&p, &lim_default);
	for (used = 0, mid = 0; mid < abort_end; mid++) {
		enum fcgi_status st;

		st = fcgi_feed(&p, b.data + mid, 1, &used);
		if (mid + 1 < abort_end)
			CHECK(st == FCGI_NEED_MORE);
		else
			CHECK(st == FCGI_ABORTED);
	}
	fcgi_free(&p);
	buf_free(&req);
	buf_free(&b);
}

UNIT_TEST(unknown_role)
{
	static const uint8_t want[] = {
		1, FCGI_END_REQUEST, 0, 1, 0, 8, 0, 0,
		0, 0, 0, 0, FCGI_UNKNOWN_ROLE, 0, 0, 0
	};
	struct fcgi_parser	 p;
	struct buf		 b, req;
	size_t			 used, after;

	buf_init(&b);
	buf_init(&req);
	raw_begin(&b, 1, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
	raw_record(&b, FCGI_PARAMS, 1, "\x01\x01XY", 4, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	after = b.len;
	raw_begin(&b, 1, 0x7777, 0);
	build_req(&b, 1, 0, BODY);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, after, &used) == FCGI_NEED_MORE);
	CHECK(used == after && p.id == 0);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);
	buf_reset(&p.out);
	CHECK(fcgi_feed(&p, b.data + after, b.len - after, &used) ==
	    FCGI_READY);
	CHECK(p.out.len == sizeof(want) &&
	    memcmp(p.out.data, want, sizeof(want)) == 0);
	buf_reset(&p.out);
	check_req(failed, &p, 1, 0, BODY);
	fcgi_free(&p);
	buf_free(&req);
	buf_free(&b);
}

UNIT_TEST(params_too_large_bytes)
{
	static const struct fcgi_limits lim = { 64, 1024, 100 };
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	char			 v[100];
	size_t			 used, i;

	memset(v, 'v', sizeof(v));
	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "REQUEST_METHOD", 14, "GET", 3);	/* 19 */
	fcgi_put_pair(&pairs, "A", 1, v, 30);			/* 33 */
	fcgi_put_pair(&pairs, "B", 1, v, 100);			/* 103 */
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	for (i = 0; i < pairs.len; i += 10)
		raw_record(&b, FCGI_PARAMS, 1, pairs.data + i,
		    pairs.len - i < 10 ? pairs.len - i : 10, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, "x", 1, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, &lim);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	CHECK(p.params_too_large && !p.body_too_large);
	CHECK(p.params_raw.len == 64);
	/* the complete pairs are still there */
	CHECK(p.nparams == 2);
	CHECK_STR(fcgi_param(&p, "REQUEST_METHOD"), "GET");
	CHECK(fcgi_param(&p, "B") == NULL);
	CHECK(p.body.len == 1);
	fcgi_next(&p);
	CHECK(!p.params_too_large);
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

UNIT_TEST(params_too_many)
{
	static const struct fcgi_limits lim = { 4096, 1024, 2 };
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	size_t			 used;

	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "A", 1, "1", 1);
	fcgi_put_pair(&pairs, "B", 1, "2", 1);
	fcgi_put_pair(&pairs, "C", 1, "3", 1);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, pairs.data, pairs.len, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, &lim);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(p.params_too_large);
	CHECK(p.nparams == 2);
	CHECK_STR(fcgi_param(&p, "B"), "2");
	CHECK(fcgi_param(&p, "C") == NULL);
	fcgi_next(&p);

	/* exactly at the limit is fine */
	buf_reset(&b);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, pairs.data, 8, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(!p.params_too_large && p.nparams == 2);
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

UNIT_TEST(body_too_large)
{
	static const struct fcgi_limits lim = { 4096, 10, 100 };
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used;

	buf_init(&b);
	raw_begin(&b, 1, FCGI_RESPONDER, FCGI_KEEP_CONN);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, "0123456", 7, 1);
	raw_record(&b, FCGI_STDIN, 1, "789abcdefghijklmnopq", 20, 4);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, &lim);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	CHECK(p.body_too_large && !p.params_too_large);
	CHECK(p.body.len == 10 && memcmp(p.body.data, "0123456789", 10) == 0);
	CHECK(p.body_total == 27);
	fcgi_next(&p);
	CHECK(!p.body_too_large && p.body_total == 0);

	/* exactly the limit */
	buf_reset(&b);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, "0123456789", 10, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(!p.body_too_large && p.body.len == 10 && p.body_total == 10);
	fcgi_free(&p);
	buf_free(&b);
}

/* A body of many maximal records, fed in odd chunks. */
UNIT_TEST(body_large)
{
	static const struct fcgi_limits lim = { 4096, 200000, 100 };
	struct fcgi_parser	 p;
	struct buf		 b, body;
	size_t			 used, off, chunk;
	enum fcgi_status	 st = FCGI_NEED_MORE;

	buf_init(&b);
	buf_init(&body);
	for (off = 0; off < 150000; off++)
		buf_add(&body, &"0123456789abcdef"[off % 16], 1);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	fcgi_put_stdout(&b, 1, body.data, body.len);	/* type patched */
	for (off = 16 + 8; off < b.len; ) {
		b.data[off + 1] = FCGI_STDIN;
		off += 8 + (size_t)(b.data[off + 4] << 8 | b.data[off + 5]) +
		    b.data[off + 6];
	}
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, &lim);
	for (off = 0, chunk = 1; off < b.len; off += used, chunk += 4093) {
		st = fcgi_feed(&p, b.data + off, b.len - off < chunk ?
		    b.len - off : chunk, &used);
		if (st != FCGI_NEED_MORE)
			break;
	}
	CHECK(st == FCGI_READY);
	CHECK(p.body.len == body.len && p.body_total == body.len);
	CHECK(p.body.len == body.len &&
	    memcmp(p.body.data, body.data, body.len) == 0);
	/* big stream buffers are not kept for the next request */
	fcgi_next(&p);
	CHECK(p.body.data == NULL && p.body.cap == 0);
	fcgi_free(&p);
	buf_free(&body);
	buf_free(&b);
}

UNIT_TEST(nul_in_param)
{
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	size_t			 used;

	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "A\0B", 3, "v\0w", 3);
	fcgi_put_pair(&pairs, "HTTP_X", 6, "1", 1);
	fcgi_put_pair(&pairs, "HTTP_X", 6, "2", 1);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, pairs.data, pairs.len, 0);
	raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
	raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(p.nparams == 3);
	CHECK(fcgi_param(&p, "A") == NULL);
	CHECK(p.nparams == 3 && p.params[0].namelen == 3 &&
	    p.params[0].valuelen == 3 &&
	    memcmp(p.params[0].value, "v\0w", 4) == 0);
	CHECK_STR(fcgi_param(&p, "HTTP_X"), "1");	/* the first wins */
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

UNIT_TEST(malformed)
{
	static const struct {
		const char	*pairs;
		size_t		 len;
	} bad[] = {
		{ "\x05\x01" "ab", 4 },		/* name past the end */
		{ "\x01\x05" "ab", 4 },		/* value past the end */
		{ "\x80\x00", 2 },		/* 4-byte length cut short */
		{ "\x01\x80\x00\x00", 4 },
		{ "\x01", 1 },			/* no value length */
		{ "\xff\xff\xff\xff\x00", 5 },	/* 2 GiB name */
		{ "\x01\x01" "ab" "\x03", 5 },	/* trailing junk */
	};
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used, i;

	buf_init(&b);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		raw_begin(&b, 1, FCGI_RESPONDER, 0);
		raw_record(&b, FCGI_PARAMS, 1, bad[i].pairs, bad[i].len, 0);
		raw_record(&b, FCGI_PARAMS, 1, NULL, 0, 0);
		raw_record(&b, FCGI_STDIN, 1, NULL, 0, 0);
		fcgi_init(&p, &lim_default);
		if (fcgi_feed(&p, b.data, b.len, &used) != FCGI_PROTO_ERROR) {
			fprintf(stderr, "malformed case %zu accepted\n", i);
			CHECK(0);
		}
		fcgi_free(&p);
	}

	/* bad version, anywhere in the stream */
	fcgi_init(&p, &lim_default);
	buf_reset(&b);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	b.data[0] = 2;
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_PROTO_ERROR);
	CHECK(used == 8);
	fcgi_free(&p);
	fcgi_init(&p, &lim_default);
	buf_reset(&b);
	raw_begin(&b, 1, FCGI_RESPONDER, 0);
	raw_record(&b, FCGI_PARAMS, 1, "ab", 2, 0);
	b.data[16] = 0;
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_PROTO_ERROR);
	fcgi_free(&p);

	/* HTTP instead of FastCGI */
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18,
	    &used) == FCGI_PROTO_ERROR);
	fcgi_free(&p);

	/* BEGIN_REQUEST of the wrong size */
	fcgi_init(&p, &lim_default);
	buf_reset(&b);
	raw_record(&b, FCGI_BEGIN_REQUEST, 1, "\0\1\0\0\0", 5, 3);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_PROTO_ERROR);
	fcgi_free(&p);

	/* a truncated stream is just incomplete */
	fcgi_init(&p, &lim_default);
	buf_reset(&b);
	build_req(&b, 1, 0, BODY);
	CHECK(fcgi_feed(&p, b.data, b.len - 1, &used) == FCGI_NEED_MORE);
	CHECK(used == b.len - 1);
	fcgi_free(&p);
	buf_free(&b);
}

static uint64_t
prng(uint64_t *s)
{
	uint64_t	 x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/*
 * Feed in random chunks like a worker would: on READY answer and go
 * on, on ABORTED end the request, stop at a protocol error.  Returns
 * 0, or -1 if an invariant broke.
 */
static int
drive(struct fcgi_parser *p, const uint8_t *d, size_t len, uint64_t *seed)
{
	struct buf		 resp;
	size_t			 off = 0, chunk, used, i;
	enum fcgi_status	 st;
	int			 rc = 0;

	buf_init(&resp);
	while (off < len) {
		chunk = 1 + (size_t)(prng(seed) % 64);
		if (chunk > len - off)
			chunk = len - off;
		st = fcgi_feed(p, d + off, chunk, &used);
		if (used > chunk || (st == FCGI_NEED_MORE && used != chunk))
			rc = -1;
		off += used;
		buf_reset(&p->out);
		if (st == FCGI_PROTO_ERROR)
			break;
		if (st == FCGI_READY) {
			if (p->body.len > p->lim.max_body ||
			    p->body.len > p->body_total ||
			    p->params_raw.len > p->lim.max_params ||
			    p->nparams > p->lim.max_nparams)
				rc = -1;
			for (i = 0; i < p->nparams; i++)
				if (p->params[i].name[p->params[i].namelen] ||
				    p->params[i].value[p->params[i].valuelen])
					rc = -1;
			(void)fcgi_param(p, "REQUEST_METHOD");
			fcgi_put_stdout(&resp, p->id, p->body.data,
			    p->body.len);
			fcgi_put_stdout(&resp, p->id, NULL, 0);
			fcgi_put_end(&resp, p->id, 0, FCGI_REQUEST_COMPLETE);
			fcgi_next(p);
		} else if (st == FCGI_ABORTED)
			fcgi_next(p);
		buf_reset(&resp);
	}
	buf_free(&resp);
	return rc;
}

UNIT_TEST(garbage)
{
	static const struct fcgi_limits lim = { 512, 1024, 16 };
	struct fcgi_parser	 p;
	struct buf		 req;
	uint8_t			 d[600];
	uint64_t		 seed = 0x9e3779b97f4a7c15ULL;
	size_t			 i, j, len, nerr = 0;

	/* pure noise, and noise behind a valid-looking header */
	for (i = 0; i < 3000; i++) {
		len = (size_t)(prng(&seed) % sizeof(d));
		for (j = 0; j < len; j++)
			d[j] = (uint8_t)prng(&seed);
		if (i % 2 && len >= 8) {
			d[0] = 1;
			d[1] = (uint8_t)(prng(&seed) % 12);
			d[2] = 0;
		}
		fcgi_init(&p, &lim);
		if (drive(&p, d, len, &seed) == -1)
			nerr++;
		fcgi_free(&p);
	}
	/* a valid request with a few bytes flipped */
	buf_init(&req);
	build_req(&req, 1, 1, BODY);
	build_req(&req, 2, 0, BODY);
	for (i = 0; i < 3000; i++) {
		uint8_t	*m = malloc(req.len);

		if (m == NULL)
			break;
		memcpy(m, req.data, req.len);
		for (j = 0; j < 1 + i % 4; j++)
			m[prng(&seed) % req.len] = (uint8_t)prng(&seed);
		len = req.len - (size_t)(prng(&seed) % 16);
		fcgi_init(&p, &lim);
		if (drive(&p, m, len, &seed) == -1)
			nerr++;
		fcgi_free(&p);
		free(m);
	}
	buf_free(&req);
	CHECK(nerr == 0);
}

UNIT_TEST(encode_stdout)
{
	static const uint8_t want_end[] = {
		1, FCGI_END_REQUEST, 0, 1, 0, 8, 0, 0,
		0, 0, 0, 0, FCGI_REQUEST_COMPLETE, 0, 0, 0
	};
	static const uint8_t want_end2[] = {
		1, FCGI_END_REQUEST, 0xab, 0xcd, 0, 8, 0, 0,
		0x01, 0x02, 0x03, 0x04, FCGI_OVERLOADED, 0, 0, 0
	};
	static const uint8_t want_eos[] = {
		1, FCGI_STDOUT, 0, 1, 0, 0, 0, 0
	};
	static const uint8_t want_small[] = {
		1, FCGI_STDOUT, 0, 1, 0, 3, 5, 0, 'a', 'b', 'c', 0, 0, 0, 0, 0
	};
	struct buf	 b;
	uint8_t		*big;
	size_t		 i, r2;

	buf_init(&b);
	big = malloc(70000);
	CHECK(big != NULL);
	if (big == NULL)
		return;
	for (i = 0; i < 70000; i++)
		big[i] = (uint8_t)(i * 7);
	CHECK(fcgi_put_stdout(&b, 1, big, 70000) == 0);
	CHECK(b.len == 8 + 65535 + 1 + 8 + 4465 + 7);
	CHECK(b.data[0] == 1 && b.data[1] == FCGI_STDOUT &&
	    b.data[2] == 0 && b.data[3] == 1 &&
	    b.data[4] == 0xff && b.data[5] == 0xff && b.data[6] == 1);
	CHECK(memcmp(b.data + 8, big, 65535) == 0);
	r2 = 8 + 65535 + 1;
	CHECK(b.data[r2] == 1 && b.data[r2 + 1] == FCGI_STDOUT &&
	    b.data[r2 + 4] == (4465 >> 8) && b.data[r2 + 5] == (4465 & 0xff) &&
	    b.data[r2 + 6] == 7);
	CHECK(memcmp(b.data + r2 + 8, big + 65535, 4465) == 0);
	free(big);

	buf_reset(&b);
	CHECK(fcgi_put_stdout(&b, 1, NULL, 0) == 0);
	CHECK(b.len == sizeof(want_eos) &&
	    memcmp(b.data, want_eos, sizeof(want_eos)) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_stdout(&b, 1, "abc", 3) == 0);
	CHECK(b.len == sizeof(want_small) &&
	    memcmp(b.data, want_small, sizeof(want_small)) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_end(&b, 1, 0, FCGI_REQUEST_COMPLETE) == 0);
	CHECK(b.len == sizeof(want_end) &&
	    memcmp(b.data, want_end, sizeof(want_end)) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_end(&b, 0xabcd, 0x01020304, FCGI_OVERLOADED) == 0);
	CHECK(b.len == sizeof(want_end2) &&
	    memcmp(b.data, want_end2, sizeof(want_end2)) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_record(&b, FCGI_STDERR, 1, "x", 65536) == -1);
	CHECK(b.len == 0);
	CHECK(fcgi_put_record(&b, FCGI_STDERR, 3, "12345678", 8) == 0);
	CHECK(b.len == 16 && b.data[1] == FCGI_STDERR && b.data[3] == 3 &&
	    b.data[5] == 8 && b.data[6] == 0);
	buf_free(&b);
}

UNIT_TEST(encode_pair)
{
	static const uint8_t want1[] = { 4, 2, 'N', 'A', 'M', 'E', 'v', 'v' };
	static const uint8_t want4[] = { 1, 0x80, 0, 0, 200, 'A' };
	static const uint8_t want44[] = { 0x80, 0, 1, 0, 0x80, 0, 0, 0x80 };
	struct buf	 b;
	char		 v[256];

	memset(v, 'x', sizeof(v));
	buf_init(&b);
	CHECK(fcgi_put_pair(&b, "NAME", 4, "vv", 2) == 0);
	CHECK(b.len == sizeof(want1) && memcmp(b.data, want1, b.len) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_pair(&b, "A", 1, v, 200) == 0);
	CHECK(b.len == 6 + 200 && memcmp(b.data, want4, 6) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_pair(&b, v, 256, v, 128) == 0);
	CHECK(b.len == 8 + 256 + 128 && memcmp(b.data, want44, 8) == 0);
	buf_reset(&b);
	CHECK(fcgi_put_pair(&b, "A", 1, "", 0) == 0);
	CHECK(b.len == 3 && b.data[0] == 1 && b.data[1] == 0);
	buf_reset(&b);
	CHECK(fcgi_put_pair(&b, "A", 1, v, (size_t)0x80000000UL) == -1);
	buf_free(&b);
}

/* Encoder output decodes back to what went in. */
UNIT_TEST(roundtrip)
{
	struct fcgi_parser	 p;
	struct buf		 b, pairs;
	size_t			 used;
	char			 v[1000];

	memset(v, 'q', sizeof(v));
	buf_init(&b);
	buf_init(&pairs);
	fcgi_put_pair(&pairs, "QUERY_STRING", 12, v, sizeof(v));
	fcgi_put_pair(&pairs, "HTTP_HOST", 9, "example.org", 11);
	raw_begin(&b, 65535, FCGI_RESPONDER, FCGI_KEEP_CONN);
	fcgi_put_record(&b, FCGI_PARAMS, 65535, pairs.data, pairs.len);
	fcgi_put_record(&b, FCGI_PARAMS, 65535, NULL, 0);
	fcgi_put_record(&b, FCGI_STDIN, 65535, "data", 4);
	fcgi_put_record(&b, FCGI_STDIN, 65535, NULL, 0);
	fcgi_init(&p, &lim_default);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(p.id == 65535 && p.keep_conn);
	CHECK(fcgi_param_n(&p, "QUERY_STRING") != NULL &&
	    fcgi_param_n(&p, "QUERY_STRING")->valuelen == sizeof(v));
	CHECK_STR(fcgi_param(&p, "HTTP_HOST"), "example.org");
	fcgi_free(&p);
	buf_free(&pairs);
	buf_free(&b);
}

/* A kept connection between requests holds no stream buffer, and the
 * next request on it parses as the first did; during a request,
 * shrinking frees nothing. */
UNIT_TEST(shrink_between_requests)
{
	struct fcgi_parser	 p;
	struct buf		 b;
	size_t			 used, half;

	buf_init(&b);
	fcgi_init(&p, &lim_default);
	build_req(&b, 1, 1, BODY);
	CHECK(fcgi_feed(&p, b.data, b.len, &used) == FCGI_READY);
	CHECK(used == b.len);
	fcgi_shrink(&p);		/* a request is active: no-op */
	check_req(failed, &p, 1, 1, BODY);
	fcgi_next(&p);
	fcgi_shrink(&p);
	CHECK(p.params_raw.cap == 0 && p.params_store.cap == 0 &&
	    p.body.cap == 0 && p.rec.cap == 0 && p.out.cap == 0);
	/* The next request, in two pieces with a shrink between. */
	half = b.len / 2;
	CHECK(fcgi_feed(&p, b.data, half, &used) == FCGI_NEED_MORE);
	CHECK(used == half);
	fcgi_shrink(&p);
	CHECK(fcgi_feed(&p, b.data + half, b.len - half, &used) ==
	    FCGI_READY);
	check_req(failed, &p, 1, 1, BODY);
	fcgi_free(&p);
	buf_free(&b);
}

UNIT_MAIN(UNIT(buf_basics), UNIT(buf_overflow), UNIT(request_whole),
    UNIT(request_bytewise), UNIT(request_every_split), UNIT(pipelined),
    UNIT(request_minimal), UNIT(stream_order), UNIT(get_values),
    UNIT(management_interleaved), UNIT(unknown_type), UNIT(out_bounded),
    UNIT(cant_mpx),
    UNIT(abort_request), UNIT(unknown_role), UNIT(params_too_large_bytes),
    UNIT(params_too_many), UNIT(body_too_large), UNIT(body_large),
    UNIT(nul_in_param), UNIT(malformed), UNIT(garbage), UNIT(encode_stdout),
    UNIT(encode_pair), UNIT(roundtrip), UNIT(shrink_between_requests))
