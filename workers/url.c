/*
 * url.c — is a string an acceptable target for a short link?
 *
 * Accepted: http:// or https:// (scheme case-insensitive), a host that
 * is a DNS name, localhost, a dotted-quad IPv4 or a bracketed IPv6
 * literal, an optional port 1-65535, then an optional path, query and
 * fragment.  The URL is stored and returned byte-exact, so validation
 * never rewrites anything: it only says yes or no, and why.
 *
 * Pure: no logging, no allocation.
 */

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "workers.h"

#define HOST_MAX	253	/* a DNS name, without its trailing dot */
#define LABEL_MAX	63

static int	 url_fail(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static size_t	 url_utf8_seq(const unsigned char *, size_t, uint32_t *);
static int	 url_cp_refused(uint32_t);
static int	 url_ishex(char);
static int	 url_check_bytes(const char *, size_t, char *, size_t);
static int	 url_check_ipv4(const char *, size_t);
static int	 url_numeric_label(const char *, size_t);
static int	 url_check_dns(const char *, size_t, char *, size_t);
static int	 url_check_ipv6(const char *, size_t, char *, size_t);
static int	 url_check_port(const char *, size_t, char *, size_t);
static int	 url_check_authority(const char *, size_t, char *, size_t);
static int	 url_check_rest(const char *, size_t, char *, size_t);

static int
url_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most n bytes), its
 * code point in *cp; 0 if the bytes are not UTF-8 (overlong forms,
 * surrogates and values above U+10FFFF included).
 */
static size_t
url_utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	size_t	 len, i;
	uint32_t c, min;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2; c = p[0] & 0x1f; min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		len = 3; c = p[0] & 0x0f; min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4; c = p[0] & 0x07; min = 0x10000;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Non-ASCII code points that are whitespace or controls in disguise:
 * C1 controls, Unicode spaces, line/paragraph separators and the
 * bidirectional overrides that make a link read differently from where
 * it goes.
 */
static int
url_cp_refused(uint32_t c)
{
	if (c <= 0x9f)				/* C1 controls, NEL */
		return 1;
	if (c == 0xa0 || c == 0x1680 || c == 0x180e ||
	    (c >= 0x2000 && c <= 0x200b) ||	/* spaces, zero width */
	    c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
	    c == 0x3000 || c == 0xfeff)
		return 1;
	if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	    c == 0x200e || c == 0x200f)	/* bidi controls */
		return 1;
	return 0;
}

static int
url_ishex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

/* Whole-string checks: no NUL, whitespace or controls; UTF-8 only. */
static int
url_check_bytes(const char *u, size_t len, char *err, size_t errlen)
{
	const unsigned char	*p = (const unsigned char *)u;
	size_t			 i, n;
	uint32_t		 cp;

	for (i = 0; i < len; i++) {
		if (p[i] == '\0')
			return url_fail(err, errlen,
			    "URL contains a NUL byte");
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
		    p[i] == '\r' || p[i] == '\v' || p[i] == '\f')
			return url_fail(err, errlen, "URL contains whitespace");
		if (p[i] < 0x20 || p[i] == 0x7f)
			return url_fail(err, errlen,
			    "URL contains a control character");
		if (p[i] < 0x80)
			continue;
		if ((n = url_utf8_seq(p + i, len - i, &cp)) == 0)
			return url_fail(err, errlen,
			    "URL is not valid UTF-8");
		if (url_cp_refused(cp))
			return url_fail(err, errlen, "URL contains "
			    "whitespace or a control character (U+%04X)",
			    (unsigned)cp);
		i += n - 1;
	}
	return 0;
}

/* 1 if h is exactly a dotted quad: 4 parts of 0-255, no leading 0s. */
static int
url_check_ipv4(const char *h, size_t len)
{
	size_t	 i, parts = 0, digits = 0;
	unsigned val = 0;

	for (i = 0; i <= len; i++) {
		if (i == len || h[i] == '.') {
			if (digits == 0 || val > 255)
				return 0;
			parts++;
			digits = 0;
			val = 0;
			continue;
		}
		if (h[i] < '0' || h[i] > '9')
			return 0;
		if (digits == 1 && val == 0)	/* "01": ambiguous octal */
			return 0;
		if (++digits > 3)
			return 0;
		val = val * 10 + (unsigned)(h[i] - '0');
	}
	return parts == 4;
}

