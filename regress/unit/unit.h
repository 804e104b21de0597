/*
 * A tiny unit-test driver.  A test file defines static void functions
 * and lists them with UNIT_MAIN(); the program prints "ok NAME" or
 * "FAIL NAME" per case and exits non-zero if any failed.  The regress
 * runner counts those lines.
 */
#ifndef SHORTD_UNIT_H
#define SHORTD_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_case {
	const char	*name;
	void		(*fn)(int *failed);
};

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n",		\
		    __FILE__, __LINE__, #cond);				\
		*failed = 1;						\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *ua_ = (a), *ub_ = (b);				\
	if (ua_ == NULL || ub_ == NULL || strcmp(ua_, ub_) != 0) {	\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n",		\
		    __FILE__, __LINE__, ua_ ? ua_ : "(null)",		\
		    ub_ ? ub_ : "(null)");				\
		*failed = 1;						\
	}								\
} while (0)

#define UNIT_TEST(name)	static void name(int *failed)
#define UNIT(name)	{ #name, name }

static inline int
unit_run(const char *file, const struct unit_case *cases, size_t n)
{
	size_t	 i, nfail = 0;

	for (i = 0; i < n; i++) {
		int failed = 0;

		cases[i].fn(&failed);
		printf("%s %s:%s\n", failed ? "FAIL" : "ok", file,
		    cases[i].name);
		fflush(stdout);
		if (failed)
			nfail++;
	}
	return nfail ? 1 : 0;
}

#define UNIT_MAIN(...)							\
int main(void)								\
{									\
	static const struct unit_case cases[] = { __VA_ARGS__ };	\
	return unit_run(__FILE__, cases,				\
	    sizeof(cases) / sizeof(cases[0]));				\
}

#endif
