/*
 * visits.c: the in-memory table and its flush schedule, and the
 * back-off after failed flushes (the flush itself, through the
 * database, is covered end to end by regress/e2e/test_features.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

UNIT_TEST(schedule)
{
	struct visits	*v;

	CHECK((v = visits_new(1000)) != NULL);
	CHECK(visits_due(v, 5000) == -1);
	CHECK(visits_pending(v) == 0);
	CHECK(visits_add(v, "abc", 1, 5000) == 0);
	CHECK(visits_due(v, 5000) == 1000);
	CHECK(visits_add(v, "abc", 2, 5400) == 0);
	CHECK(visits_add(v, "ABC", 3, 5500) == 0);	/* case counts */
	CHECK(visits_pending(v) == 2);
	/* The oldest waiting visit sets the deadline. */
	CHECK(visits_due(v, 5600) == 400);
	CHECK(visits_due(v, 6000) == 0);
	CHECK(visits_due(v, 9000) == 0);
	CHECK(visits_add(v, "", 1, 5000) == -1);
	visits_free(v);
	visits_free(NULL);
	CHECK(visits_due(NULL, 0) == -1);
}

/* Many distinct links make a flush due at once, and the table stops
 * taking new links when full rather than growing. */
UNIT_TEST(bounds)
{
	struct visits	*v;
	char		 id[16];
	int		 i, refused = 0;

	CHECK((v = visits_new(60000)) != NULL);
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		if (visits_add(v, id, i, 0) == -1)
			refused++;
		if (i == 100)
			CHECK(visits_due(v, 0) == 60000);
	}
	CHECK(visits_due(v, 0) == 0);
	CHECK(refused > 0 && visits_pending(v) == (size_t)(5000 - refused));
	/* Links already in the table are still counted. */
	CHECK(visits_add(v, "id0", 1, 0) == 0);
	visits_free(v);

	/* Many visits of one link too. */
	CHECK((v = visits_new(60000)) != NULL);
	for (i = 0; i < 10000; i++)
		CHECK(visits_add(v, "hot", i, 0) == 0);
	CHECK(visits_pending(v) == 1 && visits_due(v, 0) == 0);
	visits_free(v);
}

/*
 * Flushes that fail keep every visit and are spaced: flush_ms but at
 * least a second, doubling up to 30 s, early triggers included; the
 * database here is a unix socket that does not exist, so every flush
 * fails without touching anything.
 */
#define SLOP_MS	500

UNIT_TEST(backoff)
{
	struct config	 cfg;
	struct db	*db;
	struct visits	*v;
	int64_t		 t = 100000;
	int		 d, i, want[] = { 1000, 2000, 4000, 8000, 16000, 30000,
			    30000 };

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.db_socket, sizeof(cfg.db_socket),
	    "/nonexistent/shortd-unit.sock");
	cfg.db_connect_timeout = 1;
	CHECK((db = db_new(&cfg)) != NULL);
	CHECK((v = visits_new(100)) != NULL);
	CHECK(visits_add(v, "abc", 1, t) == 0);
	CHECK(visits_add(v, "abd", 2, t) == 0);
	CHECK(visits_due(v, t + 100) == 0);
	for (i = 0; i < (int)(sizeof(want) / sizeof(want[0])); i++) {
		t += 100;
		visits_flush(v, db, t);
		CHECK(visits_pending(v) == 2);
		/* Counted from the flush's end: the failed connect's
		 * time (a fraction of a millisecond, some under load). */
		d = visits_due(v, t);
		CHECK(d >= want[i] && d < want[i] + SLOP_MS);
		CHECK(visits_due(v, t + d - 1) == 1);
		t += d;
		CHECK(visits_due(v, t) == 0);
	}
	/* Many visits waiting do not cut the back-off short. */
	visits_flush(v, db, t);
	for (i = 0; i < 20000; i++)
		CHECK(visits_add(v, "abc", i, t) == 0);
	d = visits_due(v, t);
	CHECK(d >= 30000 && d < 30000 + SLOP_MS);
	CHECK(visits_due(v, t + d) == 0);
	visits_free(v);

	/* A long flush interval is the back-off's floor. */
	CHECK((v = visits_new(45000)) != NULL);
	CHECK(visits_add(v, "abc", 1, t) == 0);
	visits_flush(v, db, t);
	d = visits_due(v, t);
	CHECK(d >= 45000 && d < 45000 + SLOP_MS);
	t += d;
	visits_flush(v, db, t);
	d = visits_due(v, t);
	CHECK(d >= 45000 && d < 45000 + SLOP_MS);
	CHECK(visits_pending(v) == 1);
	visits_free(v);
	db_free(db);
}

UNIT_MAIN(UNIT(schedule), UNIT(bounds), UNIT(backoff))
