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
 * Pure: no logging, no allocation; the only state is an index of the
 * tables built on first use.
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

/* Words of the device kind, looked for as flags. */
enum { UA_W_IPAD = 1, UA_W_TABLET = 2, UA_W_KINDLE = 4, UA_W_SILK = 8,
    UA_W_MOBI = 16, UA_W_PHONE = 32 };
static const struct ua_rule ua_words[] = {
	{ "ipad", UA_W_IPAD },
	{ "tablet", UA_W_TABLET },
	{ "kindle", UA_W_KINDLE },
	{ "silk/", UA_W_SILK },
	{ "mobi", UA_W_MOBI },
	{ "phone", UA_W_PHONE },
};

#define UA_TABLES	4	/* bots, browsers, OS (first match), words */
#define UA_NEEDLES_MAX	128

static const struct ua_table {
	const struct ua_rule	*rule;
	size_t			 n;
} ua_tables[UA_TABLES] = {
	{ ua_bots, sizeof(ua_bots) / sizeof(ua_bots[0]) },
	{ ua_browser_rules, sizeof(ua_browser_rules) /
	    sizeof(ua_browser_rules[0]) },
	{ ua_os_rules, sizeof(ua_os_rules) / sizeof(ua_os_rules[0]) },
	{ ua_words, sizeof(ua_words) / sizeof(ua_words[0]) },
};

/*
 * Every needle of the tables, by its first byte: the User-Agent is
 * read once, and at each position only the needles starting with its
 * byte are compared (a few, not all of them: about a microsecond for a
 * browser's User-Agent instead of tens).  Built on first use; a worker
 * inherits it ready-made or builds it once.
 */
static struct {
	int		 ready;
	uint16_t	 first[257];		/* bucket of byte c: [c, c+1) */
	struct ua_needle {
		const char	*s;
		uint8_t		 len, table, rank;
	} needle[UA_NEEDLES_MAX];
} ua_index;

static void
ua_index_build(void)
{
	size_t		 t, k, c, n = 0, count[256];

	memset(count, 0, sizeof(count));
	for (t = 0; t < UA_TABLES; t++)
		for (k = 0; k < ua_tables[t].n; k++)
			count[(unsigned char)ua_tables[t].rule[k].needle[0]]++;
	for (c = 0; c < 256; c++) {
		ua_index.first[c] = (uint16_t)n;
		n += count[c];
	}
	ua_index.first[256] = (uint16_t)n;
	memset(count, 0, sizeof(count));
	for (t = 0; t < UA_TABLES; t++)
		for (k = 0; k < ua_tables[t].n; k++) {
			const char *s = ua_tables[t].rule[k].needle;

			c = (unsigned char)s[0];
			ua_index.needle[ua_index.first[c] + count[c]++] =
			    (struct ua_needle){ s, (uint8_t)strlen(s),
			    (uint8_t)t, (uint8_t)k };
		}
	ua_index.ready = 1;
}

void
ua_classify(const char *ua, size_t len, struct ua_class *c)
{
	char		 low[UA_SCAN_MAX];
	uint8_t		 best[UA_TABLES - 1];
	unsigned	 words = 0;
	size_t		 i, k, t;

	memset(c, 0, sizeof(*c));
	if (ua == NULL || len == 0)
		return;
	if (!ua_index.ready)
		ua_index_build();
	if (len > UA_SCAN_MAX)
		len = UA_SCAN_MAX;
	for (i = 0; i < len; i++)
		low[i] = (char)(ua[i] >= 'A' && ua[i] <= 'Z' ?
		    ua[i] + ('a' - 'A') : ua[i]);
	memset(best, 0xff, sizeof(best));
	for (i = 0; i < len; i++) {
		unsigned char b = (unsigned char)low[i];

		for (k = ua_index.first[b]; k < ua_index.first[b + 1]; k++) {
			const struct ua_needle *n = &ua_index.needle[k];

			if (n->len > len - i ||
			    memcmp(low + i, n->s, n->len) != 0)
				continue;
			if (n->table == UA_TABLES - 1)
				words |= ua_words[n->rank].id;
			else if (n->rank < best[n->table])
				best[n->table] = n->rank;
		}
	}
	/* The first rule of each table that matched anywhere. */
	if (best[2] != 0xff)
		c->os = ua_os_rules[best[2]].id;
	if (best[0] != 0xff) {
		c->browser = ua_bots[best[0]].id;
		c->bot = 1;
		c->device = UA_D_BOT;
		return;
	}
	if (best[1] != 0xff)
		c->browser = ua_browser_rules[best[1]].id;
	t = words;
	if ((t & (UA_W_IPAD | UA_W_TABLET | UA_W_KINDLE | UA_W_SILK)) ||
	    (c->os == UA_O_ANDROID && !(t & UA_W_MOBI)))
		c->device = UA_D_TABLET;
	else if ((t & (UA_W_MOBI | UA_W_PHONE)) || c->os == UA_O_IOS ||
	    c->os == UA_O_ANDROID)
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
ua_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
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
