/*
 * proto/scoreboard.h — how workers tell the master (and the status
 * process) what they are doing, without a message or a lock.
 *
 * The master maps one struct scoreboard MAP_SHARED|MAP_ANONYMOUS before
 * it forks anything, so every child sees the same memory.  It has two
 * parts:
 *
 *   slot[i]   one per worker process.  The master fills pool and
 *             generation before it forks the worker into the slot and
 *             clears the slot after reaping it; in between only that
 *             worker writes it.  The group {state, since, method, path}
 *             is written under a sequence counter (odd while a write is
 *             in progress) so a reader gets a consistent copy or
 *             retries; a reader never waits for a writer, it gives up
 *             after a few tries.
 *   pool[p]   cumulative counters per pool: requests by status class, a
 *             latency histogram, restarts by reason, and so on.  Any
 *             process of the pool adds to them with relaxed atomic
 *             increments (lock-free on every platform shortd builds on).
 *   cache     the version half of the shortener pool's redirect cache
 *             (workers/cache.c; its entries live in a region of their
 *             own, proto/shcache.h): one version counter per bucket of ids
 *             and an epoch, which every change of a link bumps and
 *             every cached redirect is checked against, and the
 *             cache's hit and miss counts.  It lives as long as the
 *             master, across reloads.
 *
 * Everything here is plain data and arithmetic: no system calls, no
 * logging.  Times are CLOCK_MONOTONIC milliseconds passed in by the
 * caller.
 */
#ifndef SHORTD_SCOREBOARD_H
#define SHORTD_SCOREBOARD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SB_MAGIC	0x73686431u	/* "shd1" */
#define SB_POOLS	2		/* = POOL_COUNT, checked in master.c */
#define SB_METHOD_MAX	16		/* bytes kept, NUL included */
#define SB_PATH_MAX	112		/* bytes kept, NUL included */
#define SB_BUCKETS	12		/* latency buckets before +Inf */

enum sb_state {
	SB_FREE = 0,		/* no process */
	SB_STARTING,		/* forked, not yet accepting */
	SB_IDLE,		/* waiting for a request */
	SB_READING,		/* a request has begun to arrive */
	SB_WORKING,		/* handling a complete request */
	SB_NSTATES
};

/* Why a worker of a pool was replaced. */
enum sb_restart {
	SB_RESTART_CRASH = 0,	/* died on its own: signal or exit != 0 */
	SB_RESTART_RECYCLE,	/* exited after max_requests */
	SB_RESTART_TIMEOUT,	/* killed for exceeding request_timeout */
	SB_NRESTARTS
};

/* What a worker says about its own exit (slot.exit_reason). */
enum sb_exit {
	SB_EXIT_NONE = 0,
	SB_EXIT_RECYCLE		/* served max_requests */
};

struct sb_pool {
	_Atomic uint64_t requests[5];		/* 1xx .. 5xx */
	_Atomic uint64_t latency[SB_BUCKETS + 1];	/* per bucket, last
						   is +Inf; not cumulative */
	_Atomic uint64_t latency_sum_us;
	_Atomic uint64_t restarts[SB_NRESTARTS];
	_Atomic uint64_t max_reached;		/* times the pool wanted to
						   grow past workers_max */
	_Atomic uint64_t db_reconnects;
	_Atomic uint64_t conns;			/* FastCGI connections
						   accepted */
	_Atomic uint64_t handoffs;		/* idle kept connections
						   passed to another worker */
	_Atomic uint64_t orphan_visits;		/* GETs of ids that do not
						   exist (shortener) */
	_Atomic int64_t	 flush_lease;		/* monotonic ms: a worker
						   flushes visit counts until
						   then (0: none does) */
	/* Set by the master: the listening socket, so the status process
	 * can ask the kernel for its queue. */
	_Atomic uint64_t listen_ino;		/* 0: none */
	_Atomic uint32_t listen_tcp;		/* 1 TCP, 0 unix */
};

