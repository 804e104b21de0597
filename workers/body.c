/*
 * body.c — read a request body into a handler's fields.  Clients of
 * the original service send JSON without a Content-Type (or with a
 * wrong one), so anything that is not a form is read as JSON.  A
 * body labelled as a form that is plainly a JSON object (what
 * `curl -d '{...}'` sends) is read as JSON too: a form field name can't
 * start with '{' in any form a browser or client library produces.
 */
#include <stdlib.h>
#include <strings.h>

#include "workers.h"

#define FORM_TYPE	"application/x-www-form-urlencoded"

enum body_status
body_parse(const struct request *r, struct field *f, size_t n, char *err,
    size_t errlen)
{
	const char	*ct = r->content_type != NULL ? r->content_type : "";
	const char	*body = (const char *)r->body;
	size_t		 len = body != NULL ? r->bodylen : 0, i;

	if (strncasecmp(ct, FORM_TYPE, sizeof(FORM_TYPE) - 1) == 0) {
		for (i = 0; i < len && (body[i] == ' ' || body[i] == '\t' ||
		    body[i] == '\r' || body[i] == '\n'); i++)
			;
		if (i == len || body[i] != '{')
			return form_parse_fields(body, len, f, n, err,
			    errlen);
	}
	return json_parse_fields(body, len, f, n, err, errlen);
}

/*
 * body_parse() for a handler: 0, or -1 with the 400 (or the 503 of an
 * allocation failure) already in resp.  The caller frees f either way.
 */
int
body_read(const struct worker_ctx *ctx, const struct request *req,
    struct response *resp, struct field *f, size_t n)
{
	char			 err[256];
	enum body_status	 bs;

	err[0] = '\0';
	if ((bs = body_parse(req, f, n, err, sizeof(err))) == BODY_OK)
		return 0;
	if (bs == BODY_NOMEM)
		response_unavailable(resp, ctx->cfg->db_retry_after);
	else
		response_error(resp, 400, "error",
		    err[0] != '\0' ? err : "malformed body");
	return -1;
}

void
fields_free(struct field *f, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free(f[i].value);
	fields_reset(f, n);
}
