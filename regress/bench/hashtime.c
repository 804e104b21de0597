/*
 * hashtime — the cost of one login's password check, measured with
 * shortd's own password.c (argon2id through libargon2), for the login
 * row of `make bench`.
 *
 *	hashtime memory_kib iterations parallelism count
 *
 * Hashes a password once with the given parameters, then times count
 * verifications of it (what POST /users/login does) and prints, in
 * seconds, "median min max total" of the wall-clock times, then the
 * median of the CPU times (which other programs on the machine do not
 * stretch), on one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../workers/workers.h"

static double
now_s(clockid_t clock)
{
	struct timespec	 ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char *argv[])
{
	struct argon2_params	 p;
	char			 phc[PASSWORD_HASH_MAX];
	const char		*pw = "bench-password";
	double			*t = NULL, *c = NULL, t0, c0, total = 0;
	long			 n, i;
	int			 rc = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: hashtime memory_kib iterations "
		    "parallelism count\n");
		return 2;
	}
	p.m_kib = (uint32_t)strtoul(argv[1], NULL, 10);
	p.t = (uint32_t)strtoul(argv[2], NULL, 10);
	p.p = (uint32_t)strtoul(argv[3], NULL, 10);
	n = strtol(argv[4], NULL, 10);
	if (n < 1 || n > 10000 || (t = calloc((size_t)n, sizeof(*t))) == NULL ||
	    (c = calloc((size_t)n, sizeof(*c))) == NULL) {
		fprintf(stderr, "hashtime: bad count\n");
		goto out;
	}
	if (password_hash(&p, pw, strlen(pw), phc, sizeof(phc)) == -1) {
		fprintf(stderr, "hashtime: hashing failed\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		t0 = now_s(CLOCK_MONOTONIC);
		c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
		if (password_verify(phc, pw, strlen(pw)) != 1) {
			fprintf(stderr, "hashtime: verify failed\n");
			goto out;
		}
		c[i] = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
		t[i] = now_s(CLOCK_MONOTONIC) - t0;
		total += t[i];
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	qsort(c, (size_t)n, sizeof(*c), cmp_double);
	printf("%.6f %.6f %.6f %.6f %.6f\n", t[n / 2], t[0], t[n - 1], total,
	    c[n / 2]);
	rc = 0;
out:
	free(t);
	free(c);
	return rc;
}
