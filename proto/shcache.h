/*
 * proto/shcache.h — the slots of the redirect cache that a pool's
 * workers share (workers/cache.c decides what goes in them).
 *
 * The master maps the region before it forks, so every worker sees
 * the same slots; any worker may be SIGKILLed at any instant, so no
 * slot is ever guarded by a lock that a dead process could keep.
 * Each slot has a sequence word and a checksum:
 *
 *	seq	even while the slot is stable; odd while a writer copies
 *		an entry in.  A writer takes a slot by turning seq odd
 *		with a compare-and-swap (so two writers never write the
 *		same slot at once) and gives it back by turning it even
 *		again; a reader copies the slot and keeps the copy only
 *		if seq was even and unchanged around it.  A writer that
 *		died mid-write leaves seq odd: readers miss, and after
 *		SHC_STALE_MS any writer may take the slot over.
 *	sum	a keyed hash of the entry (seed chosen when the region is
 *		mapped).  A copy whose sum does not match (memory
 *		scribbled on, or a writer paused past SHC_STALE_MS whose
 *		late stores land over the slot's new owner's) is never
 *		used: the reader clears the slot and reads the database.
 *
 * Every word of a slot is an atomic read and written with relaxed
 * operations between the sequence word's fences, so a torn copy is
 * detected rather than being a data race.  Pure: no system calls;
 * times come from the caller.
 */
#ifndef SHORTD_SHCACHE_H
#define SHORTD_SHCACHE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHC_SLOT	256	/* bytes per slot */
#define SHC_DATA	200	/* bytes of id and value an entry holds */
#define SHC_STALE_MS	1000	/* a write open this long was abandoned */

/* An entry as the cache's code sees it (a private copy). */
struct shc_entry {
	int64_t		 expires_us;	/* 0: never */
	int64_t		 fetched_ms;	/* taken before the database read */
	uint32_t	 hash;		/* of the id */
	uint32_t	 epoch;		/* the stamp read before the database */
	uint32_t	 ver;
	uint16_t	 len;		/* of the value */
	uint8_t		 idlen;		/* 0: the slot is free */
	uint8_t		 unused;
	char		 data[SHC_DATA];	/* the id, then the value; not
					   NUL-terminated */
};

#define SHC_WORDS	(sizeof(struct shc_entry) / 8)

struct shc_slot {
	_Atomic uint64_t seq;		/* odd: being written */
	_Atomic int64_t	 busy_ms;	/* when the open write began */
	_Atomic uint64_t sum;		/* of w[], keyed */
	_Atomic uint64_t w[SHC_WORDS];	/* a struct shc_entry */
};

/* What a slot holds, read without the sequence word: enough to pick
 * the slots worth a real read, never enough to answer from. */
struct shc_peek {
	uint32_t	 hash;
	uint8_t		 idlen;
	int		 busy;		/* a write is open (and not
					   abandoned) */
	int64_t		 fetched_ms;
};

/* The region, as the master mapped it (the same address in every
 * worker it forks), and the seed of its checksums. */
struct shc_map {
	void		*base;		/* NULL: no shared cache */
	size_t		 bytes;
	uint64_t	 seed;
};

enum shc_read {
	SHC_OK = 0,		/* a consistent, intact copy */
	SHC_BUSY,		/* being written (or changed while read) */
	SHC_CORRUPT		/* consistent but its checksum is wrong */
};

void		shc_peek(const struct shc_slot *, int64_t now_ms,
		    struct shc_peek *);
enum shc_read	shc_read(const struct shc_slot *, uint64_t seed,
		    struct shc_entry *);
/* Copy e into the slot: 0, or -1 if another writer holds it (the
 * entry is then simply not stored).  now_ms is CLOCK_MONOTONIC. */
int		shc_write(struct shc_slot *, uint64_t seed,
		    const struct shc_entry *, int64_t now_ms);

#endif /* SHORTD_SHCACHE_H */
