/*
 * Fuzz target for the FastCGI decoder and encoders.
 *
 * Input: one byte that picks how the rest is cut into feeds (0: all at
 * once; n: chunks of 1..n bytes from a small generator seeded by n),
 * then the byte stream a front end would send.  The harness behaves
 * like a worker: on READY it looks up params, encodes the body back
 * as STDOUT and checks that encoding, then goes on with the rest of
 * the stream.  Broken invariants trap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ASSERT(c)	do { if (!(c)) __builtin_trap(); } while (0)

static const struct fcgi_limits fuzz_limits = { 4096, 8192, 64 };

static size_t
next_chunk(uint32_t *state, uint8_t max)
{
	*state = *state * 1103515245U + 12345U;
	return 1 + (size_t)((*state >> 16) % max);
}

/* Walk the records we encoded: STDOUT contents add up to the body, an
 * empty STDOUT, then one END_REQUEST. */
static void
check_response(const struct buf *r, uint16_t id, const struct buf *body)
{
	size_t	 off = 0, clen, plen, got = 0;
	int	 eos = 0, end = 0;

	while (off < r->len) {
		ASSERT(r->len - off >= FCGI_HEADER_LEN);
		ASSERT(r->data[off] == FCGI_VERSION_1);
		ASSERT((r->data[off + 2] << 8 | r->data[off + 3]) == id);
		clen = (size_t)r->data[off + 4] << 8 | r->data[off + 5];
		plen = r->data[off + 6];
		ASSERT((clen + plen) % 8 == 0);
		ASSERT(r->len - off - FCGI_HEADER_LEN >= clen + plen);
		if (r->data[off + 1] == FCGI_STDOUT) {
			ASSERT(!eos);
			if (clen == 0)
				eos = 1;
			ASSERT(got + clen <= body->len);
			ASSERT(clen == 0 || memcmp(r->data + off + 8,
			    body->data + got, clen) == 0);
			got += clen;
		} else {
			ASSERT(r->data[off + 1] == FCGI_END_REQUEST);
			ASSERT(eos && !end && clen == 8);
			end = 1;
		}
		off += FCGI_HEADER_LEN + clen + plen;
	}
	ASSERT(got == body->len && eos && end);
}

static void
handle_request(struct fcgi_parser *p)
{
	const struct fcgi_param	*fp;
	struct buf		 resp;
	size_t			 i;

	ASSERT(p->id != 0 && p->params_done && p->stdin_done);
	ASSERT(p->body.len <= p->lim.max_body);
	ASSERT(p->body.len <= p->body_total);
	ASSERT(p->body_too_large || p->body.len == p->body_total);
	ASSERT(p->params_raw.len <= p->lim.max_params);
	ASSERT(p->nparams <= p->lim.max_nparams);
	for (i = 0; i < p->nparams; i++) {
		fp = &p->params[i];
		ASSERT(fp->name[fp->namelen] == '\0');
		ASSERT(fp->value[fp->valuelen] == '\0');
		if (memchr(fp->name, '\0', fp->namelen) == NULL)
			ASSERT(fcgi_param_n(p, fp->name) != NULL);
	}
	(void)fcgi_param(p, "REQUEST_METHOD");
	(void)fcgi_param(p, "CONTENT_LENGTH");
	(void)fcgi_param(p, "");

	/* an empty body writes no data record: length 0 ends the stream */
	buf_init(&resp);
	if ((p->body.len == 0 ||
	    fcgi_put_stdout(&resp, p->id, p->body.data, p->body.len) == 0) &&
	    fcgi_put_stdout(&resp, p->id, NULL, 0) == 0 &&
	    fcgi_put_end(&resp, p->id, 0, FCGI_REQUEST_COMPLETE) == 0)
		check_response(&resp, p->id, &p->body);
	buf_free(&resp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi_parser	 p;
	enum fcgi_status	 st;
	uint32_t		 state;
	size_t			 off, chunk, used;
	uint8_t			 max;

	if (size < 1)
		return 0;
	max = data[0];
	state = max;
	data++;
	size--;

	fcgi_init(&p, &fuzz_limits);
	for (off = 0; off < size; off += used) {
		chunk = max == 0 ? size - off : next_chunk(&state, max);
		if (chunk > size - off)
			chunk = size - off;
		st = fcgi_feed(&p, data + off, chunk, &used);
		ASSERT(used <= chunk);
		/* an answer is at most twice its record, 64 bytes for
		 * one that began in an earlier feed */
		ASSERT(p.out.len <= 2 * used + 64);
		buf_reset(&p.out);	/* "written" to the peer */
		if (st == FCGI_PROTO_ERROR)
			break;
		if (st == FCGI_NEED_MORE) {
			ASSERT(used == chunk);
			continue;
		}
		if (st == FCGI_READY)
			handle_request(&p);
		else
			ASSERT(st == FCGI_ABORTED && p.id != 0);
		fcgi_next(&p);
		ASSERT(p.id == 0 && p.nparams == 0 && p.body.len == 0);
	}
	fcgi_free(&p);
	return 0;
}
