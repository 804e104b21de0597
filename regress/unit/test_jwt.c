/*
 * jwt.c: HS256 sign and verify, base64url.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../workers/workers.h"
#include "unit.h"

static const uint8_t	 key[] = "a test secret, not the real one";
#define KEYLEN		 (sizeof(key) - 1)
#define NOW		 1700000000

/* Build header.payload.sig from raw JSON texts, signed with k. */
static char *
craft(const char *hdr, const char *payload, const uint8_t *k, size_t klen)
{
	static char	 tok[16384];
	uint8_t		 mac[32];
	unsigned int	 maclen;
	long		 n;
	size_t		 o;

	n = b64url_encode((const uint8_t *)hdr, strlen(hdr), tok,
	    sizeof(tok));
	o = (size_t)n;
	tok[o++] = '.';
	n = b64url_encode((const uint8_t *)payload, strlen(payload), tok + o,
	    sizeof(tok) - o);
	o += (size_t)n;
	HMAC(EVP_sha256(), k, (int)klen, (uint8_t *)tok, o, mac, &maclen);
	tok[o++] = '.';
	b64url_encode(mac, sizeof(mac), tok + o, sizeof(tok) - o);
	return tok;
}

#define HS256	"{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define GOODP	"{\"sub\":\"alice\",\"iat\":1700000000,\"exp\":1700003600}"

static enum jwt_status
verify(const char *t)
{
	struct jwt_claims c;

	return jwt_verify(key, KEYLEN, t, strlen(t), NOW, 30, &c);
}

static enum jwt_status
verify_c(const char *hdr, const char *payload)
{
	return verify(craft(hdr, payload, key, KEYLEN));
}

