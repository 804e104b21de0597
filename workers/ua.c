/*
 * ua.c — what a visit's User-Agent and Referer headers say, for visit
 * analytics: the browser family, the OS family, the kind of device,
 * whether the visitor is a bot (a crawler, a link previewer, a script),
 * and the referring page's host.
 *
 * Both headers are network input of any size and any bytes: only the
 * first UA_SCAN_MAX bytes of a User-Agent are looked at, matching is
 * ASCII case-insensitive substring search against the small tables
 * below (first match wins, so order matters), and nothing is copied
 * out of the User-Agent.  A Referer gives at most a host of
 * [a-z0-9._-] (or a bracketed IPv6 literal), lowercased and cut to
 * the caller's buffer; anything else is no host at all.
 *
 * Pure: no logging, no allocation, no state.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "workers.h"

#define UA_SCAN_MAX	1024	/* bytes of a User-Agent looked at */
#define REF_SCHEME_MAX	32	/* "android-app" and the like */

struct ua_rule {
	const char	*needle;	/* lowercase */
	uint8_t		 id;
};

/* Names by id; 0 is "unknown" (shown as null). */
static const char *const ua_browsers[UA_BROWSERS] = {
	[UA_B_UNKNOWN] = NULL,
	[UA_B_CHROME] = "Chrome",
	[UA_B_FIREFOX] = "Firefox",
	[UA_B_SAFARI] = "Safari",
	[UA_B_EDGE] = "Edge",
	[UA_B_OPERA] = "Opera",
	[UA_B_SAMSUNG] = "Samsung Internet",
	[UA_B_IE] = "Internet Explorer",
	[UA_B_YANDEX] = "Yandex Browser",
	[UA_B_UC] = "UC Browser",
	[UA_B_VIVALDI] = "Vivaldi",
	[UA_B_FACEBOOK] = "Facebook app",
	[UA_B_INSTAGRAM] = "Instagram app",
	[UA_B_GOOGLEBOT] = "Googlebot",
	[UA_B_BINGBOT] = "bingbot",
	[UA_B_SLACKBOT] = "Slackbot",
	[UA_B_FACEBOOKHIT] = "facebookexternalhit",
	[UA_B_TWITTERBOT] = "Twitterbot",
	[UA_B_DISCORDBOT] = "Discordbot",
	[UA_B_WHATSAPP] = "WhatsApp",
	[UA_B_TELEGRAM] = "TelegramBot",
	[UA_B_LINKEDIN] = "LinkedInBot",
	[UA_B_APPLEBOT] = "Applebot",
	[UA_B_YANDEXBOT] = "YandexBot",
	[UA_B_BAIDU] = "Baiduspider",
	[UA_B_DUCKDUCKBOT] = "DuckDuckBot",
	[UA_B_SKYPE] = "Skype",
	[UA_B_PINTEREST] = "Pinterestbot",
	[UA_B_REDDIT] = "redditbot",
	[UA_B_CURL] = "curl",
	[UA_B_WGET] = "Wget",
	[UA_B_PYREQUESTS] = "python-requests",
	[UA_B_SCRIPT] = "script",
	[UA_B_HEADLESS] = "headless browser",
	[UA_B_BOT] = "other bot",
};

static const char *const ua_oses[UA_OSES] = {
	[UA_O_UNKNOWN] = NULL,
	[UA_O_WINDOWS] = "Windows",
	[UA_O_MACOS] = "macOS",
	[UA_O_IOS] = "iOS",
	[UA_O_ANDROID] = "Android",
	[UA_O_LINUX] = "Linux",
	[UA_O_CHROMEOS] = "Chrome OS",
};

static const char *const ua_devices[UA_DEVICES] = {
	[UA_D_UNKNOWN] = NULL,
	[UA_D_DESKTOP] = "desktop",
	[UA_D_MOBILE] = "mobile",
	[UA_D_TABLET] = "tablet",
	[UA_D_BOT] = "bot",
};

/* Crawlers, link previewers and scripts, before anything else: many
 * of them also say "Mozilla", "Chrome" or "Safari". */
