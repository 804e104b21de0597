/*
 * shortd.conf and SHORTD_* environment variables -> struct config.
 *
 * One table lists every key: its type, where it lives in the struct,
 * its bounds and its default.  The file is read first, the environment
 * then overrides any key (SHORTD_ + the key in upper case), and the
 * result is validated as a whole.  Nothing here exits: errors go to
 * the caller's buffer, so a bad file on HUP keeps the old one running.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "../workers/workers.h"

enum ctype { C_STR, C_INT, C_SIZE, C_U32, C_BOOL, C_MODE, C_LEVEL };

struct ckey {
	const char	*name;
	enum ctype	 type;
	size_t		 off;
	size_t		 size;		/* C_STR: buffer size */
	long long	 min, max;
	const char	*def;
};

#define S(k, f, d)	{ k, C_STR, offsetof(struct config, f), \
			  sizeof(((struct config *)0)->f), 0, 0, d }
#define I(k, f, lo, hi, d) { k, C_INT, offsetof(struct config, f), 0, \
			  lo, hi, d }
#define Z(k, f, lo, hi, d) { k, C_SIZE, offsetof(struct config, f), 0, \
			  lo, hi, d }
#define U(k, f, lo, hi, d) { k, C_U32, offsetof(struct config, f), 0, \
			  lo, hi, d }
#define B(k, f, d)	{ k, C_BOOL, offsetof(struct config, f), 0, 0, 1, d }

