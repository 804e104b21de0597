/*
 * visits.c — visit counting without a database write per redirect.
 *
 * Each shortener worker counts the redirects it serves in a small hash
 * table of its own (id -> visits, time of the last one) and adds them
 * to urls.visits in batches: one transaction per flush (one commit,
 * however many links), DB_VISITS_BATCH links per UPDATE, links in id
 * order.  A flush is due
 *
 *	- flush_ms (visits_flush_ms, default 1 s) after the first visit
 *	  that is still waiting, or
 *	- at once when VISITS_LINKS_EARLY distinct links or
 *	  VISITS_COUNT_EARLY visits wait,
 *
 * and the worker's loop runs it (the service's tick), also when no
 * request comes, and once more when the worker exits.  So the counts
 * GET /:id/stats shows lag the redirects by about flush_ms (longer
 * only while their row is locked or the database fails, see below),
 * and a worker that crashes (or is killed) loses at most what it had
 * not flushed: that window, bounded by the numbers above.
 *
 * A flush stalls the worker for at most about a second on a row lock.
 * Workers' flushes lock rows in id order and wait for each other
 * (milliseconds); a row held longer by another session (a long
 * transaction, an administrator, another shortd) makes the flush give
 * up after a second, roll back, and try again at once skipping rows
 * locked by others (db_visits.c): their visits wait in the table, the other
 * links are written.  The flushes that follow skip locked rows too, so
 * they wait for nothing, until one has nothing left waiting.
 *
 * Counting is at most once.  Visits stay in the table, to be written
 * later, whenever they were surely not written: their row was locked
 * and skipped, the database could not be reached, the transaction was
 * rolled back (a lock wait timeout, a deadlock, any error the server
 * reports before COMMIT).  A failed flush is tried again after a
 * back-off: flush_ms, but at least VISITS_RETRY_MIN_MS, doubling to
 * VISITS_RETRY_MAX_MS while flushes keep failing, so an unusable
 * database costs a worker one attempt per back-off, not one per
 * request.  Visits whose COMMIT may or may not have happened (the
 * connection went during it, or it failed otherwise than by a
 * rollback) are dropped and logged, never written twice.  When the
 * table is full (the database has been away for a while and many
 * distinct links were visited) further new links are not counted;
 * what still waits when the worker exits is lost, and logged.
 *
 * Links with a visit limit are not counted here: shortener.c counts
 * them one by one with a conditional UPDATE, so the limit holds.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workers.h"

#define VISITS_SLOTS		4096	/* power of two */
#define VISITS_LINKS_EARLY	256	/* a flush this size holds the worker
					   a few ms: requests sent on its kept
					   connections wait that long */
#define VISITS_LINKS_MAX	(VISITS_SLOTS / 4 * 3)
#define VISITS_COUNT_EARLY	10000
#define VISITS_RETRY_MIN_MS	1000	/* after a failed flush */
#define VISITS_RETRY_MAX_MS	30000

struct visit_slot {
	char	 id[ID_MAX + 1];
	int64_t	 count;		/* 0: the slot is free */
	int64_t	 last_us;
};

struct visits {
	struct visit_slot *slot;	/* VISITS_SLOTS of them */
	uint32_t	*used;		/* taken slots, in order */
	struct db_visits *out;		/* a flush's rows, sorted by id */
	struct visit_slot *left;	/* what a flush leaves waiting */
	size_t		 nused;
	int64_t		 total;		/* visits waiting */
	int64_t		 since_ms;	/* when the oldest began to wait */
	int64_t		 retry_ms;	/* no flush before (0: any time) */
	int64_t		 held_ms;	/* rows locked since (0: none) */
	int		 flush_ms;
	int		 fails;		/* flushes failed in a row */
	int		 skip;		/* skip locked rows, don't wait */
	uint64_t	 dropped;	/* not counted since the last flush */
};

