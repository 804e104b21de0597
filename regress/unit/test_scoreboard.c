/*
 * proto/scoreboard.c: slots written by one process and read by others,
 * per-pool counters, latency buckets.
 */

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/scoreboard.h"
#include "unit.h"

#define NSLOTS	8

static struct scoreboard *
sb_new(void)
{
	struct scoreboard *sb = calloc(1, sb_size(NSLOTS));

	if (sb != NULL)
		sb_init(sb, NSLOTS, 1700000000, 5000);
	return sb;
}

UNIT_TEST(prepare_set_read)
{
	struct scoreboard	*sb = sb_new();
	struct sb_view		 v;

	CHECK(sb != NULL);
	if (sb == NULL)
		return;
	CHECK(sb_slot_read(sb, 3, &v) == -1);		/* free */
	sb_slot_prepare(sb, 3, 1, 7, 6000);
	CHECK(atomic_load(&sb->hwm) == 4);
	CHECK(sb_slot_read(sb, 3, &v) == 0);
	CHECK(v.state == SB_STARTING && v.pool == 1 && v.gen == 7);
	CHECK(v.started_ms == 6000 && v.since_ms == 6000);
	atomic_store(&sb->slot[3].pid, 4242);
	sb_slot_set(&sb->slot[3], SB_WORKING, 6100, "PUT", "/abc");
	CHECK(sb_slot_read(sb, 3, &v) == 0);
	CHECK(v.state == SB_WORKING && v.pid == 4242 && v.since_ms == 6100);
	CHECK_STR(v.method, "PUT");
	CHECK_STR(v.path, "/abc");
	/* Method and path belong to the working state only. */
	sb_slot_set(&sb->slot[3], SB_IDLE, 6200, "GET", "/x");
	CHECK(sb_slot_read(sb, 3, &v) == 0);
	CHECK(v.state == SB_IDLE && v.method[0] == '\0' && v.path[0] == '\0');
	sb_slot_release(sb, 3);
	CHECK(sb_slot_read(sb, 3, &v) == -1);
	CHECK(atomic_load(&sb->hwm) == 4);
	free(sb);
}

UNIT_TEST(truncation)
{
	struct scoreboard	*sb = sb_new();
	struct sb_view		 v;
	char			 path[400];

	CHECK(sb != NULL);
	if (sb == NULL)
		return;
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	sb_slot_prepare(sb, 0, 0, 0, 0);
	sb_slot_set(&sb->slot[0], SB_WORKING, 1,
	    "AVERYLONGMETHODNAMEINDEED", path);
	CHECK(sb_slot_read(sb, 0, &v) == 0);
	CHECK(strlen(v.method) == SB_METHOD_MAX - 1);
	CHECK(strlen(v.path) == SB_PATH_MAX - 1);
	CHECK(strncmp(v.path, path, SB_PATH_MAX - 1) == 0);
	sb_slot_set(&sb->slot[0], SB_WORKING, 2, NULL, NULL);
	CHECK(sb_slot_read(sb, 0, &v) == 0);
	CHECK(v.method[0] == '\0' && v.path[0] == '\0');
	free(sb);
}

/* A writer that died mid-write leaves the counter odd: readers give up
 * (never spin forever), and the master's release makes it readable. */
UNIT_TEST(torn_write)
{
	struct scoreboard	*sb = sb_new();
	struct sb_view		 v;
	uint32_t		 seq;

	CHECK(sb != NULL);
	if (sb == NULL)
		return;
	sb_slot_prepare(sb, 1, 0, 0, 0);
	seq = atomic_load(&sb->slot[1].seq);
	CHECK((seq & 1) == 0);
	atomic_store(&sb->slot[1].seq, seq + 1);
	CHECK(sb_slot_read(sb, 1, &v) == -1);
	sb_slot_release(sb, 1);
	CHECK((atomic_load(&sb->slot[1].seq) & 1) == 0);
	sb_slot_prepare(sb, 1, 0, 1, 9);
	CHECK(sb_slot_read(sb, 1, &v) == 0 && v.gen == 1);
	free(sb);
}

UNIT_TEST(buckets)
{
	int	 b;

	CHECK(sb_bucket(0) == 0);
	CHECK(sb_bucket(1000) == 0);		/* le is inclusive */
	CHECK(sb_bucket(1001) == 1);
	CHECK(sb_bucket(5000000) == SB_BUCKETS - 1);
	CHECK(sb_bucket(5000001) == SB_BUCKETS);
	for (b = 1; b < SB_BUCKETS; b++)
		CHECK(sb_bucket_us[b] > sb_bucket_us[b - 1]);
}

UNIT_TEST(counts)
{
	struct scoreboard	*sb = sb_new();
	struct sb_pool		*p;

	CHECK(sb != NULL);
	if (sb == NULL)
		return;
	p = &sb->pool[1];
	sb_count(p, 200, 500);
	sb_count(p, 201, 2000);
	sb_count(p, 301, 10);
	sb_count(p, 404, 7000000);
	sb_count(p, 504, 3000000);
	sb_count(p, 999, -5);		/* nonsense: 5xx, 0 s */
	CHECK(atomic_load(&p->requests[1]) == 2);
	CHECK(atomic_load(&p->requests[2]) == 1);
	CHECK(atomic_load(&p->requests[3]) == 1);
	CHECK(atomic_load(&p->requests[4]) == 2);
	CHECK(atomic_load(&p->requests[0]) == 0);
	CHECK(atomic_load(&p->latency[0]) == 3);
	CHECK(atomic_load(&p->latency[1]) == 1);
	CHECK(atomic_load(&p->latency[SB_BUCKETS]) == 1);
	CHECK(atomic_load(&p->latency_sum_us) ==
	    500 + 2000 + 10 + 7000000 + 3000000);
	CHECK(atomic_load(&sb->pool[0].requests[1]) == 0);
	free(sb);
}

UNIT_TEST(state_names)
{
	CHECK_STR(sb_state_name(SB_IDLE), "idle");
	CHECK_STR(sb_state_name(SB_WORKING), "working");
	CHECK_STR(sb_state_name(SB_READING), "reading");
	CHECK_STR(sb_state_name(SB_STARTING), "starting");
	CHECK_STR(sb_state_name((enum sb_state)99), "unknown");
}

UNIT_MAIN(
	UNIT(prepare_set_read),
	UNIT(truncation),
	UNIT(torn_write),
	UNIT(buckets),
	UNIT(counts),
	UNIT(state_names)
)
