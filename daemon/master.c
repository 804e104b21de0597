/*
 * The master: binds the pools' listening sockets, forks their workers,
 * restarts the ones that die (backing off when they die young), and
 * turns signals into work in its loop:
 *
 *   TERM, INT, QUIT  stop: workers finish what they read, then exit 0
 *   HUP              re-read the configuration; a bad one changes
 *                    nothing; a good one gets a new generation of
 *                    workers while the old one finishes its requests.
 *                    The listening sockets stay open throughout.
 *   USR1             reopen the log file (and the workers')
 *
 * Signal handlers only write the signal number to a self-pipe.  The
 * master never serves a request and never waits on a worker.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "../workers/workers.h"

#define BACKOFF_MAX_MS	10000
#define YOUNG_MS	5000	/* a worker dying younger than this is a
				   sign of a crash loop */

struct slot {
	pid_t	 pid;
	int	 pool;
	unsigned gen;
	int	 retiring;	/* told to finish and exit */
	int64_t	 started;	/* ms, monotonic */
};

struct master {
	struct config	 cfg;
	const char	*file;
	int		 lfd[POOL_COUNT];
	char		 lspec[POOL_COUNT][256];
	struct slot	*slots;
	size_t		 nslots;
	unsigned	 gen;
	int		 stopping;
	int64_t		 stop_deadline;
	int		 killed;	/* SIGKILL sent after the deadline */
	int		 fails[POOL_COUNT];
	int64_t		 next_spawn[POOL_COUNT];
};

/* The self-pipe's write end, the one thing signal handlers touch. */
static int sigpipe_w = -1;

static const char *pool_names[POOL_COUNT] = { "auth", "shortener" };

static int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
master_sighandler(int sig)
{
	int		 saved = errno;
	unsigned char	 c = (unsigned char)sig;

	(void)!write(sigpipe_w, &c, 1);
	errno = saved;
}

/* sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. */
static void
notify(const char *msg)
{
	struct sockaddr_un	 sun;
	const char		*path = getenv("NOTIFY_SOCKET");
	socklen_t		 len;
	int			 fd;

	if (path == NULL || path[0] == '\0' ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (sun.sun_path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	(void)sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len);
	close(fd);
}

static const char *
unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (spec[0] == '/' || spec[0] == '.')
		return spec;
	return NULL;
}

/* Bind the sockets of cfg's pools that m does not have yet.  On any
 * failure nothing changes and -1 is returned with err set. */
static int
master_bind(struct master *m, const struct config *cfg, int newfd[],
    char *err, size_t errlen)
{
	int	 p;

	for (p = 0; p < POOL_COUNT; p++) {
		newfd[p] = -1;
		if (!cfg->pool[p].enabled)
			continue;
		if (m->lfd[p] != -1 &&
		    strcmp(m->lspec[p], cfg->pool[p].listen) == 0)
			continue;
		newfd[p] = pool_listen(cfg->pool[p].listen, cfg->listen_mode,
		    cfg->listen_backlog, err, errlen);
		if (newfd[p] == -1) {
			while (--p >= 0)
				if (newfd[p] != -1)
					close(newfd[p]);
			return -1;
		}
	}
	return 0;
}

/* Swap in newly bound sockets and close the ones cfg no longer uses. */
static void
master_adopt(struct master *m, const struct config *cfg, const int newfd[])
{
	int	 p;

	for (p = 0; p < POOL_COUNT; p++) {
		if (newfd[p] != -1 || !cfg->pool[p].enabled) {
			if (m->lfd[p] != -1)
				close(m->lfd[p]);
			m->lfd[p] = -1;
			m->lspec[p][0] = '\0';
		}
		if (newfd[p] != -1) {
			m->lfd[p] = newfd[p];
			snprintf(m->lspec[p], sizeof(m->lspec[p]), "%s",
			    cfg->pool[p].listen);
		}
	}
}

