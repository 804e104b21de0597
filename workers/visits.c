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
 *
 * Visit records (analytics on, see analytics.c): each recorded visit
 * also waits here, chained to its link's slot, and goes into the
 * flush's transaction after its link's count, as multi-row INSERTs
 * (db.c): a link's records are written exactly when its count is,
 * and wait with it when its row is locked.  A bot's visit, or one of
 * a link with a visit limit (counted in the database already), puts
 * its link in the table with nothing to add, so that its row is
 * locked and its records go with it.  Referer hosts are kept once per
 * flush window in a small arena.  A full record array or arena makes
 * the flush due at once; what does not fit meanwhile is counted but
 * not recorded (logged at the flush).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workers.h"

#define VISITS_SLOTS		4096	/* power of two */
#define VISITS_LINKS_EARLY	256	/* a flush this size holds the worker
					   a few ms: requests sent on its kept
					   connections wait that long */
#define VISITS_LINKS_MAX	(VISITS_SLOTS / 4 * 3)
#define VISITS_COUNT_EARLY	10000
#define VISITS_RETRY_MIN_MS	1000	/* after a failed flush */
#define VISITS_RETRY_MAX_MS	30000
#define VISITS_REC_MAX		16384	/* records waiting, at most */
#define VISITS_REC_EARLY	8192	/* flush at once from here */
#define VISITS_REF_SLOTS	2048	/* distinct referer hosts, power of 2 */
#define VISITS_REF_ARENA	(64 * 1024)	/* bytes of their names */
#define VISITS_NONE		VISIT_REC_NONE

struct visit_slot {
	char	 id[ID_MAX + 1];
	int	 used;
	int64_t	 count;		/* visits to add to urls.visits */
	int64_t	 last_us;	/* of the latest counted one, 0: none */
	uint32_t rec_first;	/* the link's records, VISITS_NONE: none */
	uint32_t rec_last;
};

/* What a flush keeps of a link whose row was locked. */
struct visit_left {
	struct visit_slot s;
	uint32_t	 nrec;
};

struct visits {
	struct visit_slot *slot;	/* VISITS_SLOTS of them */
	uint32_t	*used;		/* taken slots, in order */
	struct db_visits *out;		/* a flush's rows, sorted by id */
	struct visit_left *left;	/* what a flush leaves waiting */
	struct visit_rec *rec;		/* records; NULL until the first */
	uint32_t	 nrec;
	uint32_t	*ref_slot;	/* referer hash: arena offset + 1 */
	char		*ref_arena;
	size_t		 ref_used;	/* bytes of the arena taken */
	uint32_t	 nref;
	uint32_t	 rnd;		/* xorshift32 state, for uniq */
	uint64_t	 dropped_rec;	/* not recorded since the last flush */
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
	free(v->rec);
	free(v->ref_slot);
	free(v->ref_arena);
	free(v);
}

/* The slot holding id, or the free one where it would go (there is
 * always one: at most VISITS_LINKS_MAX of VISITS_SLOTS are taken). */
