/*
 * The shared redirect cache under faults (workers/cache.c over
 * proto/shcache.c): a writer that stops mid-write leaves a slot nobody
 * answers from until another writer takes it over; garbage written
 * over the slots is caught by their checksums and never answered;
 * writer processes SIGKILLed in a loop while a reader checks every
 * answer byte for byte.
 */

#include <sys/mman.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../workers/workers.h"
#include "unit.h"

#define TTL	600000
#define SEED	0x5eed5eed5eed5eedull
#define NIDS	200		/* links the writers store */
#define KILLS	300		/* writer processes SIGKILLed */

/* The one value link "k<n>" may answer, long enough to take the writer
 * a while to copy. */
static size_t
value_of(int n, char *v, size_t size)
{
	size_t	 len;

	len = (size_t)snprintf(v, size, "https://example.org/%d/", n);
	while (len + 8 < size && len < 150)
		len += (size_t)snprintf(v + len, size - len, "%07d", n);
	return len;
}

static int
put_n(struct cache *c, const struct sb_cache *sbc, int n, int64_t now)
{
	struct cache_stamp	 st;
	char			 id[16], v[CACHE_VALUE_MAX];
	size_t			 len;

	snprintf(id, sizeof(id), "k%d", n);
	len = value_of(n, v, sizeof(v) - 16);
	cache_stamp(sbc, id, &st);
	return cache_put(c, id, &st, now, v, len, n);
}

/* What the cache answers for link n: 1 right, 0 nothing, -1 wrong. */
static int
get_n(struct cache *c, const struct sb_cache *sbc, int n, int64_t now,
    int *corrupt)
{
	struct cache_stamp	 st;
	char			 id[16], v[CACHE_VALUE_MAX], got[CACHE_VALUE_MAX + 1];
	size_t			 len, glen = 0;
	int64_t			 exp = -1;
	int			 r;

	snprintf(id, sizeof(id), "k%d", n);
	len = value_of(n, v, sizeof(v) - 16);
	cache_stamp(sbc, id, &st);
	if ((r = cache_get(c, id, &st, now, got, &glen, &exp)) != 0) {
		if (r == CACHE_CORRUPT && corrupt != NULL)
			(*corrupt)++;
		return 0;
	}
	if (glen != len || memcmp(got, v, len) != 0 || got[len] != '\0' ||
	    exp != n) {
		fprintf(stderr, "k%d answered %zu bytes \"%.*s\"\n", n, glen,
		    (int)glen, got);
		return -1;
	}
	return 1;
}

/* A writer that stopped between taking a slot and giving it back. */
UNIT_TEST(abandoned_write)
{
	struct sb_cache		*sbc = calloc(1, sizeof(*sbc));
	struct shc_slot		*mem = calloc(8, sizeof(*mem));
	struct cache		*c = cache_attach(mem, 8 * sizeof(*mem), SEED,
				    TTL);
	size_t			 i;

	CHECK(sbc != NULL && mem != NULL && c != NULL);
	if (sbc == NULL || mem == NULL || c == NULL)
		goto out;
	CHECK(put_n(c, sbc, 1, 1000) == 0);
	CHECK(get_n(c, sbc, 1, 1000, NULL) == 1);
	/* Find k1's slot; open a write on it as a writer would, copy half
	 * of another entry over it, and die. */
	for (i = 0; i < 8 && atomic_load(&mem[i].w[3]) == 0; i++)
		;
	CHECK(i < 8);
	if (i == 8)
		goto out;
	atomic_fetch_add(&mem[i].seq, 1);
	atomic_store(&mem[i].busy_ms, 1000);
	atomic_store(&mem[i].w[6], 0x4141414141414141ull);
	atomic_store(&mem[i].w[7], 0x4141414141414141ull);
	CHECK(get_n(c, sbc, 1, 1001, NULL) == 0);
	/* A live writer's slot is not taken... */
	CHECK(put_n(c, sbc, 1, 1000 + SHC_STALE_MS - 1) == 0);
	CHECK(atomic_load(&mem[i].seq) & 1);
	CHECK(get_n(c, sbc, 1, 1000 + SHC_STALE_MS - 1, NULL) == 1);
	/* ...an abandoned one is, once SHC_STALE_MS has passed (k1 now
	 * has two slots; whichever answers, answers right). */
	CHECK(put_n(c, sbc, 1, 1000 + SHC_STALE_MS + 5) == 0);
	for (i = 0; i < 8; i++)
		CHECK((atomic_load(&mem[i].seq) & 1) == 0);
	CHECK(get_n(c, sbc, 1, 1000 + SHC_STALE_MS + 6, NULL) == 1);
out:
	cache_free(c);
	free(mem);
	free(sbc);
}

/* Random bytes over a full cache: every answer is right or a miss, the
 * checksums notice, and the links read again are cached again. */
