/*
 * cache.c — the shortener workers' redirect cache, made so that it
 * keeps the contract: a change of a link is seen by the very next
 * request, whichever worker serves it.
 *
 * Each worker keeps a table of its own, id -> (target URL, expiry),
 * filled by the redirects it reads from the database.  Whether an
 * entry may still answer is decided by counters in shared memory
 * (struct sb_cache in the scoreboard, mapped by the master before it
 * forks): one version per bucket of ids, and one epoch for changes of
 * many links at once.
 *
 *	reader	loads the epoch and its id's bucket version before it
 *		reads the database, and keeps them with what it read.  An
 *		entry answers only while both are unchanged and it is
 *		younger than the TTL.
 *	writer	a change that can alter what GET /:id answers bumps the
 *		bucket (one link) or the epoch (many links) before its
 *		write and again once the write has committed, before the
 *		answer goes out.
 *
 * A reader that got the old row started its read before the commit, so
 * it keeps a version from before the second bump: a request that
 * starts after the writer's answer finds a newer version and goes to
 * the database.  The first bump drops what was cached before the
 * write, so a writer that dies between its commit and the second bump
 * leaves stale entries for at most the TTL.  Changes this master does
 * not see (another shortd on the same database, SQL by hand) are
 * bounded by the TTL alone.
 *
 * The table: sets of CACHE_WAYS slots of CACHE_SLOT bytes, allocated
 * once.  An id may live in either of two sets chosen by its hash ("two
 * choices"), so that a nearly full table still finds room for most
 * links: a new entry takes the slot of the same id, else a free one of
 * the two sets, else the oldest of them.  An id and URL that do not fit
 * in a slot are not cached.  What may be cached is the caller's decision (links
 * with a visit limit are not: the database counts their visits).
 *
 * Pure: no logging, no system calls; times come from the caller.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#define CACHE_SLOT	256	/* bytes per entry */
#define CACHE_WAYS	4	/* entries per set */

struct cache_slot {
	int64_t	 expires_us;	/* 0: never */
	int64_t	 fetched_ms;	/* taken before the database read */
	uint32_t hash;
	uint32_t epoch;		/* the stamp read before the database */
	uint32_t ver;
	uint16_t len;		/* of the URL */
	uint8_t	 idlen;		/* 0: the slot is free */
	uint8_t	 unused;
	char	 data[CACHE_VALUE_MAX];	/* the id, then the URL; not
					   NUL-terminated */
};

_Static_assert(sizeof(struct cache_slot) == CACHE_SLOT,
    "a cache slot is CACHE_SLOT bytes");
_Static_assert(ID_MAX < 256, "cache slots keep id lengths in a byte");
_Static_assert((SB_CACHE_BUCKETS & (SB_CACHE_BUCKETS - 1)) == 0,
    "SB_CACHE_BUCKETS is a power of two");

struct cache {
	struct cache_slot *slot;	/* nsets * ways */
	size_t		 nsets;
	size_t		 ways;
	int64_t		 ttl_ms;
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
cache_new(size_t entries, int ttl_ms)
{
	struct cache	*c;

	if (entries == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ways = entries < CACHE_WAYS ? entries : CACHE_WAYS;
	c->nsets = entries / c->ways;
	c->ttl_ms = ttl_ms;
	/* Pages are touched as entries fill them, not now. */
	if ((c->slot = calloc(c->nsets * c->ways, sizeof(*c->slot))) ==
	    NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
cache_free(struct cache *c)
{
	if (c == NULL)
		return;
	free(c->slot);
	free(c);
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
cache_count(struct sb_cache *sbc, int hit)
{
	if (sbc != NULL)
		atomic_fetch_add_explicit(hit ? &sbc->hits : &sbc->misses, 1,
		    memory_order_relaxed);
}

/* The two sets id's entry may be in (the same one, at times). */
static void
cache_sets(const struct cache *c, uint32_t hash, struct cache_slot *set[2])
{
	set[0] = &c->slot[(hash % c->nsets) * c->ways];
	set[1] = &c->slot[(cache_mix(hash ^ 0x9e3779b9u) % c->nsets) *
	    c->ways];
}

static int
cache_is(const struct cache_slot *s, const char *id, size_t idlen,
    uint32_t hash)
{
	return s->idlen == idlen && s->hash == hash &&
	    memcmp(s->data, id, idlen) == 0;
}

int
cache_get(const struct cache *c, const char *id,
    const struct cache_stamp *st, int64_t now_ms,
    char value[CACHE_VALUE_MAX + 1], size_t *len, int64_t *expires_us)
{
	struct cache_slot	*set[2];
	const struct cache_slot	*s;
	size_t			 idlen = strlen(id), i;

	cache_sets(c, st->hash, set);
	for (i = 0; i < 2 * c->ways; i++) {
		s = &set[i / c->ways][i % c->ways];
		if (!cache_is(s, id, idlen, st->hash))
			continue;
		if (s->ver != st->ver || s->epoch != st->epoch ||
		    now_ms < s->fetched_ms || now_ms - s->fetched_ms >=
		    c->ttl_ms)
			return -1;
		memcpy(value, s->data + idlen, s->len);
		value[s->len] = '\0';
		*len = s->len;
		*expires_us = s->expires_us;
		return 0;
	}
	return -1;
}

int
cache_put(struct cache *c, const char *id, const struct cache_stamp *st,
    int64_t now_ms, const char *value, size_t len, int64_t expires_us)
{
	struct cache_slot	*set[2], *s, *victim = NULL;
	size_t			 idlen = strlen(id), i;

	if (idlen == 0 || idlen > ID_MAX || len > CACHE_VALUE_MAX - idlen)
		return -1;
	cache_sets(c, st->hash, set);
	for (i = 0; i < 2 * c->ways; i++) {
		s = &set[i / c->ways][i % c->ways];
		if (cache_is(s, id, idlen, st->hash)) {
			victim = s;
			break;
		}
		if (victim == NULL || (victim->idlen != 0 && (s->idlen == 0 ||
		    s->fetched_ms < victim->fetched_ms)))
			victim = s;
	}
	victim->expires_us = expires_us;
	victim->fetched_ms = now_ms;
	victim->hash = st->hash;
	victim->epoch = st->epoch;
	victim->ver = st->ver;
	victim->len = (uint16_t)len;
	victim->idlen = (uint8_t)idlen;
	memcpy(victim->data, id, idlen);
	memcpy(victim->data + idlen, value, len);
	return 0;
}