static void
drop_privileges(const struct config *cfg)
{
	struct passwd	*pw;
	struct group	*gr;
	uid_t		 uid;
	gid_t		 gid;
	const char	*path;
	int		 p;

	if (cfg->user[0] == '\0') {
		if (geteuid() == 0)
			log_warnx("running as root: set user (and group) so "
			    "that workers run unprivileged");
		return;
	}
	if (geteuid() != 0) {
		log_warnx("user %s configured but not started as root; "
		    "staying uid %d", cfg->user, (int)geteuid());
		return;
	}
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("user %s: no such user", cfg->user);
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		if ((gr = getgrnam(cfg->group)) == NULL)
			fatalx("group %s: no such group", cfg->group);
		gid = gr->gr_gid;
	}
	for (p = 0; p < POOL_COUNT; p++)
		if (cfg->pool[p].enabled &&
		    (path = unix_path(cfg->pool[p].listen)) != NULL &&
		    chown(path, uid, gid) == -1)
			fatal("chown %s", path);
	if (setgroups(1, &gid) == -1 || setresgid(gid, gid, gid) == -1 ||
	    setresuid(uid, uid, uid) == -1)
		fatal("dropping privileges to %s", cfg->user);
	log_info("running as %s (uid %d, gid %d)", cfg->user, (int)uid,
	    (int)gid);
}

static struct slot *
slot_new(struct master *m)
{
	struct slot	*s;
	size_t		 i;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid == 0)
			return &m->slots[i];
	s = reallocarray(m->slots, m->nslots + 8, sizeof(*s));
	if (s == NULL)
		return NULL;
	memset(s + m->nslots, 0, 8 * sizeof(*s));
	m->slots = s;
	m->nslots += 8;
	return &m->slots[m->nslots - 8];
}

/* Fork one worker of pool p.  0, or -1 (logged). */
static int
master_spawn(struct master *m, int p)
{
	const struct service *svc = p == POOL_AUTH ? &auth_service :
	    &shortener_service;
	struct slot	*s;
	sigset_t	 all, old;
	pid_t		 pid;
	int		 q;

	if ((s = slot_new(m)) == NULL) {
		log_warnx("out of memory for worker slots");
		return -1;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* The child: default dispositions, nothing of the
		 * master's but its pool's socket and the config. */
		struct sigaction sa;
		int sig;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (sig = 1; sig < NSIG; sig++)
			(void)sigaction(sig, &sa, NULL);
		for (q = 0; q < POOL_COUNT; q++)
			if (q != p && m->lfd[q] != -1)
				close(m->lfd[q]);
		close(sigpipe_w);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(worker_main(&m->cfg, svc, m->lfd[p], -1));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_warn("fork");
		return -1;
	}
	s->pid = pid;
	s->pool = p;
	s->gen = m->gen;
	s->retiring = 0;
	s->started = mono_ms();
	log_debug("started %s worker %d", pool_names[p], (int)pid);
	return 0;
}

static void
master_reap(struct master *m)
{
	struct slot	*s;
	size_t		 i;
	int64_t		 now = mono_ms(), delay;
	pid_t		 pid;
	int		 status, p, abnormal;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0, s = NULL; i < m->nslots; i++)
			if (m->slots[i].pid == pid) {
				s = &m->slots[i];
				break;
			}
		if (s == NULL)
			continue;
		p = s->pool;
		abnormal = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		if (WIFSIGNALED(status))
			log_warnx("%s worker %d killed by signal %d",
			    pool_names[p], (int)pid, WTERMSIG(status));
		else if (abnormal)
			log_warnx("%s worker %d exited with status %d",
			    pool_names[p], (int)pid, WEXITSTATUS(status));
		if (abnormal && !s->retiring && !m->stopping) {
			if (now - s->started < YOUNG_MS)
				m->fails[p]++;
			else
				m->fails[p] = 1;
			delay = m->fails[p] <= 1 ? 0 :
			    100LL << (m->fails[p] < 9 ? m->fails[p] - 2 : 7);
			if (delay > BACKOFF_MAX_MS)
				delay = BACKOFF_MAX_MS;
			if (m->fails[p] >= 3)
				log_err("%s pool: %d workers in a row died "
				    "young; next start in %lld ms",
				    pool_names[p], m->fails[p],
				    (long long)delay);
			m->next_spawn[p] = now + delay;
		} else if (!abnormal && now - s->started >= YOUNG_MS)
			m->fails[p] = 0;
		s->pid = 0;
	}
}

