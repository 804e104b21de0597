/*
 * id_generate(), id_reserved(), id_valid(), username_valid().
 */

#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

#define NIDS	1000

static int
is_base62(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z');
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

UNIT_TEST(generate)
{
	static char	 ids[NIDS][ID_LEN + 1];
	size_t		 i, j, dup = 0;
	int		 seen[62] = { 0 }, kinds = 0;

	for (i = 0; i < NIDS; i++) {
		memset(ids[i], 'x', sizeof(ids[i]));
		CHECK(id_generate(ids[i]) == 0);
		CHECK(ids[i][ID_LEN] == '\0');
		CHECK(strlen(ids[i]) == ID_LEN);
		for (j = 0; j < ID_LEN; j++) {
			char c = ids[i][j];

			CHECK(is_base62(c));
			if (c >= '0' && c <= '9')
				seen[c - '0'] = 1;
			else if (c >= 'A' && c <= 'Z')
				seen[10 + c - 'A'] = 1;
			else if (c >= 'a' && c <= 'z')
				seen[36 + c - 'a'] = 1;
		}
		CHECK(!id_reserved(ids[i], ID_LEN));
		CHECK(id_valid(ids[i], ID_LEN));
	}
	/* 7000 draws over 62 symbols: every symbol shows up */
	for (i = 0; i < 62; i++)
		kinds += seen[i];
	CHECK(kinds == 62);

	/* 62^7 ~ 3.5e12: a duplicate among 1000 is ~1.4e-7 likely */
	qsort(ids, NIDS, sizeof(ids[0]), cmp_id);
	for (i = 1; i < NIDS; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			dup++;
	CHECK(dup <= 1);
}

UNIT_TEST(reserved)
{
	static const char *const words[] = {
		"users", "metrics", "health", "healthz", "ui", "api",
		"static", "assets", "admin", "login", "logout", "signup",
		"register", "status", "favicon.ico", "robots.txt", "www",
		"docs", "openapi", "openapi.json", "qr", "stats", "about",
		"help"
	};
	size_t	 i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		CHECK(id_reserved(words[i], strlen(words[i])));
	CHECK(id_reserved("USERS", 5));
	CHECK(id_reserved("Metrics", 7));
	CHECK(id_reserved("HealthZ", 7));
	CHECK(id_reserved("OpenAPI", 7));
	CHECK(id_reserved("Favicon.ICO", 11));
	/* length-exact, not a prefix match */
	CHECK(id_reserved("usersX", 5));
	CHECK(!id_reserved("usersX", 6));
	CHECK(!id_reserved("user", 4));
	CHECK(!id_reserved("u", 1));
	CHECK(!id_reserved("", 0));
	CHECK(!id_reserved("abcdefg", 7));
	CHECK(!id_reserved("health\0", 7));
	CHECK(!id_reserved(NULL, 0));
}

UNIT_TEST(valid_ids)
{
	char	 s[ID_MAX + 2];

	CHECK(id_valid("a", 1));
	CHECK(id_valid("aZ09_-", 6));
	CHECK(id_valid("Ab3dE5g", 7));
	CHECK(id_valid("-", 1));
	CHECK(!id_valid("", 0));
	CHECK(!id_valid(NULL, 0));
	CHECK(!id_valid("a b", 3));
	CHECK(!id_valid("a/b", 3));
	CHECK(!id_valid("a.b", 3));
	CHECK(!id_valid("a%20", 4));
	CHECK(!id_valid("a\0b", 3));
	CHECK(!id_valid("caf\xc3\xa9", 5));
	memset(s, 'a', sizeof(s));
	CHECK(id_valid(s, ID_MAX));
	CHECK(!id_valid(s, ID_MAX + 1));
}

UNIT_TEST(valid_usernames)
{
	char	 s[66];

	CHECK(username_valid("a", 1));
	CHECK(username_valid("alice", 5));
	CHECK(username_valid("Alice.B_c-d@example.com", 23));
	CHECK(username_valid("0", 1));
	CHECK(username_valid("@", 1));
	CHECK(!username_valid("", 0));
	CHECK(!username_valid(NULL, 0));
	CHECK(!username_valid("a b", 3));
	CHECK(!username_valid("a/b", 3));
	CHECK(!username_valid("a+b", 3));
	CHECK(!username_valid("a:b", 3));
	CHECK(!username_valid("a\0b", 3));
	CHECK(!username_valid("j\xc3\xb6rg", 5));
	CHECK(!username_valid("a\n", 2));
	memset(s, 'u', sizeof(s));
	CHECK(username_valid(s, 64));
	CHECK(!username_valid(s, 65));
}

UNIT_TEST(aliases)
{
	char	 s[ID_MAX + 2], err[128];

	CHECK(id_alias_check("abc", 3, err, sizeof(err)) == 0);
	CHECK(id_alias_check("my-link_2", 9, err, sizeof(err)) == 0);
	CHECK(id_alias_check("A-_", 3, err, sizeof(err)) == 0);
	CHECK(id_alias_check("9to5", 4, err, sizeof(err)) == 0);
	memset(s, 'z', sizeof(s));
	CHECK(id_alias_check(s, ID_MAX, err, sizeof(err)) == 0);
	err[0] = '\0';
	CHECK(id_alias_check(s, ID_MAX + 1, err, sizeof(err)) == -1);
	CHECK(err[0] != '\0');
	CHECK(id_alias_check("ab", 2, err, sizeof(err)) == -1);
	CHECK(id_alias_check("", 0, err, sizeof(err)) == -1);
	CHECK(id_alias_check(NULL, 0, err, sizeof(err)) == -1);
	CHECK(id_alias_check("_abc", 4, err, sizeof(err)) == -1);
	CHECK(id_alias_check("-abc", 4, err, sizeof(err)) == -1);
	CHECK(id_alias_check("a b", 3, err, sizeof(err)) == -1);
	CHECK(id_alias_check("a/b", 3, err, sizeof(err)) == -1);
	CHECK(id_alias_check("a.b", 3, err, sizeof(err)) == -1);
	CHECK(id_alias_check("caf\xc3\xa9", 5, err, sizeof(err)) == -1);
	CHECK(id_alias_check("ab\0c", 4, err, sizeof(err)) == -1);
	/* The generator's reserved words, whatever their case. */
	CHECK(id_alias_check("users", 5, err, sizeof(err)) == -1);
	CHECK(id_alias_check("Metrics", 7, err, sizeof(err)) == -1);
	CHECK(id_alias_check("HEALTH", 6, err, sizeof(err)) == -1);
	CHECK(id_alias_check("stats", 5, err, sizeof(err)) == -1);
	CHECK(id_alias_check("openapi", 7, err, sizeof(err)) == -1);
	/* NULL err is allowed. */
	CHECK(id_alias_check("ui", 2, NULL, 0) == -1);
}

UNIT_MAIN(
	UNIT(generate),
	UNIT(reserved),
	UNIT(valid_ids),
	UNIT(valid_usernames),
	UNIT(aliases)
)
