/*
 * csv.c: records and their lines, quoting, what is refused, and the
 * writer.
 */
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

#define S(lit)	lit, sizeof(lit) - 1

UNIT_TEST(records_and_lines)
{
	static const char in[] = "\xef\xbb\xbf" "a,b,c\r\n"
	    "\"x, \"\"y\"\"\",\"two\nlines\",\r\n"
	    "\n"
	    "last,,z";
	struct csv_reader	 r;
	struct csv_record	 rec;

	csv_reader_init(&r, S(in));
	CHECK(csv_next(&r, &rec) == CSV_RECORD);
	CHECK(rec.line == 1 && rec.nfields == 3);
	CHECK_STR(rec.field[0], "a");
	CHECK_STR(rec.field[2], "c");
	CHECK(csv_next(&r, &rec) == CSV_RECORD);
	CHECK(rec.line == 2 && rec.nfields == 3);
	CHECK_STR(rec.field[0], "x, \"y\"");
	CHECK_STR(rec.field[1], "two\nlines");
	CHECK(rec.len[2] == 0);
	/* the blank line 4 holds no record */
	CHECK(csv_next(&r, &rec) == CSV_RECORD);
	CHECK(rec.line == 5 && rec.nfields == 3);
	CHECK_STR(rec.field[0], "last");
	CHECK_STR(rec.field[2], "z");
	CHECK(csv_next(&r, &rec) == CSV_END);
	csv_reader_free(&r);
}

UNIT_TEST(malformed_then_on)
{
	static const char in[] = "h1,h2\n"
	    "a\"b,c\n"
	    "\"ab\"c,d\n"
	    "x\ry,z\n"
	    "ok,fine\n"
	    "\"open,\nnever closed\n";
	struct csv_reader	 r;
	struct csv_record	 rec;
	unsigned long		 lines[3];
	int			 k;

	csv_reader_init(&r, S(in));
	CHECK(csv_next(&r, &rec) == CSV_RECORD);
	for (k = 0; k < 3; k++) {
		CHECK(csv_next(&r, &rec) == CSV_MALFORMED);
		CHECK(r.why != NULL);
		lines[k] = rec.line;
	}
	CHECK(lines[0] == 2 && lines[1] == 3 && lines[2] == 4);
	CHECK(csv_next(&r, &rec) == CSV_RECORD && rec.line == 5);
	CHECK_STR(rec.field[1], "fine");
	CHECK(csv_next(&r, &rec) == CSV_UNTERMINATED && rec.line == 6);
	CHECK(csv_next(&r, &rec) == CSV_END);
	csv_reader_free(&r);
}

UNIT_TEST(too_many_fields)
{
	struct csv_reader	 r;
	struct csv_record	 rec;
	char			 in[CSV_FIELDS_MAX * 2 + 16];
	size_t			 i, n = 0;

	for (i = 0; i <= CSV_FIELDS_MAX; i++)
		in[n++] = ',';
	memcpy(in + n, "\nnext\n", 6);
	n += 6;
	csv_reader_init(&r, in, n);
	CHECK(csv_next(&r, &rec) == CSV_MALFORMED && rec.line == 1);
	CHECK(csv_next(&r, &rec) == CSV_RECORD && rec.line == 2);
	CHECK_STR(rec.field[0], "next");
	csv_reader_free(&r);
}

UNIT_TEST(writer)
{
	struct buf	 b;

	buf_init(&b);
	csv_put(&b, S("plain"), 1);
	csv_put(&b, S("a,b"), 0);
	csv_put(&b, S("say \"hi\""), 0);
	csv_put(&b, S("two\r\nlines"), 0);
	csv_put(&b, "", 0, 0);
	csv_end(&b);
	CHECK(!b.failed);
	CHECK_STR((const char *)b.data, "plain,\"a,b\",\"say \"\"hi\"\"\","
	    "\"two\r\nlines\",\r\n");
	buf_free(&b);
}

UNIT_MAIN(
	UNIT(records_and_lines),
	UNIT(malformed_then_on),
	UNIT(too_many_fields),
	UNIT(writer)
)
