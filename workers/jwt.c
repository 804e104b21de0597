/*
 * jwt.c — HS256 JSON Web Tokens (RFC 7519, RFC 7515 compact form).
 *
 * Only tokens this service could have issued verify: three strict
 * base64url parts, a header whose alg is exactly HS256, a signature
 * that matches in constant time, and a payload with sub, iat and exp.
 * The signature is checked before anything in the payload is read.
 *
 * The header and payload are read with jsmn plus the same between-token
 * grammar checks json.c makes.  Keys with escapes are refused (no two
 * spellings of one claim), and so are duplicate keys; the strings that
 * matter (alg, typ, sub) must match plainly, without escapes.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#include "workers.h"

#define JWT_TOKEN_MAX	4096		/* longer tokens are refused */
#define JWT_PART_MAX	3072		/* decoded header or payload */
#define JWT_SIG_LEN	32		/* HMAC-SHA256 */
#define JWT_MAX_TOKENS	64		/* jsmn tokens per part */
#define JWT_NUM_MAX	999999999999999LL	/* claims fit easily */
#define JWT_LEEWAY_MAX	86400

/* base64url of {"alg":"HS256","typ":"JWT"}, the only header we write. */
static const char jwt_header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

struct jwt_json {
	const char	*js;
	size_t		 len;
	jsmntok_t	 tok[JWT_MAX_TOKENS];
	int		 ntok;
};

long
b64url_encode(const uint8_t *in, size_t inlen, char *out, size_t outlen)
{
	size_t	 need, i, o = 0;
	uint32_t v;

	if (inlen > LONG_MAX / 2)
		return -1;
	need = inlen / 3 * 4 + (inlen % 3 ? inlen % 3 + 1 : 0);
	if (outlen < need + 1)
		return -1;
	for (i = 0; i + 2 < inlen; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
		out[o++] = b64url_alphabet[v & 63];
	}
	if (inlen - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
	} else if (inlen - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url_alphabet[v >> 18];
		out[o++] = b64url_alphabet[(v >> 12) & 63];
		out[o++] = b64url_alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return (long)o;
}

static int
b64url_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict: no padding, no other alphabet, and the unused low bits of the
 * last character must be zero, so each byte string has exactly one
 * encoding (no malleable signatures).
 */
long
b64url_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	size_t	 need, i, o = 0, rem = inlen % 4;
	uint32_t v;
	int	 c[4], k;

	if (rem == 1 || inlen > LONG_MAX / 2)
		return -1;
	need = inlen / 4 * 3 + (rem ? rem - 1 : 0);
	if (need > outlen)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		size_t n = inlen - i < 4 ? inlen - i : 4;

		v = 0;
		for (k = 0; k < 4; k++) {
			c[k] = 0;
			if ((size_t)k < n && (c[k] = b64url_val(in[i + k])) < 0)
				return -1;
			v = v << 6 | (uint32_t)c[k];
		}
		if ((n == 2 && (c[1] & 0x0f) != 0) ||
		    (n == 3 && (c[2] & 0x03) != 0))
			return -1;
		out[o++] = (uint8_t)(v >> 16);
		if (n > 2)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 3)
			out[o++] = (uint8_t)v;
	}
	return (long)o;
}

static int
jwt_hmac(const uint8_t *key, size_t keylen, const char *msg, size_t len,
    uint8_t mac[JWT_SIG_LEN])
{
	unsigned int	 maclen = 0;

	if (key == NULL || keylen == 0 || keylen > INT_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    len, mac, &maclen) == NULL || maclen != JWT_SIG_LEN)
		return -1;
	return 0;
}