static const struct ua_rule ua_bots[] = {
	{ "googlebot", UA_B_GOOGLEBOT },
	{ "google-inspectiontool", UA_B_GOOGLEBOT },
	{ "bingbot", UA_B_BINGBOT },
	{ "bingpreview", UA_B_BINGBOT },
	{ "slackbot", UA_B_SLACKBOT },
	{ "slack-imgproxy", UA_B_SLACKBOT },
	{ "facebookexternalhit", UA_B_FACEBOOKHIT },
	{ "facebookcatalog", UA_B_FACEBOOKHIT },
	{ "telegrambot", UA_B_TELEGRAM },	/* "like TwitterBot" */
	{ "twitterbot", UA_B_TWITTERBOT },
	{ "discordbot", UA_B_DISCORDBOT },
	{ "whatsapp", UA_B_WHATSAPP },
	{ "linkedinbot", UA_B_LINKEDIN },
	{ "applebot", UA_B_APPLEBOT },
	{ "yandexbot", UA_B_YANDEXBOT },
	{ "yandex.com/bots", UA_B_YANDEXBOT },
	{ "baiduspider", UA_B_BAIDU },
	{ "duckduckbot", UA_B_DUCKDUCKBOT },
	{ "skypeuripreview", UA_B_SKYPE },
	{ "pinterest", UA_B_PINTEREST },
	{ "redditbot", UA_B_REDDIT },
	{ "curl/", UA_B_CURL },
	{ "wget/", UA_B_WGET },
	{ "python-requests", UA_B_PYREQUESTS },
	{ "python-urllib", UA_B_SCRIPT },
	{ "python-httpx", UA_B_SCRIPT },
	{ "aiohttp", UA_B_SCRIPT },
	{ "go-http-client", UA_B_SCRIPT },
	{ "libwww-perl", UA_B_SCRIPT },
	{ "java/", UA_B_SCRIPT },
	{ "apache-httpclient", UA_B_SCRIPT },
	{ "node-fetch", UA_B_SCRIPT },
	{ "axios/", UA_B_SCRIPT },
	{ "httpie/", UA_B_SCRIPT },
	{ "headlesschrome", UA_B_HEADLESS },
	{ "phantomjs", UA_B_HEADLESS },
	{ "bot/", UA_B_BOT },
	{ "bot;", UA_B_BOT },
	{ "bot)", UA_B_BOT },
	{ "crawler", UA_B_BOT },
	{ "spider", UA_B_BOT },
	{ "preview", UA_B_BOT },
	{ "+http", UA_B_BOT },
};

/* Browsers, the specific before the ones they imitate: Edge and Opera
 * say Chrome, Chrome says Safari. */
static const struct ua_rule ua_browser_rules[] = {
	{ "fban/", UA_B_FACEBOOK },
	{ "fbav/", UA_B_FACEBOOK },
	{ "instagram", UA_B_INSTAGRAM },
	{ "edg/", UA_B_EDGE },
	{ "edge/", UA_B_EDGE },
	{ "edga/", UA_B_EDGE },
	{ "edgios/", UA_B_EDGE },
	{ "opr/", UA_B_OPERA },
	{ "opera", UA_B_OPERA },
	{ "samsungbrowser", UA_B_SAMSUNG },
	{ "yabrowser", UA_B_YANDEX },
	{ "ucbrowser", UA_B_UC },
	{ "vivaldi", UA_B_VIVALDI },
	{ "firefox/", UA_B_FIREFOX },
	{ "fxios/", UA_B_FIREFOX },
	{ "crios/", UA_B_CHROME },
	{ "chrome/", UA_B_CHROME },
	{ "chromium/", UA_B_CHROME },
	{ "msie ", UA_B_IE },
	{ "trident/", UA_B_IE },
	{ "safari/", UA_B_SAFARI },
	{ "applewebkit/", UA_B_SAFARI },
};

static const struct ua_rule ua_os_rules[] = {
	{ "windows", UA_O_WINDOWS },
	{ "iphone", UA_O_IOS },
	{ "ipad", UA_O_IOS },
	{ "ipod", UA_O_IOS },
	{ "like mac os x", UA_O_IOS },
	{ "android", UA_O_ANDROID },
	{ "cros ", UA_O_CHROMEOS },
	{ "macintosh", UA_O_MACOS },
	{ "mac os x", UA_O_MACOS },
	{ "linux", UA_O_LINUX },
	{ "x11", UA_O_LINUX },
};

static int
ua_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* 1 if needle (lowercase, non-empty) is in s[0..len), ignoring the
 * case of ASCII letters. */
