/*
 * timefmt.c — RFC 3339 timestamps (the date-time of JSON APIs) to and
 * from microseconds since the epoch, for expires_at and the times
 * GET /:id/stats shows.
 *
 * Pure: no logging, no locale, no time zone database (the arithmetic
 * is the proleptic Gregorian calendar, so TZ never changes a result).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "workers.h"

#define US_PER_S	1000000LL
#define YEAR_MIN	1970
#define YEAR_MAX	9999

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t
tf_days(int64_t y, int64_t m, int64_t d)
{
	int64_t	 era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse: y-m-d of a day number. */
static void
tf_civil(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t	 era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
tf_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
tf_mdays(int64_t y, int m)
{
	static const int days[12] =
	    { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && tf_leap(y) ? 29 : days[m - 1];
}

/* n decimal digits at s[*i]; -1 if they are not there. */
static int
tf_num(const char *s, size_t len, size_t *i, int n)
{
	int	 v = 0;

	if (len - *i < (size_t)n)
		return -1;
	while (n-- > 0) {
		if (s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[(*i)++] - '0');
	}
	return v;
}

static int
tf_sep(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return -1;
	(*i)++;
	return 0;
}

/*
 * YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM), 'T' and 'Z' in either
 * case (RFC 3339 section 5.6).  A fraction finer than a microsecond is
 * cut; a leap second (:60) counts as :59.999999.
 */
int
rfc3339_parse(const char *s, size_t len, int64_t *us)
{
	size_t	 i = 0, start, digits;
	int	 mo, d, h, mi, sec, oh, om, frac = 0, sign;
	int64_t	 y, t;

	if (s == NULL)
		return -1;
	if ((y = tf_num(s, len, &i, 4)) < 0 || tf_sep(s, len, &i, '-') ||
	    (mo = tf_num(s, len, &i, 2)) < 0 || tf_sep(s, len, &i, '-') ||
	    (d = tf_num(s, len, &i, 2)) < 0)
		return -1;
	if (i >= len || (s[i] != 'T' && s[i] != 't'))
		return -1;
	i++;
	if ((h = tf_num(s, len, &i, 2)) < 0 || tf_sep(s, len, &i, ':') ||
	    (mi = tf_num(s, len, &i, 2)) < 0 || tf_sep(s, len, &i, ':') ||
	    (sec = tf_num(s, len, &i, 2)) < 0)
		return -1;
	if (i < len && s[i] == '.') {
		start = ++i;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			if (i - start < 6)
				frac = frac * 10 + (s[i] - '0');
		if (i == start)
			return -1;
		for (digits = i - start; digits < 6; digits++)
			frac *= 10;
	}
	if (y < YEAR_MIN || y > YEAR_MAX || mo < 1 || mo > 12 || d < 1 ||
	    d > tf_mdays(y, mo) || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (sec == 60) {
		sec = 59;
		frac = 999999;
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
		oh = om = 0;
		sign = 1;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i++] == '-' ? -1 : 1;
		if ((oh = tf_num(s, len, &i, 2)) < 0 ||
		    tf_sep(s, len, &i, ':') ||
		    (om = tf_num(s, len, &i, 2)) < 0 || oh > 23 || om > 59)
			return -1;
	} else
		return -1;
	if (i != len)
		return -1;
	t = ((tf_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	if (t < 0)
		return -1;
	*us = t * US_PER_S + frac;
	return 0;
}

int
rfc3339_format(int64_t us, char *out, size_t outlen)
{
	int64_t	 s, days, y, rem;
	int	 m, d, n, frac;

	if (us < 0 || us / US_PER_S / 86400 > tf_days(YEAR_MAX, 12, 31))
		return -1;
	s = us / US_PER_S;
	frac = (int)(us % US_PER_S);
	days = s / 86400;
	rem = s % 86400;
	tf_civil(days, &y, &m, &d);
	if (frac == 0)
		n = snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02dZ",
		    (long long)y, m, d, (int)(rem / 3600),
		    (int)(rem / 60 % 60), (int)(rem % 60));
	else
		n = snprintf(out, outlen,
		    "%04lld-%02d-%02dT%02d:%02d:%02d.%06dZ", (long long)y, m,
		    d, (int)(rem / 3600), (int)(rem / 60 % 60),
		    (int)(rem % 60), frac);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return n;
}

void
rfc3339_put(struct buf *b, int64_t us)
{
	char	 t[RFC3339_MAX];
	int	 n;

	if (us == 0 || (n = rfc3339_format(us, t, sizeof(t))) < 0)
		buf_puts(b, "null");
	else
		json_put_str(b, t, (size_t)n);
}