UNIT_TEST(garbage)
{
	struct sb_cache	*sbc = calloc(1, sizeof(*sbc));
	size_t		 nslots = 256, bytes = nslots * sizeof(struct shc_slot);
	unsigned char	*mem = calloc(1, bytes);
	struct cache	*c = cache_attach(mem, bytes, SEED, TTL);
	int		 n, round, right, wrong, corrupt, before;

	CHECK(sbc != NULL && mem != NULL && c != NULL);
	if (sbc == NULL || mem == NULL || c == NULL)
		goto out;
	srandom(17);
	for (n = 0; n < NIDS; n++)
		CHECK(put_n(c, sbc, n, 10) == 0);
	for (n = 0, before = 0; n < NIDS; n++)
		before += get_n(c, sbc, n, 10, NULL) == 1;
	CHECK(before > NIDS * 8 / 10);
	for (round = 0, corrupt = 0; round < 20; round++) {
		/* A run of garbage, a single flipped bit, a zeroed word. */
		size_t	 at = (size_t)random() % (bytes - 64), k;

		for (k = 0; k < 1 + (size_t)random() % 64; k++)
			mem[at + k] = (unsigned char)random();
		mem[(size_t)random() % bytes] ^= (unsigned char)(1u <<
		    (random() % 8));
		memset(mem + ((size_t)random() % (bytes / 8)) * 8, 0, 8);
		for (n = 0, right = 0, wrong = 0; n < NIDS; n++) {
			int r = get_n(c, sbc, n, 11, &corrupt);

			right += r == 1;
			wrong += r == -1;
		}
		CHECK(wrong == 0);
		/* What missed is read "from the database" again. */
		for (n = 0; n < NIDS; n++)
			if (get_n(c, sbc, n, 12, NULL) != 1)
				(void)put_n(c, sbc, n, 12);
	}
	CHECK(corrupt > 0);
	/* Whole slots of garbage, sequence words included. */
	for (n = 0; n < (int)bytes; n++)
		if (random() % 3 == 0)
			mem[n] = (unsigned char)random();
	for (n = 0, wrong = 0; n < NIDS; n++)
		wrong += get_n(c, sbc, n, 13, NULL) == -1;
	CHECK(wrong == 0);
	/* After the stale time every slot can be written again. */
	for (n = 0; n < NIDS; n++)
		(void)put_n(c, sbc, n, 13 + SHC_STALE_MS);
	for (n = 0, right = 0; n < NIDS; n++)
		right += get_n(c, sbc, n, 14 + SHC_STALE_MS, NULL) == 1;
	CHECK(right > NIDS * 8 / 10);
out:
	cache_free(c);
	free(mem);
	free(sbc);
}

/* A writer process: stores links for ever, as workers do on misses. */
static void
writer(struct cache *c, const struct sb_cache *sbc, unsigned seed)
{
	srandom(seed);
	for (;;)
		(void)put_n(c, sbc, (int)(random() % NIDS), mono_ms());
}

static pid_t
spawn(struct cache *c, const struct sb_cache *sbc, unsigned seed)
{
	pid_t	 pid = fork();

	if (pid == 0)
		writer(c, sbc, seed);
	return pid;
}

/* Two writers store links into a cache smaller than they need (so
 * slots are rewritten all the time), a reader checks every answer,
 * and the writers are SIGKILLed at random moments, KILLS times. */
UNIT_TEST(killed_writers)
{
	size_t		 nslots = 64, bytes = nslots * sizeof(struct shc_slot);
	struct sb_cache	*sbc;
	void		*mem;
	struct cache	*c = NULL;
	pid_t		 pid[2];
	int		 k, n, i, right = 0, wrong = 0, left_open = 0, r;
	size_t		 s;

	sbc = mmap(NULL, sizeof(*sbc), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(sbc != MAP_FAILED && mem != MAP_FAILED);
	if (sbc == MAP_FAILED || mem == MAP_FAILED ||
	    (c = cache_attach(mem, bytes, SEED, TTL)) == NULL)
		goto out;
	srandom(4242);
	pid[0] = spawn(c, sbc, 1);
	pid[1] = spawn(c, sbc, 2);
	for (k = 0; k < KILLS && pid[0] > 0 && pid[1] > 0; k++) {
		i = k % 2;
		for (n = 0; n < 50 + random() % 400; n++) {
			r = get_n(c, sbc, (int)(random() % NIDS), mono_ms(),
			    NULL);
			right += r == 1;
			wrong += r == -1;
		}
		kill(pid[i], SIGKILL);
		waitpid(pid[i], NULL, 0);
		/* Slots the dead writer left open. */
		for (s = 0; s < nslots; s++)
			left_open += atomic_load(&((struct shc_slot *)mem)[s]
			    .seq) & 1;
		pid[i] = spawn(c, sbc, (unsigned)k + 3);
	}
	for (i = 0; i < 2; i++)
		if (pid[i] > 0) {
			kill(pid[i], SIGKILL);
			waitpid(pid[i], NULL, 0);
		}
	CHECK(k == KILLS);
	CHECK(wrong == 0);
	CHECK(right > 0);
	/* The kills did land mid-write (else this proved nothing). */
	CHECK(left_open > 0);
	fprintf(stderr, "killed_writers: %d right answers; %d open writes "
	    "seen after the kills\n", right, left_open);
out:
	cache_free(c);
	if (mem != MAP_FAILED)
		munmap(mem, bytes);
	if (sbc != MAP_FAILED)
		munmap(sbc, sizeof(*sbc));
}

UNIT_MAIN(UNIT(abandoned_write), UNIT(garbage), UNIT(killed_writers))