/* Buckets of ids for the redirect cache's version counters (a power
 * of two).  Each worker that serves redirects touches these pages, so
 * they count in its RSS: 16 KiB.  A change of a link invalidates the
 * cached links of its bucket only, 1/4096 of the cache. */
#define SB_CACHE_BUCKETS	4096

struct sb_cache {
	_Atomic uint64_t hits;		/* redirects answered from a cache */
	_Atomic uint64_t misses;	/* looked up, read from the database */
	_Atomic uint64_t corrupt;	/* of the misses: an entry failed its
					   checksum */
	/* The counters change on every redirect, the rest rarely: keep
	 * them off the cache line of epoch. */
	unsigned char	 pad[64];
	_Atomic uint32_t epoch;		/* bumped by changes of many links */
	_Atomic uint32_t ver[SB_CACHE_BUCKETS];	/* bumped by a change of
						   a link of the bucket */
};

struct sb_slot {
	_Atomic uint32_t seq;		/* odd while being written */
	_Atomic uint32_t state;		/* enum sb_state */
	_Atomic int32_t	 pid;
	_Atomic int32_t	 pool;
	_Atomic uint32_t gen;
	_Atomic uint32_t exit_reason;	/* enum sb_exit */
	_Atomic int64_t	 started_ms;	/* process start */
	_Atomic int64_t	 since_ms;	/* current state since */
	_Atomic uint64_t requests;	/* served by this process */
	_Atomic uint32_t kept;		/* idle kept connections it could
					   hand off (SIGURG) */
	_Atomic unsigned char method[SB_METHOD_MAX];
	_Atomic unsigned char path[SB_PATH_MAX];
};

struct scoreboard {
	uint32_t	 magic;
	uint32_t	 nslots;	/* capacity of slot[] */
	_Atomic uint32_t hwm;		/* slots [0, hwm) have been used */
	_Atomic uint32_t gen;		/* the master's current generation */
	_Atomic uint32_t stopping;	/* set by the master's TERM: nobody
					   will take connections over */
	int64_t		 started_unix;	/* the master's start, wall clock s */
	int64_t		 started_ms;	/* the same, monotonic ms */
	struct sb_pool	 pool[SB_POOLS];
	struct sb_cache	 cache;
	struct sb_slot	 slot[];
};

/* A reader's consistent copy of a slot. */
struct sb_view {
	enum sb_state	 state;
	int		 pid;
	int		 pool;
	unsigned	 gen;
	int64_t		 started_ms;
	int64_t		 since_ms;
	uint64_t	 requests;
	char		 method[SB_METHOD_MAX];
	char		 path[SB_PATH_MAX];
};

/* Upper bounds of the latency buckets, in microseconds. */
extern const int64_t sb_bucket_us[SB_BUCKETS];

/* Bytes needed for a scoreboard of n slots. */
size_t	sb_size(uint32_t nslots);
/* Initialise zeroed memory of sb_size(n) bytes. */
void	sb_init(struct scoreboard *, uint32_t nslots, int64_t now_unix,
	    int64_t now_ms);
const char *sb_state_name(enum sb_state);

/* Master: prepare slot for a worker of pool/gen about to be forked,
 * and free it once the process is reaped. */
void	sb_slot_prepare(struct scoreboard *, uint32_t i, int pool,
	    unsigned gen, int64_t now_ms);
void	sb_slot_release(struct scoreboard *, uint32_t i);

/* Worker: its own slot's state.  method and path (either may be NULL)
 * are kept truncated; they are cleared for states other than
 * SB_WORKING. */
void	sb_slot_set(struct sb_slot *, enum sb_state, int64_t now_ms,
	    const char *method, const char *path);
/* Worker: one request answered with status after usec. */
void	sb_count(struct sb_pool *, int status, int64_t usec);

/* Reader: copy slot i.  0, or -1 if the slot is free or was being
 * written on every try (the caller skips it this time). */
int	sb_slot_read(const struct scoreboard *, uint32_t i, struct sb_view *);

/* The bucket index (0..SB_BUCKETS) for a latency. */
int	sb_bucket(int64_t usec);

#endif /* SHORTD_SCOREBOARD_H */
