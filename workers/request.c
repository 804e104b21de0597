/*
 * The request object (built from a ready FastCGI parser) and the
 * response builder, serialised as CGI output for the FastCGI STDOUT
 * stream.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

static const char *
param_or(const struct fcgi_parser *p, const char *name, const char *def)
{
	const char	*v = fcgi_param(p, name);

	return v != NULL ? v : def;
}

/*
 * Fill req from the ready request in p.  The path is taken from
 * REQUEST_URI (as the client sent it, so every front end agrees) and
 * percent-decoded; a path that does not decode, or decodes to a NUL,
 * is a 400.  req->path is owned by req: request_free() releases it.
 */
int
request_init(struct request *req, const struct fcgi_parser *p, uint64_t rid)
{
	const char	*uri, *q;
	size_t		 rawlen;
	long		 n;

	memset(req, 0, sizeof(*req));
	req->rid = rid;
	req->fcgi = p;
	req->method = param_or(p, "REQUEST_METHOD", "");
	req->content_type = param_or(p, "CONTENT_TYPE", "");
	req->authorization = fcgi_param(p, "HTTP_AUTHORIZATION");
	req->remote_addr = param_or(p, "REMOTE_ADDR", "-");
	req->body = p->body.data;
	req->bodylen = p->body.len;
	if ((uri = fcgi_param(p, "REQUEST_URI")) == NULL)
		uri = param_or(p, "DOCUMENT_URI", param_or(p, "SCRIPT_NAME",
		    ""));
	req->uri = uri;
	if (req->method[0] == '\0' || uri[0] != '/')
		return 400;
	q = strchr(uri, '?');
	rawlen = q != NULL ? (size_t)(q - uri) : strlen(uri);
	req->query = fcgi_param(p, "QUERY_STRING");
	if (req->query == NULL)
		req->query = q != NULL ? q + 1 : "";
	if ((req->path = malloc(rawlen + 1)) == NULL)
		return 503;
	n = url_decode(uri, rawlen, req->path, rawlen + 1, 0);
	if (n < 0 || memchr(req->path, '\0', (size_t)n) != NULL)
		return 400;
	req->pathlen = (size_t)n;
	return 0;
}

void
request_free(struct request *req)
{
	free(req->path);
	req->path = NULL;
}

const char *
request_param(const struct request *req, const char *name)
{
	return fcgi_param(req->fcgi, name);
}

/*
 * The decoded value of the first `key` in the query string, copied into
 * dst.  Returns its length, -1 if absent, -2 if it does not fit or does
 * not decode.
 */
int
request_query(const struct request *req, const char *key, char *dst,
    size_t dstlen)
{
	const char	*s = req->query, *amp, *eq;
	size_t		 klen = strlen(key), plen;
	long		 n;

	while (s != NULL && *s != '\0') {
		amp = strchr(s, '&');
		plen = amp != NULL ? (size_t)(amp - s) : strlen(s);
		eq = memchr(s, '=', plen);
		if ((eq != NULL ? (size_t)(eq - s) : plen) == klen &&
		    memcmp(s, key, klen) == 0) {
			if (eq == NULL) {
				if (dstlen == 0)
					return -2;
				dst[0] = '\0';
				return 0;
			}
			n = url_decode(eq + 1, plen - klen - 1, dst, dstlen, 1);
			if (n < 0 || n > 0x7fffffff)
				return -2;
			return (int)n;
		}
		s = amp != NULL ? amp + 1 : NULL;
	}
	return -1;
}

void
response_init(struct response *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	buf_init(&r->headers);
	buf_init(&r->body);
}

void
response_free(struct response *r)
{
	buf_free(&r->headers);
	buf_free(&r->body);
}

/* Add a header line.  A value holding CR or LF is dropped: nothing a
 * client sent may split our response. */
void
response_header(struct response *r, const char *name, const char *fmt, ...)
{
	char	 value[4096];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value) ||
	    strpbrk(value, "\r\n") != NULL)
		return;
	buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

void
response_json(struct response *r, int status, const char *json)
{
	r->status = status;
	r->content_type = NULL;
	buf_reset(&r->body);
	buf_puts(&r->body, json);
}

void
response_body(struct response *r, int status, const char *content_type,
    const void *body, size_t len)
{
	r->status = status;
	r->content_type = content_type;
	buf_reset(&r->body);
	buf_add(&r->body, body, len);
}

void
response_error(struct response *r, int status, const char *detail,
    const char *message)
{
	r->status = status;
	r->content_type = NULL;
	buf_reset(&r->body);
	buf_puts(&r->body, "{\"detail\":");
	json_put_str(&r->body, detail, strlen(detail));
	buf_puts(&r->body, ",\"message\":");
	json_put_str(&r->body, message, strlen(message));
	buf_puts(&r->body, "}");
}

/* 405 with the methods the path does support. */
void
response_bad_method(struct response *r, const char *allow)
{
	response_error(r, 405, "method not allowed",
	    "this method is not allowed here; see the Allow header");
	response_header(r, "Allow", "%s", allow);
}

void
response_unavailable(struct response *r, int retry_after)
{
	response_error(r, 503, "unavailable",
	    "the database is unavailable; try again shortly");
	response_header(r, "Retry-After", "%d", retry_after);
}

void
response_no_content(struct response *r, int status)
{
	r->status = status;
	buf_reset(&r->body);
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 302: return "Found";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default:  return "Unknown";
	}
}

int
response_stream_start(struct response *r, int status,
    const char *content_type)
{
	struct buf	 out;
	int		 rc;

	if (r->sink == NULL || r->streamed) {
		r->broken = 1;
		return -1;
	}
	r->status = status;
	r->content_type = content_type;
	buf_init(&out);
	buf_printf(&out, "Status: %d %s\r\n", status, http_reason(status));
	buf_add(&out, r->headers.data, r->headers.len);
	buf_printf(&out, "Content-Type: %s\r\n\r\n", content_type);
	r->streamed = 1;
	rc = out.failed || r->headers.failed ? -1 :
	    r->sink->send(r->sink, out.data, out.len);
	buf_free(&out);
	if (rc == -1)
		r->broken = 1;
	return rc;
}

int
response_stream(struct response *r, const void *data, size_t len)
{
	if (!r->streamed || r->broken || r->sink->send(r->sink, data,
	    len) == -1) {
		r->broken = 1;
		return -1;
	}
	return 0;
}

/* CGI response: status line, headers, blank line, body.  204 and 304
 * carry no body and no Content-Type; HEAD keeps the headers of GET. */
int
response_serialize(const struct response *r, struct buf *out)
{
	int	 nobody = r->status == 204 || r->status == 304;

	buf_printf(out, "Status: %d %s\r\n", r->status,
	    http_reason(r->status));
	buf_add(out, r->headers.data, r->headers.len);
	if (!nobody) {
		buf_printf(out, "Content-Type: %s\r\n",
		    r->content_type != NULL ? r->content_type :
		    "application/json");
		buf_printf(out, "Content-Length: %zu\r\n", r->body.len);
	}
	buf_puts(out, "\r\n");
	if (!nobody && !r->head_only)
		buf_add(out, r->body.data, r->body.len);
	if (r->body.failed || r->headers.failed)
		return -1;
	return out->failed ? -1 : 0;
}
