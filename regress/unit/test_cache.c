/*
 * workers/cache.c: entries answer while their stamp is current and
 * they are younger than the TTL; bumps of a link, of another bucket,
 * of the epoch; replacement within a set; what does not fit.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

#define TTL	1000

static struct sb_cache *
sbc_new(void)
{
	return calloc(1, sizeof(struct sb_cache));
}

/* Stamp id now and store value under it at now_ms. */
static int
put(struct cache *c, const struct sb_cache *sbc, const char *id,
    const char *value, int64_t expires_us, int64_t now_ms)
{
	struct cache_stamp	 st;

	cache_stamp(sbc, id, &st);
	return cache_put(c, id, &st, now_ms, value, strlen(value),
	    expires_us);
}

/* 1 if id answers value (and expires_us) at now_ms. */
static int
hits(const struct cache *c, const struct sb_cache *sbc, const char *id,
    const char *value, int64_t expires_us, int64_t now_ms)
{
	struct cache_stamp	 st;
	char			 got[CACHE_VALUE_MAX + 1];
	size_t			 len = 0;
	int64_t			 exp = -1;

	cache_stamp(sbc, id, &st);
	if (cache_get(c, id, &st, now_ms, got, &len, &exp) == -1)
		return 0;
	return len == strlen(value) && strcmp(got, value) == 0 &&
	    exp == expires_us;
}

static int
misses(const struct cache *c, const struct sb_cache *sbc, const char *id,
    int64_t now_ms)
{
	struct cache_stamp	 st;
	char			 got[CACHE_VALUE_MAX + 1];
	size_t			 len;
	int64_t			 exp;

	cache_stamp(sbc, id, &st);
	return cache_get(c, id, &st, now_ms, got, &len, &exp) == -1;
}

UNIT_TEST(hit_and_ttl)
{
	struct sb_cache	*sbc = sbc_new();
	struct cache	*c = cache_new(1024, TTL);

	CHECK(sbc != NULL && c != NULL);
	if (sbc == NULL || c == NULL)
		goto out;
	CHECK(misses(c, sbc, "abcDEF1", 5000));
	CHECK(put(c, sbc, "abcDEF1", "https://example.org/a", 0, 5000) == 0);
	CHECK(hits(c, sbc, "abcDEF1", "https://example.org/a", 0, 5000));
	CHECK(hits(c, sbc, "abcDEF1", "https://example.org/a", 0,
	    5000 + TTL - 1));
	CHECK(misses(c, sbc, "abcDEF1", 5000 + TTL));
	/* A clock before the fetch (it does not happen with a monotonic
	 * clock) is not trusted either. */
	CHECK(misses(c, sbc, "abcDEF1", 4999));
	/* Ids differing in case are other links. */
	CHECK(misses(c, sbc, "ABCdef1", 5000));
	/* A new read replaces the entry, with its expiry. */
	CHECK(put(c, sbc, "abcDEF1", "https://example.org/b",
	    1234567, 6000) == 0);
	CHECK(hits(c, sbc, "abcDEF1", "https://example.org/b", 1234567,
	    6500));
out:
	cache_free(c);
	free(sbc);
}

UNIT_TEST(bumps)
{
	struct sb_cache		*sbc = sbc_new();
	struct cache		*c = cache_new(64, TTL);
	struct cache_stamp	 before, after;
	char			 id[16], other[16];
	uint32_t		 b1, b2;
	int			 i, kept = 0;

	CHECK(sbc != NULL && c != NULL);
	if (sbc == NULL || c == NULL)
		goto out;
	CHECK(put(c, sbc, "link001", "https://example.org/1", 0, 0) == 0);
	cache_bump(sbc, "link001");
	CHECK(misses(c, sbc, "link001", 1));
	/* A read stamped before a change and stored after it never
	 * answers: the writer bumped in between. */
	cache_stamp(sbc, "link001", &before);
	cache_bump(sbc, "link001");
	CHECK(cache_put(c, "link001", &before, 2, "https://old.org/", 16,
	    0) == 0);
	cache_stamp(sbc, "link001", &after);
	CHECK(after.ver != before.ver && after.hash == before.hash);
	CHECK(misses(c, sbc, "link001", 3));

	/* A bump of a link in another bucket leaves the entry alone. */
	CHECK(put(c, sbc, "link001", "https://example.org/1", 0, 10) == 0);
	cache_stamp(sbc, "link001", &before);
	b1 = before.hash & (SB_CACHE_BUCKETS - 1);
	for (i = 0; i < 1000; i++) {
		snprintf(other, sizeof(other), "o%d", i);
		cache_stamp(sbc, other, &after);
		b2 = after.hash & (SB_CACHE_BUCKETS - 1);
		if (b2 != b1)
			break;
	}
	cache_bump(sbc, other);
	CHECK(hits(c, sbc, "link001", "https://example.org/1", 0, 11));

	/* The epoch drops everything. */
	for (i = 0; i < 32; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		CHECK(put(c, sbc, id, "https://example.org/", 0, 20) == 0);
	}
	for (i = 0; i < 32; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		kept += hits(c, sbc, id, "https://example.org/", 0, 21);
	}
	CHECK(kept > 0);
	cache_bump_all(sbc);
	for (i = 0; i < 32; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		CHECK(misses(c, sbc, id, 21));
	}
	/* No scoreboard: writers do nothing, and say nothing. */
	cache_bump(NULL, "link001");
	cache_bump_all(NULL);
	cache_count(NULL, 0);
	cache_count(sbc, 0);
	cache_count(sbc, CACHE_MISS);
	cache_count(sbc, CACHE_CORRUPT);
	CHECK(atomic_load(&sbc->hits) == 1 && atomic_load(&sbc->misses) == 2 &&
	    atomic_load(&sbc->corrupt) == 1);
out:
	cache_free(c);
	free(sbc);
}

