/*
 * csv.c — comma-separated values (RFC 4180): a reader that hands out
 * one record at a time from a buffer, with the physical line it began
 * on, and the writer of fields and records.
 *
 * The reader takes what people's files hold, not only what RFC 4180
 * spells: a UTF-8 byte order mark before the first record (spreadsheet
 * programs write one), LF as well as CRLF line ends, blank lines
 * (skipped, they hold no record).  A record is malformed when a quote
 * sits inside an unquoted field, something other than a comma or a
 * line end follows a closing quote, a field holds a NUL byte or a bare
 * CR, or it has more than CSV_FIELDS_MAX fields; the reader then goes
 * on at the next line, so one bad record costs only itself.  A quoted
 * field still open at the end of the buffer ends reading: nothing
 * after its opening quote can be told apart from its content.
 *
 * Pure: no logging, no system calls.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "workers.h"

void
csv_reader_init(struct csv_reader *r, const char *s, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->len = len;
	r->line = 1;
	buf_init(&r->scratch);
	/* A byte order mark is no part of the first field. */
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		r->pos = 3;
}

void
csv_reader_free(struct csv_reader *r)
{
	buf_free(&r->scratch);
}

/* After a malformed record: go on after the next line end. */
static enum csv_status
csv_skip(struct csv_reader *r, const char *why)
{
	const char	*nl;

	r->why = why;
	nl = r->pos < r->len ? memchr(r->s + r->pos, '\n', r->len - r->pos) :
	    NULL;
	if (nl == NULL)
		r->pos = r->len;
	else {
		r->pos = (size_t)(nl - r->s) + 1;
		r->line++;
	}
	return CSV_MALFORMED;
}

/* A line end at pos (LF or CRLF): its length, else 0. */
static size_t
csv_eol(const struct csv_reader *r)
{
	if (r->pos < r->len && r->s[r->pos] == '\n')
		return 1;
	if (r->pos + 1 < r->len && r->s[r->pos] == '\r' &&
	    r->s[r->pos + 1] == '\n')
		return 2;
	return 0;
}

/* Close the current field: its end in scratch, and a NUL after it. */
static int
csv_field_end(struct csv_reader *r, struct csv_record *rec, size_t start)
{
	if (rec->nfields == CSV_FIELDS_MAX)
		return -1;
	r->off[rec->nfields] = start;
	rec->len[rec->nfields] = r->scratch.len - start;
	rec->nfields++;
	return buf_add(&r->scratch, "", 1);
}

/* A quoted field from its opening quote at pos, into scratch: 0, 1 if
 * it is not closed, -1 for a NUL byte. */
static int
csv_quoted(struct csv_reader *r)
{
	size_t	 i;

	for (r->pos++;;) {
		for (i = r->pos; i < r->len && r->s[i] != '"' &&
		    r->s[i] != '\0'; i++)
			if (r->s[i] == '\n')
				r->line++;
		buf_add(&r->scratch, r->s + r->pos, i - r->pos);
		r->pos = i;
		if (i >= r->len)
			return 1;
		if (r->s[i] == '\0')
			return -1;
		if (i + 1 < r->len && r->s[i + 1] == '"') {
			buf_add(&r->scratch, "\"", 1);	/* "" */
			r->pos = i + 2;
			continue;
		}
		r->pos = i + 1;
		return 0;
	}
}

/*
 * The next record into rec: its fields (NUL-terminated, valid until
 * the next call) and the line it starts on.  CSV_RECORD; CSV_END when
 * nothing is left; CSV_MALFORMED for a record that is skipped (r->why
 * says why, rec->line where); CSV_UNTERMINATED when a quoted field
 * runs to the end (rec->line: where its record began), after which
 * only CSV_END follows; CSV_NOMEM.
 */
enum csv_status
csv_next(struct csv_reader *r, struct csv_record *rec)
{
	size_t		 start, eol = 0, i;
	unsigned char	 c;
	int		 q;

	memset(rec, 0, sizeof(*rec));
	r->why = NULL;
	while ((eol = csv_eol(r)) > 0) {	/* blank lines */
		r->pos += eol;
		r->line++;
	}
	if (r->pos >= r->len)
		return CSV_END;
	rec->line = r->line;
	buf_reset(&r->scratch);
	for (;;) {
		start = r->scratch.len;
		if (r->pos < r->len && r->s[r->pos] == '"') {
			if ((q = csv_quoted(r)) == 1) {
				r->why = "a quoted field is not closed";
				r->pos = r->len;
				return CSV_UNTERMINATED;
			}
			if (q == -1)
				return csv_skip(r, "a NUL byte in a field");
			eol = csv_eol(r);
			if (eol == 0 && r->pos < r->len &&
			    r->s[r->pos] != ',')
				return csv_skip(r, "a closing quote must end "
				    "its field");
		} else {
			for (i = r->pos; i < r->len; i++) {
				c = (unsigned char)r->s[i];
				if (c == ',' || c == '\n' || c == '\r' ||
				    c == '"' || c == '\0')
					break;
			}
			buf_add(&r->scratch, r->s + r->pos, i - r->pos);
			r->pos = i;
			eol = csv_eol(r);
			if (eol == 0 && r->pos < r->len &&
			    r->s[r->pos] != ',') {
				c = (unsigned char)r->s[r->pos];
				return csv_skip(r, c == '"' ? "a quote inside "
				    "an unquoted field" : c == '\r' ? "a bare "
				    "CR outside quotes" : "a NUL byte in a "
				    "field");
			}
		}
		if (csv_field_end(r, rec, start) == -1) {
			if (r->scratch.failed)
				return CSV_NOMEM;
			if (eol == 0)
				return csv_skip(r, "too many fields");
			r->pos += eol;
			r->line++;
			r->why = "too many fields";
			return CSV_MALFORMED;
		}
		if (r->pos >= r->len || eol > 0)
			break;
		r->pos++;		/* the comma: another field follows */
	}
	r->pos += eol;
	if (eol > 0)
		r->line++;
	if (r->scratch.failed)
		return CSV_NOMEM;
	for (i = 0; i < rec->nfields; i++)
		rec->field[i] = (const char *)r->scratch.data + r->off[i];
	return CSV_RECORD;
}

/* Append one field, quoted when it holds a comma, a quote, CR or LF;
 * a comma before it unless first. */
int
csv_put(struct buf *b, const char *s, size_t len, int first)
{
	size_t	 i, from;

	if (!first)
		buf_add(b, ",", 1);
	for (i = 0; i < len && s[i] != ',' && s[i] != '"' && s[i] != '\r' &&
	    s[i] != '\n'; i++)
		;
	if (i == len)
		return buf_add(b, s, len);
	buf_add(b, "\"", 1);
	for (i = from = 0; i < len; i++)
		if (s[i] == '"') {
			buf_add(b, s + from, i + 1 - from);
			buf_add(b, "\"", 1);
			from = i + 1;
		}
	buf_add(b, s + from, len - from);
	return buf_add(b, "\"", 1);
}

/* End a record. */
int
csv_end(struct buf *b)
{
	return buf_add(b, "\r\n", 2);
}