/*
 * 1 if a label reads as a number: decimal digits, or 0x followed by hex.
 * Browsers (the WHATWG URL parser) treat a host whose last label is such
 * a number as an IPv4 address in some form (1.2.3, 0x7f.1, 2130706433),
 * so such a host either is a plain dotted quad or is refused: what we
 * store must go where it reads.
 */
static int
url_numeric_label(const char *l, size_t len)
{
	size_t	 i, start = 0;
	int	 hex = 0;

	if (len == 0)
		return 0;
	if (len >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
		hex = 1;
		start = 2;
	}
	for (i = start; i < len; i++)
		if (hex ? !url_ishex(l[i]) : !(l[i] >= '0' && l[i] <= '9'))
			return 0;
	return 1;
}

/* A DNS name (localhost included), or a dotted quad. */
static int
url_check_dns(const char *h, size_t len, char *err, size_t errlen)
{
	size_t	 i, start, last;

	for (i = 0; i < len; i++)
		if ((unsigned char)h[i] >= 0x80)
			return url_fail(err, errlen, "URL host must be ASCII "
			    "(write international names in punycode, xn--)");
	if (url_check_ipv4(h, len))
		return 0;
	if (len > 0 && h[len - 1] == '.')	/* the root: "example.com." */
		len--;
	if (len == 0)
		return url_fail(err, errlen, "URL has an empty host");
	if (len > HOST_MAX)
		return url_fail(err, errlen,
		    "URL host is longer than %d bytes", HOST_MAX);

	/* The last label decides whether this is meant as an address. */
	for (last = len; last > 0 && h[last - 1] != '.'; last--)
		;
	if (url_numeric_label(h + last, len - last))
		return url_fail(err, errlen,
		    "URL has an invalid IPv4 address");

	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && h[i] != '.') {
			if (!((h[i] >= 'a' && h[i] <= 'z') ||
			    (h[i] >= 'A' && h[i] <= 'Z') ||
			    (h[i] >= '0' && h[i] <= '9') || h[i] == '-'))
				return url_fail(err, errlen, "URL host contains "
				    "an invalid character '%c'", h[i]);
			continue;
		}
		if (i == start)
			return url_fail(err, errlen,
			    "URL host has an empty label");
		if (i - start > LABEL_MAX)
			return url_fail(err, errlen, "URL host has a label "
			    "longer than %d bytes", LABEL_MAX);
		if (h[start] == '-' || h[i - 1] == '-')
			return url_fail(err, errlen, "URL host has a label "
			    "starting or ending with '-'");
		start = i + 1;
	}
	return 0;
}

/* The inside of [...]: an IPv6 address, no zone id, no IPvFuture. */
static int
url_check_ipv6(const char *h, size_t len, char *err, size_t errlen)
{
	char		 tmp[INET6_ADDRSTRLEN];
	struct in6_addr	 a;

	if (memchr(h, '%', len) != NULL)
		return url_fail(err, errlen,
		    "URL has an IPv6 zone id, which is not allowed");
	if (len == 0 || len >= sizeof(tmp))
		return url_fail(err, errlen, "URL has an invalid IPv6 address");
	memcpy(tmp, h, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET6, tmp, &a) != 1)
		return url_fail(err, errlen, "URL has an invalid IPv6 address");
	return 0;
}

/* Digits only, 1-65535 (leading zeros are harmless: "080" is 80). */
static int
url_check_port(const char *p, size_t len, char *err, size_t errlen)
{
	size_t		 i;
	unsigned long	 v = 0;

	if (len == 0)
		return url_fail(err, errlen, "URL has an empty port");
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return url_fail(err, errlen, "URL has an invalid port");
		v = v * 10 + (unsigned long)(p[i] - '0');
		if (v > 65535)
			break;
	}
	if (v < 1 || v > 65535)
		return url_fail(err, errlen,
		    "URL port must be between 1 and 65535");
	return 0;
}

