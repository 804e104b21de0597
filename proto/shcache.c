/*
 * The shared redirect cache's slots: a sequence word per slot for
 * consistent copies without locks, a keyed checksum per entry for
 * memory that was scribbled on (see shcache.h).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "shcache.h"

#define SHC_READ_TRIES	4

_Static_assert(sizeof(struct shc_entry) % 8 == 0,
    "an entry is whole 64-bit words");
_Static_assert(sizeof(struct shc_slot) == SHC_SLOT,
    "a slot is SHC_SLOT bytes");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
    "the shared cache needs lock-free 64-bit atomics");

/* Keyed: a checksum that garbage matches by chance once in 2^64, and
 * that an all-zero slot does not match either. */
static uint64_t
shc_sum(uint64_t seed, const uint64_t w[SHC_WORDS])
{
	uint64_t	 h = seed ^ 0x9e3779b97f4a7c15ull;
	size_t		 i;

	for (i = 0; i < SHC_WORDS; i++) {
		h = (h ^ w[i]) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 29);
}

/* Is a write that began at busy_ms, seen at now_ms, still going on?
 * Unsigned: a time in the future is garbage, and stale too. */
static int
shc_live(int64_t busy_ms, int64_t now_ms)
{
	return (uint64_t)(now_ms - busy_ms) < SHC_STALE_MS;
}

void
shc_peek(const struct shc_slot *s, int64_t now_ms, struct shc_peek *p)
{
	struct shc_entry	 e;
	uint64_t		 w[3];
	size_t			 i;

	/* expires_us, fetched_ms, then hash and epoch; ver, len and
	 * idlen are in the word after. */
	for (i = 0; i < 3; i++)
		w[i] = atomic_load_explicit(&s->w[i + 1],
		    memory_order_relaxed);
	memcpy((char *)&e + offsetof(struct shc_entry, fetched_ms), w,
	    sizeof(w));
	p->fetched_ms = e.fetched_ms;
	p->hash = e.hash;
	p->idlen = e.idlen;
	p->busy = (atomic_load_explicit(&s->seq, memory_order_relaxed) & 1) &&
	    shc_live(atomic_load_explicit(&s->busy_ms, memory_order_relaxed),
	    now_ms);
}

enum shc_read
shc_read(const struct shc_slot *s, uint64_t seed, struct shc_entry *e)
{
	uint64_t	 w[SHC_WORDS], sum, s1, s2;
	size_t		 i;
	int		 tries;

	for (tries = 0; tries < SHC_READ_TRIES; tries++) {
		s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (s1 & 1)
			return SHC_BUSY;
		for (i = 0; i < SHC_WORDS; i++)
			w[i] = atomic_load_explicit(&s->w[i],
			    memory_order_relaxed);
		sum = atomic_load_explicit(&s->sum, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
		if (s1 != s2)
			continue;
		if (sum != shc_sum(seed, w))
			return SHC_CORRUPT;
		memcpy(e, w, sizeof(*e));
		return SHC_OK;
	}
	return SHC_BUSY;
}

/* Take the slot for a write: the odd sequence word now ours, or 0 if
 * a live writer has it. */
static uint64_t
shc_take(struct shc_slot *s, int64_t now_ms)
{
	uint64_t	 seq;

	seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
	if ((seq & 1) && shc_live(atomic_load_explicit(&s->busy_ms,
	    memory_order_relaxed), now_ms))
		return 0;
	/* From even to odd, or from one odd (abandoned) to another. */
	if (!atomic_compare_exchange_strong_explicit(&s->seq, &seq,
	    seq + 1 + (seq & 1), memory_order_relaxed, memory_order_relaxed))
		return 0;
	seq += 1 + (seq & 1);
	atomic_store_explicit(&s->busy_ms, now_ms, memory_order_relaxed);
	/* Nothing below may be seen before the odd word. */
	atomic_thread_fence(memory_order_release);
	return seq;
}

int
shc_write(struct shc_slot *s, uint64_t seed, const struct shc_entry *e,
    int64_t now_ms)
{
	uint64_t	 w[SHC_WORDS], seq;
	size_t		 i;

	if ((seq = shc_take(s, now_ms)) == 0)
		return -1;
	memcpy(w, e, sizeof(w));
	for (i = 0; i < SHC_WORDS; i++)
		atomic_store_explicit(&s->w[i], w[i], memory_order_relaxed);
	atomic_store_explicit(&s->sum, shc_sum(seed, w),
	    memory_order_relaxed);
	/* Give the slot back, unless it was taken over meanwhile (this
	 * write was then so slow it counts as abandoned). */
	(void)atomic_compare_exchange_strong_explicit(&s->seq, &seq, seq + 1,
	    memory_order_release, memory_order_relaxed);
	return 0;
}