static int
ua_has(const char *s, size_t len, const char *needle)
{
	size_t	 n = strlen(needle), i, j;

	if (n > len)
		return 0;
	for (i = 0; i + n <= len; i++) {
		if (ua_lower((unsigned char)s[i]) != needle[0])
			continue;
		for (j = 1; j < n && ua_lower((unsigned char)s[i + j]) ==
		    needle[j]; j++)
			;
		if (j == n)
			return 1;
	}
	return 0;
}

/* The id of the first rule whose needle s holds, or 0. */
static uint8_t
ua_match(const char *s, size_t len, const struct ua_rule *r, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ua_has(s, len, r[i].needle))
			return r[i].id;
	return 0;
}

void
ua_classify(const char *ua, size_t len, struct ua_class *c)
{
	memset(c, 0, sizeof(*c));
	if (ua == NULL || len == 0)
		return;
	if (len > UA_SCAN_MAX)
		len = UA_SCAN_MAX;
	c->os = ua_match(ua, len, ua_os_rules,
	    sizeof(ua_os_rules) / sizeof(ua_os_rules[0]));
	if ((c->browser = ua_match(ua, len, ua_bots,
	    sizeof(ua_bots) / sizeof(ua_bots[0]))) != 0) {
		c->bot = 1;
		c->device = UA_D_BOT;
		return;
	}
	c->browser = ua_match(ua, len, ua_browser_rules,
	    sizeof(ua_browser_rules) / sizeof(ua_browser_rules[0]));
	if (ua_has(ua, len, "ipad") || ua_has(ua, len, "tablet") ||
	    ua_has(ua, len, "kindle") || ua_has(ua, len, "silk/") ||
	    (c->os == UA_O_ANDROID && !ua_has(ua, len, "mobi")))
		c->device = UA_D_TABLET;
	else if (ua_has(ua, len, "mobi") || c->os == UA_O_IOS ||
	    c->os == UA_O_ANDROID || ua_has(ua, len, "phone"))
		c->device = UA_D_MOBILE;
	else if (c->os != UA_O_UNKNOWN)
		c->device = UA_D_DESKTOP;
}

const char *
ua_browser_name(unsigned int id)
{
	return id < UA_BROWSERS ? ua_browsers[id] : NULL;
}

const char *
ua_os_name(unsigned int id)
{
	return id < UA_OSES ? ua_oses[id] : NULL;
}

const char *
ua_device_name(unsigned int id)
{
	return id < UA_DEVICES ? ua_devices[id] : NULL;
}

static int
ref_scheme_char(int c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' ||
	    c == '.');
}

static int
ref_host_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '-' || c == '_';
}

int
referer_host(const char *ref, size_t len, char *out, size_t outlen)
{
	const char	*a, *end, *at;
	size_t		 i, n, hlen;

	if (outlen < 2 || ref == NULL)
		return 0;
	for (i = 0; i < len && i <= REF_SCHEME_MAX &&
	    ref_scheme_char((unsigned char)ref[i], i == 0); i++)
		;
	if (i == 0 || i + 3 > len || memcmp(ref + i, "://", 3) != 0)
		return 0;
	a = ref + i + 3;
	for (end = a; end < ref + len && *end != '/' && *end != '?' &&
	    *end != '#'; end++)
		;
	/* user info: up to the last '@' of the authority */
	for (at = end; at > a && at[-1] != '@'; at--)
		;
	if (at > a)
		a = at;
	if (a < end && *a == '[') {
		/* a bracketed IPv6 literal, brackets kept */
		for (hlen = 1; a + hlen < end && a[hlen] != ']'; hlen++)
			if (!((a[hlen] >= '0' && a[hlen] <= '9') ||
			    (ua_lower((unsigned char)a[hlen]) >= 'a' &&
			    ua_lower((unsigned char)a[hlen]) <= 'f') ||
			    a[hlen] == ':' || a[hlen] == '.'))
				return 0;
		if (a + hlen == end || hlen < 3)
			return 0;
		hlen++;
	} else {
		for (hlen = 0; a + hlen < end && a[hlen] != ':'; hlen++)
			if (!ref_host_char(ua_lower((unsigned char)a[hlen])))
				return 0;
		while (hlen > 0 && a[hlen - 1] == '.')
			hlen--;
		if (hlen == 0)
			return 0;
	}
	n = hlen < outlen - 1 ? hlen : outlen - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)ua_lower((unsigned char)a[i]);
	out[n] = '\0';
	return (int)n;
}