struct visits *
visits_new(int flush_ms)
{
	struct visits	*v;

	if ((v = calloc(1, sizeof(*v))) == NULL)
		return NULL;
	v->slot = calloc(VISITS_SLOTS, sizeof(*v->slot));
	v->used = calloc(VISITS_LINKS_MAX, sizeof(*v->used));
	v->out = calloc(VISITS_LINKS_MAX, sizeof(*v->out));
	v->left = calloc(VISITS_LINKS_MAX, sizeof(*v->left));
	if (v->slot == NULL || v->used == NULL || v->out == NULL ||
	    v->left == NULL) {
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
	if (v->nused > 0)
		log_warnx("visits: %lld visits of %zu links not recorded: "
		    "still waiting when the worker left",
		    (long long)v->total, v->nused);
	free(v->slot);
	free(v->used);
	free(v->out);
	free(v->left);
	free(v);
}

/* The slot holding id, or the free one where it would go (there is
 * always one: at most VISITS_LINKS_MAX of VISITS_SLOTS are taken). */
static uint32_t
visits_probe(const struct visits *v, const char *id)
{
	uint32_t	 i;

	for (i = id_hash(id) & (VISITS_SLOTS - 1);
	    v->slot[i].count != 0 && strcmp(v->slot[i].id, id) != 0;
	    i = (i + 1) & (VISITS_SLOTS - 1))
		;
	return i;
}

/* Put a link not in the table yet into free slot i. */
static void
visits_take(struct visits *v, uint32_t i, const char *id, int64_t count,
    int64_t last_us, int64_t now_ms)
{
	struct visit_slot	*s = &v->slot[i];

	memcpy(s->id, id, strlen(id) + 1);
	s->count = count;
	s->last_us = last_us;
	if (v->nused == 0)
		v->since_ms = now_ms;
	v->used[v->nused++] = i;
	v->total += count;
}

int
visits_add(struct visits *v, const char *id, int64_t now_us, int64_t now_ms)
{
	struct visit_slot	*s;
	size_t			 len = strlen(id);
	uint32_t		 i;

	if (len == 0 || len > ID_MAX)
		return -1;
	s = &v->slot[i = visits_probe(v, id)];
	if (s->count != 0) {
		s->count++;
		if (now_us > s->last_us)
			s->last_us = now_us;
		v->total++;
		return 0;
	}
	if (v->nused >= VISITS_LINKS_MAX) {
		v->dropped++;
		return -1;
	}
	visits_take(v, i, id, 1, now_us, now_ms);
	return 0;
}

/* After a failed flush (v->fails in a row): ms until the next try. */
static int64_t
visits_backoff(const struct visits *v)
{
	int64_t	 base, d;

	base = v->flush_ms > VISITS_RETRY_MIN_MS ? v->flush_ms :
	    VISITS_RETRY_MIN_MS;
	d = base << (v->fails < 6 ? v->fails - 1 : 5);
	if (d > VISITS_RETRY_MAX_MS)
		d = base > VISITS_RETRY_MAX_MS ? base : VISITS_RETRY_MAX_MS;
	return d;
}

int
visits_due(const struct visits *v, int64_t now_ms)
{
	int64_t	 left;

	if (v == NULL || v->nused == 0)
		return -1;
	if (v->retry_ms > now_ms)
		left = v->retry_ms - now_ms;
	else if (v->nused >= VISITS_LINKS_EARLY ||
	    v->total >= VISITS_COUNT_EARLY)
		return 0;
	else
		left = v->since_ms + v->flush_ms - now_ms;
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
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

/*
 * After a flush: empty the table, then put back the links the
 * database did not take (v->out[k].pending), copied out first since
 * v->out points into the slots.  -> visits put back.
 */
static int64_t
visits_keep_pending(struct visits *v, int64_t now_ms)
{
	size_t		 k, n = 0;
	int64_t		 sum = 0;

	for (k = 0; k < v->nused; k++) {
		if (!v->out[k].pending)
			continue;
		memcpy(v->left[n].id, v->out[k].id, strlen(v->out[k].id) + 1);
		v->left[n].count = v->out[k].count;
		v->left[n].last_us = v->out[k].last_us;
		sum += v->left[n].count;
		n++;
	}
	visits_clear(v);
	for (k = 0; k < n; k++)
		visits_take(v, visits_probe(v, v->left[k].id), v->left[k].id,
		    v->left[k].count, v->left[k].last_us, now_ms);
	return sum;
}

/*
 * now_ms is when the flush starts; the next one is scheduled from when
 * it ends, which may be a second later (a lock wait).
 */
void
visits_flush(struct visits *v, struct db *db, int64_t now_ms)
{
	const struct visit_slot	*s;
	char			 err[300];
	size_t			 k, n, kept;
	int64_t			 sum = 0, waiting, t0;
	enum db_status		 st;

	if (v == NULL || v->nused == 0)
		return;
	for (k = 0; k < v->nused; k++) {
		s = &v->slot[v->used[k]];
		v->out[k].id = s->id;
		v->out[k].count = s->count;
		v->out[k].last_us = s->last_us;
		v->out[k].pending = 1;
		sum += s->count;
	}
	n = v->nused;
	qsort(v->out, n, sizeof(*v->out), visits_cmp);
	err[0] = '\0';
	t0 = mono_ms();
	st = db_url_add_visits(db, v->out, n, v->skip, err, sizeof(err));
	now_ms += mono_ms() - t0;
	waiting = visits_keep_pending(v, now_ms);
	kept = v->nused;
	v->skip = st != DB_OK || kept > 0;
	if (st == DB_OK) {
		v->fails = 0;
		if (kept == 0) {
			if (v->held_ms != 0)
				log_info("visits: rows locked by another "
				    "session for %lld s are free: their "
				    "visits are counted",
				    (long long)(now_ms - v->held_ms) / 1000);
			v->held_ms = 0;
			v->retry_ms = 0;
		} else {
			if (v->held_ms == 0) {
				log_info("visits: %lld visits of %zu links "
				    "wait for a later flush: their rows are "
				    "locked by another session",
				    (long long)waiting, kept);
				v->held_ms = now_ms;
			}
			/* Not at every tick, however many wait. */
			v->retry_ms = now_ms + v->flush_ms;
		}
	} else {
		v->fails++;
		v->retry_ms = now_ms + visits_backoff(v);
		if (kept == n)
			log_warnx("visits: flush failed, nothing written: %s; "
			    "%lld visits of %zu links kept, next try in "
			    "%lld ms", err, (long long)waiting, kept,
			    (long long)(v->retry_ms - now_ms));
		else if (kept == 0)
			log_warnx("visits: flush failed: %s; %lld visits of "
			    "%zu links not recorded: the COMMIT may or may "
			    "not have applied them", err, (long long)sum, n);
		else
			log_warnx("visits: flush failed: %s; %lld visits of "
			    "%zu links not recorded (the COMMIT may or may "
			    "not have applied them), %lld of %zu links kept "
			    "(their rows were locked), next try in %lld ms",
			    err, (long long)(sum - waiting), n - kept,
			    (long long)waiting, kept,
			    (long long)(v->retry_ms - now_ms));
	}
	if (v->dropped > 0)
		log_warnx("visits: %llu visits not counted: too many links "
		    "waiting", (unsigned long long)v->dropped);
	v->dropped = 0;
}