static uint32_t
visits_probe(const struct visits *v, const char *id)
{
	uint32_t	 i;

	for (i = id_hash(id) & (VISITS_SLOTS - 1);
	    v->slot[i].used && strcmp(v->slot[i].id, id) != 0;
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
	s->used = 1;
	s->count = count;
	s->last_us = last_us;
	s->rec_first = s->rec_last = VISITS_NONE;
	if (v->nused == 0)
		v->since_ms = now_ms;
	v->used[v->nused++] = i;
	v->total += count;
}

int
visits_add(struct visits *v, const char *id, int64_t now_us, int64_t now_ms)
{
	return visits_record(v, id, 1, NULL, now_us, now_ms);
}

/* The arena's copy of referer host h (len bytes), added if new; NULL
 * when the arena is full. */
static const char *
visits_ref(struct visits *v, const char *h, size_t len)
{
	uint32_t	 i, off;

	if (v->ref_slot == NULL &&
	    ((v->ref_slot = calloc(VISITS_REF_SLOTS, sizeof(uint32_t))) ==
	    NULL || (v->ref_arena = malloc(VISITS_REF_ARENA)) == NULL))
		return NULL;
	for (i = id_hash(h) & (VISITS_REF_SLOTS - 1);
	    (off = v->ref_slot[i]) != 0;
	    i = (i + 1) & (VISITS_REF_SLOTS - 1))
		if (strcmp(v->ref_arena + off - 1, h) == 0)
			return v->ref_arena + off - 1;
	if (v->nref >= VISITS_REF_SLOTS / 2 ||
	    v->ref_used + len + 1 > VISITS_REF_ARENA)
		return NULL;
	memcpy(v->ref_arena + v->ref_used, h, len + 1);
	v->ref_slot[i] = (uint32_t)v->ref_used + 1;
	v->ref_used += len + 1;
	v->nref++;
	return v->ref_arena + v->ref_slot[i] - 1;
}

/* Chain a copy of r to slot s's records.  0, or -1 (no room). */
static int
visits_chain(struct visits *v, struct visit_slot *s,
    const struct visit_rec *r)
{
	struct visit_rec	*c;

	if (v->rec == NULL &&
	    (v->rec = calloc(VISITS_REC_MAX, sizeof(*v->rec))) == NULL)
		return -1;
	if (v->nrec >= VISITS_REC_MAX)
		return -1;
	c = &v->rec[v->nrec];
	*c = *r;
	c->ref = NULL;
	if (r->ref != NULL && r->ref[0] != '\0')
		c->ref = visits_ref(v, r->ref, strlen(r->ref));
	if (v->rnd == 0)
		v->rnd = (uint32_t)id_hash(s->id) ^ (uint32_t)r->at_ms ^
		    (uint32_t)getpid() ^ 0x9e3779b9u;
	v->rnd ^= v->rnd << 13;
	v->rnd ^= v->rnd >> 17;
	v->rnd ^= v->rnd << 5;
	c->uniq = v->rnd;
	c->next = VISITS_NONE;
	if (s->rec_last == VISITS_NONE)
		s->rec_first = v->nrec;
	else
		v->rec[s->rec_last].next = v->nrec;
	s->rec_last = v->nrec++;
	return 0;
}

int
visits_record(struct visits *v, const char *id, int count,
    const struct visit_rec *r, int64_t now_us, int64_t now_ms)
{
	struct visit_slot	*s;
	size_t			 len = strlen(id);
	uint32_t		 i;

	if (len == 0 || len > ID_MAX)
		return -1;
	s = &v->slot[i = visits_probe(v, id)];
	if (!s->used) {
		if (v->nused >= VISITS_LINKS_MAX) {
			v->dropped++;
			return -1;
		}
		visits_take(v, i, id, 0, 0, now_ms);
	}
	if (count > 0) {
		s->count += count;
		if (now_us > s->last_us)
			s->last_us = now_us;
		v->total += count;
	}
	if (r != NULL && visits_chain(v, s, r) == -1)
		v->dropped_rec++;
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
	    v->total >= VISITS_COUNT_EARLY || v->nrec >= VISITS_REC_EARLY ||
	    v->ref_used >= VISITS_REF_ARENA / 4 * 3 ||
	    v->nref >= VISITS_REF_SLOTS / 8 * 3)
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
		v->slot[v->used[k]].used = 0;
		v->slot[v->used[k]].count = 0;
		v->slot[v->used[k]].id[0] = '\0';
	}
	v->nused = 0;
	v->total = 0;
	v->nrec = 0;
	v->nref = 0;
	v->ref_used = 0;
	if (v->ref_slot != NULL)
		memset(v->ref_slot, 0, VISITS_REF_SLOTS * sizeof(uint32_t));
}

static int
visits_cmp(const void *a, const void *b)
{
	return strcmp(((const struct db_visits *)a)->id,
	    ((const struct db_visits *)b)->id);
}

/*
 * After a flush: empty the table, then put back the links the
 * database did not take (v->out[k].pending) with their records,
 * copied out first since v->out points into the slots and the records
 * into the arena.  -> visits put back.
 */
static int64_t
visits_keep_pending(struct visits *v, int64_t now_ms)
{
	struct visit_rec	*kept = NULL;
	struct visit_slot	*s;
	char			*names = NULL, *c;
	size_t			 k, n = 0, nk = 0, want = 0, bytes = 0;
	uint32_t		 i, j;
	int64_t			 sum = 0;

	for (k = 0; k < v->nused; k++)
		for (j = v->out[k].pending ? v->out[k].rec_first :
		    VISITS_NONE; j != VISITS_NONE; j = v->rec[j].next) {
			want++;
			if (v->rec[j].ref != NULL)
				bytes += strlen(v->rec[j].ref) + 1;
		}
	if (want > 0 && ((kept = calloc(want, sizeof(*kept))) == NULL ||
	    (names = malloc(bytes + 1)) == NULL)) {
		v->dropped_rec += want;
		want = 0;
	}
	c = names;
	for (k = 0; k < v->nused; k++) {
		if (!v->out[k].pending)
			continue;
		s = &v->left[n].s;
		memcpy(s->id, v->out[k].id, strlen(v->out[k].id) + 1);
		s->count = v->out[k].count;
		s->last_us = v->out[k].last_us;
		v->left[n].nrec = 0;
		for (j = want > 0 ? v->out[k].rec_first : VISITS_NONE;
		    j != VISITS_NONE; j = v->rec[j].next) {
			kept[nk] = v->rec[j];
			if (kept[nk].ref != NULL) {
				memcpy(c, kept[nk].ref, strlen(kept[nk].ref) + 1);
				kept[nk].ref = c;
				c += strlen(c) + 1;
			}
			nk++;
			v->left[n].nrec++;
		}
		sum += s->count;
		n++;
	}
	visits_clear(v);
	for (k = 0, nk = 0; k < n; k++) {
		s = &v->left[k].s;
		visits_take(v, i = visits_probe(v, s->id), s->id, s->count,
		    s->last_us, now_ms);
		for (j = 0; j < v->left[k].nrec; j++, nk++)
			if (visits_chain(v, &v->slot[i], &kept[nk]) == -1)
				v->dropped_rec++;
	}
	free(kept);
	free(names);
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
		v->out[k].rec = v->rec;
		v->out[k].rec_first = s->rec_first;
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
	if (v->dropped_rec > 0)
		log_warnx("visits: %llu visits not recorded: too many "
		    "records waiting", (unsigned long long)v->dropped_rec);
	v->dropped = 0;
	v->dropped_rec = 0;
}