/* Start the workers the current generation lacks.  Returns the ms to
 * wait before a start that back-off delayed, or -1. */
static int
master_maintain(struct master *m)
{
	int64_t	 now = mono_ms(), wait = -1;
	size_t	 i;
	int	 p, have;

	for (p = 0; p < POOL_COUNT; p++) {
		if (!m->cfg.pool[p].enabled)
			continue;
		for (i = 0, have = 0; i < m->nslots; i++)
			if (m->slots[i].pid != 0 && m->slots[i].pool == p &&
			    m->slots[i].gen == m->gen)
				have++;
		while (have < m->cfg.pool[p].workers) {
			if (m->next_spawn[p] > now) {
				if (wait == -1 || m->next_spawn[p] - now < wait)
					wait = m->next_spawn[p] - now;
				break;
			}
			if (master_spawn(m, p) == -1) {
				m->next_spawn[p] = now + 1000;
				break;
			}
			have++;
		}
	}
	return (int)wait;
}

static void
master_signal_workers(struct master *m, int sig, int old_only)
{
	size_t	 i;

	for (i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid == 0)
			continue;
		if (old_only && m->slots[i].gen == m->gen)
			continue;
		if (sig == SIGTERM)
			m->slots[i].retiring = 1;
		kill(m->slots[i].pid, sig);
	}
}

static size_t
master_nworkers(const struct master *m)
{
	size_t	 i, n = 0;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0)
			n++;
	return n;
}

static void
master_reload(struct master *m)
{
	static struct config	 nc;	/* too large for the stack */
	char			 err[1024];
	int			 newfd[POOL_COUNT];

	notify("RELOADING=1");
	log_info("reloading %s", m->file ? m->file : "(environment)");
	if (config_load(&nc, m->file, err, sizeof(err)) == -1) {
		log_err("reload: %s; keeping the running configuration", err);
		notify("READY=1");
		return;
	}
	if (master_bind(m, &nc, newfd, err, sizeof(err)) == -1) {
		log_err("reload: %s; keeping the running configuration", err);
		notify("READY=1");
		return;
	}
	master_adopt(m, &nc, newfd);
	m->cfg = nc;
	log_init(m->cfg.log_file, m->cfg.log_level, "master");
	m->gen++;
	memset(m->fails, 0, sizeof(m->fails));
	memset(m->next_spawn, 0, sizeof(m->next_spawn));
	/* New workers first, so the queue is drained while the old
	 * generation finishes what it has already read. */
	(void)master_maintain(m);
	master_signal_workers(m, SIGTERM, 1);
	log_info("reloaded: generation %u", m->gen);
	notify("READY=1");
}

static void
master_stop(struct master *m)
{
	int	 p;

	if (m->stopping)
		return;
	notify("STOPPING=1");
	log_info("stopping: waiting up to %d s for requests in flight",
	    m->cfg.shutdown_timeout);
	m->stopping = 1;
	m->stop_deadline = mono_ms() + (int64_t)m->cfg.shutdown_timeout * 1000;
	master_signal_workers(m, SIGTERM, 0);
	for (p = 0; p < POOL_COUNT; p++)
		if (m->lfd[p] != -1) {
			close(m->lfd[p]);
			m->lfd[p] = -1;
		}
}

