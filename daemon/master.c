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
 * Every TICK_MS it also looks at the scoreboard (proto/scoreboard.h),
 * where each worker keeps its state: it grows and shrinks the pools
 * between their bounds, kills a worker whose request has run past
 * request_timeout, and replaces workers that exit after max_requests.
 * Next to the pools it runs one status process, which serves /metrics
 * and /status from the scoreboard on its own socket, so they answer
 * when every worker is busy.
 *
 * Signal handlers only write the signal number to a self-pipe.  The
 * master never serves a request and never waits on a worker: it reads
 * the scoreboard without locks and signals children, nothing more.
 *
 * What it does once around this loop (systemd notification, dropping
 * privileges, detaching, the pid file, the schema check) is in
 * startup.c; the listening sockets themselves in pool.c.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
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
#define TICK_MS		100	/* how often the pools are looked at */
#define KILL_GRACE_MS	1000	/* USR2 (answer 504, exit) to SIGKILL */
#define RETIRE_IDLE_MS	1000	/* idle this long before being retired */
#define SPAWN_RATE_MAX	32	/* most workers started in one tick */
#define READY_WAIT_MS	10000	/* longest READY=1 waits after a reload */
#define SB_SLOTS	4096	/* 2 pools x 1024 workers x 2 generations */

#define STATUS_POOL	(-1)		/* slot.pool of the status process */

_Static_assert(SB_POOLS == POOL_COUNT, "scoreboard pools != POOL_COUNT");

/* The master's own record of a child; sbi links it to its scoreboard
 * slot, where the child says what it is doing. */
struct slot {
	pid_t	 pid;		/* 0: free */
	int	 pool;		/* or STATUS_POOL */
	int	 sbi;		/* scoreboard slot, -1 for the status process */
	unsigned gen;
	int	 retiring;	/* told to finish and exit */
	int	 timed_out;	/* sent USR2 for request_timeout */
	int64_t	 urged;		/* since_ms of the request it was sent
				   URG for (hand kept connections over) */
	int64_t	 kill_at;	/* ms: SIGKILL if still there */
	int64_t	 started;	/* ms, monotonic */
};

struct master {
	struct config	 cfg;
	const char	*file;
	int		 lfd[NLISTEN];
	char		 lspec[NLISTEN][256];
	int		 hand[POOL_COUNT][2];	/* each pool's handoff socket
						   pair (-1: none) */
	struct slot	*slots;
	size_t		 nslots;
	struct scoreboard *sb;		/* shared with every child */
	struct shc_map	 cache;		/* the shortener pool's redirect
					   cache, shared by its workers */
	uint8_t		*sb_used;	/* SB_SLOTS flags */
	unsigned	 gen;
	int		 stopping;
	int64_t		 stop_deadline;
	int		 killed;	/* SIGKILL sent after the deadline */
	int		 fails[POOL_COUNT];
	int64_t		 next_spawn[POOL_COUNT];
	int		 target[POOL_COUNT];	/* workers wanted now */
	int		 spawn_rate[POOL_COUNT];
	int		 saturated[POOL_COUNT];	/* max reached, not yet eased */
	int		 status_fails;
	int64_t		 status_next;
	int64_t		 next_tick;
	int		 want_ready;	/* READY=1 owed once pools are up */
	int64_t		 ready_deadline; /* 0: none */
};

/* The self-pipe's write end, the one thing signal handlers touch. */
static int sigpipe_w = -1;

static const char *pool_names[POOL_COUNT] = { "auth", "shortener" };

/* Each pool's handoff socket pair, kept for the master's life so that
 * connections pass between generations.  Without one (socketpair
 * failed) the pool's workers close what they would hand over. */
static void
master_handoff(struct master *m)
{
	int	 p;

	for (p = 0; p < POOL_COUNT; p++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, m->hand[p]) == -1) {
			log_warn("%s pool: handoff socket", pool_names[p]);
			m->hand[p][0] = m->hand[p][1] = -1;
		}
}

