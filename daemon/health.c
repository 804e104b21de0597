/*
 * `shortd -H`: a liveness probe for container health checks.  It sends
 * one FastCGI request to a pool's listening socket, as nginx would, and
 * reads the answer: the pool is healthy when a worker answers the whole
 * request (END_REQUEST, complete) with an HTTP status below 500.  That
 * proves more than an open port: the master has bound the socket, a
 * worker accepted the connection and ran a request through its loop.
 *
 * The requests touch no database and no state: GET /users (auth, 405)
 * and GET / without a token (shortener, 403).
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daemon.h"
#include "../proto/proto.h"

#define HEALTH_REQ_ID	1
#define HEALTH_MAX_OUT	(64 * 1024)	/* keep at most this much STDOUT */

static const char *const health_path[POOL_COUNT] = {
	[POOL_AUTH] = "/users",
	[POOL_SHORTENER] = "/",
};

static void
health_timeouts(int fd, int timeout_ms)
{
	struct timeval	 tv;

	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * Connect to a listen spec ("/path", "unix:/path" or "host:port").  A
 * wildcard host (0.0.0.0, ::, empty) means this machine.  Returns the
 * socket or -1 with a message in err.
 */
static int
health_connect(const char *spec, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_un	 sun;
	struct addrinfo		 hints, *res = NULL, *ai;
	char			 host[256];
	const char		*colon, *path;
	size_t			 hlen;
	int			 fd = -1, rc;

	if ((path = pool_unix_path(spec)) != NULL) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(path) >= sizeof(sun.sun_path)) {
			snprintf(err, errlen, "socket path too long");
			return -1;
		}
		memcpy(sun.sun_path, path, strlen(path) + 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
		    -1) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			return -1;
		}
		health_timeouts(fd, timeout_ms);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			snprintf(err, errlen, "connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}

	if ((colon = strrchr(spec, ':')) == NULL) {
		snprintf(err, errlen, "expected host:port or a path");
		return -1;
	}
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "host too long");
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	if (hlen == 0 || strcmp(host, "*") == 0 ||
	    strcmp(host, "0.0.0.0") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, sizeof(host), "::1");

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "no address");
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1) {
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		health_timeouts(fd, timeout_ms);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The request nginx would send for GET path, into b.  -1: no memory. */
static int
health_request(struct buf *b, const char *path)
{
	static const uint8_t	 begin[8] = { 0, FCGI_RESPONDER, 0 };
	struct buf		 params;
	const char		*kv[][2] = {
		{ "REQUEST_METHOD", "GET" },
		{ "REQUEST_URI", path },
		{ "DOCUMENT_URI", path },
		{ "SCRIPT_NAME", path },
		{ "QUERY_STRING", "" },
		{ "SERVER_PROTOCOL", "HTTP/1.1" },
		{ "SERVER_SOFTWARE", "shortd-health" },
		{ "REMOTE_ADDR", "127.0.0.1" },
		{ "HTTP_USER_AGENT", "shortd-health" },
	};
	size_t			 i;
	int			 rc = -1;

	buf_init(&params);
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (fcgi_put_pair(&params, kv[i][0], strlen(kv[i][0]),
		    kv[i][1], strlen(kv[i][1])) == -1)
			goto out;
	if (fcgi_put_record(b, FCGI_BEGIN_REQUEST, HEALTH_REQ_ID, begin,
	    sizeof(begin)) == -1 ||
	    fcgi_put_record(b, FCGI_PARAMS, HEALTH_REQ_ID, params.data,
	    params.len) == -1 ||
	    fcgi_put_record(b, FCGI_PARAMS, HEALTH_REQ_ID, NULL, 0) == -1 ||
	    fcgi_put_record(b, FCGI_STDIN, HEALTH_REQ_ID, NULL, 0) == -1 ||
	    b->failed)
		goto out;
	rc = 0;
out:
	buf_free(&params);
	return rc;
}

/* The CGI status of a response head ("Status: 403 ..."; none: 200). */
static int
health_status(const struct buf *out)
{
	const char	*p, *end;
	char		 line[64];
	size_t		 n;

	p = (const char *)out->data;
	end = p + out->len;
	while (p < end) {
		n = 0;
		while (p + n < end && p[n] != '\n')
			n++;
		if (n == 0 || (n == 1 && p[0] == '\r'))
			break;			/* end of the head */
		if (n < sizeof(line) && strncasecmp(p, "Status:", 7) == 0) {
			memcpy(line, p + 7, n - 7);
			line[n - 7] = '\0';
			return atoi(line);
		}
		p += n + 1;
	}
	return 200;
}

/*
 * Send the probe request to the pool's socket and wait for the whole
 * answer, at most about timeout_ms per step.  Returns the HTTP status
 * the worker answered, or -1 with the reason in err.
 */
int
health_probe(const struct config *cfg, enum pool_kind pool, int timeout_ms,
    char *err, size_t errlen)
{
	struct buf	 req, in, out;
	uint8_t		 chunk[4096], type;
	size_t		 off, clen, plen;
	ssize_t		 n;
	int		 fd = -1, status = -1, done = 0;

	buf_init(&req);
	buf_init(&in);
	buf_init(&out);
	if (health_request(&req, health_path[pool]) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((fd = health_connect(cfg->pool[pool].listen, timeout_ms, err,
	    errlen)) == -1)
		goto out;
	for (off = 0; off < req.len; off += (size_t)n)
		if ((n = write(fd, req.data + off, req.len - off)) <= 0) {
			snprintf(err, errlen, "write: %s",
			    n == 0 ? "closed" : strerror(errno));
			goto out;
		}

	while (!done) {
		if ((n = read(fd, chunk, sizeof(chunk))) <= 0) {
			snprintf(err, errlen, "%s before the end of the "
			    "response", n == 0 ? "connection closed" :
			    errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		if (buf_add(&in, chunk, (size_t)n) == -1) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		/* Every complete record in hand. */
		while (in.len >= FCGI_HEADER_LEN) {
			type = in.data[1];
			clen = (size_t)in.data[4] << 8 | in.data[5];
			plen = in.data[6];
			if (in.data[0] != FCGI_VERSION_1) {
				snprintf(err, errlen, "not a FastCGI answer");
				goto out;
			}
			if (in.len < FCGI_HEADER_LEN + clen + plen)
				break;
			if (type == FCGI_STDOUT &&
			    out.len + clen <= HEALTH_MAX_OUT)
				buf_add(&out, in.data + FCGI_HEADER_LEN, clen);
			else if (type == FCGI_END_REQUEST) {
				if (clen < 8 ||
				    in.data[FCGI_HEADER_LEN + 4] !=
				    FCGI_REQUEST_COMPLETE) {
					snprintf(err, errlen, "request refused "
					    "(overloaded or not a responder)");
					goto out;
				}
				done = 1;
				break;
			}
			buf_consume(&in, FCGI_HEADER_LEN + clen + plen);
		}
	}
	if (out.failed) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	status = health_status(&out);
out:
	if (fd != -1)
		close(fd);
	buf_free(&req);
	buf_free(&in);
	buf_free(&out);
	return status;
}