UNIT_TEST(b64url)
{
	char	 e[64];
	uint8_t	 d[64];

	CHECK(b64url_encode((const uint8_t *)"", 0, e, sizeof(e)) == 0);
	CHECK_STR(e, "");
	CHECK(b64url_encode((const uint8_t *)"f", 1, e, sizeof(e)) == 2);
	CHECK_STR(e, "Zg");
	CHECK(b64url_encode((const uint8_t *)"fo", 2, e, sizeof(e)) == 3);
	CHECK_STR(e, "Zm8");
	CHECK(b64url_encode((const uint8_t *)"foobar", 6, e, sizeof(e)) == 8);
	CHECK_STR(e, "Zm9vYmFy");
	CHECK(b64url_encode((const uint8_t *)"\xfb\xff\xfe", 3, e,
	    sizeof(e)) == 4);
	CHECK_STR(e, "-__-");
	CHECK(b64url_encode((const uint8_t *)"foobar", 6, e, 8) == -1);
	CHECK(b64url_encode((const uint8_t *)"foobar", 6, e, 9) == 8);

	CHECK(b64url_decode("", 0, d, sizeof(d)) == 0);
	CHECK(b64url_decode("Zm9vYmE", 7, d, sizeof(d)) == 5 &&
	    memcmp(d, "fooba", 5) == 0);
	CHECK(b64url_decode("-__-", 4, d, sizeof(d)) == 3 &&
	    memcmp(d, "\xfb\xff\xfe", 3) == 0);
	CHECK(b64url_decode("Zm9vYmE=", 8, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zg==", 4, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm9v+mE", 7, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm9v/mE", 7, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm9v mE", 7, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Z", 1, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm9vY", 5, d, sizeof(d)) == -1);
	/* Non-canonical trailing bits. */
	CHECK(b64url_decode("Zh", 2, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm9", 3, d, sizeof(d)) == -1);
	CHECK(b64url_decode("Zm8", 3, d, sizeof(d)) == 2);
	/* Output room. */
	CHECK(b64url_decode("Zm9vYmFy", 8, d, 5) == -1);
	CHECK(b64url_decode("Zm9vYmFy", 8, d, 6) == 6);
}

UNIT_TEST(rfc7515_a1)
{
	static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQ"
	    "Lr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	static const char tok[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
	    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9l"
	    "eGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
	    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
	uint8_t		 k[64];
	char		 bad[sizeof(tok)];
	struct jwt_claims c;
	long		 klen;

	klen = b64url_decode(k64, strlen(k64), k, sizeof(k));
	CHECK(klen == 64);
	/* The signature is good; the example simply has no sub. */
	CHECK(jwt_verify(k, (size_t)klen, tok, strlen(tok), 1300819300, 0,
	    &c) == JWT_MISSING_CLAIM);
	memcpy(bad, tok, sizeof(tok));
	bad[sizeof(tok) - 10] ^= 1;	/* 'U' -> 'T' in the signature */
	CHECK(jwt_verify(k, (size_t)klen, bad, strlen(bad), 1300819300, 0,
	    &c) == JWT_BAD_SIGNATURE);
	/* A wrong key too. */
	CHECK(jwt_verify(k, (size_t)klen - 1, tok, strlen(tok), 1300819300,
	    0, &c) == JWT_BAD_SIGNATURE);
}

UNIT_TEST(round_trip)
{
	char		 t[512];
	struct jwt_claims c;

	CHECK(jwt_sign(key, KEYLEN, "alice", NOW, NOW + 3600, t,
	    sizeof(t)) == 0);
	CHECK(jwt_verify(key, KEYLEN, t, strlen(t), NOW + 10, 0, &c) ==
	    JWT_OK);
	CHECK_STR(c.sub, "alice");
	CHECK(c.iat == NOW && c.exp == NOW + 3600);

	CHECK(jwt_sign(key, KEYLEN, "a.b-c_d@e.example", NOW, NOW + 60, t,
	    sizeof(t)) == 0);
	CHECK(jwt_verify(key, KEYLEN, t, strlen(t), NOW, 0, &c) == JWT_OK);
	CHECK_STR(c.sub, "a.b-c_d@e.example");

	/* Out of room. */
	CHECK(jwt_sign(key, KEYLEN, "alice", NOW, NOW + 3600, t, 50) == -1);
	CHECK(t[0] == '\0');
	/* No empty keys. */
	CHECK(jwt_sign(key, 0, "alice", NOW, NOW + 3600, t, sizeof(t)) ==
	    -1);
}

UNIT_TEST(pyjwt_interop)
{
	/* jwt.encode({"sub":"alice","iat":1700000000,"exp":1700003600},
	 * "secret", algorithm="HS256") with PyJWT. */
	static const char want[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	    ".eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAz"
	    "NjAwfQ.V0o9HT2hqC4CWxm3BRfzAfpluYLIvP39xcri4TQhHBE";
	char		 t[512];
	struct jwt_claims c;

	CHECK(jwt_sign((const uint8_t *)"secret", 6, "alice", NOW, NOW + 3600,
	    t, sizeof(t)) == 0);
	CHECK_STR(t, want);
	CHECK(jwt_verify((const uint8_t *)"secret", 6, want, strlen(want),
	    NOW, 0, &c) == JWT_OK);
}

UNIT_TEST(tampered)
{
	char		 t[512], u[512];
	char		*d1, *d2;
	size_t		 i;
	int		 bad = 0;

	CHECK(jwt_sign(key, KEYLEN, "alice", NOW, NOW + 3600, t,
	    sizeof(t)) == 0);
	d1 = strchr(t, '.');
	d2 = strchr(d1 + 1, '.');

	/* Every single-character change anywhere must be refused. */
	for (i = 0; i < strlen(t); i++) {
		const char *alt = "AgQ_-.=";

		for (; *alt != '\0'; alt++) {
			if (t[i] == *alt)
				continue;
			strcpy(u, t);
			u[i] = *alt;
			if (verify(u) == JWT_OK)
				bad++;
		}
	}
	CHECK(bad == 0);

	/* Payload swapped for another user's, old signature kept. */
	strcpy(u, craft(HS256, "{\"sub\":\"mallory\",\"iat\":1700000000,"
	    "\"exp\":1700003600}", key, KEYLEN));
	memcpy(strrchr(u, '.') + 1, d2 + 1, strlen(d2 + 1) + 1);
	CHECK(verify(u) == JWT_BAD_SIGNATURE);

	/* Header changed (typ dropped), old signature kept. */
	strcpy(u, craft("{\"alg\":\"HS256\"}", GOODP, key, KEYLEN));
	memcpy(strrchr(u, '.') + 1, d2 + 1, strlen(d2 + 1) + 1);
	CHECK(verify(u) == JWT_BAD_SIGNATURE);

	/* Signed with another key. */
	CHECK(verify(craft(HS256, GOODP, (const uint8_t *)"other", 5)) ==
	    JWT_BAD_SIGNATURE);

	/* Signature truncated (canonically re-encoded) or extended. */
	{
		uint8_t	 sig[64];

		CHECK(b64url_decode(d2 + 1, strlen(d2 + 1), sig,
		    sizeof(sig)) == 32);
		strcpy(u, t);
		b64url_encode(sig, 31, strrchr(u, '.') + 1, 64);
		CHECK(verify(u) == JWT_BAD_SIGNATURE);
		b64url_encode(sig, 0, strrchr(u, '.') + 1, 64);
		CHECK(verify(u) == JWT_BAD_SIGNATURE);
	}
	strcpy(u, t);
	strcat(u, "AAAA");
	CHECK(verify(u) == JWT_BAD_SIGNATURE);
	/* The same signature bytes, non-canonically encoded: 43 chars
	 * leave 2 unused bits in the last one. */
	{
		static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
		    "klmnopqrstuvwxyz0123456789-_";
		size_t	 last;

		strcpy(u, t);
		last = strlen(u) - 1;
		CHECK((strchr(a, u[last]) - a) % 4 == 0);
		u[last] = a[strchr(a, u[last]) - a + 1];
		CHECK(verify(u) == JWT_MALFORMED);
	}
}

UNIT_TEST(algorithms)
{
	char	 t[1024];

	/* alg none, with an empty signature part and with none at all. */
	strcpy(t, craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOODP, key,
	    KEYLEN));
	*(strrchr(t, '.') + 1) = '\0';
	CHECK(verify(t) == JWT_BAD_ALG);
	*strrchr(t, '.') = '\0';
	CHECK(verify(t) == JWT_MALFORMED);
	/* alg none, signed anyway. */
	CHECK(verify_c("{\"alg\":\"none\"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"None\"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOODP) ==
	    JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"RS256\"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"hs256\"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"HS256 \"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":\"HS\\u0032\\u0035\\u0036\"}", GOODP) ==
	    JWT_BAD_ALG);
	CHECK(verify_c("{\"typ\":\"JWT\"}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":null}", GOODP) == JWT_BAD_ALG);
	CHECK(verify_c("{\"alg\":[\"HS256\"]}", GOODP) == JWT_BAD_ALG);
	/* Two algs, or an escaped key: refused as malformed. */
	CHECK(verify_c("{\"alg\":\"HS256\",\"alg\":\"none\"}", GOODP) ==
	    JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\",\"\\u0061lg\":\"none\"}", GOODP) ==
	    JWT_MALFORMED);
	/* typ and friends. */
	CHECK(verify_c("{\"alg\":\"HS256\"}", GOODP) == JWT_OK);
	CHECK(verify_c("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", GOODP) ==
	    JWT_OK);
	CHECK(verify_c("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\",\"kid\":\"1\"}",
	    GOODP) == JWT_OK);
	CHECK(verify_c("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", GOODP) ==
	    JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\",\"typ\":1}", GOODP) ==
	    JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOODP) ==
	    JWT_MALFORMED);
	/* Not an object, or broken JSON. */
	CHECK(verify_c("[\"HS256\"]", GOODP) == JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\"", GOODP) == JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\"}x", GOODP) == JWT_MALFORMED);
	CHECK(verify_c("{\"alg\" \"HS256\"}", GOODP) == JWT_MALFORMED);
	CHECK(verify_c("{\"alg\":\"HS256\",}", GOODP) == JWT_MALFORMED);
}

