/*
 * id.c — short ids and the names a path segment may carry.
 *
 * Ids are ID_LEN characters of base62 drawn from getrandom(2).  Words
 * the site needs for itself (users, metrics, health, ...) are never
 * handed out, and custom aliases may not take them either.
 *
 * Pure: no logging, no global mutable state.
 */

#include <sys/random.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "workers.h"

#define ID_TRIES	64	/* reserved draws in a row before giving up */

static const char id_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Paths the site keeps for itself, whatever their case. */
static const char *const id_reserved_words[] = {
	"users", "metrics", "health", "healthz", "ui", "api", "static",
	"assets", "admin", "login", "logout", "signup", "register",
	"status", "favicon.ico", "robots.txt", "www", "docs", "openapi",
	"openapi.json", "qr", "stats", "about", "help", "export", "import",
	NULL
};

static int	id_random(unsigned char *, size_t);
static int	id_draw(char out[ID_LEN + 1]);

/* Fill p with n random bytes; 0, or -1 if the kernel gives none. */
static int
id_random(unsigned char *p, size_t n)
{
	ssize_t	 r;

	while (n > 0) {
		r = getrandom(p, n, 0);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * n random base62 characters.  A byte is used only if it is below 248
 * (= 4 * 62), so byte % 62 is uniform: rejection sampling instead of
 * modulo bias.
 */
int
id_base62(char *out, size_t len)
{
	unsigned char	 pool[32];
	size_t		 have = 0, used = 0, n = 0;

	while (n < len) {
		if (used == have) {
			if (id_random(pool, sizeof(pool)) == -1)
				return -1;
			have = sizeof(pool);
			used = 0;
		}
		if (pool[used] < 248)
			out[n++] = id_alphabet[pool[used] % 62];
		used++;
	}
	out[len] = '\0';
	explicit_bzero(pool, sizeof(pool));
	return 0;
}

/* One candidate id. */
static int
id_draw(char out[ID_LEN + 1])
{
	return id_base62(out, ID_LEN);
}

int
id_generate(char out[ID_LEN + 1])
{
	int	 i;

	for (i = 0; i < ID_TRIES; i++) {
		if (id_draw(out) == -1)
			return -1;
		if (!id_reserved(out, ID_LEN))
			return 0;
	}
	return -1;
}

int
id_reserved(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL)
		return 0;
	for (i = 0; id_reserved_words[i] != NULL; i++)
		if (strlen(id_reserved_words[i]) == len &&
		    strncasecmp(s, id_reserved_words[i], len) == 0)
			return 1;
	return 0;
}

/* An id a path may name: 1..ID_MAX of [A-Za-z0-9_-]. */
int
id_valid(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL || len == 0 || len > ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * A custom alias asked for on POST /: the characters of an id, at
 * least ALIAS_MIN of them (shorter ones would be easy to guess and to
 * squat), not starting with '_' or '-' (they read as flags and
 * separators), and never a word the site keeps for itself.
 */
int
id_alias_check(const char *s, size_t len, char *err, size_t errlen)
{
	const char	*why = NULL;

	if (s == NULL || len < ALIAS_MIN || len > ID_MAX)
		why = "id must be 3 to 64 characters long";
	else if (!id_valid(s, len))
		why = "id may only contain A-Z, a-z, 0-9, '_' and '-'";
	else if (s[0] == '_' || s[0] == '-')
		why = "id must not start with '_' or '-'";
	else if (id_reserved(s, len))
		why = "this id is a reserved word";
	if (why == NULL)
		return 0;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return -1;
}

int
username_valid(const char *s, size_t len)
{
	size_t	 i;

	if (s == NULL || len == 0 || len > JWT_SUB_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '@' || s[i] == '-'))
			return 0;
	return 1;
}

uint32_t
id_hash(const char *id)
{
	uint32_t	 h = 2166136261u;

	for (; *id != '\0'; id++) {
		h ^= (unsigned char)*id;
		h *= 16777619u;
	}
	return h;
}
