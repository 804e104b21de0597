/*
 * form.c and body.c: urlencoded bodies, url_decode, the Content-Type
 * choice.
 */
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

static void
fields2(struct field f[2], int required)
{
	memset(f, 0, 2 * sizeof(f[0]));
	f[0].names[0] = "username";
	f[1].names[0] = "password";
	f[1].names[1] = "old-password";
	f[0].required = f[1].required = required;
}

static enum body_status
form(const char *s, struct field f[2], int required, char *err,
    size_t errlen)
{
	fields2(f, required);
	return form_parse_fields(s, strlen(s), f, 2, err, errlen);
}

UNIT_TEST(decode)
{
	char	 d[32];

	CHECK(url_decode("", 0, d, sizeof(d), 1) == 0 && d[0] == '\0');
	CHECK(url_decode("a+b%20c", 7, d, sizeof(d), 1) == 5);
	CHECK_STR(d, "a b c");
	CHECK(url_decode("a+b", 3, d, sizeof(d), 0) == 3);
	CHECK_STR(d, "a+b");
	CHECK(url_decode("%2B%2b%c3%A9", 12, d, sizeof(d), 1) == 4);
	CHECK_STR(d, "++\xc3\xa9");
	CHECK(url_decode("%00", 3, d, sizeof(d), 1) == 1 && d[0] == '\0');
	CHECK(url_decode("%", 1, d, sizeof(d), 1) == -1);
	CHECK(url_decode("%2", 2, d, sizeof(d), 1) == -1);
	CHECK(url_decode("%g0", 3, d, sizeof(d), 1) == -1);
	CHECK(url_decode("%0g", 3, d, sizeof(d), 1) == -1);
	CHECK(url_decode("ab%", 3, d, sizeof(d), 1) == -1);
	/* Capacity includes the NUL. */
	CHECK(url_decode("abc", 3, d, 4, 1) == 3);
	CHECK(url_decode("abc", 3, d, 3, 1) == -1);
	CHECK(url_decode("%41%42", 6, d, 3, 1) == 2);
	CHECK(url_decode("x", 1, d, 0, 1) == -1);
	/* Only the given length is read. */
	CHECK(url_decode("abc%zz", 3, d, sizeof(d), 1) == 3);
}

UNIT_TEST(basic)
{
	struct field	 f[2];
	char		 err[128];

	CHECK(form("username=bob&password=p%40ss+word", f, 1, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "bob");
	CHECK_STR(f[1].value, "p@ss word");
	CHECK(f[1].len == 9);
	fields_free(f, 2);

	CHECK(form("&&old-password=x&other=%7B%7D&username=&", f, 1, err,
	    sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "");
	CHECK_STR(f[1].value, "x");
	fields_free(f, 2);

	/* A key without '=' has an empty value; encoded keys match. */
	CHECK(form("user%6Eame&pass%77ord=1", f, 1, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[0].value, "");
	CHECK_STR(f[1].value, "1");
	fields_free(f, 2);

	/* '=' in a value stays. */
	CHECK(form("username=a=b", f, 0, err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "a=b");
	fields_free(f, 2);
}

UNIT_TEST(errors)
{
	struct field	 f[2];
	char		 err[128];

	CHECK(form("", f, 1, err, sizeof(err)) == BODY_INVALID);
	CHECK_STR(err, "missing field 'username'");
	CHECK(form("username=a", f, 1, err, sizeof(err)) == BODY_INVALID);
	CHECK_STR(err, "missing field 'password'");
	CHECK(f[0].value == NULL && !f[0].present);

	CHECK(form("username=a&username=b", f, 0, err, sizeof(err)) ==
	    BODY_INVALID);
	CHECK_STR(err, "duplicate field 'username'");
	CHECK(f[0].value == NULL);
	CHECK(form("password=a&old-password=b", f, 0, err, sizeof(err)) ==
	    BODY_INVALID);
	CHECK_STR(err, "duplicate field 'password'");

	CHECK(form("username=a%2", f, 0, err, sizeof(err)) == BODY_MALFORMED);
	CHECK(f[0].value == NULL);
	CHECK(form("x=%zz&username=a", f, 0, err, sizeof(err)) ==
	    BODY_MALFORMED);
	CHECK(form("%=1", f, 0, err, sizeof(err)) == BODY_MALFORMED);

	CHECK(form("username=a%00b", f, 0, err, sizeof(err)) == BODY_INVALID);
	CHECK_STR(err, "field 'username' must be UTF-8 text without NUL");
	CHECK(form("username=%ff", f, 0, err, sizeof(err)) == BODY_INVALID);
	CHECK(form("username=%c0%af", f, 0, err, sizeof(err)) ==
	    BODY_INVALID);
	/* Unknown keys may carry anything decodable. */
	CHECK(form("x=%00%ff&username=%c3%a9", f, 0, err, sizeof(err)) ==
	    BODY_OK);
	CHECK_STR(f[0].value, "\xc3\xa9");
	fields_free(f, 2);
}

UNIT_TEST(body_choice)
{
	struct request	 r;
	struct field	 f[2];
	char		 err[128];
	const char	*json = "{\"username\":\"j\",\"password\":\"p\"}";
	const char	*frm = "username=f&password=p";

	memset(&r, 0, sizeof(r));
	r.content_type = "";
	r.body = (const uint8_t *)json;
	r.bodylen = strlen(json);
	fields2(f, 1);
	CHECK(body_parse(&r, f, 2, err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "j");
	fields_free(f, 2);

	/* Whatever else the type says, it is JSON. */
	r.content_type = "text/plain";
	fields2(f, 1);
	CHECK(body_parse(&r, f, 2, err, sizeof(err)) == BODY_OK);
	fields_free(f, 2);

	r.content_type = "Application/X-WWW-Form-URLEncoded; charset=UTF-8";
	r.body = (const uint8_t *)frm;
	r.bodylen = strlen(frm);
	fields2(f, 1);
	CHECK(body_parse(&r, f, 2, err, sizeof(err)) == BODY_OK);
	CHECK_STR(f[0].value, "f");
	fields_free(f, 2);

	r.content_type = "application/json";
	fields2(f, 1);
	CHECK(body_parse(&r, f, 2, err, sizeof(err)) == BODY_MALFORMED);

	r.content_type = NULL;
	r.body = NULL;
	r.bodylen = 5;
	fields2(f, 1);
	CHECK(body_parse(&r, f, 2, err, sizeof(err)) == BODY_MALFORMED);
	CHECK_STR(err, "empty request body");
	fields_free(f, 2);
	fields_free(f, 2);	/* twice is harmless */
}

UNIT_MAIN(UNIT(decode), UNIT(basic), UNIT(errors), UNIT(body_choice))