/* Before the pools exist there is nothing to drain: a stop is an exit.
 * Unix socket files left behind are replaced by the next start. */
static void
master_startup_stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void
master_sighandler(int sig)
{
	int		 saved = errno;
	unsigned char	 c = (unsigned char)sig;

	(void)!write(sigpipe_w, &c, 1);
	errno = saved;
}

/* Bind the sockets of cfg that m does not have yet.  On any failure
 * nothing changes and -1 is returned with err set. */
static int
master_bind(struct master *m, const struct config *cfg, int newfd[],
    char *err, size_t errlen)
{
	const char	*spec;
	int		 i;

	for (i = 0; i < NLISTEN; i++) {
		newfd[i] = -1;
		if ((spec = pool_listen_spec(cfg, i)) == NULL)
			continue;
		if (m->lfd[i] != -1 && strcmp(m->lspec[i], spec) == 0)
			continue;
		newfd[i] = pool_listen(spec, cfg->listen_mode,
		    cfg->listen_backlog, err, errlen);
		if (newfd[i] == -1) {
			while (--i >= 0)
				if (newfd[i] != -1)
					close(newfd[i]);
			return -1;
		}
	}
	return 0;
}

/* Swap in newly bound sockets, close the ones cfg no longer uses, and
 * tell the scoreboard which sockets the pools listen on.  A socket
 * kept across a reload gets the new listen_backlog. */
