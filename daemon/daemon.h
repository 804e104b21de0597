/*
 * daemon/ — the master process: options, configuration, logging,
 * pools and signals.  The configuration struct and the log functions
 * are also read by workers (they run in processes forked from here).
 */
#ifndef SHORTD_DAEMON_H
#define SHORTD_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHORTD_VERSION		"0.1.0"
#define SHORTD_SCHEMA_VERSION	5

enum pool_kind {
	POOL_AUTH = 0,
	POOL_SHORTENER = 1,
	POOL_COUNT
};

struct pool_config {
	int	 enabled;
	char	 listen[256];	/* "/path/to.sock" or "host:port" */
	int	 workers;	/* static pool of this size; 0 = dynamic */
	int	 workers_min;	/* dynamic: never fewer workers */
	int	 workers_max;	/* dynamic: never more */
	int	 spare_min;	/* grow while fewer are available */
	int	 spare_max;	/* retire idle ones above this */
	int	 max_requests;	/* a worker exits after this many; 0 = never */
	int	 request_timeout; /* s one request may run; 0 = no limit */
};

/*
 * Everything read from shortd.conf and SHORTD_* variables.  Filled by
 * config_load(); plain data, copied into each worker at fork.
 */
struct config {
	char	 path[512];		/* the file it came from */

	/* process */
	char	 user[64];		/* drop privileges to ("" = stay) */
	char	 group[64];
	char	 listen_group[64];	/* of the unix sockets ("" = group) */
	char	 pid_file[512];
	char	 log_file[512];		/* "" = stderr */
	int	 log_level;		/* 0 err, 1 warn, 2 info, 3 debug */
	int	 shutdown_timeout;	/* s */

	/* listening sockets and pools */
	struct pool_config pool[POOL_COUNT];
	unsigned listen_mode;		/* unix socket mode, e.g. 0660 */
	int	 listen_backlog;
	char	 status_listen[256];	/* /metrics and /status; "" = off */

	/* requests */
	size_t	 max_body;		/* bytes; larger -> 413 */
	size_t	 import_max_bytes;	/* bytes of a POST /import body */
	size_t	 max_params;		/* bytes of FastCGI params -> 431 */
	int	 read_timeout;		/* s to receive a whole request */
	int	 idle_timeout;		/* s a kept connection may idle */

	/* database */
	char	 db_host[256];		/* "" or "localhost" = unix socket */
	int	 db_port;
	char	 db_socket[512];
	char	 db_user[64];
	char	 db_password[256];
	char	 db_name[64];
	int	 db_connect_timeout;	/* s */
	int	 db_retry_after;	/* s, Retry-After on 503 */

	/* auth */
	char	 jwt_secret[512];	/* from SHORTD_JWT_SECRET or the file */
	size_t	 jwt_secret_len;
	char	 jwt_secret_file[512];
	int	 jwt_lifetime;		/* s */
	int	 jwt_leeway;		/* s */
	uint32_t argon2_memory;		/* KiB */
	uint32_t argon2_iterations;
	uint32_t argon2_parallelism;
	size_t	 password_min;		/* bytes */

	/* shortener */
	int	 redirect_status;	/* 301, 302, 307, 308 */
	int	 redirect_max_age;	/* s, Cache-Control on redirects */
	int	 legacy_redirect;	/* 301 + body, no Location */
	int	 redirect_cache;	/* 0: off (the old per-worker size,
					   otherwise ignored) */
	int	 redirect_cache_mb;	/* the pool's shared cache, 0: off */
	int	 redirect_cache_ttl;	/* ms, bound for other writers */
	int	 list_default_limit;
	int	 list_max_limit;

	/* link features */
	char	 public_url[512];	/* base of short_url; "" = from the
					   request's scheme and Host */
	int	 count_visits;		/* count redirects for /:id/stats */
	int	 visits_flush_ms;	/* bound on the counts' delay */
	int	 analytics;		/* record visits (needs count_visits) */
	char	 geoip_db[512];		/* MaxMind DB for countries, "" none */
	int	 visits_keep_days;	/* older visit rows are rolled up */
	int	 qr_max_age;		/* s, Cache-Control on /:id/qr */
};

/* config.c */
void	config_defaults(struct config *);
/* Read file (may be NULL for defaults + environment), apply SHORTD_*
 * overrides, validate.  Returns 0, or -1 with a message in err. */
int	config_load(struct config *, const char *file, char *err, size_t);
void	config_dump(const struct config *, int fd);

/* log.c: one line per event.  fatal*() only while starting up. */
void	log_init(const char *file, int level, const char *ident);
int	log_reopen(void);
void	log_setident(const char *ident);
void	log_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* pool.c: listening sockets: the pools' and, after them, the status
 * process's. */
#define NLISTEN		(POOL_COUNT + 1)
#define LISTEN_STATUS	POOL_COUNT	/* index of the status socket */
int	pool_listen(const char *spec, unsigned mode, int backlog,
	    char *err, size_t errlen);
const char *pool_unix_path(const char *spec);
const char *pool_listen_spec(const struct config *, int i);

/* pool.c: the shortener pool's shared redirect cache, mapped by the
 * master before it forks (mb MiB; 0 maps nothing).  0, or -1 with err
 * filled.  pool_cache_unmap() forgets the map; workers forked from it
 * keep their own. */
struct shc_map;
int	pool_cache_map(struct shc_map *, size_t mb, char *err, size_t errlen);
void	pool_cache_unmap(struct shc_map *);
/* Map, remap or unmap it as cfg says (at start and on reload). */
void	pool_cache_config(struct shc_map *, const struct config *);

/* health.c: one FastCGI request to a pool's socket -> HTTP status,
 * or -1 with the reason in err (for `shortd -H`). */
int	health_probe(const struct config *, enum pool_kind, int timeout_ms,
	    char *err, size_t errlen);

/* clock.c: CLOCK_MONOTONIC in milliseconds */
int64_t	mono_ms(void);

/* master.c */
int	master_run(const char *config_file, struct config *, int foreground);

/* startup.c: once, around the master's loop */
void	notify(const char *msg);	/* sd_notify(3) */
void	notify_reloading(void);
void	drop_privileges(const struct config *);
void	daemonize(const struct config *);
void	write_pidfile(const char *path);
/* A wrong schema version is fatal; an unreachable database is not. */
void	check_schema(const struct config *);

#endif /* SHORTD_DAEMON_H */
