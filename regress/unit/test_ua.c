/*
 * ua.c: User-Agent classes from real browsers, phones and crawlers,
 * and the host of a Referer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

struct ua_case {
	const char	*ua;
	const char	*browser;	/* NULL: unknown */
	const char	*os;
	const char	*device;
	int		 bot;
};

/* User-Agent strings as real clients send them. */
static const struct ua_case ua_cases[] = {
	/* desktop browsers */
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	  "Chrome", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) "
	  "Gecko/20100101 Firefox/121.0", "Firefox", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
	  "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
	  "Safari", "macOS", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.61",
	  "Edge", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 OPR/105.0.0.0",
	  "Opera", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
	  "Gecko) Chrome/120.0.0.0 Safari/537.36", "Chrome", "Linux",
	  "desktop", 0 },
	{ "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:120.0) Gecko/20100101 "
	  "Firefox/120.0", "Firefox", "Linux", "desktop", 0 },
	{ "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) "
	  "Gecko/20100101 Firefox/121.0", "Firefox", "macOS", "desktop", 0 },
	{ "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	  "Chrome", "Chrome OS", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like "
	  "Gecko", "Internet Explorer", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/118.0.0.0 YaBrowser/23.11.0.0 "
	  "Safari/537.36", "Yandex Browser", "Windows", "desktop", 0 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Vivaldi/6.5",
	  "Vivaldi", "Windows", "desktop", 0 },
	/* phones and tablets */
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
	  "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
	  "Mobile/15E148 Safari/604.1", "Safari", "iOS", "mobile", 0 },
	{ "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like "
	  "Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
	  "Chrome", "Android", "mobile", 0 },
	{ "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile "
	  "Safari/537.36", "Samsung Internet", "Android", "mobile", 0 },
	{ "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
	  "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
	  "Safari", "iOS", "tablet", 0 },
	{ "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	  "Chrome", "Android", "tablet", 0 },
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
	  "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 "
	  "Mobile/15E148 Safari/604.1", "Chrome", "iOS", "mobile", 0 },
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
	  "AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/121.0 "
	  "Mobile/15E148 Safari/605.1.15", "Firefox", "iOS", "mobile", 0 },
	{ "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 "
	  "Firefox/121.0", "Firefox", "Android", "mobile", 0 },
	{ "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, "
	  "like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36 "
	  "EdgA/119.0.2151.78", "Edge", "Android", "mobile", 0 },
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) "
	  "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
	  "[FBAN/FBIOS;FBAV/442.0.0.38.109;FBBV/541133412]",
	  "Facebook app", "iOS", "mobile", 0 },
	{ "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) "
	  "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 "
	  "Instagram 309.0.0.28.114 (iPhone14,5; iOS 17_1; en_US)",
	  "Instagram app", "iOS", "mobile", 0 },
	{ "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, "
	  "like Gecko) Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
	  "Chrome", "Android", "tablet", 0 },
	{ "Mozilla/5.0 (Linux; U; Android 10; en-US; RMX2185 Build/QP1A) "
	  "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
	  "Chrome/78.0.3904.108 UCBrowser/13.4.0.1306 Mobile Safari/537.36",
	  "UC Browser", "Android", "mobile", 0 },
	/* crawlers and link previewers */
	{ "Mozilla/5.0 (compatible; Googlebot/2.1; "
	  "+http://www.google.com/bot.html)", "Googlebot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
	  "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile "
	  "Safari/537.36 (compatible; Googlebot/2.1; "
	  "+http://www.google.com/bot.html)", "Googlebot", "Android", "bot",
	  1 },
	{ "Mozilla/5.0 (compatible; bingbot/2.0; "
	  "+http://www.bing.com/bingbot.htm)", "bingbot", NULL, "bot", 1 },
	{ "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
	  "Slackbot", NULL, "bot", 1 },
	{ "facebookexternalhit/1.1 "
	  "(+http://www.facebook.com/externalhit_uatext.php)",
	  "facebookexternalhit", NULL, "bot", 1 },
	{ "Twitterbot/1.0", "Twitterbot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
	  "Discordbot", NULL, "bot", 1 },
	{ "WhatsApp/2.23.20.0 A", "WhatsApp", NULL, "bot", 1 },
	{ "TelegramBot (like TwitterBot)", "TelegramBot", NULL, "bot", 1 },
	{ "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient "
	  "+http://www.linkedin.com)", "LinkedInBot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 "
	  "(KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; "
	  "+http://www.apple.com/go/applebot)", "Applebot", "macOS", "bot", 1 },
	{ "Mozilla/5.0 (compatible; YandexBot/3.0; "
	  "+http://yandex.com/bots)", "YandexBot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (compatible; Baiduspider/2.0; "
	  "+http://www.baidu.com/search/spider.html)", "Baiduspider", NULL,
	  "bot", 1 },
	{ "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
	  "DuckDuckBot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
	  "other bot", NULL, "bot", 1 },
	{ "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
	  "(KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36",
	  "headless browser", "Windows", "bot", 1 },
	/* scripts */
	{ "curl/8.5.0", "curl", NULL, "bot", 1 },
	{ "Wget/1.21.4", "Wget", NULL, "bot", 1 },
	{ "python-requests/2.31.0", "python-requests", NULL, "bot", 1 },
	{ "Go-http-client/1.1", "script", NULL, "bot", 1 },
	{ "Python-urllib/3.11", "script", NULL, "bot", 1 },
	/* nothing to go by */
	{ "", NULL, NULL, NULL, 0 },
	{ "Mozilla/5.0", NULL, NULL, NULL, 0 },
};