/* host[:port], between "://" and the first '/', '?' or '#'. */
static int
url_check_authority(const char *a, size_t len, char *err, size_t errlen)
{
	const char	*end, *colon;
	size_t		 hostlen;

	if (memchr(a, '@', len) != NULL)
		return url_fail(err, errlen, "URL must not contain user info "
		    "(user@host): it is a phishing vector");
	if (len == 0)
		return url_fail(err, errlen, "URL has an empty host");

	if (a[0] == '[') {
		if ((end = memchr(a, ']', len)) == NULL)
			return url_fail(err, errlen,
			    "URL has an unterminated IPv6 address");
		if (url_check_ipv6(a + 1, (size_t)(end - a) - 1, err,
		    errlen) == -1)
			return -1;
		end++;
		if (end == a + len)
			return 0;
		if (*end != ':')
			return url_fail(err, errlen,
			    "URL has text after its IPv6 address");
		return url_check_port(end + 1, len - (size_t)(end + 1 - a),
		    err, errlen);
	}

	if ((colon = memchr(a, ':', len)) != NULL &&
	    memchr(colon + 1, ':', len - (size_t)(colon + 1 - a)) != NULL)
		return url_fail(err, errlen,
		    "URL has an IPv6 address without brackets");
	hostlen = colon != NULL ? (size_t)(colon - a) : len;
	if (hostlen == 0)
		return url_fail(err, errlen, "URL has an empty host");
	if (url_check_dns(a, hostlen, err, errlen) == -1)
		return -1;
	if (colon != NULL)
		return url_check_port(colon + 1, len - hostlen - 1, err,
		    errlen);
	return 0;
}

/*
 * Path, query and fragment.  RFC 3986 allows only unreserved,
 * sub-delims, ':', '@', '/', '?' and %XX here, but real-world links
 * routinely carry '[', ']', a second '#' and the like, and browsers
 * follow them.  So we are lenient: any printable ASCII except the
 * characters no browser leaves unescaped and that invite trouble when a
 * link is echoed into HTML or a header: '"' '<' '>' '\' '^' '`' '{' '|'
 * '}'.  UTF-8 (IRIs) is allowed (already checked by url_check_bytes);
 * a '%' must start a %XX escape.
 */
static int
url_check_rest(const char *r, size_t len, char *err, size_t errlen)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)r[i];

		if (c >= 0x80)
			continue;
		if (c == '%') {
			if (len - i < 3)
				return url_fail(err, errlen, "URL has an "
				    "incomplete percent-escape (write %% "
				    "as %%25)");
			if (!url_ishex(r[i + 1]) || !url_ishex(r[i + 2]))
				return url_fail(err, errlen, "URL has an "
				    "invalid percent-escape (write %% as %%25)");
			i += 2;
			continue;
		}
		if (strchr("\"<>\\^`{|}", c) != NULL)
			return url_fail(err, errlen, "URL contains the "
			    "character '%c', which must be percent-encoded",
			    c);
	}
	return 0;
}

int
url_validate(const char *u, size_t len, char *err, size_t errlen)
{
	size_t	 skip, alen;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (u == NULL || len == 0)
		return url_fail(err, errlen, "URL is empty");
	if (len > URL_MAX)
		return url_fail(err, errlen,
		    "URL is longer than %d bytes", URL_MAX);
	if (url_check_bytes(u, len, err, errlen) == -1)
		return -1;

	if (len >= 7 && strncasecmp(u, "http://", 7) == 0)
		skip = 7;
	else if (len >= 8 && strncasecmp(u, "https://", 8) == 0)
		skip = 8;
	else
		return url_fail(err, errlen,
		    "URL must start with http:// or https://");
	u += skip;
	len -= skip;

	for (alen = 0; alen < len; alen++)	/* u need not end in NUL */
		if (u[alen] == '/' || u[alen] == '?' || u[alen] == '#')
			break;
	if (url_check_authority(u, alen, err, errlen) == -1)
		return -1;
	return url_check_rest(u + alen, len - alen, err, errlen);
}