UNIT_TEST(sizes)
{
	struct sb_cache	*sbc = sbc_new();
	struct cache	*c = cache_new(8, TTL);
	char		 url[CACHE_VALUE_MAX + 2], id[ID_MAX + 2];

	CHECK(cache_new(0, TTL) == NULL);
	CHECK(sbc != NULL && c != NULL);
	if (sbc == NULL || c == NULL)
		goto out;
	/* id and URL fill an entry exactly, or are one byte too many. */
	memset(url, 'u', sizeof(url));
	memcpy(url, "https://", 8);
	url[CACHE_VALUE_MAX - 7] = '\0';
	CHECK(put(c, sbc, "abcdefg", url, 0, 0) == 0);
	CHECK(hits(c, sbc, "abcdefg", url, 0, 0));
	url[CACHE_VALUE_MAX - 7] = 'u';
	url[CACHE_VALUE_MAX - 6] = '\0';
	CHECK(put(c, sbc, "abcdefh", url, 0, 0) == -1);
	CHECK(misses(c, sbc, "abcdefh", 0));
	/* The longest id a path may name fits, a longer one does not. */
	memset(id, 'i', sizeof(id));
	id[ID_MAX] = '\0';
	CHECK(put(c, sbc, id, "https://x.org/", 0, 0) == 0);
	CHECK(hits(c, sbc, id, "https://x.org/", 0, 0));
	id[ID_MAX] = 'i';
	id[ID_MAX + 1] = '\0';
	CHECK(put(c, sbc, id, "https://x.org/", 0, 0) == -1);
	CHECK(put(c, sbc, "", "https://x.org/", 0, 0) == -1);
	/* An empty URL (a row put there by other hands) is kept as it
	 * is: the caller answers it as it would from the database. */
	CHECK(put(c, sbc, "empty", "", 0, 0) == 0);
	CHECK(hits(c, sbc, "empty", "", 0, 0));
out:
	cache_free(c);
	free(sbc);
}

/* A full cache replaces, the oldest of a set first, and never holds
 * two entries for one id. */
UNIT_TEST(replacement)
{
	struct sb_cache	*sbc = sbc_new();
	struct cache	*c;
	char		 id[16];
	int		 i, n;

	CHECK(sbc != NULL);
	if (sbc == NULL)
		return;
	/* One set of 4: the fifth link takes the place of the first. */
	CHECK((c = cache_new(4, TTL)) != NULL);
	for (i = 0; c != NULL && i < 5; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		CHECK(put(c, sbc, id, "https://example.org/", 0, i) == 0);
	}
	CHECK(c != NULL && misses(c, sbc, "id0", 10));
	for (i = 1; c != NULL && i < 5; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		CHECK(hits(c, sbc, id, "https://example.org/", 0, 10));
	}
	/* Storing id1 again keeps one entry: the others stay. */
	CHECK(c != NULL && put(c, sbc, "id1", "https://new.org/", 0, 11) == 0);
	for (i = 2; c != NULL && i < 5; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		CHECK(hits(c, sbc, id, "https://example.org/", 0, 12));
	}
	CHECK(c != NULL && hits(c, sbc, "id1", "https://new.org/", 0, 12));
	cache_free(c);

	/* Many links through a small cache: it holds at most its size. */
	CHECK((c = cache_new(100, TTL)) != NULL);
	for (i = 0, n = 0; c != NULL && i < 1000; i++) {
		snprintf(id, sizeof(id), "many%d", i);
		CHECK(put(c, sbc, id, "https://example.org/", 0, i) == 0);
	}
	for (i = 0; c != NULL && i < 1000; i++) {
		snprintf(id, sizeof(id), "many%d", i);
		n += hits(c, sbc, id, "https://example.org/", 0, 1000);
	}
	CHECK(n > 0 && n <= 100);
	cache_free(c);

	/* Nearly full: an entry goes to whichever of its two sets has
	 * room, so more links stay than with one set each (about 810 of
	 * these 1000 would). */
	CHECK((c = cache_new(1024, TTL)) != NULL);
	for (i = 0; c != NULL && i < 1000; i++) {
		snprintf(id, sizeof(id), "full%d", i);
		CHECK(put(c, sbc, id, "https://example.org/", 0, i) == 0);
	}
	for (i = 0, n = 0; c != NULL && i < 1000; i++) {
		snprintf(id, sizeof(id), "full%d", i);
		n += hits(c, sbc, id, "https://example.org/", 0, 1000);
	}
	CHECK(n >= 870);
	cache_free(c);
	free(sbc);
}

UNIT_MAIN(UNIT(hit_and_ttl), UNIT(bumps), UNIT(sizes), UNIT(replacement))
