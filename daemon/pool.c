/*
 * Listening sockets: a unix socket path or a TCP host:port.  The master
 * binds them once and keeps them open across reloads; workers inherit
 * them at fork.
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "../proto/shcache.h"

static int
listen_unix(const char *path, unsigned mode, int backlog, char *err,
    size_t errlen)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path longer than %zu bytes",
		    path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* A socket left by a previous run is stale; anything else is not
	 * ours to remove. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s: exists and is not a socket",
			    path);
			return -1;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    chmod(path, mode) == -1 || listen(fd, backlog) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
listen_tcp(const char *spec, int backlog, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL, *ai;
	char		 host[256];
	const char	*port, *colon;
	size_t		 hlen;
	int		 fd = -1, on = 1, rc;

	if ((colon = strrchr(spec, ':')) == NULL) {
		snprintf(err, errlen, "%s: expected host:port or a path",
		    spec);
		return -1;
	}
	port = colon + 1;
	hlen = (size_t)(colon - spec);
	if (hlen >= 2 && spec[0] == '[' && spec[hlen - 1] == ']') {
		spec++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host)) {
		snprintf(err, errlen, "%s: host too long", spec);
		return -1;
	}
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(hlen == 0 || strcmp(host, "*") == 0 ? NULL : host,
	    port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	snprintf(err, errlen, "%s: no usable address", spec);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, backlog) == 0)
			break;
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* The path of a unix socket spec ("/path", "./path", "unix:path"), or
 * NULL for host:port. */
const char *
pool_unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (spec[0] == '/' || spec[0] == '.')
		return spec;
	return NULL;
}

/*
 * Bind and listen on spec: a path (absolute, or prefixed "unix:") is a
 * unix socket created with mode; anything else is host:port.  Returns
 * a non-blocking descriptor, or -1 with a reason in err.
 */
int
pool_listen(const char *spec, unsigned mode, int backlog, char *err,
    size_t errlen)
{
	const char	*path;

	if ((path = pool_unix_path(spec)) != NULL)
		return listen_unix(path, mode, backlog, err, errlen);
	return listen_tcp(spec, backlog, err, errlen);
}

/* The listen spec of socket i in cfg (a pool's, or LISTEN_STATUS), or
 * NULL if cfg has it off. */
const char *
pool_listen_spec(const struct config *cfg, int i)
{
	if (i < POOL_COUNT)
		return cfg->pool[i].enabled ? cfg->pool[i].listen : NULL;
	return cfg->status_listen[0] != '\0' ? cfg->status_listen : NULL;
}

/*
 * The shortener pool's redirect cache: mb MiB of shared memory, mapped
 * before the workers are forked so that they all see the same slots
 * (workers/cache.c, proto/shcache.h).  A memfd names it in
 * /proc/<pid>/maps ("shortd-cache"); where memfd_create is refused,
 * anonymous shared memory does as well.  Pages cost nothing until a
 * link is stored in them.  The seed of the slots' checksums is random
 * per map.
 */
int
pool_cache_map(struct shc_map *cm, size_t mb, char *err, size_t errlen)
{
	size_t	 bytes = mb << 20;
	void	*p;
	int	 fd;

	memset(cm, 0, sizeof(*cm));
	if (mb == 0)
		return 0;
	if ((fd = memfd_create("shortd-cache", MFD_CLOEXEC)) != -1 &&
	    ftruncate(fd, (off_t)bytes) == -1) {
		close(fd);
		fd = -1;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, fd == -1 ?
	    MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED, fd, 0);
	if (fd != -1)
		close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "redirect cache: mmap %zu MiB: %s", mb,
		    strerror(errno));
		return -1;
	}
	if (getrandom(&cm->seed, sizeof(cm->seed), 0) !=
	    (ssize_t)sizeof(cm->seed))
		cm->seed = (uint64_t)(uintptr_t)p ^ (uint64_t)getpid();
	cm->base = p;
	cm->bytes = bytes;
	return 0;
}

void
pool_cache_unmap(struct shc_map *cm)
{
	if (cm->base != NULL)
		munmap(cm->base, cm->bytes);
	memset(cm, 0, sizeof(*cm));
}

/* The shortener pool's cache as cfg wants it: mapped anew when its
 * size changes (the workers of the old generation keep the old map
 * until they exit), kept warm across reloads otherwise.  A map that
 * fails leaves the pool without a cache, not without redirects. */
void
pool_cache_config(struct shc_map *cm, const struct config *cfg)
{
	char	 err[256];
	size_t	 mb = 0;

	if (cfg->pool[POOL_SHORTENER].enabled && cfg->redirect_cache != 0)
		mb = (size_t)cfg->redirect_cache_mb;
	if ((mb << 20) == cm->bytes)
		return;
	pool_cache_unmap(cm);
	if (pool_cache_map(cm, mb, err, sizeof(err)) == -1)
		log_warnx("%s; redirects go to the database", err);
}