static void
master_cleanup(struct master *m)
{
	const char	*path;
	int		 p;

	for (p = 0; p < POOL_COUNT; p++)
		if (m->lspec[p][0] != '\0' &&
		    (path = unix_path(m->lspec[p])) != NULL)
			unlink(path);
	if (m->cfg.pid_file[0] != '\0')
		unlink(m->cfg.pid_file);
	free(m->slots);
}

static void
daemonize(const struct config *cfg)
{
	pid_t	 pid;
	int	 fd;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (chdir("/") == -1)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (cfg->log_file[0] != '\0')
			dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

static void
write_pidfile(const char *path)
{
	FILE	*f;

	if (path[0] == '\0')
		return;
	if ((f = fopen(path, "w")) == NULL)
		fatal("pid file %s", path);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

/* Check the schema once at start-up: a wrong version is fatal, an
 * unreachable database is not (workers retry and answer 503). */
static void
check_schema(const struct config *cfg)
{
	struct db	*db;
	char		 err[512];

	if ((db = db_new(cfg)) == NULL)
		fatalx("out of memory");
	if (db_ensure(db) != DB_OK)
		log_warnx("database not reachable at start-up; workers will "
		    "retry");
	else if (db_check_schema(db, err, sizeof(err)) == -1) {
		db_free(db);
		fatalx("%s", err);
	}
	db_free(db);
}

int
master_run(const char *file, struct config *cfg, int foreground)
{
	static struct master	 m;
	struct sigaction	 sa;
	struct pollfd		 pfd;
	unsigned char		 sigs[32];
	char			 err[1024];
	int			 sp[2], newfd[POOL_COUNT], timeout, p;
	ssize_t			 n, i;

	memset(&m, 0, sizeof(m));
	m.cfg = *cfg;
	m.file = file;
	for (p = 0; p < POOL_COUNT; p++)
		m.lfd[p] = -1;
	log_init(m.cfg.log_file, m.cfg.log_level, "master");

	if (master_bind(&m, &m.cfg, newfd, err, sizeof(err)) == -1)
		fatalx("listen: %s", err);
	master_adopt(&m, &m.cfg, newfd);
	drop_privileges(&m.cfg);
	check_schema(&m.cfg);
	if (!foreground)
		daemonize(&m.cfg);
	write_pidfile(m.cfg.pid_file);

	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	sigpipe_w = sp[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_sighandler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	(void)master_maintain(&m);
	log_info("shortd %s started: auth %s, shortener %s",
	    SHORTD_VERSION,
	    m.cfg.pool[POOL_AUTH].enabled ? m.lspec[POOL_AUTH] : "off",
	    m.cfg.pool[POOL_SHORTENER].enabled ? m.lspec[POOL_SHORTENER] :
	    "off");
	notify("READY=1");

	for (;;) {
		master_reap(&m);
		if (m.stopping) {
			if (master_nworkers(&m) == 0)
				break;
			timeout = (int)(m.stop_deadline - mono_ms());
			if (timeout <= 0) {
				if (!m.killed)
					log_warnx("shutdown_timeout passed; "
					    "killing %zu workers",
					    master_nworkers(&m));
				m.killed = 1;
				master_signal_workers(&m, SIGKILL, 0);
				timeout = 100;
			}
		} else
			timeout = master_maintain(&m);
		pfd.fd = sp[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, timeout == -1 || timeout > 1000 ? 1000 :
		    timeout) <= 0)
			continue;
		while ((n = read(sp[0], sigs, sizeof(sigs))) > 0) {
			for (i = 0; i < n; i++) {
				switch (sigs[i]) {
				case SIGTERM:
				case SIGINT:
				case SIGQUIT:
					master_stop(&m);
					break;
				case SIGHUP:
					if (!m.stopping)
						master_reload(&m);
					break;
				case SIGUSR1:
					if (log_reopen() == -1)
						log_warn("reopen log");
					master_signal_workers(&m, SIGUSR1, 0);
					break;
				default:
					break;
				}
			}
		}
	}
	log_info("stopped");
	master_cleanup(&m);
	return 0;
}