static int
same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

UNIT_TEST(user_agents)
{
	struct ua_class	 c;
	size_t		 i;

	CHECK(sizeof(ua_cases) / sizeof(ua_cases[0]) >= 30);
	for (i = 0; i < sizeof(ua_cases) / sizeof(ua_cases[0]); i++) {
		const struct ua_case *t = &ua_cases[i];

		ua_classify(t->ua, strlen(t->ua), &c);
		if (!same(ua_browser_name(c.browser), t->browser) ||
		    !same(ua_os_name(c.os), t->os) ||
		    !same(ua_device_name(c.device), t->device) ||
		    c.bot != t->bot || (c.device == UA_D_BOT) != c.bot) {
			fprintf(stderr, "%s\n  got %s / %s / %s / bot %d\n",
			    t->ua, ua_browser_name(c.browser),
			    ua_os_name(c.os), ua_device_name(c.device), c.bot);
			*failed = 1;
		}
	}
}

/* Case does not matter, only the first KiB is looked at, and any bytes
 * are fine. */
UNIT_TEST(user_agent_bounds)
{
	struct ua_class	 c;
	char		*big;
	size_t		 n = 100000;

	ua_classify("CURL/7.0", 8, &c);
	CHECK(c.bot && c.browser == UA_B_CURL);
	ua_classify(NULL, 0, &c);
	CHECK(!c.bot && c.browser == 0 && c.os == 0 && c.device == 0);
	CHECK((big = malloc(n)) != NULL);
	memset(big, 'A', n);
	memcpy(big + n - 10, "Googlebot/", 10);
	ua_classify(big, n, &c);
	CHECK(!c.bot);
	memcpy(big + 100, "Googlebot/", 10);
	big[50] = '\0';
	big[51] = (char)0xff;
	ua_classify(big, n, &c);
	CHECK(c.bot && c.browser == UA_B_GOOGLEBOT);
	free(big);
	CHECK(ua_browser_name(UA_BROWSERS) == NULL);
	CHECK(ua_browser_name(255) == NULL && ua_os_name(99) == NULL &&
	    ua_device_name(99) == NULL);
}

struct ref_case {
	const char	*ref;
	const char	*host;		/* NULL: none */
};

static const struct ref_case ref_cases[] = {
	{ "https://www.google.com/", "www.google.com" },
	{ "https://t.co/abc?x=1", "t.co" },
	{ "HTTP://News.YCombinator.com:8080/item?id=1", "news.ycombinator.com" },
	{ "https://user:pw@example.org/path", "example.org" },
	{ "https://a@b@evil.example/", "evil.example" },
	{ "android-app://com.google.android.gm/", "com.google.android.gm" },
	{ "http://[2001:db8::1]:8080/x", "[2001:db8::1]" },
	{ "http://192.0.2.7/", "192.0.2.7" },
	{ "https://example.com.", "example.com" },
	{ "https://example.com#frag", "example.com" },
	{ "https://example.com?q", "example.com" },
	{ "", NULL },
	{ "/relative/path", NULL },
	{ "example.com/no-scheme", NULL },
	{ "https://", NULL },
	{ "https:///path", NULL },
	{ "https://exa mple.com/", NULL },
	{ "https://ex\"ample.com/", NULL },
	{ "https://ex%41mple.com/", NULL },
	{ "https://[::1/", NULL },
	{ "https://[zz]/", NULL },
	{ "1http://example.com/", NULL },
	{ "javascript:alert(1)", NULL },
};

UNIT_TEST(referers)
{
	char	 out[REFERER_HOST_MAX + 1], small[8], *big;
	size_t	 i, n = 5000;
	int	 len;

	for (i = 0; i < sizeof(ref_cases) / sizeof(ref_cases[0]); i++) {
		const struct ref_case *t = &ref_cases[i];

		len = referer_host(t->ref, strlen(t->ref), out, sizeof(out));
		if (t->host == NULL ? len != 0 : (len != (int)strlen(t->host) ||
		    strcmp(out, t->host) != 0)) {
			fprintf(stderr, "%s: got %d \"%s\"\n", t->ref, len,
			    len > 0 ? out : "");
			*failed = 1;
		}
	}
	/* Cut to the buffer, always terminated. */
	CHECK(referer_host("https://abcdefghijkl.example/", 29, small,
	    sizeof(small)) == 7 && strcmp(small, "abcdefg") == 0);
	CHECK(referer_host("https://x.example/", 18, small, 1) == 0);
	/* A huge host is cut to REFERER_HOST_MAX. */
	CHECK((big = malloc(n)) != NULL);
	memcpy(big, "https://", 8);
	memset(big + 8, 'a', n - 8);
	CHECK(referer_host(big, n, out, sizeof(out)) == REFERER_HOST_MAX &&
	    strlen(out) == REFERER_HOST_MAX);
	big[100] = (char)0x80;
	CHECK(referer_host(big, n, out, sizeof(out)) == 0);
	free(big);
}

UNIT_MAIN(UNIT(user_agents), UNIT(user_agent_bounds), UNIT(referers))
