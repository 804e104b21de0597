/*
 * json.c: strict body parsing into fields, UTF-8 checks, escaping.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

/* The PUT /users shape: three fields, aliases on two. */
static void
fields3(struct field f[3], int required)
{
	memset(f, 0, 3 * sizeof(f[0]));
	f[0].names[0] = "username";
	f[1].names[0] = "password";
	f[1].names[1] = "old-password";
	f[1].names[2] = "old_password";
	f[2].names[0] = "new_password";
	f[2].names[1] = "new-password";
	f[0].required = f[1].required = f[2].required = required;
}

/* Parse s with optional fields; return the status, err in err. */
static enum body_status
parse(const char *s, struct field f[3], char *err, size_t errlen)
{
	fields3(f, 0);
	return json_parse_fields(s, strlen(s), f, 3, err, errlen);
}

static int
parse_st(const char *s)
{
	struct field	 f[3];
	char		 err[128];
	enum body_status st;

	st = parse(s, f, err, sizeof(err));
	if (st != BODY_OK && (f[0].value || f[1].value || f[2].value))
		st = 99;	/* leak-shaped state after failure */
	fields_free(f, 3);
	return st;
}

UNIT_TEST(basic)
{
	struct field	 f[3];
	char		 err[128];

	const char	*s = "{\"username\":\"bob\",\"password\":\"pw\","
	    "\"new_password\":\"x y\"}";

	fields3(f, 1);
	CHECK(json_parse_fields(s, strlen(s), f, 3, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[0].value, "bob");
	CHECK(f[0].len == 3 && f[0].present);
	CHECK_STR(f[1].value, "pw");
	CHECK_STR(f[2].value, "x y");
	fields_free(f, 3);
	CHECK(f[0].value == NULL && !f[0].present);
}

UNIT_TEST(aliases)
{
	struct field	 f[3];
	char		 err[128];
	const char	*s = " {\"username\" : \"a\" , \"old-password\":\"o\","
	    "\"new-password\":\"n\"}\r\n";

	fields3(f, 1);
	CHECK(json_parse_fields(s, strlen(s), f, 3, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[1].value, "o");
	CHECK_STR(f[2].value, "n");
	fields_free(f, 3);

	CHECK(parse("{\"old_password\":\"o\"}", f, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[1].value, "o");
	fields_free(f, 3);

	/* A key spelled with escapes is the same key. */
	CHECK(parse("{\"user\\u006eame\":\"z\"}", f, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[0].value, "z");
	fields_free(f, 3);
}

UNIT_TEST(duplicates)
{
	struct field	 f[3];
	char		 err[128];

	CHECK(parse("{\"username\":\"a\",\"username\":\"b\"}", f, err,
	    sizeof(err)) == BODY_INVALID);
	CHECK_STR(err, "duplicate field 'username'");
	CHECK(f[0].value == NULL);
	fields_free(f, 3);
	CHECK(parse("{\"password\":\"a\",\"old_password\":\"b\"}", f, err,
	    sizeof(err)) == BODY_INVALID);
	CHECK_STR(err, "duplicate field 'password'");
	fields_free(f, 3);
	CHECK(parse_st("{\"new-password\":\"a\",\"new_password\":\"b\"}") ==
	    BODY_INVALID);
	/* Unknown keys may repeat: they are ignored. */
	CHECK(parse_st("{\"x\":1,\"x\":2}") == BODY_OK);
}

UNIT_TEST(missing)
{
	struct field	 f[3];
	char		 err[128];

	const char	*s = "{\"username\":\"a\",\"password\":\"b\"}";

	fields3(f, 1);
	CHECK(json_parse_fields(s, strlen(s), f, 3, err, sizeof(err)) ==
	    BODY_INVALID);
	CHECK_STR(err, "missing field 'new_password'");
	CHECK(f[0].value == NULL && f[1].value == NULL);
	fields_free(f, 3);

	fields3(f, 1);
	CHECK(json_parse_fields("{}", 2, f, 3, err, sizeof(err)) ==
	    BODY_INVALID);
	CHECK_STR(err, "missing field 'username'");
	fields_free(f, 3);
}

UNIT_TEST(types)
{
	struct field	 f[3];
	char		 err[128];
	static const char *const bad[] = {
		"{\"username\":1}", "{\"username\":null}",
		"{\"username\":true}", "{\"username\":[\"a\"]}",
		"{\"username\":{\"a\":\"b\"}}", "{\"username\":-1.5e3}",
	};
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(parse(bad[i], f, err, sizeof(err)) == BODY_INVALID);
		CHECK_STR(err, "field 'username' must be a string");
		fields_free(f, 3);
	}
}

UNIT_TEST(top_level)
{
	struct field	 f[3];
	char		 err[128];

	CHECK(parse("", f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK_STR(err, "empty request body");
	CHECK(parse(" \n\t", f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK_STR(err, "empty request body");
	CHECK(json_parse_fields(NULL, 0, f, 3, err, sizeof(err)) ==
	    BODY_MALFORMED);
	CHECK(parse("[\"username\",\"a\"]", f, err, sizeof(err)) ==
	    BODY_MALFORMED);
	CHECK_STR(err, "request body must be a JSON object");
	CHECK(parse("\"username\"", f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK(parse("123", f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK(parse("null", f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK(parse_st("{} {}") == BODY_MALFORMED);
	CHECK(parse_st("{}x") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"a\"} 1") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"a\"},") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"a\"}]") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"a\"") == BODY_MALFORMED);
	CHECK(parse_st("\xef\xbb\xbf{}") == BODY_MALFORMED);	/* BOM */
	CHECK(parse_st("{}\n") == BODY_OK);
	fields_free(f, 3);
}

UNIT_TEST(grammar)
{
	static const char *const bad[] = {
		"{,}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1 \"b\":2}",
		"{\"a\":1,,\"b\":2}", "{:\"a\"}", "{\"a\"}", "{\"a\":}",
		"{\"a\"::1}", "{\"a\":1:2}", "{\"a\":\"b\":\"c\"}",
		"{\"a\":[1 2]}", "{\"a\":[1,]}", "{\"a\":[,1]}",
		"{\"a\":[1:2]}", "{\"a\":{\"b\"}}", "{1:2}", "{\"a\":'b'}",
		"{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":01}",
		"{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":1e}",
		"{\"a\":+1}", "{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":--1}",
		"{\"a\":1e+}", "{\"a\":[}", "{\"a\":]}", "{\"a\":{]}",
		"{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}",
		"{\"a\":\"b\"\"c\"}", "{\"a\"\"b\"}", "{\"a\":1}}",
		"{\"a\":\"\t\"}", "{\"a\":\"\x01\"}", "{\"a\x1f\":1}",
		"{\"a\":[{\"b\":1}{\"c\":2}]}", "{\"a\":1\x01}",
		"{\"a\":\"b\"\x7f}",
	};
	static const char *const good[] = {
		"{\"a\":1}", "{\"a\":-0}", "{\"a\":0.5e-10}", "{\"a\":1E+2}",
		"{\"a\":-12.25}", "{\"a\":true,\"b\":false,\"c\":null}",
		"{\"a\":[]}", "{\"a\":{}}", "{\"a\":[1,[2,{\"x\":[]}],\"s\"]}",
		"{\"a\":{\"b\":{\"c\":{\"d\":[true]}}}}", "{\"\":\"\"}",
		"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "{ }", "{\"a\":[ ]}",
	};
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_st(bad[i]) != BODY_MALFORMED) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			*failed = 1;
		}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (parse_st(good[i]) != BODY_OK) {
			fprintf(stderr, "refused: %s\n", good[i]);
			*failed = 1;
		}
}

UNIT_TEST(nested_unknown)
{
	struct field	 f[3];
	char		 err[128];

	CHECK(parse("{\"x\":{\"username\":\"no\",\"y\":[1,{\"z\":null}]},"
	    "\"username\":\"yes\",\"w\":[\"password\"]}", f, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "yes");
	CHECK(!f[1].present);
	fields_free(f, 3);
}

UNIT_TEST(escapes)
{
	struct field	 f[3];
	char		 err[128];

	CHECK(parse("{\"username\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"}", f,
	    err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "a\"b\\c/d\b\f\n\r\te");
	CHECK(f[0].len == 13);
	fields_free(f, 3);

	CHECK(parse("{\"username\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\"}",
	    f, err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	fields_free(f, 3);

	/* U+10FFFF, the last code point. */
	CHECK(parse("{\"username\":\"\\uDBFF\\uDFFF\"}", f, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "\xf4\x8f\xbf\xbf");
	fields_free(f, 3);

	/* Lone or reversed surrogates. */
	CHECK(parse_st("{\"username\":\"\\ud83d\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\\ud83dx\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\\ude00\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\\ude00\\ud83d\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\\ud83d\\u0041\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\\ud83d\\ud83d\"}") == BODY_MALFORMED);
	/* ... also where nobody reads them. */
	CHECK(parse_st("{\"x\":\"\\udc00\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"\\ud800\":1}") == BODY_MALFORMED);

	/* NUL, escaped: refused in a field, tolerated where ignored. */
	CHECK(parse("{\"username\":\"a\\u0000b\"}", f, err, sizeof(err)) ==
	    BODY_INVALID);
	CHECK_STR(err, "field 'username' must not contain NUL");
	CHECK(f[0].value == NULL);
	fields_free(f, 3);
	CHECK(parse_st("{\"x\":\"\\u0000\"}") == BODY_OK);
}

UNIT_TEST(raw_bytes)
{
	struct field	 f[3];
	char		 err[128];
	static const char nul[] = "{\"username\":\"a\0b\"}";
	static const char nul2[] = "{\"username\":\"ab\"}\0";

	/* A raw NUL anywhere: jsmn would stop there, we refuse. */
	fields3(f, 0);
	CHECK(json_parse_fields(nul, sizeof(nul) - 1, f, 3, err,
	    sizeof(err)) == BODY_MALFORMED);
	CHECK(json_parse_fields(nul2, sizeof(nul2), f, 3, err,
	    sizeof(err)) == BODY_MALFORMED);
	/* Raw UTF-8 passes through. */
	CHECK(parse("{\"username\":\"h\xc3\xa9llo \xf0\x9f\x98\x80\"}", f,
	    err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "h\xc3\xa9llo \xf0\x9f\x98\x80");
	fields_free(f, 3);
	/* Invalid UTF-8: stray continuation, overlong, surrogate, too big,
	 * truncated. */
	CHECK(parse_st("{\"username\":\"\x80\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xc0\xaf\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xe0\x80\xaf\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xed\xa0\x80\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xf4\x90\x80\x80\"}") ==
	    BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xe2\x82\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"username\":\"\xff\"}") == BODY_MALFORMED);
	CHECK(parse_st("{\"x\":\"\xc3\"}") == BODY_MALFORMED);
}

UNIT_TEST(deep_and_big)
{
	struct field	 f[3];
	char		 err[128], *s;
	size_t		 i, n = 1000;

	/* 1000-deep arrays and objects: refused, no stack trouble. */
	s = malloc(n * 8 + 64);
	strcpy(s, "{\"x\":");
	for (i = 0; i < n; i++)
		strcat(s, "[");
	for (i = 0; i < n; i++)
		strcat(s, "]");
	strcat(s, "}");
	CHECK(parse(s, f, err, sizeof(err)) == BODY_MALFORMED);
	CHECK_STR(err, "JSON body too complex");
	s[0] = '\0';
	for (i = 0; i < n; i++)
		strcat(s, "{\"a\":");
	strcat(s, "1");
	for (i = 0; i < n; i++)
		strcat(s, "}");
	CHECK(parse(s, f, err, sizeof(err)) == BODY_MALFORMED);
	/* Unbalanced deep opening only. */
	memset(s, '[', n);
	s[n] = '\0';
	CHECK(parse(s, f, err, sizeof(err)) == BODY_MALFORMED);
	free(s);

	/* A long value is fine. */
	n = 60000;
	s = malloc(n + 32);
	strcpy(s, "{\"username\":\"");
	memset(s + 13, 'x', n);
	strcpy(s + 13 + n, "\"}");
	CHECK(parse(s, f, err, sizeof(err)) == BODY_OK);
	CHECK(f[0].len == n);
	fields_free(f, 3);
	free(s);
}

UNIT_TEST(utf8)
{
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("abc", 3));
	CHECK(!utf8_valid("a\0c", 3));
	CHECK(utf8_valid("\xc2\x80\xdf\xbf", 4));
	CHECK(!utf8_valid("\xc1\xbf", 2));
	CHECK(utf8_valid("\xe0\xa0\x80\xef\xbf\xbf", 6));
	CHECK(!utf8_valid("\xe0\x9f\xbf", 3));
	CHECK(utf8_valid("\xed\x9f\xbf\xee\x80\x80", 6));
	CHECK(!utf8_valid("\xed\xbf\xbf", 3));
	CHECK(utf8_valid("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", 8));
	CHECK(!utf8_valid("\xf0\x8f\xbf\xbf", 4));
	CHECK(!utf8_valid("\xf5\x80\x80\x80", 4));
	CHECK(!utf8_valid("\xf0\x90\x80", 3));
	CHECK(!utf8_valid("\xc3", 1));
	CHECK(!utf8_valid("\xc3\x28", 2));
}

static int
put_is(const char *in, size_t len, const char *want)
{
	struct buf	 b;
	int		 ok;

	buf_init(&b);
	ok = json_put_str(&b, in, len) == 0 && b.len == strlen(want) &&
	    memcmp(b.data, want, b.len) == 0;
	if (!ok)
		fprintf(stderr, "json_put_str gave %.*s, want %s\n",
		    (int)b.len, b.data ? (char *)b.data : "", want);
	buf_free(&b);
	return ok;
}

UNIT_TEST(put_str)
{
	CHECK(put_is("", 0, "\"\""));
	CHECK(put_is("abc", 3, "\"abc\""));
	CHECK(put_is("a\"b\\c/", 6, "\"a\\\"b\\\\c/\""));
	CHECK(put_is("\b\f\n\r\t", 5, "\"\\b\\f\\n\\r\\t\""));
	CHECK(put_is("\x01\x1f\x00", 3, "\"\\u0001\\u001f\\u0000\""));
	CHECK(put_is("\x7f", 1, "\"\x7f\""));
	CHECK(put_is("h\xc3\xa9 \xf0\x9f\x98\x80", 8,
	    "\"h\xc3\xa9 \xf0\x9f\x98\x80\""));
	/* Invalid UTF-8 never reaches the output as such. */
	CHECK(put_is("a\xffz", 3, "\"a\\ufffdz\""));
	CHECK(put_is("\xe2\x82", 2, "\"\\ufffd\\ufffd\""));
	CHECK(put_is("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""));
}

UNIT_TEST(round_trip)
{
	struct field	 f[3];
	struct buf	 b;
	char		 err[128];
	const char	*v = "we\"ird\\\n\x01 \xc3\xa9 / \xf0\x9f\x98\x80";

	buf_init(&b);
	buf_puts(&b, "{\"username\":");
	json_put_str(&b, v, strlen(v));
	buf_puts(&b, "}");
	fields3(f, 1);
	f[1].required = f[2].required = 0;
	CHECK(json_parse_fields((char *)b.data, b.len, f, 3, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, v);
	fields_free(f, 3);
	buf_free(&b);
}

/* The POST / shape: a string, a boolean, two nullable integers, a
 * nullable string.  Positional initialisers of the string-only API
 * keep their meaning (type and nullable zero). */
enum { T_VALUE, T_REUSE, T_IN, T_MAX, T_AT, T_N };

static enum body_status
typed(const char *s, struct field f[T_N], char *err, size_t errlen)
{
	struct field	 init[T_N] = {
		{ { "value", NULL }, 1, NULL, 0, 0 },
		{ { "reuse", NULL }, .type = FIELD_BOOL },
		{ { "expires_in", NULL }, .type = FIELD_INT, .nullable = 1 },
		{ { "max_visits", NULL }, .type = FIELD_INT },
		{ { "expires_at", NULL }, .nullable = 1 },
	};

	memcpy(f, init, sizeof(init));
	return json_parse_fields(s, strlen(s), f, T_N, err, errlen);
}

UNIT_TEST(typed_fields)
{
	struct field	 f[T_N];
	char		 err[128];

	CHECK(typed("{\"value\":\"v\",\"reuse\":true,\"expires_in\":60,"
	    "\"max_visits\":-5,\"expires_at\":\"x\"}", f, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[T_VALUE].value, "v");
	CHECK(f[T_REUSE].present && f[T_REUSE].num == 1 &&
	    f[T_REUSE].value == NULL);
	CHECK(f[T_IN].present && !f[T_IN].is_null && f[T_IN].num == 60);
	CHECK(f[T_MAX].present && f[T_MAX].num == -5);
	CHECK_STR(f[T_AT].value, "x");
	fields_free(f, T_N);
	CHECK(!f[T_REUSE].present && f[T_REUSE].num == 0);

	CHECK(typed("{\"value\":\"v\",\"reuse\":false,\"expires_in\":null,"
	    "\"expires_at\":null}", f, err, sizeof(err)) == BODY_OK);
	CHECK(f[T_REUSE].present && f[T_REUSE].num == 0);
	CHECK(f[T_IN].present && f[T_IN].is_null);
	CHECK(f[T_AT].present && f[T_AT].is_null && f[T_AT].value == NULL);
	CHECK(!f[T_MAX].present);
	fields_free(f, T_N);

	/* Limits of int64_t, both ends. */
	CHECK(typed("{\"value\":\"v\",\"max_visits\":9223372036854775807,"
	    "\"expires_in\":-9223372036854775808}", f, err, sizeof(err)) ==
	    BODY_OK);
	CHECK(f[T_MAX].num == INT64_MAX && f[T_IN].num == INT64_MIN);
	fields_free(f, T_N);
}

UNIT_TEST(typed_refusals)
{
	static const char *const bad[] = {
		"{\"value\":\"v\",\"reuse\":1}",
		"{\"value\":\"v\",\"reuse\":\"true\"}",
		"{\"value\":\"v\",\"reuse\":null}",
		"{\"value\":\"v\",\"max_visits\":null}",
		"{\"value\":\"v\",\"max_visits\":1.5}",
		"{\"value\":\"v\",\"max_visits\":1.0}",
		"{\"value\":\"v\",\"max_visits\":1e3}",
		"{\"value\":\"v\",\"max_visits\":\"3\"}",
		"{\"value\":\"v\",\"max_visits\":true}",
		"{\"value\":\"v\",\"max_visits\":[3]}",
		"{\"value\":\"v\",\"max_visits\":9223372036854775808}",
		"{\"value\":\"v\",\"expires_in\":-9223372036854775809}",
		"{\"value\":\"v\",\"expires_in\":1,\"expires_in\":2}",
		"{\"value\":\"v\",\"expires_at\":5}",
		"{\"value\":null}",
		"{\"value\":\"v\",\"max_visits\":-0.0}",
	};
	struct field	 f[T_N];
	char		 err[128];
	size_t		 i, k;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (typed(bad[i], f, err, sizeof(err)) != BODY_INVALID ||
		    err[0] == '\0') {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			*failed = 1;
		}
		for (k = 0; k < T_N; k++)
			CHECK(f[k].value == NULL);
	}
	/* Malformed stays malformed, whatever the field types. */
	CHECK(typed("{\"value\":\"v\",\"max_visits\":01}", f, err,
	    sizeof(err)) == BODY_MALFORMED);
	CHECK(typed("{\"value\":\"v\",\"reuse\":tru}", f, err,
	    sizeof(err)) == BODY_MALFORMED);
}

UNIT_TEST(typed_form)
{
	struct field	 f[T_N] = {
		{ { "value", NULL }, 1, NULL, 0, 0 },
		{ { "reuse", NULL }, .type = FIELD_BOOL },
		{ { "expires_in", NULL }, .type = FIELD_INT, .nullable = 1 },
		{ { "max_visits", NULL }, .type = FIELD_INT },
		{ { "expires_at", NULL }, .nullable = 1 },
	};
	char		 err[128];
	const char	*s = "value=v&reuse=true&expires_in=&max_visits=12"
	    "&expires_at=2030-01-01T00%3A00%3A00Z";

	CHECK(form_parse_fields(s, strlen(s), f, T_N, err, sizeof(err)) ==
	    BODY_OK);
	CHECK(f[T_REUSE].num == 1 && f[T_IN].is_null && f[T_MAX].num == 12);
	CHECK_STR(f[T_AT].value, "2030-01-01T00:00:00Z");
	fields_free(f, T_N);
	s = "value=v&max_visits=12x";
	CHECK(form_parse_fields(s, strlen(s), f, T_N, err, sizeof(err)) ==
	    BODY_INVALID);
	s = "value=v&reuse=maybe";
	CHECK(form_parse_fields(s, strlen(s), f, T_N, err, sizeof(err)) ==
	    BODY_INVALID);
	s = "value=v&max_visits=";
	CHECK(form_parse_fields(s, strlen(s), f, T_N, err, sizeof(err)) ==
	    BODY_INVALID);
}

UNIT_TEST(parse_int)
{
	int64_t	 v;

	CHECK(field_parse_int("0", 1, &v) == 0 && v == 0);
	CHECK(field_parse_int("-0", 2, &v) == 0 && v == 0);
	CHECK(field_parse_int("42", 2, &v) == 0 && v == 42);
	CHECK(field_parse_int("", 0, &v) == -1);
	CHECK(field_parse_int("-", 1, &v) == -1);
	CHECK(field_parse_int("007", 3, &v) == -1);
	CHECK(field_parse_int("+1", 2, &v) == -1);
	CHECK(field_parse_int(" 1", 2, &v) == -1);
	CHECK(field_parse_int("1 ", 2, &v) == -1);
}

UNIT_MAIN(UNIT(basic), UNIT(aliases), UNIT(duplicates), UNIT(missing),
    UNIT(types), UNIT(top_level), UNIT(grammar), UNIT(nested_unknown),
    UNIT(escapes), UNIT(raw_bytes), UNIT(deep_and_big), UNIT(utf8),
    UNIT(put_str), UNIT(round_trip), UNIT(typed_fields),
    UNIT(typed_refusals), UNIT(typed_form), UNIT(parse_int))
