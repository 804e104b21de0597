/*
 * cache.c — the redirect cache that a shortener pool's workers share,
 * made so that it keeps the contract: a change of a link is seen by
 * the very next request, whichever worker serves it.
 *
 * The table, id -> (target URL, expiry), is one region of memory the
 * master maps before it forks (redirect_cache_mb), filled by the
 * redirects any worker reads from the database.  Its slots are written
 * and read without locks (proto/shcache.h: a sequence word and a
 * checksum per slot), so a worker killed mid-write leaves at worst a
 * slot nobody answers from.  Whether an entry may still answer is
 * decided by counters in the scoreboard (struct sb_cache): one
 * version per bucket of ids, and one epoch for changes of many links
 * at once.
 *
 *	reader	loads the epoch and its id's bucket version before it
 *		reads the database, and stores them with what it read.
 *		An entry answers only while both are unchanged and it is
 *		younger than the TTL.
 *	writer	a change that can alter what GET /:id answers bumps the
 *		bucket (one link) or the epoch (many links) before its
 *		write and again once the write has committed, before the
 *		answer goes out.
 *
 * A reader that got the old row started its read before the commit, so
 * it stores a version from before the second bump: a request that
 * starts after the writer's answer finds a newer version and goes to
 * the database.  The first bump drops what was cached before the
 * write, so a writer that dies between its commit and the second bump
 * leaves stale entries for at most the TTL.  Changes this master does
 * not see (another shortd on the same database, SQL by hand) are
 * bounded by the TTL alone.
 *
 * Slots form sets of CACHE_WAYS.  An id may live in either of two sets
 * chosen by its hash ("two choices"), so that a nearly full table
 * still finds room for most links: a new entry takes the slot of the
 * same id, else a free one of the two sets, else the oldest of them; a
 * full cache evicts, it never refuses.  An id and URL that do not fit
 * in a slot are not cached.  What may be cached is the caller's
 * decision (links with a visit limit are not: the database counts
 * their visits).
 *
 * Pure: no logging, no system calls; times come from the caller.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#define CACHE_WAYS	4	/* slots per set */

_Static_assert(ID_MAX < 256, "cache entries keep id lengths in a byte");
_Static_assert((SB_CACHE_BUCKETS & (SB_CACHE_BUCKETS - 1)) == 0,
    "SB_CACHE_BUCKETS is a power of two");

struct cache {
	struct shc_slot	*slot;		/* nsets * ways */
	size_t		 nsets;
	size_t		 ways;
	uint64_t	 seed;		/* of the slots' checksums */
	int64_t		 ttl_ms;
	void		*own;		/* cache_new's memory, else NULL */
};

/* MurmurHash3's finaliser: every bit of the result depends on every
 * bit of h. */
static uint32_t
cache_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* FNV-1a, mixed: the bucket takes the low bits, the sets the whole. */
static uint32_t
cache_hash(const char *id)
{
	return cache_mix(id_hash(id));
}