UNIT_TEST(claims)
{
	struct jwt_claims c;
	char		 t[512];

	CHECK(verify_c(HS256, GOODP) == JWT_OK);
	/* Expired: exp + leeway (30) <= now. */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1699990000,"
	    "\"exp\":1699999970}") == JWT_EXPIRED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1699990000,"
	    "\"exp\":1699999971}") == JWT_OK);
	CHECK(jwt_sign(key, KEYLEN, "bob", NOW - 7200, NOW - 3600, t,
	    sizeof(t)) == 0);
	CHECK(jwt_verify(key, KEYLEN, t, strlen(t), NOW, 30, &c) ==
	    JWT_EXPIRED);
	CHECK(c.sub[0] == '\0');
	/* Issued in the future beyond the leeway. */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000031,"
	    "\"exp\":1700003600}") == JWT_NOT_YET_VALID);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000030,"
	    "\"exp\":1700003600}") == JWT_OK);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600,\"nbf\":1700000100}") == JWT_NOT_YET_VALID);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600,\"nbf\":1699999999}") == JWT_OK);
	/* Missing claims. */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000}") ==
	    JWT_MISSING_CLAIM);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"exp\":1700003600}") ==
	    JWT_MISSING_CLAIM);
	CHECK(verify_c(HS256, "{\"iat\":1700000000,\"exp\":1700003600}") ==
	    JWT_MISSING_CLAIM);
	CHECK(verify_c(HS256, "{}") == JWT_MISSING_CLAIM);
	/* Claims of the wrong shape. */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":\"1700003600\"}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600.5}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1.7e9}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":-1,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":99999999999999999999}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":null,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":1,\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a b\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\\\"\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);	/* 65 bytes */
	CHECK(verify_c(HS256, "{\"sub\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_OK);		/* 64 bytes */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"sub\":\"b\",\"iat\":1700000000,"
	    "\"exp\":1700003600}") == JWT_MALFORMED);
	/* Extra claims are fine; bad payload JSON is not. */
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,\"exp\":"
	    "1700003600,\"aud\":[\"x\",{\"y\":null}],\"jti\":\"q\"}") ==
	    JWT_OK);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "[1]") == JWT_MALFORMED);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600} ") == JWT_OK);
	CHECK(verify_c(HS256, "{\"sub\":\"a\",\"iat\":1700000000,"
	    "\"exp\":1700003600}{}") == JWT_MALFORMED);
}