static void
master_adopt(struct master *m, const struct config *cfg, const int newfd[])
{
	struct stat	 st;
	const char	*spec;
	int		 i;

	for (i = 0; i < NLISTEN; i++) {
		spec = pool_listen_spec(cfg, i);
		if (newfd[i] != -1 || spec == NULL) {
			if (m->lfd[i] != -1)
				close(m->lfd[i]);
			m->lfd[i] = -1;
			m->lspec[i][0] = '\0';
		}
		if (newfd[i] != -1) {
			m->lfd[i] = newfd[i];
			snprintf(m->lspec[i], sizeof(m->lspec[i]), "%s", spec);
		} else if (m->lfd[i] != -1)
			(void)listen(m->lfd[i], cfg->listen_backlog);
		if (i >= POOL_COUNT || m->sb == NULL)
			continue;
		if (m->lfd[i] != -1 && fstat(m->lfd[i], &st) == 0) {
			atomic_store(&m->sb->pool[i].listen_tcp,
			    pool_unix_path(m->lspec[i]) == NULL);
			atomic_store(&m->sb->pool[i].listen_ino,
			    (uint64_t)st.st_ino);
		} else
			atomic_store(&m->sb->pool[i].listen_ino, 0);
	}
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

static int
sb_slot_new(struct master *m)
{
	int	 i;

	for (i = 0; i < SB_SLOTS; i++)
		if (!m->sb_used[i]) {
			m->sb_used[i] = 1;
			return i;
		}
	return -1;
}

/*
 * Fork a child: a worker of pool p, or the status process (p ==
 * STATUS_POOL).  The child keeps only its own listening socket.
 * 0, or -1 (logged).
 */
static int
master_spawn(struct master *m, int p)
{
	const struct service *svc;
	struct slot	*s;
	sigset_t	 all, old;
	pid_t		 pid;
	int		 i, sbi = -1, lfd;

	if (p == STATUS_POOL) {
		svc = &status_service;
		lfd = m->lfd[LISTEN_STATUS];
	} else {
		svc = p == POOL_AUTH ? &auth_service : &shortener_service;
		lfd = m->lfd[p];
	}
	if ((s = slot_new(m)) == NULL) {
		log_warnx("out of memory for worker slots");
		return -1;
	}
	if (p != STATUS_POOL) {
		if ((sbi = sb_slot_new(m)) == -1) {
			log_warnx("%s pool: all %d scoreboard slots in use",
			    pool_names[p], SB_SLOTS);
			return -1;
		}
		sb_slot_prepare(m->sb, (uint32_t)sbi, p, m->gen, mono_ms());
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		/* The child: default dispositions, nothing of the
		 * master's but its own socket, the config and the
		 * scoreboard. */
		struct sigaction sa;
		int sig;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		for (sig = 1; sig < NSIG; sig++)
			(void)sigaction(sig, &sa, NULL);
		for (i = 0; i < NLISTEN; i++)
			if (m->lfd[i] != -1 && m->lfd[i] != lfd)
				close(m->lfd[i]);
		for (i = 0; i < POOL_COUNT; i++)
			if (i != p && m->hand[i][0] != -1) {
				close(m->hand[i][0]);
				close(m->hand[i][1]);
			}
		close(sigpipe_w);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(worker_main(&m->cfg, svc, lfd, p != STATUS_POOL &&
		    m->hand[p][0] != -1 ? m->hand[p] : NULL, m->sb, sbi,
		    p == POOL_SHORTENER ? &m->cache : NULL));
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_warn("fork");
		if (sbi != -1) {
			sb_slot_release(m->sb, (uint32_t)sbi);
			m->sb_used[sbi] = 0;
		}
		return -1;
	}
	memset(s, 0, sizeof(*s));
	s->pid = pid;
	s->pool = p;
	s->sbi = sbi;
	s->gen = m->gen;
	s->started = mono_ms();
	if (sbi != -1)
		atomic_store(&m->sb->slot[sbi].pid, (int32_t)pid);
	log_debug("started %s %d", p == STATUS_POOL ? "status process" :
	    pool_names[p], (int)pid);
	return 0;
}

/* A pool worker died without being asked to: count it, and back off
 * if its pool's workers keep dying young. */
static void
master_crashed(struct master *m, const struct slot *s, int64_t now)
{
	int	 p = s->pool;
	int64_t	 delay;

	atomic_fetch_add(&m->sb->pool[p].restarts[SB_RESTART_CRASH], 1);
	if (now - s->started < YOUNG_MS)
		m->fails[p]++;
	else
		m->fails[p] = 1;
	delay = m->fails[p] <= 1 ? 0 :
	    100LL << (m->fails[p] < 9 ? m->fails[p] - 2 : 7);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	if (m->fails[p] >= 3)
		log_err("%s pool: %d workers in a row died young; next start "
		    "in %lld ms", pool_names[p], m->fails[p], (long long)delay);
	m->next_spawn[p] = now + delay;
}

static void
master_reaped(struct master *m, struct slot *s, int status, int64_t now)
{
	char		 what[32];
	int		 abnormal, reason = SB_EXIT_NONE;

	snprintf(what, sizeof(what), "%s%s", s->pool == STATUS_POOL ?
	    "status process" : pool_names[s->pool], s->pool == STATUS_POOL ?
	    "" : " worker");

	abnormal = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	if (s->sbi != -1)
		reason = (int)atomic_load(&m->sb->slot[s->sbi].exit_reason);
	if (s->timed_out)
		;	/* logged when it was told */
	else if (s->retiring && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGTERM)
		log_debug("%s %d stopped before it was up", what,
		    (int)s->pid);
	else if (WIFSIGNALED(status))
		log_warnx("%s %d killed by signal %d", what,
		    (int)s->pid, WTERMSIG(status));
	else if (abnormal)
		log_warnx("%s %d exited with status %d", what,
		    (int)s->pid, WEXITSTATUS(status));
	if (s->pool == STATUS_POOL) {
		if (!s->retiring && !m->stopping) {
			m->status_fails = now - s->started < YOUNG_MS ?
			    m->status_fails + 1 : 0;
			m->status_next = now + (m->status_fails > 0 ?
			    (m->status_fails < 5 ? 200LL << m->status_fails :
			    BACKOFF_MAX_MS) : 0);
		}
	} else if (s->timed_out)
		atomic_fetch_add(&m->sb->pool[s->pool].restarts[
		    SB_RESTART_TIMEOUT], 1);
	else if (!abnormal && reason == SB_EXIT_RECYCLE) {
		log_info("%s %d served max_requests; replacing it",
		    what, (int)s->pid);
		atomic_fetch_add(&m->sb->pool[s->pool].restarts[
		    SB_RESTART_RECYCLE], 1);
	} else if (!s->retiring && !m->stopping)
		master_crashed(m, s, now);
	if (s->pool != STATUS_POOL && !abnormal &&
	    now - s->started >= YOUNG_MS)
		m->fails[s->pool] = 0;	/* a worker lived: no crash loop */
	if (s->sbi != -1) {
		sb_slot_release(m->sb, (uint32_t)s->sbi);
		m->sb_used[s->sbi] = 0;
	}
	memset(s, 0, sizeof(*s));
}

static void
master_reap(struct master *m)
{
	size_t		 i;
	int64_t		 now = mono_ms();
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (i = 0; i < m->nslots; i++)
			if (m->slots[i].pid == pid) {
				master_reaped(m, &m->slots[i], status, now);
				break;
			}
}

/*
 * Kill what ran past request_timeout: USR2 first, which makes the
 * worker answer 504 and exit; SIGKILL if it is still there a second
 * later.  The kill is logged with the request it was working on, and
 * counted as a 5xx answer of its pool.
 */
static void
master_timeouts(struct master *m, int64_t now)
{
	struct sb_view	 v;
	struct slot	*s;
	size_t		 i;
	int64_t		 limit;

	for (i = 0; i < m->nslots; i++) {
		s = &m->slots[i];
		if (s->pid == 0 || s->sbi == -1)
			continue;
		if (s->timed_out) {
			if (now >= s->kill_at) {
				kill(s->pid, SIGKILL);
				s->kill_at = now + KILL_GRACE_MS;
			}
			continue;
		}
		limit = (int64_t)m->cfg.pool[s->pool].request_timeout * 1000;
		if (limit <= 0 || sb_slot_read(m->sb, (uint32_t)s->sbi, &v) ==
		    -1 || v.state != SB_WORKING || now - v.since_ms < limit)
			continue;
		log_warnx("%s worker %d: %s %s running for %.1f s, over "
		    "request_timeout %d s; killing it", pool_names[s->pool],
		    (int)s->pid, v.method, v.path,
		    (double)(now - v.since_ms) / 1000.0,
		    m->cfg.pool[s->pool].request_timeout);
		sb_count(&m->sb->pool[s->pool], 504,
		    (now - v.since_ms) * 1000);
		kill(s->pid, SIGUSR2);
		s->timed_out = 1;
		s->retiring = 1;
		s->kill_at = now + KILL_GRACE_MS;
	}
}

/*
 * A worker busy with one request for a tick or more may hold idle kept
 * connections on which nginx is sending requests that would wait for
 * it: URG makes it hand them to the pool's other workers (worker.c).
 * Once per request, and only to a worker that says it has some.
 */
static void
master_urge(struct master *m, int64_t now)
{
	struct sb_view	 v;
	struct slot	*s;
	size_t		 i;

	for (i = 0; i < m->nslots; i++) {
		s = &m->slots[i];
		if (s->pid == 0 || s->sbi == -1 || s->timed_out ||
		    m->hand[s->pool][0] == -1 ||
		    atomic_load_explicit(&m->sb->slot[s->sbi].kept,
		    memory_order_relaxed) == 0)
			continue;
		if (sb_slot_read(m->sb, (uint32_t)s->sbi, &v) == -1 ||
		    v.state != SB_WORKING || now - v.since_ms < TICK_MS ||
		    s->urged == v.since_ms)
			continue;
		log_debug("%s worker %d: %s %s running for %lld ms; it hands "
		    "its idle kept connections over", pool_names[s->pool],
		    (int)s->pid, v.method, v.path, (long long)(now - v.since_ms));
		kill(s->pid, SIGURG);
		s->urged = v.since_ms;
	}
}

/* What the current generation of pool p looks like. */
struct pool_view {
	int	 total;		/* live, not retiring */
	int	 available;	/* of those, not busy with a request */
	int	 up;		/* past starting */
	size_t	 idlest;	/* index of the longest idle, if any */
	int64_t	 idle_since;
};

static void
master_view(struct master *m, int p, struct pool_view *pv)
{
	struct sb_view	 v;
	struct slot	*s;
	size_t		 i;

	memset(pv, 0, sizeof(*pv));
	pv->idlest = (size_t)-1;
	for (i = 0; i < m->nslots; i++) {
		s = &m->slots[i];
		if (s->pid == 0 || s->pool != p || s->gen != m->gen ||
		    s->retiring)
			continue;
		pv->total++;
		if (sb_slot_read(m->sb, (uint32_t)s->sbi, &v) == -1) {
			pv->available++;	/* being written: call it so */
			continue;
		}
		if (v.state != SB_WORKING)
			pv->available++;
		if (v.state != SB_STARTING)
			pv->up++;
		if (v.state == SB_IDLE && (pv->idlest == (size_t)-1 ||
		    v.since_ms < pv->idle_since)) {
			pv->idlest = i;
			pv->idle_since = v.since_ms;
		}
	}
}

/*
 * Pool p's size, like PHP-FPM's pm = dynamic: fewer than spare_min
 * workers available (idle or reading) and room below workers_max: start
 * more, 1, 2, 4 ... per tick while the shortage lasts; more than
 * spare_max available: retire the one idle longest (if idle for
 * RETIRE_IDLE_MS), one per tick, never below workers_min.
 */
static void
master_scale(struct master *m, int p, int64_t now)
{
	const struct pool_config *pc = &m->cfg.pool[p];
	struct pool_view	 pv;
	struct slot		*s;
	int			 n;

	master_view(m, p, &pv);
	if (m->target[p] < pc->workers_min)
		m->target[p] = pc->workers_min;
	if (m->target[p] > pc->workers_max)
		m->target[p] = pc->workers_max;
	if (pv.total < m->target[p])
		return;		/* still starting the ones wanted */
	if (pv.available < pc->spare_min) {
		if (m->target[p] < pc->workers_max) {
			n = pc->spare_min - pv.available;
			if (n > m->spawn_rate[p])
				n = m->spawn_rate[p];
			if (n > pc->workers_max - m->target[p])
				n = pc->workers_max - m->target[p];
			m->target[p] += n;
			log_debug("%s pool: %d available, starting %d",
			    pool_names[p], pv.available, n);
			if (m->spawn_rate[p] < SPAWN_RATE_MAX)
				m->spawn_rate[p] *= 2;
		} else if (!m->saturated[p]) {
			m->saturated[p] = 1;
			atomic_fetch_add(&m->sb->pool[p].max_reached, 1);
			log_warnx("%s pool: all %d workers busy and "
			    "workers_max reached; requests queue on the "
			    "socket", pool_names[p], pv.total);
		}
		return;
	}
	m->spawn_rate[p] = 1;
	m->saturated[p] = 0;
	if (pv.available > pc->spare_max && pv.total > pc->workers_min &&
	    pv.idlest != (size_t)-1 && now - pv.idle_since >= RETIRE_IDLE_MS) {
		s = &m->slots[pv.idlest];
		log_debug("%s pool: %d available, retiring %d", pool_names[p],
		    pv.available, (int)s->pid);
		s->retiring = 1;
		kill(s->pid, SIGTERM);
		m->target[p] = pv.total - 1;
	}
}

static int
master_count(const struct master *m, int p, unsigned gen)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0 && m->slots[i].pool == p &&
		    m->slots[i].gen == gen && !m->slots[i].retiring)
			n++;
	return n;
}

