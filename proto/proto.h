/*
 * proto/ — wire formats: growable byte buffers and the FastCGI record
 * layer.  Everything here is pure: no sockets, no logging, no exit.
 * Functions return a status; the caller decides what the user sees.
 */
#ifndef SHORTD_PROTO_H
#define SHORTD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* buf.c: a growable byte buffer.  The struct owns data (malloc'd).   */
/* ------------------------------------------------------------------ */

struct buf {
	uint8_t	*data;
	size_t	 len;
	size_t	 cap;
	int	 failed;	/* an allocation failed; content is truncated */
};

void	buf_init(struct buf *);
void	buf_free(struct buf *);
void	buf_reset(struct buf *);		/* len = 0, keeps memory */
int	buf_reserve(struct buf *, size_t);	/* room for n more bytes */
int	buf_add(struct buf *, const void *, size_t);
int	buf_puts(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_consume(struct buf *, size_t);	/* drop n bytes at the front */

/* ------------------------------------------------------------------ */
/* fcgi.c: FastCGI 1.0 records                                         */
/* ------------------------------------------------------------------ */

#define FCGI_VERSION_1		1
#define FCGI_HEADER_LEN		8
#define FCGI_MAX_CONTENT	65535

#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_STDERR		7
#define FCGI_DATA		8
#define FCGI_GET_VALUES		9
#define FCGI_GET_VALUES_RESULT	10
#define FCGI_UNKNOWN_TYPE	11

#define FCGI_KEEP_CONN		1

#define FCGI_RESPONDER		1
#define FCGI_AUTHORIZER		2
#define FCGI_FILTER		3

#define FCGI_REQUEST_COMPLETE	0
#define FCGI_CANT_MPX_CONN	1
#define FCGI_OVERLOADED		2
#define FCGI_UNKNOWN_ROLE	3

/* What fcgi_feed() reports. */
enum fcgi_status {
	FCGI_NEED_MORE = 0,	/* all input consumed, no request complete */
	FCGI_READY,		/* a request is complete: see parser fields */
	FCGI_ABORTED,		/* the peer aborted the active request */
	FCGI_PROTO_ERROR	/* broken stream: close the connection */
};

/* One name-value pair from FCGI_PARAMS.  Both point into the parser's
 * params storage and are NUL-terminated (a NUL inside a name or value
 * makes the pair unreachable by name, never a crash). */
struct fcgi_param {
	const char	*name;
	size_t		 namelen;
	const char	*value;
	size_t		 valuelen;
};

struct fcgi_parser;

struct fcgi_limits {
	size_t	max_params;	/* total bytes of PARAMS stream */
	size_t	max_body;	/* total bytes of STDIN stream */
	size_t	max_nparams;	/* number of pairs */
	/* Optional: the STDIN limit of one request, asked once its params
	 * are in (a path may take more than max_body); NULL: max_body. */
	size_t	(*body_limit)(const struct fcgi_parser *, void *arg);
	void	*arg;
};

/*
 * Incremental decoder for one connection.  Feed it whatever bytes
 * arrived; it consumes them and says when a request is complete.
 * Management records (request id 0) and refusals of a second request id
 * are answered by appending records to `out`, which the caller must
 * write to the peer.
 *
 * After FCGI_READY the request fields are valid until fcgi_next(); the
 * caller handles the request, writes its response with fcgi_put_stdout()
 * and fcgi_put_end(), then calls fcgi_next() and, if keep_conn is set,
 * feeds the rest of the stream.
 */
struct fcgi_parser {
	/* limits, set by fcgi_init() */
	struct fcgi_limits	 lim;

	/* record state */
	uint8_t		 hdr[FCGI_HEADER_LEN];
	size_t		 hdrlen;	/* header bytes collected */
	uint8_t		 type;
	uint16_t	 rid;
	size_t		 clen;		/* content bytes left in record */
	size_t		 plen;		/* padding bytes left in record */
	struct buf	 rec;		/* content of a small record (BEGIN,
					   GET_VALUES, ...) being collected */

	/* the active request */
	uint16_t	 id;		/* 0: none */
	uint16_t	 role;
	int		 keep_conn;
	int		 params_done;
	int		 stdin_done;
	int		 params_too_large;	/* -> 431 */
	int		 body_too_large;	/* -> 413 */
	struct buf	 params_raw;	/* PARAMS stream as received */
	struct buf	 params_store;	/* decoded, NUL-terminated pairs */
	struct fcgi_param *params;
	size_t		 nparams;
	struct buf	 body;		/* STDIN stream (up to body_max) */
	size_t		 body_max;	/* this request's limit */
	size_t		 body_total;	/* bytes announced, kept or not */

	/* records the caller must send (management answers, refusals) */
	struct buf	 out;
};

void	fcgi_init(struct fcgi_parser *, const struct fcgi_limits *);
void	fcgi_free(struct fcgi_parser *);

/*
 * Consume up to len bytes.  *used gets the bytes consumed: on
 * FCGI_READY and FCGI_ABORTED it may be less than len (the rest belongs
 * to the next request); feed it again after fcgi_next().
 */
enum fcgi_status fcgi_feed(struct fcgi_parser *, const uint8_t *, size_t,
	    size_t *used);

/* Forget the finished request; keep any pending out bytes. */
void	fcgi_next(struct fcgi_parser *);
/* Between requests (no request begun): give back the stream buffers,
 * for a connection that may wait long for its next request. */
void	fcgi_shrink(struct fcgi_parser *);

/* Look up a param of the ready request by name; NULL if absent. */
const char *fcgi_param(const struct fcgi_parser *, const char *name);
const struct fcgi_param *fcgi_param_n(const struct fcgi_parser *,
	    const char *name);

/* Encoders: append records to b.  STDOUT is split into records of at
 * most FCGI_MAX_CONTENT bytes; a zero length writes the empty STDOUT
 * record that ends the stream.  Return 0, or -1 if out of memory. */
int	fcgi_put_stdout(struct buf *, uint16_t id, const void *, size_t);
int	fcgi_put_end(struct buf *, uint16_t id, uint32_t app_status,
	    uint8_t proto_status);
int	fcgi_put_record(struct buf *, uint8_t type, uint16_t id,
	    const void *, size_t);
/* Encode one name-value pair (1- or 4-byte lengths), for clients/tests. */
int	fcgi_put_pair(struct buf *, const char *, size_t, const char *,
	    size_t);

#endif /* SHORTD_PROTO_H */