static const struct ckey keys[] = {
	S("user", user, ""),
	S("group", group, ""),
	S("pid_file", pid_file, ""),
	S("log_file", log_file, ""),
	{ "log_level", C_LEVEL, offsetof(struct config, log_level), 0, 0, 3,
	  "info" },
	I("shutdown_timeout", shutdown_timeout, 1, 3600, "30"),

	B("auth_enabled", pool[POOL_AUTH].enabled, "yes"),
	S("auth_listen", pool[POOL_AUTH].listen, "/run/shortd/auth.sock"),
	I("auth_workers", pool[POOL_AUTH].workers, 0, 1024, "0"),
	I("auth_workers_min", pool[POOL_AUTH].workers_min, 1, 1024, "2"),
	I("auth_workers_max", pool[POOL_AUTH].workers_max, 0, 1024, "0"),
	I("auth_spare_min", pool[POOL_AUTH].spare_min, 0, 1024, "1"),
	I("auth_spare_max", pool[POOL_AUTH].spare_max, 1, 1024, "3"),
	I("auth_max_requests", pool[POOL_AUTH].max_requests, 0, INT_MAX,
	    "0"),
	I("auth_request_timeout", pool[POOL_AUTH].request_timeout, 0, 3600,
	    "30"),
	B("shortener_enabled", pool[POOL_SHORTENER].enabled, "yes"),
	S("shortener_listen", pool[POOL_SHORTENER].listen,
	    "/run/shortd/shortener.sock"),
	I("shortener_workers", pool[POOL_SHORTENER].workers, 0, 1024, "0"),
	I("shortener_workers_min", pool[POOL_SHORTENER].workers_min, 1, 1024,
	    "2"),
	I("shortener_workers_max", pool[POOL_SHORTENER].workers_max, 1, 1024,
	    "8"),
	I("shortener_spare_min", pool[POOL_SHORTENER].spare_min, 0, 1024,
	    "1"),
	I("shortener_spare_max", pool[POOL_SHORTENER].spare_max, 1, 1024,
	    "3"),
	I("shortener_max_requests", pool[POOL_SHORTENER].max_requests, 0,
	    INT_MAX, "0"),
	I("shortener_request_timeout", pool[POOL_SHORTENER].request_timeout,
	    0, 3600, "30"),
	{ "listen_mode", C_MODE, offsetof(struct config, listen_mode), 0,
	  0, 0777, "0660" },
	S("listen_group", listen_group, ""),
	I("listen_backlog", listen_backlog, 1, 65535, "1024"),
	S("status_listen", status_listen, "/run/shortd/status.sock"),

	Z("max_body", max_body, 1024, 64LL << 20, "65536"),
	Z("import_max_bytes", import_max_bytes, 1024, 1LL << 30, "67108864"),
	Z("max_params", max_params, 1024, 1LL << 20, "65536"),
	I("read_timeout", read_timeout, 1, 3600, "10"),
	I("idle_timeout", idle_timeout, 1, 86400, "60"),

	S("db_host", db_host, "localhost"),
	I("db_port", db_port, 1, 65535, "3306"),
	S("db_socket", db_socket, "/run/mysqld/mysqld.sock"),
	S("db_user", db_user, "shortd"),
	S("db_password", db_password, ""),
	S("db_name", db_name, "shortd"),
	I("db_connect_timeout", db_connect_timeout, 1, 300, "2"),
	I("db_retry_after", db_retry_after, 1, 3600, "1"),

	S("jwt_secret", jwt_secret, ""),
	S("jwt_secret_file", jwt_secret_file, ""),
	I("jwt_lifetime", jwt_lifetime, 60, 30 * 86400, "3600"),
	I("jwt_leeway", jwt_leeway, 0, 600, "30"),
	U("argon2_memory", argon2_memory, 8, 4 << 20, "19456"),
	U("argon2_iterations", argon2_iterations, 1, 100, "2"),
	U("argon2_parallelism", argon2_parallelism, 1, 64, "1"),
	Z("password_min_length", password_min, 1, 1024, "1"),

	I("redirect_status", redirect_status, 301, 308, "301"),
	I("redirect_max_age", redirect_max_age, 0, 365 * 86400, "300"),
	B("legacy_redirect", legacy_redirect, "no"),
	I("redirect_cache", redirect_cache, 0, 1048576, "1"),
	I("redirect_cache_mb", redirect_cache_mb, 0, 65536, "64"),
	I("redirect_cache_ttl", redirect_cache_ttl, 1, 3600000, "60000"),
	I("list_default_limit", list_default_limit, 1, 1000, "100"),
	I("list_max_limit", list_max_limit, 1, 1000, "1000"),

	S("public_url", public_url, ""),
	B("count_visits", count_visits, "yes"),
	I("visits_flush_ms", visits_flush_ms, 10, 60000, "1000"),
	B("analytics", analytics, "yes"),
	S("geoip_db", geoip_db, ""),
	I("visits_keep_days", visits_keep_days, 1, 36500, "365"),
	I("qr_max_age", qr_max_age, 0, 365 * 86400, "86400"),
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const char *levels[] = { "err", "warn", "info", "debug" };

static const struct ckey *
config_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int
parse_ll(const char *s, int base, long long *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, base);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Store value for key k into c.  -1 with a message on a bad value. */
static int
config_set(struct config *c, const struct ckey *k, const char *value,
    char *err, size_t errlen)
{
	char		*p = (char *)c + k->off;
	long long	 v;
	size_t		 i;

	switch (k->type) {
	case C_STR:
		if (strlen(value) >= k->size) {
			snprintf(err, errlen, "%s: value too long (max %zu "
			    "bytes)", k->name, k->size - 1);
			return -1;
		}
		memcpy(p, value, strlen(value) + 1);
		return 0;
	case C_BOOL:
		if (strcasecmp(value, "yes") == 0 ||
		    strcasecmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0)
			*(int *)p = 1;
		else if (strcasecmp(value, "no") == 0 ||
		    strcasecmp(value, "false") == 0 ||
		    strcmp(value, "0") == 0 || strcasecmp(value, "off") == 0)
			*(int *)p = 0;
		else {
			snprintf(err, errlen, "%s: \"%s\" is not yes or no",
			    k->name, value);
			return -1;
		}
		return 0;
	case C_LEVEL:
		for (i = 0; i < 4; i++)
			if (strcasecmp(value, levels[i]) == 0) {
				*(int *)p = (int)i;
				return 0;
			}
		snprintf(err, errlen, "%s: \"%s\" is not err, warn, info or "
		    "debug", k->name, value);
		return -1;
	default:
		break;
	}
	if (parse_ll(value, k->type == C_MODE ? 8 : 10, &v) == -1) {
		snprintf(err, errlen, "%s: \"%s\" is not a%s number", k->name,
		    value, k->type == C_MODE ? "n octal" : "");
		return -1;
	}
	if (v < k->min || v > k->max) {
		snprintf(err, errlen, "%s: %lld is out of range %lld..%lld",
		    k->name, v, k->min, k->max);
		return -1;
	}
	switch (k->type) {
	case C_INT:
		*(int *)p = (int)v;
		break;
	case C_SIZE:
		*(size_t *)p = (size_t)v;
		break;
	case C_U32:
	case C_MODE:
		*(uint32_t *)p = (uint32_t)v;
		break;
	default:
		break;
	}
	return 0;
}

void
config_defaults(struct config *c)
{
	char	 err[256];
	size_t	 i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NKEYS; i++)
		(void)config_set(c, &keys[i], keys[i].def, err, sizeof(err));
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
config_read_file(struct config *c, const char *file, char *err,
    size_t errlen)
{
	FILE		*f;
	char		 line[1024], msg[512], *k, *v, *eq;
	const struct ckey *key;
	int		 lineno = 0, rc = 0;

	if ((f = fopen(file, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line too long", file,
			    lineno);
			rc = -1;
			break;
		}
		k = trim(line);
		if (*k == '#' || *k == '\0')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value",
			    file, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		/* A '#' after whitespace starts a comment, unless quoted. */
		if (*v == '"') {
			char *q = strrchr(v + 1, '"');

			if (q == NULL || trim(q + 1)[0] != '\0') {
				snprintf(err, errlen, "%s:%d: unterminated "
				    "quote", file, lineno);
				rc = -1;
				break;
			}
			*q = '\0';
			v++;
		} else {
			char *h = strstr(v, " #");

			if (h == NULL)
				h = strstr(v, "\t#");
			if (h != NULL) {
				*h = '\0';
				v = trim(v);
			}
		}
		if ((key = config_find(k)) == NULL) {
			snprintf(err, errlen, "%s:%d: unknown key \"%s\"",
			    file, lineno, k);
			rc = -1;
			break;
		}
		if (config_set(c, key, v, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s:%d: %s", file, lineno, msg);
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

static int
config_read_env(struct config *c, char *err, size_t errlen)
{
	char	 name[128], msg[512];
	size_t	 i, j;
	const char *v;

	for (i = 0; i < NKEYS; i++) {
		snprintf(name, sizeof(name), "SHORTD_%s", keys[i].name);
		for (j = 7; name[j] != '\0'; j++)
			name[j] = (char)toupper((unsigned char)name[j]);
		if ((v = getenv(name)) == NULL)
			continue;
		if (config_set(c, &keys[i], v, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "environment %s: %s", name, msg);
			return -1;
		}
	}
	return 0;
}

/* Load the JWT secret from jwt_secret (environment) or the file. */
static int
config_secret(struct config *c, char *err, size_t errlen)
{
	ssize_t	 n;
	int	 fd;

	if (c->jwt_secret[0] == '\0' && c->jwt_secret_file[0] != '\0') {
		if ((fd = open(c->jwt_secret_file, O_RDONLY | O_CLOEXEC))
		    == -1) {
			snprintf(err, errlen, "jwt_secret_file %s: %s",
			    c->jwt_secret_file, strerror(errno));
			return -1;
		}
		n = read(fd, c->jwt_secret, sizeof(c->jwt_secret) - 1);
		close(fd);
		if (n < 0) {
			snprintf(err, errlen, "jwt_secret_file %s: %s",
			    c->jwt_secret_file, strerror(errno));
			return -1;
		}
		c->jwt_secret[n] = '\0';
		/* A trailing newline is an editor's, not the secret's. */
		while (n > 0 && (c->jwt_secret[n - 1] == '\n' ||
		    c->jwt_secret[n - 1] == '\r'))
			c->jwt_secret[--n] = '\0';
	}
	c->jwt_secret_len = strlen(c->jwt_secret);
	if (c->jwt_secret_len == 0) {
		snprintf(err, errlen, "no JWT secret: set jwt_secret_file or "
		    "SHORTD_JWT_SECRET (at least 32 bytes)");
		return -1;
	}
	if (c->jwt_secret_len < 32) {
		snprintf(err, errlen, "the JWT secret is %zu bytes; at least "
		    "32 are needed", c->jwt_secret_len);
		return -1;
	}
	return 0;
}

/*
 * A pool is static (<pool>_workers > 0: that many workers, always) or
 * dynamic (between workers_min and workers_max, keeping spare_min to
 * spare_max of them available).  A static pool is stored as a dynamic
 * one whose bounds meet, so the master knows one kind only.
 */
static int
config_validate_pool(struct config *c, int p, char *err, size_t errlen)
{
	struct pool_config	*pc = &c->pool[p];
	const char		*name = p == POOL_AUTH ? "auth" : "shortener";
	long			 ncpu;

	if (!pc->enabled)
		return 0;
	if (pc->listen[0] == '\0') {
		snprintf(err, errlen, "%s_listen is empty", name);
		return -1;
	}
	if (pc->workers > 0) {
		pc->workers_min = pc->workers_max = pc->workers;
		return 0;
	}
	/* 0: one per online CPU (auth: a login is CPU, more workers than
	 * cores only wait for one), and never below workers_min. */
	if (pc->workers_max == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		pc->workers_max = ncpu < 1 ? 1 : ncpu > 1024 ? 1024 : (int)ncpu;
		if (pc->workers_max < pc->workers_min)
			pc->workers_max = pc->workers_min;
	}
	if (pc->workers_min > pc->workers_max) {
		snprintf(err, errlen, "%s_workers_min %d exceeds "
		    "%s_workers_max %d", name, pc->workers_min, name,
		    pc->workers_max);
		return -1;
	}
	if (pc->spare_min > pc->spare_max) {
		snprintf(err, errlen, "%s_spare_min %d exceeds %s_spare_max %d",
		    name, pc->spare_min, name, pc->spare_max);
		return -1;
	}
	return 0;
}

/*
 * public_url: "" or http(s)://host[:port][/path], which short ids are
 * appended to.  A trailing '/' is dropped so "https://s.example/" and
 * "https://s.example" mean the same.
 */
static int
config_public_url(struct config *c, char *err, size_t errlen)
{
	char	*u = c->public_url;
	size_t	 len, i, scheme;

	if (u[0] == '\0')
		return 0;
	if (strncasecmp(u, "https://", 8) == 0)
		scheme = 8;
	else if (strncasecmp(u, "http://", 7) == 0)
		scheme = 7;
	else {
		snprintf(err, errlen, "public_url: \"%s\" does not start "
		    "with http:// or https://", u);
		return -1;
	}
	len = strlen(u);
	while (len > scheme && u[len - 1] == '/')
		u[--len] = '\0';
	if (len == scheme || u[scheme] == '/') {
		snprintf(err, errlen, "public_url: no host in \"%s\"", u);
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f ||
		    u[i] == '?' || u[i] == '#' || u[i] == '"' ||
		    u[i] == '\\' || (unsigned char)u[i] >= 0x80) {
			snprintf(err, errlen, "public_url: \"%s\" may not "
			    "hold spaces, '?', '#', quotes, backslashes or "
			    "non-ASCII bytes", u);
			return -1;
		}
	return 0;
}

static int
config_validate(struct config *c, char *err, size_t errlen)
{
	int	 p;

	switch (c->redirect_status) {
	case 301: case 302: case 307: case 308:
		break;
	default:
		snprintf(err, errlen, "redirect_status: %d is not 301, 302, "
		    "307 or 308", c->redirect_status);
		return -1;
	}
	if (!c->pool[POOL_AUTH].enabled && !c->pool[POOL_SHORTENER].enabled) {
		snprintf(err, errlen, "auth_enabled and shortener_enabled are "
		    "both off: nothing to run");
		return -1;
	}
	for (p = 0; p < POOL_COUNT; p++) {
		if (config_validate_pool(c, p, err, errlen) == -1)
			return -1;
		if (c->pool[p].enabled &&
		    strcmp(c->pool[p].listen, c->status_listen) == 0) {
			snprintf(err, errlen, "status_listen is %s_listen; "
			    "the status socket needs its own", p == POOL_AUTH ?
			    "auth" : "shortener");
			return -1;
		}
	}
	if (db_hosts_check(c->db_host, err, errlen) == -1)
		return -1;
	if (c->list_default_limit > c->list_max_limit) {
		snprintf(err, errlen, "list_default_limit %d exceeds "
		    "list_max_limit %d", c->list_default_limit,
		    c->list_max_limit);
		return -1;
	}
	if (config_public_url(c, err, errlen) == -1)
		return -1;
	/* Only the shortener pool reads it, and only for analytics. */
	if (c->pool[POOL_SHORTENER].enabled && c->analytics &&
	    c->count_visits && geoip_check(c->geoip_db, err, errlen) == -1)
		return -1;
	return config_secret(c, err, errlen);
}

int
config_load(struct config *c, const char *file, char *err, size_t errlen)
{
	config_defaults(c);
	if (file != NULL) {
		snprintf(c->path, sizeof(c->path), "%s", file);
		if (config_read_file(c, file, err, errlen) == -1)
			return -1;
	}
	if (config_read_env(c, err, errlen) == -1)
		return -1;
	return config_validate(c, err, errlen);
}

/* Print the effective settings (for -t), secrets masked. */
void
config_dump(const struct config *c, int fd)
{
	const char	*p;
	size_t		 i;

	for (i = 0; i < NKEYS; i++) {
		p = (const char *)c + keys[i].off;
		switch (keys[i].type) {
		case C_STR:
			if (strcmp(keys[i].name, "db_password") == 0 ||
			    strcmp(keys[i].name, "jwt_secret") == 0)
				dprintf(fd, "%s = %s\n", keys[i].name,
				    *p ? "(set)" : "");
			else
				dprintf(fd, "%s = %s\n", keys[i].name, p);
			break;
		case C_BOOL:
			dprintf(fd, "%s = %s\n", keys[i].name,
			    *(const int *)p ? "yes" : "no");
			break;
		case C_LEVEL:
			dprintf(fd, "%s = %s\n", keys[i].name,
			    levels[*(const int *)p]);
			break;
		case C_INT:
			dprintf(fd, "%s = %d\n", keys[i].name, *(const int *)p);
			break;
		case C_SIZE:
			dprintf(fd, "%s = %zu\n", keys[i].name,
			    *(const size_t *)p);
			break;
		case C_U32:
			dprintf(fd, "%s = %u\n", keys[i].name,
			    *(const uint32_t *)p);
			break;
		case C_MODE:
			dprintf(fd, "%s = %04o\n", keys[i].name,
			    *(const uint32_t *)p);
			break;
		}
	}
}