int
jwt_sign(const uint8_t *key, size_t keylen, const char *sub, int64_t iat,
    int64_t exp, char *out, size_t outlen)
{
	struct buf	 payload;
	uint8_t		 mac[JWT_SIG_LEN];
	size_t		 o;
	long		 n;
	int		 rc = -1;

	buf_init(&payload);
	if (sub == NULL || out == NULL)
		goto out;
	buf_puts(&payload, "{\"sub\":");
	json_put_str(&payload, sub, strlen(sub));
	buf_printf(&payload, ",\"iat\":%lld,\"exp\":%lld}", (long long)iat,
	    (long long)exp);
	if (payload.failed || outlen < sizeof(jwt_header_b64) + 1)
		goto out;
	memcpy(out, jwt_header_b64, sizeof(jwt_header_b64) - 1);
	o = sizeof(jwt_header_b64) - 1;
	out[o++] = '.';
	if ((n = b64url_encode(payload.data, payload.len, out + o,
	    outlen - o)) == -1)
		goto out;
	o += (size_t)n;
	if (jwt_hmac(key, keylen, out, o, mac) == -1 || outlen - o < 2)
		goto out;
	out[o++] = '.';
	if (b64url_encode(mac, sizeof(mac), out + o, outlen - o) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1 && out != NULL && outlen > 0)
		out[0] = '\0';
	OPENSSL_cleanse(mac, sizeof(mac));
	buf_free(&payload);
	return rc;
}

static int
jwt_gap(const struct jwt_json *d, int from, int to, char sep)
{
	return json_gap_ok(d->js, d->len, from, to, sep);
}

