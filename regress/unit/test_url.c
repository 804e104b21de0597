/*
 * url_validate(): what a short link may point to.
 */

#include <stdio.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

static int
ok(const char *u)
{
	char	 err[256];

	if (url_validate(u, strlen(u), err, sizeof(err)) == 0)
		return 1;
	fprintf(stderr, "  refused \"%s\": %s\n", u, err);
	return 0;
}

static int
bad(const char *u)
{
	char	 err[256] = "";

	if (url_validate(u, strlen(u), err, sizeof(err)) == -1) {
		if (err[0] == '\0') {
			fprintf(stderr, "  no message for \"%s\"\n", u);
			return 0;
		}
		return 1;
	}
	fprintf(stderr, "  accepted \"%s\"\n", u);
	return 0;
}

/* The message for u contains want. */
static int
says(const char *u, size_t len, const char *want)
{
	char	 err[256] = "";

	if (url_validate(u, len, err, sizeof(err)) != -1)
		return 0;
	if (strstr(err, want) == NULL) {
		fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

UNIT_TEST(accepts_plain)
{
	CHECK(ok("http://example.com"));
	CHECK(ok("https://example.com"));
	CHECK(ok("https://example.com/"));
	CHECK(ok("http://a.b.c.example.co.uk/path/to/x.html"));
	CHECK(ok("HTTP://EXAMPLE.COM/"));
	CHECK(ok("HtTpS://Example.Com"));
	CHECK(ok("http://localhost"));
	CHECK(ok("http://localhost:8080/x"));
	CHECK(ok("http://example.com."));
	CHECK(ok("http://example.com./x"));
	CHECK(ok("http://xn--mnchen-3ya.de/"));
	CHECK(ok("http://a-b.example"));
	CHECK(ok("http://x"));
	CHECK(ok("http://3com.com/"));
	CHECK(ok("http://123abc.example/"));
}

UNIT_TEST(accepts_ports)
{
	CHECK(ok("http://example.com:1"));
	CHECK(ok("http://example.com:80/"));
	CHECK(ok("http://example.com:65535?x"));
	CHECK(ok("http://127.0.0.1:8080/"));
	CHECK(ok("http://[::1]:443/"));
}

UNIT_TEST(accepts_ip)
{
	CHECK(ok("http://127.0.0.1/"));
	CHECK(ok("http://0.0.0.0"));
	CHECK(ok("http://255.255.255.255/"));
	CHECK(ok("http://10.0.0.1#x"));
	CHECK(ok("http://[::1]"));
	CHECK(ok("http://[2001:db8::1]/x"));
	CHECK(ok("http://[::ffff:192.0.2.1]/"));
	CHECK(ok("http://[2001:DB8:0:0:8:800:200C:417A]/"));
}

UNIT_TEST(accepts_rest)
{
	CHECK(ok("https://example.com/search?q=a+b&x=1"));
	CHECK(ok("https://example.com/#frag"));
	CHECK(ok("https://example.com?only=query"));
	CHECK(ok("https://example.com#only-fragment"));
	CHECK(ok("https://example.com/a%20b%2Fc%7e"));
	CHECK(ok("https://example.com/p;x=1,2/*!$&'()+=:@"));
	CHECK(ok("https://example.com/a[0]=1"));
	CHECK(ok("https://example.com/x#a#b"));
	CHECK(ok("https://example.com/~user/?a=b/c?d"));
	CHECK(ok("https://example.com/caf\xc3\xa9"));
	CHECK(ok("https://example.com/\xe6\x97\xa5\xe6\x9c\xac?q=\xf0\x9f\x98\x80"));
}

UNIT_TEST(refuses_scheme)
{
	CHECK(says("example.com", 11, "http:// or https://"));
	CHECK(bad("www.example.com/x"));
	CHECK(bad("ftp://example.com/"));
	CHECK(bad("javascript:alert(1)"));
	CHECK(bad("data:text/html,<b>x</b>"));
	CHECK(bad("http:/x"));
	CHECK(bad("http:x"));
	CHECK(bad("http//example.com"));
	CHECK(bad("//example.com"));
	CHECK(bad("httpx://example.com"));
	CHECK(bad("http"));
	CHECK(bad("https:"));
	CHECK(says("", 0, "empty"));
}

UNIT_TEST(refuses_host)
{
	CHECK(says("http://", 7, "empty host"));
	CHECK(says("http:///x", 9, "empty host"));
	CHECK(says("http://:80", 10, "empty host"));
	CHECK(bad("http://?q"));
	CHECK(bad("http://#f"));
	CHECK(bad("http://."));
	CHECK(bad("http://a..b"));
	CHECK(bad("http://-a.example"));
	CHECK(bad("http://a-.example"));
	CHECK(bad("http://a_b.example"));
	CHECK(bad("http://exa%6dple.com"));
	CHECK(bad("http://ex!ample.com"));
	CHECK(bad("http://m\xc3\xbcnchen.de/"));
	CHECK(says("http://user@example.com/", 24, "phishing"));
	CHECK(bad("http://user:pw@example.com/"));
	CHECK(bad("http://@example.com/"));
	CHECK(bad("https://google.com@evil.example/"));
}

UNIT_TEST(refuses_label_lengths)
{
	char	 u[600];
	size_t	 n;

	/* a 63-byte label is fine, 64 is not */
	n = (size_t)snprintf(u, sizeof(u), "http://%.63s.com",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK(url_validate(u, n, NULL, 0) == 0);
	n = (size_t)snprintf(u, sizeof(u), "http://%.64s.com",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	CHECK(url_validate(u, n, NULL, 0) == -1);

	/* 253 bytes of name are fine, 254 are not */
	memcpy(u, "http://", 7);
	memset(u + 7, 'a', 253);
	for (n = 7 + 50; n < 7 + 253; n += 51)
		u[n] = '.';
	CHECK(url_validate(u, 7 + 253, NULL, 0) == 0);
	u[7 + 253] = '.';	/* plus the root's dot */
	CHECK(url_validate(u, 7 + 254, NULL, 0) == 0);
	u[7 + 253] = 'a';
	CHECK(url_validate(u, 7 + 254, NULL, 0) == -1);
}

UNIT_TEST(refuses_ip)
{
	CHECK(says("http://256.1.1.1/", 17, "IPv4"));
	CHECK(bad("http://999.1.1.1/"));
	CHECK(bad("http://1.2.3/"));
	CHECK(bad("http://1.2.3.4.5/"));
	CHECK(bad("http://01.2.3.4/"));
	CHECK(bad("http://1.2.3.04/"));
	CHECK(bad("http://2130706433/"));
	CHECK(bad("http://0x7f.0.0.1/"));
	CHECK(bad("http://example.0x1f/"));
	CHECK(bad("http://example.123/"));
	CHECK(bad("http://1.2.3.4./"));
	CHECK(bad("http://1..2.3/"));
	CHECK(says("http://::1/", 11, "brackets"));
	CHECK(bad("http://2001:db8::1/"));
	CHECK(bad("http://[::1/"));
	CHECK(bad("http://[]/"));
	CHECK(bad("http://[::g]/"));
	CHECK(bad("http://[1.2.3.4]/"));
	CHECK(bad("http://[v1.x]/"));
	CHECK(says("http://[fe80::1%25eth0]/", 24, "zone"));
	CHECK(bad("http://[fe80::1%eth0]/"));
	CHECK(bad("http://[::1]x/"));
	CHECK(bad("http://[::1]:/"));
}

UNIT_TEST(refuses_port)
{
	CHECK(says("http://example.com:0/", 21, "port"));
	CHECK(bad("http://example.com:65536/"));
	CHECK(bad("http://example.com:99999999999999999999999/"));
	CHECK(bad("http://example.com:abc/"));
	CHECK(bad("http://example.com:8a/"));
	CHECK(bad("http://example.com:-1/"));
	CHECK(bad("http://example.com:+80/"));
	CHECK(bad("http://example.com:/"));
	CHECK(bad("http://example.com:80:80/"));
	CHECK(bad("http://[::1]:0/"));
	CHECK(bad("http://[::1]:65536/"));
}

UNIT_TEST(refuses_bytes)
{
	CHECK(says("http://exa mple.com/", 20, "whitespace"));
	CHECK(says("http://example.com/a b", 22, "whitespace"));
	CHECK(says(" http://example.com/", 20, "whitespace"));
	CHECK(says("http://example.com/ ", 20, "whitespace"));
	CHECK(says("http://example.com/\ta", 21, "whitespace"));
	CHECK(says("http://example.com/\na", 21, "whitespace"));
	CHECK(says("http://example.com/\r\nX: y", 25, "whitespace"));
	CHECK(says("http://example.com/\x01", 20, "control"));
	CHECK(says("http://example.com/\x1b[0m", 23, "control"));
	CHECK(says("http://example.com/\x7f", 20, "control"));
	CHECK(says("http://example.com/a\0b", 22, "NUL"));
	CHECK(says("http://example.com\0.evil", 24, "NUL"));
	/* U+00A0, U+2028, U+202E (bidi override), C1 NEL */
	CHECK(says("http://example.com/\xc2\xa0", 21, "U+00A0"));
	CHECK(bad("http://example.com/\xe2\x80\xa8"));
	CHECK(bad("http://example.com/\xe2\x80\xae"));
	CHECK(bad("http://example.com/\xc2\x85"));
}

UNIT_TEST(refuses_utf8)
{
	CHECK(says("http://example.com/\xff", 20, "UTF-8"));
	CHECK(bad("http://example.com/\xc3"));
	CHECK(bad("http://example.com/\xc3("));
	CHECK(bad("http://example.com/\x80"));
	CHECK(bad("http://example.com/\xc0\xaf"));		/* overlong '/' */
	CHECK(bad("http://example.com/\xe0\x80\xaf"));	/* overlong */
	CHECK(bad("http://example.com/\xed\xa0\x80"));	/* surrogate */
	CHECK(bad("http://example.com/\xf4\x90\x80\x80"));	/* > U+10FFFF */
	CHECK(bad("http://example.com/\xf0\x9f\x98"));	/* truncated */
}

UNIT_TEST(refuses_rest)
{
	CHECK(says("http://example.com/%", 20, "percent"));
	CHECK(bad("http://example.com/%2"));
	CHECK(bad("http://example.com/%zz"));
	CHECK(bad("http://example.com/%2g"));
	CHECK(bad("http://example.com/100%"));
	CHECK(bad("http://example.com/a%"));
	CHECK(bad("http://example.com/\"x"));
	CHECK(bad("http://example.com/<script>"));
	CHECK(bad("http://example.com/a>b"));
	CHECK(bad("http://example.com/a\\b"));
	CHECK(bad("http://example.com\\@evil.example/"));
	CHECK(bad("http://example.com/a^b"));
	CHECK(bad("http://example.com/a`b"));
	CHECK(bad("http://example.com/{x}"));
	CHECK(bad("http://example.com/a|b"));
}

UNIT_TEST(length_limit)
{
	static char	 u[URL_MAX + 2];
	char		 err[128];

	memcpy(u, "http://example.com/", 19);
	memset(u + 19, 'a', sizeof(u) - 19);
	CHECK(url_validate(u, URL_MAX, err, sizeof(err)) == 0);
	CHECK(url_validate(u, URL_MAX + 1, err, sizeof(err)) == -1);
	CHECK_STR(err, "URL is longer than 2048 bytes");
	CHECK(url_validate(u, URL_MAX + 2, err, sizeof(err)) == -1);
}

UNIT_TEST(not_nul_terminated)
{
	char	 u[32];

	/* len is authoritative: the bytes after it are not looked at */
	memcpy(u, "http://example.com/abc   <>\"\x01\xff", 31);
	CHECK(url_validate(u, 22, NULL, 0) == 0);
	CHECK(url_validate(u, 7, NULL, 0) == -1);
	CHECK(url_validate(u, 18, NULL, 0) == 0);
}

UNIT_TEST(messages)
{
	char	 err[8];

	/* a small buffer is truncated, never overrun */
	CHECK(url_validate("ftp://x", 7, err, sizeof(err)) == -1);
	CHECK(strlen(err) == sizeof(err) - 1);
	CHECK(url_validate("ftp://x", 7, NULL, 0) == -1);
	CHECK(url_validate("ftp://x", 7, err, 0) == -1);
}

UNIT_MAIN(
	UNIT(accepts_plain),
	UNIT(accepts_ports),
	UNIT(accepts_ip),
	UNIT(accepts_rest),
	UNIT(refuses_scheme),
	UNIT(refuses_host),
	UNIT(refuses_label_lengths),
	UNIT(refuses_ip),
	UNIT(refuses_port),
	UNIT(refuses_bytes),
	UNIT(refuses_utf8),
	UNIT(refuses_rest),
	UNIT(length_limit),
	UNIT(not_nul_terminated),
	UNIT(messages)
)
