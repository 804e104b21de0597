/*
 * Fuzz the CSV reader and writer (workers/csv.c).  The reader always
 * ends, moves forward, numbers lines in order, hands out at most
 * CSV_FIELDS_MAX NUL-terminated fields of the lengths it says; and what
 * it read, written again with csv_put(), reads back the same.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Write rec out, after a first record, and read it back: the same
 * fields.  (First, because a first field that begins with a byte
 * order mark loses it; a record of one empty field is written as a
 * blank line, which holds no record.) */
static void
round_trip(const struct csv_record *rec)
{
	struct csv_reader	 r;
	struct csv_record	 back;
	struct buf		 b;
	size_t			 i;

	if (rec->nfields == 1 && rec->len[0] == 0)
		return;
	buf_init(&b);
	buf_puts(&b, "first\r\n");
	for (i = 0; i < rec->nfields; i++)
		csv_put(&b, rec->field[i], rec->len[i], i == 0);
	csv_end(&b);
	if (b.failed)
		abort();
	csv_reader_init(&r, (const char *)b.data, b.len);
	if (csv_next(&r, &back) != CSV_RECORD || back.nfields != 1 ||
	    csv_next(&r, &back) != CSV_RECORD || back.nfields !=
	    rec->nfields || back.line != 2)
		abort();
	for (i = 0; i < rec->nfields; i++)
		if (back.len[i] != rec->len[i] || memcmp(back.field[i],
		    rec->field[i], rec->len[i]) != 0)
			abort();
	if (csv_next(&r, &back) != CSV_END)
		abort();
	csv_reader_free(&r);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv_reader	 r;
	struct csv_record	 rec;
	enum csv_status		 st;
	unsigned long		 last = 0, lines = 1;
	size_t			 i, pos = 0, n = 0;

	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	csv_reader_init(&r, (const char *)data, size);
	while ((st = csv_next(&r, &rec)) != CSV_END) {
		if (st == CSV_NOMEM)
			break;
		if (rec.line < 1 || rec.line < last || rec.line > lines ||
		    r.line > lines || r.pos > size)
			abort();
		if (st == CSV_MALFORMED || st == CSV_UNTERMINATED) {
			if (r.why == NULL)
				abort();
		} else {
			if (rec.nfields == 0 || rec.nfields > CSV_FIELDS_MAX)
				abort();
			for (i = 0; i < rec.nfields; i++)
				if (rec.field[i][rec.len[i]] != '\0' ||
				    memchr(rec.field[i], '\0',
				    rec.len[i]) != NULL)
					abort();
			round_trip(&rec);
		}
		/* Every call but the last moves on. */
		if (r.pos <= pos && st != CSV_UNTERMINATED)
			abort();
		pos = r.pos;
		last = rec.line;
		if (++n > size + 1)
			abort();
	}
	csv_reader_free(&r);
	return 0;
}