static int
jwt_tstart(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static int
jwt_tend(const jsmntok_t *t)
{
	return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* jsmn checked the escapes; raw control bytes are left to us. */
static int
jwt_string_ok(const struct jwt_json *d, const jsmntok_t *t)
{
	int	 i;

	for (i = t->start; i < t->end; i++)
		if ((unsigned char)d->js[i] < 0x20)
			return -1;
	return 0;
}

/* Check the value at token *i and its children; advance *i past it. */
static int
jwt_check_value(const struct jwt_json *d, int *i)
{
	const jsmntok_t	*t, *c;
	int		 k, pos;

	if (*i >= d->ntok)
		return -1;
	t = &d->tok[(*i)++];
	if (t->type == JSMN_STRING)
		return t->size == 0 ? jwt_string_ok(d, t) : -1;
	if (t->type == JSMN_PRIMITIVE)
		return t->size == 0 ? json_primitive_ok(d->js + t->start,
		    (size_t)(t->end - t->start)) : -1;
	if (t->type != JSMN_OBJECT && t->type != JSMN_ARRAY)
		return -1;
	pos = t->start + 1;
	for (k = 0; k < t->size; k++) {
		if (*i >= d->ntok)
			return -1;
		c = &d->tok[*i];
		if (jwt_gap(d, pos, jwt_tstart(c), k ? ',' : '\0') == -1)
			return -1;
		if (t->type == JSMN_OBJECT) {
			if (c->type != JSMN_STRING || c->size != 1 ||
			    jwt_string_ok(d, c) == -1)
				return -1;
			if (++(*i) >= d->ntok || jwt_gap(d, jwt_tend(c),
			    jwt_tstart(&d->tok[*i]), ':') == -1)
				return -1;
			c = &d->tok[*i];
		}
		if (jwt_check_value(d, i) == -1)
			return -1;
		pos = jwt_tend(c);
	}
	return jwt_gap(d, pos, t->end - 1, '\0');
}

/*
 * Parse s[0, len) as one JSON object with unique, escape-free keys.
 * 0 or -1.
 */
static int
jwt_json_load(struct jwt_json *d, const char *s, size_t len)
{
	jsmn_parser	 p;
	int		 r, i = 0, m, skip, j, keys[JWT_MAX_TOKENS];
	const jsmntok_t	*k;

	d->js = s;
	d->len = len;
	if (len == 0 || !utf8_valid(s, len))
		return -1;
	jsmn_init(&p);
	if ((r = jsmn_parse(&p, s, len, d->tok, JWT_MAX_TOKENS)) < 1)
		return -1;
	d->ntok = r;
	if (d->tok[0].type != JSMN_OBJECT ||
	    jwt_gap(d, 0, d->tok[0].start, '\0') == -1 ||
	    jwt_check_value(d, &i) == -1 || i != d->ntok ||
	    jwt_gap(d, d->tok[0].end, (int)len, '\0') == -1)
		return -1;
	for (i = 1, m = 0; m < d->tok[0].size; m++) {
		k = &d->tok[i];
		if (memchr(s + k->start, '\\', (size_t)(k->end - k->start)))
			return -1;
		for (j = 0; j < m; j++)
			if (d->tok[keys[j]].end - d->tok[keys[j]].start ==
			    k->end - k->start && memcmp(s + k->start,
			    s + d->tok[keys[j]].start,
			    (size_t)(k->end - k->start)) == 0)
				return -1;
		keys[m] = i;
		for (skip = 1; skip > 0 && i < d->ntok; i++)
			skip += d->tok[i].size - 1;
	}
	return 0;
}

/* The value token of top-level key name, or NULL. */
static const jsmntok_t *
jwt_member(const struct jwt_json *d, const char *name)
{
	size_t		 nlen = strlen(name);
	int		 i = 1, m, skip;
	const jsmntok_t	*k;

	for (m = 0; m < d->tok[0].size; m++) {
		k = &d->tok[i];
		if ((size_t)(k->end - k->start) == nlen &&
		    memcmp(d->js + k->start, name, nlen) == 0)
			return &d->tok[i + 1];
		for (skip = 1; skip > 0 && i < d->ntok; i++)
			skip += d->tok[i].size - 1;
	}
	return NULL;
}

static int
jwt_streq(const struct jwt_json *d, const jsmntok_t *t, const char *s)
{
	return t->type == JSMN_STRING &&
	    (size_t)(t->end - t->start) == strlen(s) &&
	    memcmp(d->js + t->start, s, strlen(s)) == 0;
}

/* A NumericDate we issue: a non-negative integer, no fraction. */
static enum jwt_status
jwt_int_claim(const struct jwt_json *d, const char *name, int required,
    int64_t *v)
{
	const jsmntok_t	*t;
	int		 i;

	if ((t = jwt_member(d, name)) == NULL)
		return required ? JWT_MISSING_CLAIM : JWT_OK;
	if (t->type != JSMN_PRIMITIVE || t->end - t->start > 15)
		return JWT_MALFORMED;
	*v = 0;
	for (i = t->start; i < t->end; i++) {
		if (d->js[i] < '0' || d->js[i] > '9')
			return JWT_MALFORMED;
		*v = *v * 10 + (d->js[i] - '0');
	}
	return *v <= JWT_NUM_MAX ? JWT_OK : JWT_MALFORMED;
}

static enum jwt_status
jwt_check_header(const char *b64, size_t len)
{
	char		 raw[JWT_PART_MAX];
	struct jwt_json	 d;
	const jsmntok_t	*t;
	long		 n;

	if (len == 0 || (n = b64url_decode(b64, len, (uint8_t *)raw,
	    sizeof(raw))) <= 0 || jwt_json_load(&d, raw, (size_t)n) == -1)
		return JWT_MALFORMED;
	if ((t = jwt_member(&d, "alg")) == NULL || !jwt_streq(&d, t, "HS256"))
		return JWT_BAD_ALG;
	if ((t = jwt_member(&d, "typ")) != NULL && (t->type != JSMN_STRING ||
	    t->end - t->start != 3 ||
	    strncasecmp(d.js + t->start, "JWT", 3) != 0))
		return JWT_MALFORMED;
	/* We understand no extension a "crit" could make mandatory. */
	if (jwt_member(&d, "crit") != NULL)
		return JWT_MALFORMED;
	return JWT_OK;
}

static enum jwt_status
jwt_check_signature(const uint8_t *key, size_t keylen, const char *token,
    size_t signedlen, const char *b64, size_t len)
{
	uint8_t		 sig[JWT_TOKEN_MAX], mac[JWT_SIG_LEN];
	long		 n;
	enum jwt_status	 st = JWT_BAD_SIGNATURE;

	/* Any length decodes here: a wrong one is a bad signature. */
	if ((n = b64url_decode(b64, len, sig, sizeof(sig))) == -1)
		return JWT_MALFORMED;
	if (n == JWT_SIG_LEN &&
	    jwt_hmac(key, keylen, token, signedlen, mac) == 0 &&
	    CRYPTO_memcmp(sig, mac, JWT_SIG_LEN) == 0)
		st = JWT_OK;
	OPENSSL_cleanse(mac, sizeof(mac));
	return st;
}

static enum jwt_status
jwt_check_payload(const char *b64, size_t len, int64_t now, int64_t leeway,
    struct jwt_claims *c)
{
	char		 raw[JWT_PART_MAX];
	struct jwt_json	 d;
	const jsmntok_t	*t;
	enum jwt_status	 st;
	int64_t		 nbf = -1;
	long		 n;
	size_t		 sublen;

	if (len == 0 || (n = b64url_decode(b64, len, (uint8_t *)raw,
	    sizeof(raw))) <= 0 || jwt_json_load(&d, raw, (size_t)n) == -1)
		return JWT_MALFORMED;
	if ((t = jwt_member(&d, "sub")) == NULL)
		return JWT_MISSING_CLAIM;
	sublen = (size_t)(t->end - t->start);
	if (t->type != JSMN_STRING || !username_valid(d.js + t->start, sublen))
		return JWT_MALFORMED;
	memcpy(c->sub, d.js + t->start, sublen);
	c->sub[sublen] = '\0';
	if ((st = jwt_int_claim(&d, "exp", 1, &c->exp)) != JWT_OK ||
	    (st = jwt_int_claim(&d, "iat", 1, &c->iat)) != JWT_OK ||
	    (st = jwt_int_claim(&d, "nbf", 0, &nbf)) != JWT_OK)
		return st;
	if (c->exp + leeway <= now)
		return JWT_EXPIRED;
	if (c->iat > now + leeway || nbf > now + leeway)
		return JWT_NOT_YET_VALID;
	return JWT_OK;
}

/*
 * Verify token[0, toklen) at time now (s) allowing leeway seconds of
 * clock skew.  On JWT_OK, c holds the claims.
 */
enum jwt_status
jwt_verify(const uint8_t *key, size_t keylen, const char *token,
    size_t toklen, int64_t now, int64_t leeway, struct jwt_claims *c)
{
	const char	*d1, *d2;
	enum jwt_status	 st;

	memset(c, 0, sizeof(*c));
	if (token == NULL || toklen == 0 || toklen > JWT_TOKEN_MAX)
		return JWT_MALFORMED;
	/* Keep the time arithmetic far from overflow. */
	if (now < 0)
		now = 0;
	if (now > INT64_MAX / 2)
		now = INT64_MAX / 2;
	if (leeway < 0)
		leeway = 0;
	if (leeway > JWT_LEEWAY_MAX)
		leeway = JWT_LEEWAY_MAX;
	if ((d1 = memchr(token, '.', toklen)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', toklen - (size_t)(d1 + 1 - token))) ==
	    NULL ||
	    memchr(d2 + 1, '.', toklen - (size_t)(d2 + 1 - token)) != NULL)
		return JWT_MALFORMED;
	if ((st = jwt_check_header(token, (size_t)(d1 - token))) != JWT_OK)
		return st;
	if ((st = jwt_check_signature(key, keylen, token,
	    (size_t)(d2 - token), d2 + 1,
	    toklen - (size_t)(d2 + 1 - token))) != JWT_OK)
		return st;
	st = jwt_check_payload(d1 + 1, (size_t)(d2 - d1 - 1), now, leeway, c);
	if (st != JWT_OK)
		memset(c, 0, sizeof(*c));
	return st;
}

const char *
jwt_strerror(enum jwt_status st)
{
	switch (st) {
	case JWT_OK:
		return "ok";
	case JWT_MALFORMED:
		return "malformed token";
	case JWT_BAD_ALG:
		return "unsupported algorithm";
	case JWT_BAD_SIGNATURE:
		return "bad signature";
	case JWT_EXPIRED:
		return "token expired";
	case JWT_NOT_YET_VALID:
		return "token not yet valid";
	case JWT_MISSING_CLAIM:
		return "missing claim";
	}
	return "invalid token";
}