UNIT_TEST(shape)
{
	char		 t[512], u[8192];
	struct jwt_claims c;

	CHECK(jwt_sign(key, KEYLEN, "alice", NOW, NOW + 3600, t,
	    sizeof(t)) == 0);
	CHECK(verify(t) == JWT_OK);
	CHECK(verify("") == JWT_MALFORMED);
	CHECK(verify(".") == JWT_MALFORMED);
	CHECK(verify("..") == JWT_MALFORMED);
	CHECK(verify("...") == JWT_MALFORMED);
	CHECK(verify("abc") == JWT_MALFORMED);
	CHECK(jwt_verify(key, KEYLEN, NULL, 0, NOW, 0, &c) == JWT_MALFORMED);

	/* Extra dots anywhere. */
	snprintf(u, sizeof(u), "%s.", t);
	CHECK(verify(u) == JWT_MALFORMED);
	snprintf(u, sizeof(u), ".%s", t);
	CHECK(verify(u) == JWT_MALFORMED);
	snprintf(u, sizeof(u), "%s.%s", t, strrchr(t, '.') + 1);
	CHECK(verify(u) == JWT_MALFORMED);

	/* Empty parts. */
	strcpy(u, t);
	memmove(u, strchr(u, '.'), strlen(strchr(u, '.')) + 1);
	CHECK(verify(u) == JWT_MALFORMED);			/* header */
	CHECK(verify(craft(HS256, "", key, KEYLEN)) == JWT_MALFORMED);
	strcpy(u, t);
	*(strrchr(u, '.') + 1) = '\0';
	CHECK(verify(u) == JWT_BAD_SIGNATURE);			/* signature */

	/* Padding and foreign alphabets. */
	snprintf(u, sizeof(u), "%s=", t);
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	memmove(strchr(u, '.') + 1, strchr(u, '.'), strlen(strchr(u, '.')) +
	    1);
	*strchr(u, '.') = '=';			/* "...fQ=.payload" */
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	u[3] = '+';
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	u[3] = '/';
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	u[strlen(u) - 5] = '+';
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	u[strlen(u) - 5] = ' ';
	CHECK(verify(u) == JWT_MALFORMED);
	strcpy(u, t);
	u[5] = '\0';
	CHECK(jwt_verify(key, KEYLEN, u, strlen(t), NOW, 0, &c) ==
	    JWT_MALFORMED);
	/* "Bearer " is the caller's business. */
	snprintf(u, sizeof(u), "Bearer %s", t);
	CHECK(verify(u) == JWT_MALFORMED);
	/* Whitespace around. */
	snprintf(u, sizeof(u), "%s\n", t);
	CHECK(verify(u) == JWT_MALFORMED);

	/* Huge token. */
	memset(u, 'A', sizeof(u) - 1);
	u[sizeof(u) - 1] = '\0';
	u[100] = '.';
	u[200] = '.';
	CHECK(verify(u) == JWT_MALFORMED);
	/* A long but signed one still has a limit. */
	{
		char	*p = malloc(5000);

		memset(p, 0, 5000);
		strcpy(p, "{\"sub\":\"a\",\"iat\":1700000000,"
		    "\"exp\":1700003600,\"x\":\"");
		memset(p + strlen(p), 'x', 3500);
		strcat(p, "\"}");
		CHECK(verify_c(HS256, p) == JWT_MALFORMED);
		free(p);
	}
}

UNIT_TEST(messages)
{
	CHECK_STR(jwt_strerror(JWT_OK), "ok");
	CHECK_STR(jwt_strerror(JWT_BAD_ALG), "unsupported algorithm");
	CHECK_STR(jwt_strerror(JWT_EXPIRED), "token expired");
	CHECK(jwt_strerror((enum jwt_status)99) != NULL);
}

UNIT_MAIN(UNIT(b64url), UNIT(rfc7515_a1), UNIT(round_trip),
    UNIT(pyjwt_interop), UNIT(tampered), UNIT(algorithms), UNIT(claims),
    UNIT(shape), UNIT(messages))