/* READY=1 once every enabled pool has a worker past starting (or,
 * after a reload, once READY_WAIT_MS have passed whatever happens). */
static void
master_check_ready(struct master *m, int64_t now)
{
	struct pool_view pv;
	char		 msg[256];
	int		 p, n[POOL_COUNT] = { 0 };

	if (!m->want_ready)
		return;
	for (p = 0; p < POOL_COUNT; p++) {
		if (!m->cfg.pool[p].enabled)
			continue;
		master_view(m, p, &pv);
		if (pv.up == 0 && (m->ready_deadline == 0 ||
		    now < m->ready_deadline))
			return;
		n[p] = pv.total;
	}
	m->want_ready = 0;
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=generation %u: auth %d "
	    "workers, shortener %d workers", m->gen, n[POOL_AUTH],
	    n[POOL_SHORTENER]);
	notify(msg);
}

/* Start what is missing: workers up to each pool's target, the status
 * process.  Back-off may delay a start to a later tick. */
static void
master_maintain(struct master *m)
{
	int64_t	 now = mono_ms();
	int	 p, have;

	if (now >= m->next_tick) {
		m->next_tick = now + TICK_MS;
		master_timeouts(m, now);
		master_urge(m, now);
		if (!m->stopping)
			for (p = 0; p < POOL_COUNT; p++)
				if (m->cfg.pool[p].enabled)
					master_scale(m, p, now);
	}
	if (m->stopping)
		return;
	for (p = 0; p < POOL_COUNT; p++) {
		if (!m->cfg.pool[p].enabled)
			continue;
		have = master_count(m, p, m->gen);
		while (have < m->target[p] && m->next_spawn[p] <= now) {
			if (master_spawn(m, p) == -1) {
				m->next_spawn[p] = now + 1000;
				break;
			}
			have++;
		}
	}
	if (m->lfd[LISTEN_STATUS] != -1 && now >= m->status_next &&
	    master_count(m, STATUS_POOL, m->gen) == 0 &&
	    master_spawn(m, STATUS_POOL) == -1)
		m->status_next = now + 1000;
	master_check_ready(m, now);
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
	int			 newfd[NLISTEN], p, old;

	notify_reloading();
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
	pool_cache_config(&m->cache, &nc);
	m->cfg = nc;
	log_init(m->cfg.log_file, m->cfg.log_level, "master");
	/* The new generation starts as large as the old one was (within
	 * its bounds), so a reload under load keeps the capacity. */
	for (p = 0; p < POOL_COUNT; p++) {
		old = master_count(m, p, m->gen);
		m->target[p] = old;
		m->spawn_rate[p] = 1;
		m->saturated[p] = 0;
	}
	m->gen++;
	atomic_store(&m->sb->gen, m->gen);
	memset(m->fails, 0, sizeof(m->fails));
	memset(m->next_spawn, 0, sizeof(m->next_spawn));
	m->status_fails = 0;
	m->status_next = 0;
	m->next_tick = 0;
	/* New workers first, so the queue is drained while the old
	 * generation finishes what it has already read. */
	master_maintain(m);
	master_signal_workers(m, SIGTERM, 1);
	log_info("reloaded: generation %u", m->gen);
	m->want_ready = 1;
	m->ready_deadline = mono_ms() + READY_WAIT_MS;
	master_check_ready(m, mono_ms());
}

