/*
 * timefmt.c: RFC 3339 date-times in and out.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../workers/workers.h"
#include "unit.h"

static int
parses(const char *s, int64_t want)
{
	int64_t	 us = -1;

	if (rfc3339_parse(s, strlen(s), &us) != 0 || us != want) {
		fprintf(stderr, "%s -> %lld, want %lld\n", s, (long long)us,
		    (long long)want);
		return 0;
	}
	return 1;
}

static int
refused(const char *s)
{
	int64_t	 us = 0;

	if (rfc3339_parse(s, strlen(s), &us) == 0) {
		fprintf(stderr, "accepted %s as %lld\n", s, (long long)us);
		return 0;
	}
	return 1;
}

UNIT_TEST(parse)
{
	CHECK(parses("1970-01-01T00:00:00Z", 0));
	CHECK(parses("2000-03-01T00:00:00Z", 951868800LL * 1000000));
	CHECK(parses("2024-02-29T12:34:56Z", 1709210096LL * 1000000));
	CHECK(parses("2024-02-29t12:34:56z", 1709210096LL * 1000000));
	CHECK(parses("2024-02-29T12:34:56.5Z",
	    1709210096LL * 1000000 + 500000));
	CHECK(parses("2024-02-29T12:34:56.123456789Z",
	    1709210096LL * 1000000 + 123456));
	CHECK(parses("2024-02-29T14:34:56+02:00", 1709210096LL * 1000000));
	CHECK(parses("2024-02-29T07:04:56-05:30", 1709210096LL * 1000000));
	CHECK(parses("2016-12-31T23:59:60Z", 1483228799LL * 1000000 +
	    999999));
	CHECK(parses("9999-12-31T23:59:59Z", 253402300799LL * 1000000));
}

UNIT_TEST(refuse)
{
	static const char *const bad[] = {
		"", "2024", "2024-02-29", "2024-02-29T12:34Z",
		"2024-02-29 12:34:56Z", "2024-02-29T12:34:56",
		"2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
		"2024-00-10T00:00:00Z", "2024-04-31T00:00:00Z",
		"2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z",
		"2024-01-01T00:00:61Z", "2024-01-01T00:00:00.Z",
		"2024-01-01T00:00:00+0100", "2024-01-01T00:00:00+24:00",
		"2024-01-01T00:00:00Z ", " 2024-01-01T00:00:00Z",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00+00:01",
		"+2024-01-01T00:00:00Z", "2024-1-01T00:00:00Z",
		"２024-01-01T00:00:00Z", "2024-01-01T00:00:00UTC",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(refused(bad[i]));
	CHECK(rfc3339_parse(NULL, 0, NULL) == -1);
}

UNIT_TEST(format)
{
	char	 t[RFC3339_MAX];

	CHECK(rfc3339_format(0, t, sizeof(t)) == 20);
	CHECK_STR(t, "1970-01-01T00:00:00Z");
	CHECK(rfc3339_format(1709210096LL * 1000000, t, sizeof(t)) > 0);
	CHECK_STR(t, "2024-02-29T12:34:56Z");
	CHECK(rfc3339_format(1709210096LL * 1000000 + 5, t, sizeof(t)) > 0);
	CHECK_STR(t, "2024-02-29T12:34:56.000005Z");
	CHECK(rfc3339_format(-1, t, sizeof(t)) == -1);
	CHECK(rfc3339_format(253402300800LL * 1000000, t, sizeof(t)) == -1);
	CHECK(rfc3339_format(0, t, 20) == -1);	/* no room for the NUL */
}

/* Every day from 1970 to past 2100 goes out and comes back, and agrees
 * with the C library's gmtime_r. */
UNIT_TEST(round_trip)
{
	char		 t[RFC3339_MAX], want[RFC3339_MAX];
	struct tm	 tm;
	int64_t		 s, back;
	time_t		 tt;

	for (s = 0; s < 4200000000LL; s += 86400 + 3661) {
		tt = (time_t)s;
		gmtime_r(&tt, &tm);
		strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (rfc3339_format(s * 1000000, t, sizeof(t)) < 0 ||
		    strcmp(t, want) != 0 ||
		    rfc3339_parse(t, strlen(t), &back) != 0 ||
		    back != s * 1000000) {
			fprintf(stderr, "%lld: %s, want %s\n", (long long)s, t,
			    want);
			*failed = 1;
			break;
		}
	}
}

UNIT_MAIN(UNIT(parse), UNIT(refuse), UNIT(format), UNIT(round_trip))
