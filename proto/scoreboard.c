/*
 * The scoreboard's writers and readers (see scoreboard.h for who
 * writes what).  The text fields are arrays of atomic bytes, read and
 * written with relaxed operations between the sequence counter's
 * release and acquire, so a torn copy is detected rather than being a
 * data race.
 */
#include <stdatomic.h>
#include <string.h>

#include "scoreboard.h"

#define SB_READ_TRIES	64

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2,
    "the scoreboard needs lock-free 64-bit atomics");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2,
    "the scoreboard needs lock-free 32-bit atomics");

/* Prometheus' default buckets, from 1 ms up to 5 s. */
const int64_t sb_bucket_us[SB_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000
};

static const char *sb_state_names[SB_NSTATES] = {
	"free", "starting", "idle", "reading", "working"
};

size_t
sb_size(uint32_t nslots)
{
	return sizeof(struct scoreboard) + (size_t)nslots *
	    sizeof(struct sb_slot);
}

void
sb_init(struct scoreboard *sb, uint32_t nslots, int64_t now_unix,
    int64_t now_ms)
{
	sb->magic = SB_MAGIC;
	sb->nslots = nslots;
	atomic_store(&sb->hwm, 0);
	atomic_store(&sb->gen, 0);
	sb->started_unix = now_unix;
	sb->started_ms = now_ms;
}

const char *
sb_state_name(enum sb_state st)
{
	return (unsigned)st < SB_NSTATES ? sb_state_names[st] : "unknown";
}

static void
sb_put_str(_Atomic unsigned char *dst, size_t size, const char *src)
{
	size_t	 i = 0;

	if (src != NULL)
		for (; i < size - 1 && src[i] != '\0'; i++)
			atomic_store_explicit(&dst[i], (unsigned char)src[i],
			    memory_order_relaxed);
	atomic_store_explicit(&dst[i], '\0', memory_order_relaxed);
}

static void
sb_get_str(char *dst, const _Atomic unsigned char *src, size_t size)
{
	size_t	 i;

	for (i = 0; i < size - 1; i++) {
		dst[i] = (char)atomic_load_explicit(&src[i],
		    memory_order_relaxed);
		if (dst[i] == '\0')
			return;
	}
	dst[i] = '\0';
}

/* Open a write: the counter goes odd.  Only the slot's one writer
 * calls this, so a plain load-then-store is enough. */
static uint32_t
sb_write_begin(struct sb_slot *s)
{
	uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);

	seq |= 1;		/* a writer that died mid-write left it odd */
	atomic_store_explicit(&s->seq, seq, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	return seq;
}

static void
sb_write_end(struct sb_slot *s, uint32_t seq)
{
	atomic_store_explicit(&s->seq, seq + 1, memory_order_release);
}

void
sb_slot_prepare(struct scoreboard *sb, uint32_t i, int pool, unsigned gen,
    int64_t now_ms)
{
	struct sb_slot	*s = &sb->slot[i];
	uint32_t	 seq;

	seq = sb_write_begin(s);
	atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
	atomic_store_explicit(&s->pool, pool, memory_order_relaxed);
	atomic_store_explicit(&s->gen, gen, memory_order_relaxed);
	atomic_store_explicit(&s->exit_reason, SB_EXIT_NONE,
	    memory_order_relaxed);
	atomic_store_explicit(&s->started_ms, now_ms, memory_order_relaxed);
	atomic_store_explicit(&s->since_ms, now_ms, memory_order_relaxed);
	atomic_store_explicit(&s->requests, 0, memory_order_relaxed);
	atomic_store_explicit(&s->kept, 0, memory_order_relaxed);
	sb_put_str(s->method, SB_METHOD_MAX, NULL);
	sb_put_str(s->path, SB_PATH_MAX, NULL);
	atomic_store_explicit(&s->state, SB_STARTING, memory_order_relaxed);
	sb_write_end(s, seq);
	if (i + 1 > atomic_load(&sb->hwm))
		atomic_store(&sb->hwm, i + 1);
}

void
sb_slot_release(struct scoreboard *sb, uint32_t i)
{
	struct sb_slot	*s = &sb->slot[i];
	uint32_t	 seq;

	seq = sb_write_begin(s);
	atomic_store_explicit(&s->state, SB_FREE, memory_order_relaxed);
	atomic_store_explicit(&s->pid, 0, memory_order_relaxed);
	sb_put_str(s->method, SB_METHOD_MAX, NULL);
	sb_put_str(s->path, SB_PATH_MAX, NULL);
	sb_write_end(s, seq);
}

void
sb_slot_set(struct sb_slot *s, enum sb_state st, int64_t now_ms,
    const char *method, const char *path)
{
	uint32_t	 seq;

	seq = sb_write_begin(s);
	atomic_store_explicit(&s->state, st, memory_order_relaxed);
	atomic_store_explicit(&s->since_ms, now_ms, memory_order_relaxed);
	sb_put_str(s->method, SB_METHOD_MAX, st == SB_WORKING ? method :
	    NULL);
	sb_put_str(s->path, SB_PATH_MAX, st == SB_WORKING ? path : NULL);
	sb_write_end(s, seq);
}

int
sb_bucket(int64_t usec)
{
	int	 b;

	for (b = 0; b < SB_BUCKETS; b++)
		if (usec <= sb_bucket_us[b])
			return b;
	return SB_BUCKETS;
}

void
sb_count(struct sb_pool *p, int status, int64_t usec)
{
	int	 class = status / 100;

	if (class < 1 || class > 5)
		class = 5;
	if (usec < 0)
		usec = 0;
	atomic_fetch_add_explicit(&p->requests[class - 1], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&p->latency[sb_bucket(usec)], 1,
	    memory_order_relaxed);
	atomic_fetch_add_explicit(&p->latency_sum_us, (uint64_t)usec,
	    memory_order_relaxed);
}

int
sb_slot_read(const struct scoreboard *sb, uint32_t i, struct sb_view *v)
{
	const struct sb_slot	*s = &sb->slot[i];
	uint32_t		 s1, s2;
	int			 tries;

	for (tries = 0; tries < SB_READ_TRIES; tries++) {
		s1 = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (s1 & 1)
			continue;
		v->state = atomic_load_explicit(&s->state,
		    memory_order_relaxed);
		v->pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
		v->pool = atomic_load_explicit(&s->pool, memory_order_relaxed);
		v->gen = atomic_load_explicit(&s->gen, memory_order_relaxed);
		v->started_ms = atomic_load_explicit(&s->started_ms,
		    memory_order_relaxed);
		v->since_ms = atomic_load_explicit(&s->since_ms,
		    memory_order_relaxed);
		v->requests = atomic_load_explicit(&s->requests,
		    memory_order_relaxed);
		sb_get_str(v->method, s->method, SB_METHOD_MAX);
		sb_get_str(v->path, s->path, SB_PATH_MAX);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&s->seq, memory_order_relaxed);
		if (s1 == s2)
			return v->state == SB_FREE ? -1 : 0;
	}
	return -1;
}