static void
master_stop(struct master *m)
{
	int	 i;

	if (m->stopping)
		return;
	notify("STOPPING=1");
	log_info("stopping: waiting up to %d s for requests in flight",
	    m->cfg.shutdown_timeout);
	m->stopping = 1;
	m->want_ready = 0;
	/* Retiring workers then close their kept connections: nobody
	 * would take them over. */
	atomic_store(&m->sb->stopping, 1);
	m->stop_deadline = mono_ms() + (int64_t)m->cfg.shutdown_timeout * 1000;
	master_signal_workers(m, SIGTERM, 0);
	for (i = 0; i < NLISTEN; i++)
		if (m->lfd[i] != -1) {
			close(m->lfd[i]);
			m->lfd[i] = -1;
		}
}

static void
master_cleanup(struct master *m)
{
	const char	*path;
	int		 i;

	for (i = 0; i < NLISTEN; i++)
		if (m->lspec[i][0] != '\0' &&
		    (path = pool_unix_path(m->lspec[i])) != NULL)
			unlink(path);
	if (m->cfg.pid_file[0] != '\0')
		unlink(m->cfg.pid_file);
	free(m->slots);
	free(m->sb_used);
	if (m->sb != NULL)
		munmap(m->sb, sb_size(SB_SLOTS));
	pool_cache_unmap(&m->cache);
}

