/*
 * Fuzz config_load(): the input is a whole shortd.conf.  It is written
 * to a memfd and loaded through /proc/self/fd/N, so the real reader
 * (fgets, quoting, comments, the key table, validation) runs on it.
 *
 * To keep the target pure and fast, the environment is pinned: every
 * SHORTD_* variable is removed once, and SHORTD_JWT_SECRET_FILE points
 * at a second memfd holding a good secret, so a jwt_secret_file in the
 * input never makes the loader open a file the fuzzer named (a FIFO or
 * /dev/stdin would block).  An inline jwt_secret still goes through
 * the length checks.
 *
 * Besides "no crash, no leak": an accepted configuration keeps the
 * promises the daemon relies on (strings terminated, numbers inside
 * the table's bounds, a usable pool, a secret of 32 bytes or more),
 * loading the same bytes twice gives the same struct, and a refusal
 * always says why.
 */
#include <sys/mman.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../daemon/daemon.h"

extern char	**environ;

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define ASSERT(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define TERMINATED(a)	(memchr((a), '\0', sizeof(a)) != NULL)

#define FUZZ_SECRET	"0123456789abcdef0123456789abcdef-fuzz"

/* Set up once: the memfd the input goes to, its path, /dev/null. */
static int	 conf_fd = -1, null_fd = -1;
static char	 conf_path[64];

static int
fuzz_memfd(const char *name, const char *text, size_t len)
{
	int	 fd;

	if ((fd = memfd_create(name, MFD_CLOEXEC)) == -1 ||
	    (len > 0 && write(fd, text, len) != (ssize_t)len))
		abort();
	return fd;
}

static void
fuzz_setup(void)
{
	char	 name[128], secret[64];
	size_t	 i, n;
	int	 fd;

	/* Drop every SHORTD_* variable (restart the scan after each:
	 * unsetenv() reshuffles environ). */
	for (i = 0; environ[i] != NULL; i++) {
		if (strncmp(environ[i], "SHORTD_", 7) != 0)
			continue;
		n = strcspn(environ[i], "=");
		if (n >= sizeof(name))
			abort();
		memcpy(name, environ[i], n);
		name[n] = '\0';
		unsetenv(name);
		i = (size_t)-1;
	}
	fd = fuzz_memfd("fuzz-secret", FUZZ_SECRET "\n",
	    sizeof(FUZZ_SECRET));
	snprintf(secret, sizeof(secret), "/proc/self/fd/%d", fd);
	setenv("SHORTD_JWT_SECRET_FILE", secret, 1);
	conf_fd = fuzz_memfd("fuzz-config", "", 0);
	snprintf(conf_path, sizeof(conf_path), "/proc/self/fd/%d", conf_fd);
	if ((null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
		abort();
}

/* What the daemon relies on after a successful config_load(). */
static void
check_accepted(const struct config *c)
{
	int	 p, enabled = 0;

	ASSERT(TERMINATED(c->path) && TERMINATED(c->user) &&
	    TERMINATED(c->group) && TERMINATED(c->pid_file) &&
	    TERMINATED(c->log_file) && TERMINATED(c->db_host) &&
	    TERMINATED(c->db_socket) && TERMINATED(c->db_user) &&
	    TERMINATED(c->db_password) && TERMINATED(c->db_name) &&
	    TERMINATED(c->jwt_secret) && TERMINATED(c->jwt_secret_file) &&
	    TERMINATED(c->status_listen));
	for (p = 0; p < POOL_COUNT; p++) {
		ASSERT(TERMINATED(c->pool[p].listen));
		if (!c->pool[p].enabled)
			continue;
		enabled++;
		ASSERT(c->pool[p].listen[0] != '\0');
		/* static (workers) or dynamic, the bounds always usable */
		ASSERT(c->pool[p].workers >= 0 && c->pool[p].workers <= 1024);
		ASSERT(c->pool[p].workers_min >= 1 &&
		    c->pool[p].workers_min <= c->pool[p].workers_max &&
		    c->pool[p].workers_max <= 1024);
		ASSERT(c->pool[p].workers == 0 ||
		    (c->pool[p].workers_min == c->pool[p].workers &&
		    c->pool[p].workers_max == c->pool[p].workers));
		ASSERT(c->pool[p].max_requests >= 0 &&
		    c->pool[p].request_timeout >= 0);
	}
	ASSERT(enabled > 0);
	ASSERT(c->log_level >= 0 && c->log_level <= 3);
	ASSERT(c->listen_mode <= 0777);
	ASSERT(c->listen_backlog >= 1);
	ASSERT(c->max_body >= 1024 && c->max_params >= 1024);
	ASSERT(c->read_timeout >= 1 && c->idle_timeout >= 1);
	ASSERT(c->db_port >= 1 && c->db_port <= 65535);
	ASSERT(c->jwt_secret_len >= 32 &&
	    c->jwt_secret_len == strlen(c->jwt_secret));
	ASSERT(c->jwt_lifetime >= 60 && c->jwt_leeway >= 0);
	ASSERT(c->argon2_memory >= 8 && c->argon2_iterations >= 1 &&
	    c->argon2_parallelism >= 1);
	ASSERT(c->password_min >= 1 && c->password_min <= 1024);
	ASSERT(c->redirect_status == 301 || c->redirect_status == 302 ||
	    c->redirect_status == 307 || c->redirect_status == 308);
	ASSERT(c->list_default_limit >= 1 &&
	    c->list_default_limit <= c->list_max_limit);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config	 a, b;	/* a few KiB each */
	char			 err[1024], err2[1024];
	int			 ra, rb;

	if (conf_fd == -1)
		fuzz_setup();
	if (ftruncate(conf_fd, 0) == -1 ||
	    (size > 0 && pwrite(conf_fd, data, size, 0) != (ssize_t)size))
		abort();

	memset(err, 'x', sizeof(err));
	ra = config_load(&a, conf_path, err, sizeof(err));
	memset(err2, 'y', sizeof(err2));
	rb = config_load(&b, conf_path, err2, sizeof(err2));
	ASSERT(ra == rb);
	if (ra == 0) {
		check_accepted(&a);
		ASSERT(memcmp(&a, &b, sizeof(a)) == 0);
		config_dump(&a, null_fd);
	} else {
		ASSERT(ra == -1);
		ASSERT(TERMINATED(err) && err[0] != '\0');
		ASSERT(strcmp(err, err2) == 0);
	}
	/* A one-byte error buffer must be safe too. */
	(void)config_load(&b, conf_path, err, 1);
	return 0;
}
