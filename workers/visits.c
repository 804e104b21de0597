/*
 * visits.c — visit counting without a database write per redirect.
 *
 * Each shortener worker counts the redirects it serves in a small hash
 * table of its own (id -> visits, time of the last one) and adds them
 * to urls.visits in batches: one transaction per flush (one commit,
 * however many links), DB_VISITS_BATCH links per UPDATE, links in id
 * order so that two workers' flushes never deadlock.  A flush is due
 *
 *	- flush_ms (visits_flush_ms, default 1 s) after the first visit
 *	  that is still waiting, or
 *	- at once when VISITS_LINKS_EARLY distinct links or
 *	  VISITS_COUNT_EARLY visits wait,
 *
 * and the worker's loop runs it (the service's tick), also when no
 * request comes, and once more when the worker exits.  So the counts
 * GET /:id/stats shows lag the redirects by at most about flush_ms, and
 * a worker that crashes (or is killed) loses at most what it had not
 * flushed: that window, bounded by the numbers above.
 *
 * Counting is at most once: visits wait while the database cannot be
 * reached, a flush that applied nothing (deadlock, lost connection
 * before COMMIT) is tried once more, and one that failed otherwise, or
 * whose COMMIT may or may not have happened, is dropped (and logged),
 * never written twice.  When the
 * table is full (the database has been away for a while and many
 * distinct links were visited) further new links are not counted.
 *
 * Links with a visit limit are not counted here: shortener.c counts
 * them one by one with a conditional UPDATE, so the limit holds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#define VISITS_SLOTS		4096	/* power of two */
#define VISITS_LINKS_EARLY	(VISITS_SLOTS / 2)
#define VISITS_LINKS_MAX	(VISITS_SLOTS / 4 * 3)
#define VISITS_COUNT_EARLY	10000

struct visit_slot {
	char	 id[ID_MAX + 1];
	int64_t	 count;		/* 0: the slot is free */
	int64_t	 last_us;
};

struct visits {
	struct visit_slot *slot;	/* VISITS_SLOTS of them */
	uint32_t	*used;		/* taken slots, in order */
	struct db_visits *out;		/* a flush's rows, sorted by id */
	size_t		 nused;
	int64_t		 total;		/* visits waiting */
	int64_t		 since_ms;	/* when the oldest began to wait */
	int		 flush_ms;
	uint64_t	 dropped;	/* not counted since the last flush */
};

/* FNV-1a: ids are random or chosen by users, nothing to attack. */
static uint32_t
visits_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

struct visits *
visits_new(int flush_ms)
{
	struct visits	*v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->slot = calloc(VISITS_SLOTS, sizeof(*v->slot));
	v->used = calloc(VISITS_LINKS_MAX, sizeof(*v->used));
	v->out = calloc(VISITS_LINKS_MAX, sizeof(*v->out));
	if (v->slot == NULL || v->used == NULL || v->out == NULL) {
		visits_free(v);
		return NULL;
	}
	v->flush_ms = flush_ms > 0 ? flush_ms : 1;
	return v;
}

void
visits_free(struct visits *v)
{
	if (v == NULL)
		return;
	free(v->slot);
	free(v->used);
	free(v->out);
	free(v);
}

int
visits_add(struct visits *v, const char *id, int64_t now_us, int64_t now_ms)
{
	struct visit_slot	*s;
	size_t			 len = strlen(id);
	uint32_t		 i;

	if (len == 0 || len > ID_MAX)
		return -1;
	for (i = visits_hash(id) & (VISITS_SLOTS - 1);;
	    i = (i + 1) & (VISITS_SLOTS - 1)) {
		s = &v->slot[i];
		if (s->count == 0)
			break;
		if (strcmp(s->id, id) == 0) {
			s->count++;
			if (now_us > s->last_us)
				s->last_us = now_us;
			v->total++;
			return 0;
		}
	}
	if (v->nused >= VISITS_LINKS_MAX) {
		v->dropped++;
		return -1;
	}
	memcpy(s->id, id, len + 1);
	s->count = 1;
	s->last_us = now_us;
	if (v->nused == 0)
		v->since_ms = now_ms;
	v->used[v->nused++] = i;
	v->total++;
	return 0;
}

int
visits_due(const struct visits *v, int64_t now_ms)
{
	int64_t	 left;

	if (v == NULL || v->nused == 0)
		return -1;
	if (v->nused >= VISITS_LINKS_EARLY || v->total >= VISITS_COUNT_EARLY)
		return 0;
	left = v->since_ms + v->flush_ms - now_ms;
	return left <= 0 ? 0 : (int)left;
}

size_t
visits_pending(const struct visits *v)
{
	return v == NULL ? 0 : v->nused;
}

/* Forget everything that waits. */
static void
visits_clear(struct visits *v)
{
	size_t	 k;

	for (k = 0; k < v->nused; k++) {
		v->slot[v->used[k]].count = 0;
		v->slot[v->used[k]].id[0] = '\0';
	}
	v->nused = 0;
	v->total = 0;
}

static int
visits_cmp(const void *a, const void *b)
{
	return strcmp(((const struct db_visits *)a)->id,
	    ((const struct db_visits *)b)->id);
}

void
visits_flush(struct visits *v, struct db *db, int64_t now_ms)
{
	const struct visit_slot	*s;
	size_t			 k;
	int64_t			 sum = 0;

	if (v == NULL || v->nused == 0)
		return;
	if (db_ensure(db) != DB_OK) {
		/* Nothing was written: keep it all, try again later. */
		v->since_ms = now_ms;
		return;
	}
	for (k = 0; k < v->nused; k++) {
		s = &v->slot[v->used[k]];
		v->out[k].id = s->id;
		v->out[k].count = s->count;
		v->out[k].last_us = s->last_us;
		sum += s->count;
	}
	qsort(v->out, v->nused, sizeof(*v->out), visits_cmp);
	if (db_url_add_visits(db, v->out, v->nused) != DB_OK)
		log_warnx("visits: %lld visits of %zu links not recorded: "
		    "the database write failed", (long long)sum, v->nused);
	if (v->dropped > 0)
		log_warnx("visits: %llu visits not counted: too many links "
		    "waiting", (unsigned long long)v->dropped);
	v->dropped = 0;
	visits_clear(v);
}
