/*
 * password.c: argon2id hashes in PHC form.  Small parameters keep the
 * tests fast; one hash uses the OWASP-level defaults.
 */
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

static const struct argon2_params small = { 1024, 1, 1 };

UNIT_TEST(hash_verify)
{
	char	 h[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];

	CHECK(password_hash(&small, "correct horse", 13, h, sizeof(h)) == 0);
	CHECK(strncmp(h, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0);
	CHECK(password_verify(h, "correct horse", 13) == 1);
	CHECK(password_verify(h, "correct horsE", 13) == 0);
	CHECK(password_verify(h, "correct hors", 12) == 0);
	CHECK(password_verify(h, "", 0) == 0);
	/* Fresh salt every time. */
	CHECK(password_hash(&small, "correct horse", 13, h2, sizeof(h2)) ==
	    0);
	CHECK(strcmp(h, h2) != 0);
	CHECK(password_verify(h2, "correct horse", 13) == 1);

	/* Bytes, not C strings: NUL and UTF-8 inside a password. */
	CHECK(password_hash(&small, "a\0b\xc3\xa9", 5, h, sizeof(h)) == 0);
	CHECK(password_verify(h, "a\0b\xc3\xa9", 5) == 1);
	CHECK(password_verify(h, "a", 1) == 0);

	/* Output too small. */
	CHECK(password_hash(&small, "x", 1, h, 40) == -1);
}

UNIT_TEST(defaults)
{
	static const struct argon2_params owasp = { 19456, 2, 1 };
	char	 h[PASSWORD_HASH_MAX];

	CHECK(password_hash(&owasp, "pw", 2, h, sizeof(h)) == 0);
	CHECK(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	CHECK(password_verify(h, "pw", 2) == 1);
	CHECK(password_verify(h, "pW", 2) == 0);
	CHECK(password_needs_rehash(h, &owasp) == 0);
	CHECK(password_needs_rehash(h, &small) == 0);
}

UNIT_TEST(known_vector)
{
	/* argon2-cffi: hash_secret(b"password", b"somesaltsomesalt",
	 * time_cost=1, memory_cost=1024, parallelism=1, hash_len=32,
	 * type=Type.ID). */
	static const char phc[] = "$argon2id$v=19$m=1024,t=1,p=1$"
	    "c29tZXNhbHRzb21lc2FsdA$"
	    "FiU+I6KbINfHoMBfkVDnS6qmzxgy7cg41IT8JQoCvvk";

	CHECK(password_verify(phc, "password", 8) == 1);
	CHECK(password_verify(phc, "Password", 8) == 0);
}

UNIT_TEST(garbage)
{
	char	 h[PASSWORD_HASH_MAX];

	CHECK(password_verify(NULL, "x", 1) == -1);
	CHECK(password_verify("", "x", 1) == -1);
	CHECK(password_verify("x", "x", 1) == -1);
	CHECK(password_verify("$argon2id$", "x", 1) == -1);
	CHECK(password_verify("$argon2id$v=19$m=1024,t=1,p=1$", "x", 1) ==
	    -1);
	CHECK(password_verify("$argon2id$v=19$m=1024,t=1,p=1$!!$!!", "x",
	    1) == -1);
	/* Other algorithms are not ours. */
	CHECK(password_hash(&small, "x", 1, h, sizeof(h)) == 0);
	h[7] = 'd';			/* "$argon2dd$..." */
	CHECK(password_verify(h, "x", 1) == -1);
	/* A genuine argon2i hash of the right password. */
	CHECK(password_verify("$argon2i$v=19$m=1024,t=1,p=1$"
	    "c29tZXNhbHRzb21lc2FsdA$"
	    "aWfLhK8ujAAYHwmlEJzxOAN+F26LCuATIKEA/BWw34U", "password", 8) ==
	    -1);
	CHECK(password_verify("$2b$12$abcdefghijklmnopqrstuu5x5o8b2G1r5rT"
	    "1v4pVQ9Ff0hKjXm8K", "x", 1) == -1);
}

UNIT_TEST(rehash)
{
	static const struct argon2_params p = { 19456, 2, 1 };
	static const struct argon2_params more_m = { 65536, 2, 1 };
	static const struct argon2_params more_t = { 19456, 3, 1 };
	static const struct argon2_params more_p = { 19456, 2, 2 };
	static const struct argon2_params less = { 8192, 1, 1 };
	static const char h[] = "$argon2id$v=19$m=19456,t=2,p=1$"
	    "c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

	CHECK(password_needs_rehash(h, &p) == 0);
	CHECK(password_needs_rehash(h, &less) == 0);
	CHECK(password_needs_rehash(h, &more_m) == 1);
	CHECK(password_needs_rehash(h, &more_t) == 1);
	CHECK(password_needs_rehash(h, &more_p) == 1);
	/* Not argon2id v=19, or unreadable: re-hash. */
	CHECK(password_needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$a$b",
	    &p) == 1);
	CHECK(password_needs_rehash("$argon2id$v=16$m=19456,t=2,p=1$a$b",
	    &p) == 1);
	CHECK(password_needs_rehash("$argon2id$m=19456,t=2,p=1$a$b", &p) ==
	    1);
	CHECK(password_needs_rehash("$argon2id$v=19$t=2,m=19456,p=1$a$b",
	    &p) == 1);
	CHECK(password_needs_rehash("$argon2id$v=19$m=,t=2,p=1$a$b", &p) ==
	    1);
	CHECK(password_needs_rehash("$argon2id$v=19$m=99999999999,t=2,p=1$a",
	    &p) == 1);
	CHECK(password_needs_rehash("", &p) == 1);
	CHECK(password_needs_rehash(NULL, &p) == 1);
}

UNIT_TEST(dummy)
{
	char	 d1[PASSWORD_HASH_MAX], d2[PASSWORD_HASH_MAX];

	CHECK(password_dummy_init(&small, d1, sizeof(d1)) == 0);
	CHECK(password_dummy_init(&small, d2, sizeof(d2)) == 0);
	CHECK(strcmp(d1, d2) != 0);
	CHECK(strncmp(d1, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0);
	CHECK(password_verify(d1, "", 0) == 0);
	CHECK(password_verify(d1, "password", 8) == 0);
	CHECK(password_needs_rehash(d1, &small) == 0);
}

UNIT_MAIN(UNIT(hash_verify), UNIT(defaults), UNIT(known_vector),
    UNIT(garbage), UNIT(rehash), UNIT(dummy))