struct cache *
cache_attach(void *mem, size_t bytes, uint64_t seed, int ttl_ms)
{
	struct cache	*c;
	size_t		 n = bytes / sizeof(struct shc_slot);

	if (mem == NULL || n == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->slot = mem;
	c->ways = n < CACHE_WAYS ? n : CACHE_WAYS;
	c->nsets = n / c->ways;
	c->seed = seed;
	c->ttl_ms = ttl_ms;
	return c;
}

struct cache *
cache_new(size_t entries, int ttl_ms)
{
	struct cache	*c;
	void		*mem;

	if (entries == 0 || (mem = calloc(entries,
	    sizeof(struct shc_slot))) == NULL)
		return NULL;
	if ((c = cache_attach(mem, entries * sizeof(struct shc_slot),
	    (uint64_t)(uintptr_t)mem, ttl_ms)) == NULL) {
		free(mem);
		return NULL;
	}
	c->own = mem;
	return c;
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	free(c->own);
	free(c);
}

size_t
cache_slots(const struct cache *c)
{
	return c->nsets * c->ways;
}

void
cache_stamp(const struct sb_cache *sbc, const char *id,
    struct cache_stamp *st)
{
	st->hash = cache_hash(id);
	st->epoch = atomic_load_explicit(&sbc->epoch, memory_order_acquire);
	st->ver = atomic_load_explicit(&sbc->ver[st->hash &
	    (SB_CACHE_BUCKETS - 1)], memory_order_acquire);
}

void
cache_bump(struct sb_cache *sbc, const char *id)
{
	if (sbc != NULL)
		atomic_fetch_add_explicit(&sbc->ver[cache_hash(id) &
		    (SB_CACHE_BUCKETS - 1)], 1, memory_order_release);
}

void
cache_bump_all(struct sb_cache *sbc)
{
	if (sbc != NULL)
		atomic_fetch_add_explicit(&sbc->epoch, 1,
		    memory_order_release);
}

void
cache_count(struct sb_cache *sbc, int got)
{
	if (sbc == NULL)
		return;
	atomic_fetch_add_explicit(got == 0 ? &sbc->hits : &sbc->misses, 1,
	    memory_order_relaxed);
	if (got == CACHE_CORRUPT)
		atomic_fetch_add_explicit(&sbc->corrupt, 1,
		    memory_order_relaxed);
}

/* The two sets id's entry may be in (the same one, at times). */
static void
cache_sets(const struct cache *c, uint32_t hash, struct shc_slot *set[2])
{
	set[0] = &c->slot[(hash % c->nsets) * c->ways];
	set[1] = &c->slot[(cache_mix(hash ^ 0x9e3779b9u) % c->nsets) *
	    c->ways];
}

static struct shc_slot *
cache_at(const struct cache *c, struct shc_slot *set[2], size_t i)
{
	return &set[i / c->ways][i % c->ways];
}

/* A copy that claims sizes no writer stores is as bad as a wrong sum. */
static int
cache_sane(const struct shc_entry *e)
{
	return e->idlen > 0 && e->idlen <= ID_MAX &&
	    e->len <= SHC_DATA - e->idlen;
}

/* Empty a slot whose entry failed its checksum, so that its place is
 * free for the next read of the database. */
static void
cache_clear(const struct cache *c, struct shc_slot *s, int64_t now_ms)
{
	struct shc_entry	 e;

	memset(&e, 0, sizeof(e));
	(void)shc_write(s, c->seed, &e, now_ms);
}

int
cache_get(const struct cache *c, const char *id,
    const struct cache_stamp *st, int64_t now_ms,
    char value[CACHE_VALUE_MAX + 1], size_t *len, int64_t *expires_us)
{
	struct shc_slot		*set[2], *s;
	struct shc_peek		 p;
	struct shc_entry	 e;
	size_t			 idlen = strlen(id), i;

	cache_sets(c, st->hash, set);
	for (i = 0; i < 2 * c->ways; i++) {
		s = cache_at(c, set, i);
		shc_peek(s, now_ms, &p);
		if (p.idlen != idlen || p.hash != st->hash)
			continue;
		switch (shc_read(s, c->seed, &e)) {
		case SHC_BUSY:
			continue;	/* maybe another copy is not */
		case SHC_CORRUPT:
			cache_clear(c, s, now_ms);
			return CACHE_CORRUPT;
		case SHC_OK:
			break;
		}
		if (e.idlen == 0)
			continue;	/* emptied since the peek */
		if (!cache_sane(&e)) {
			cache_clear(c, s, now_ms);
			return CACHE_CORRUPT;
		}
		if (e.idlen != idlen || e.hash != st->hash ||
		    memcmp(e.data, id, idlen) != 0)
			continue;
		if (e.ver != st->ver || e.epoch != st->epoch ||
		    now_ms < e.fetched_ms || now_ms - e.fetched_ms >=
		    c->ttl_ms)
			return CACHE_MISS;
		memcpy(value, e.data + idlen, e.len);
		value[e.len] = '\0';
		*len = e.len;
		*expires_us = e.expires_us;
		return 0;
	}
	return CACHE_MISS;
}

int
cache_put(struct cache *c, const char *id, const struct cache_stamp *st,
    int64_t now_ms, const char *value, size_t len, int64_t expires_us)
{
	struct shc_slot		*set[2], *s, *victim = NULL;
	struct shc_peek		 p, v;
	struct shc_entry	 e;
	size_t			 idlen = strlen(id), i;

	if (idlen == 0 || idlen > ID_MAX || len > CACHE_VALUE_MAX - idlen)
		return -1;
	memset(&v, 0, sizeof(v));
	cache_sets(c, st->hash, set);
	for (i = 0; i < 2 * c->ways; i++) {
		s = cache_at(c, set, i);
		shc_peek(s, now_ms, &p);
		if (p.busy)
			continue;
		if (p.idlen == idlen && p.hash == st->hash) {
			victim = s;
			break;
		}
		/* A time after now is garbage: the oldest of all. */
		if (p.fetched_ms > now_ms)
			p.fetched_ms = INT64_MIN;
		if (victim == NULL || (v.idlen != 0 && (p.idlen == 0 ||
		    p.fetched_ms < v.fetched_ms))) {
			victim = s;
			v = p;
		}
	}
	if (victim == NULL)
		return -1;
	memset(&e, 0, sizeof(e));
	e.expires_us = expires_us;
	e.fetched_ms = now_ms;
	e.hash = st->hash;
	e.epoch = st->epoch;
	e.ver = st->ver;
	e.len = (uint16_t)len;
	e.idlen = (uint8_t)idlen;
	memcpy(e.data, id, idlen);
	memcpy(e.data + idlen, value, len);
	return shc_write(victim, c->seed, &e, now_ms);
}