/* The scoreboard: shared with every child forked from here on. */
static void
master_scoreboard(struct master *m)
{
	struct timespec	 ts;
	void		*p;

	p = mmap(NULL, sb_size(SB_SLOTS), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fatal("scoreboard: mmap %zu bytes", sb_size(SB_SLOTS));
	if ((m->sb_used = calloc(SB_SLOTS, 1)) == NULL)
		fatal("scoreboard");
	clock_gettime(CLOCK_REALTIME, &ts);
	m->sb = p;
	sb_init(m->sb, SB_SLOTS, (int64_t)ts.tv_sec, mono_ms());
}

int
master_run(const char *file, struct config *cfg, int foreground)
{
	static struct master	 m;
	struct sigaction	 sa;
	struct pollfd		 pfd;
	unsigned char		 sigs[32];
	char			 err[1024];
	int			 sp[2], newfd[NLISTEN], timeout, i;
	ssize_t			 n, k;

	memset(&m, 0, sizeof(m));
	m.cfg = *cfg;
	m.file = file;
	for (i = 0; i < NLISTEN; i++)
		m.lfd[i] = -1;
	log_init(m.cfg.log_file, m.cfg.log_level, "master");
	master_scoreboard(&m);
	pool_cache_config(&m.cache, &m.cfg);
	master_handoff(&m);

	if (master_bind(&m, &m.cfg, newfd, err, sizeof(err)) == -1)
		fatalx("listen: %s", err);
	master_adopt(&m, &m.cfg, newfd);
	drop_privileges(&m.cfg);
	/* The schema check may wait for a database that does not answer;
	 * a stop asked for meanwhile ends the process at once (as PID 1
	 * in a container an uncaught TERM would be ignored). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_startup_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	check_schema(&m.cfg);
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
	if (!foreground)
		daemonize(&m.cfg);
	write_pidfile(m.cfg.pid_file);

	m.want_ready = 1;
	master_maintain(&m);
	log_info("shortd %s started: auth %s, shortener %s, status %s",
	    SHORTD_VERSION,
	    m.cfg.pool[POOL_AUTH].enabled ? m.lspec[POOL_AUTH] : "off",
	    m.cfg.pool[POOL_SHORTENER].enabled ? m.lspec[POOL_SHORTENER] :
	    "off", m.lfd[LISTEN_STATUS] != -1 ? m.lspec[LISTEN_STATUS] :
	    "off");

	for (;;) {
		master_reap(&m);
		master_maintain(&m);
		timeout = TICK_MS;
		if (m.stopping) {
			if (master_nworkers(&m) == 0)
				break;
			if (mono_ms() >= m.stop_deadline) {
				if (!m.killed)
					log_warnx("shutdown_timeout passed; "
					    "killing %zu workers",
					    master_nworkers(&m));
				m.killed = 1;
				master_signal_workers(&m, SIGKILL, 0);
			}
		}
		pfd.fd = sp[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, timeout) <= 0)
			continue;
		while ((n = read(sp[0], sigs, sizeof(sigs))) > 0) {
			for (k = 0; k < n; k++) {
				switch (sigs[k]) {
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
