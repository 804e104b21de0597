/*
 * Fuzz the typed body fields of POST / and PUT /:id (json.c and form.c
 * with integer, boolean and nullable fields), and what the shortener
 * does with their values: rfc3339_parse() of expires_at and
 * id_alias_check() of id.  Besides "no crash, no leak":
 *  - an integer field prints and parses back to the same number;
 *  - a date-time that parses formats back to one that parses to the
 *    same instant;
 *  - an accepted alias has the shape of an id a path may name;
 *  - a failure leaves no value behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

enum { F_VALUE, F_ID, F_REUSE, F_AT, F_IN, F_MAX, F_N };

static void
fuzz_init(struct field f[F_N])
{
	memset(f, 0, F_N * sizeof(f[0]));
	f[F_VALUE].names[0] = "value";
	f[F_VALUE].names[1] = "url";
	f[F_ID].names[0] = "id";
	f[F_REUSE].names[0] = "reuse";
	f[F_REUSE].type = FIELD_BOOL;
	f[F_AT].names[0] = "expires_at";
	f[F_AT].nullable = 1;
	f[F_IN].names[0] = "expires_in";
	f[F_IN].type = FIELD_INT;
	f[F_IN].nullable = 1;
	f[F_MAX].names[0] = "max_visits";
	f[F_MAX].type = FIELD_INT;
}

static void
fuzz_check(struct field f[F_N], enum body_status st)
{
	char		 t[RFC3339_MAX], num[32], err[128];
	int64_t		 us, back, v;
	size_t		 i;
	int		 n;

	if (st != BODY_OK) {
		for (i = 0; i < F_N; i++)
			if (f[i].value != NULL || f[i].present)
				abort();
		return;
	}
	for (i = 0; i < F_N; i++) {
		if (!f[i].present || f[i].is_null) {
			if (f[i].value != NULL)
				abort();
			continue;
		}
		if (f[i].type == FIELD_STRING && (f[i].value == NULL ||
		    f[i].value[f[i].len] != '\0'))
			abort();
		if (f[i].type == FIELD_BOOL && f[i].num != 0 && f[i].num != 1)
			abort();
		if (f[i].type == FIELD_INT) {
			n = snprintf(num, sizeof(num), "%lld",
			    (long long)f[i].num);
			if (field_parse_int(num, (size_t)n, &v) != 0 ||
			    v != f[i].num)
				abort();
		}
	}
	if (f[F_AT].value != NULL &&
	    rfc3339_parse(f[F_AT].value, f[F_AT].len, &us) == 0) {
		if (us < 0 || (n = rfc3339_format(us, t, sizeof(t))) < 0 ||
		    rfc3339_parse(t, (size_t)n, &back) != 0 || back != us)
			abort();
	}
	if (f[F_ID].value != NULL && id_alias_check(f[F_ID].value,
	    f[F_ID].len, err, sizeof(err)) == 0 &&
	    (!id_valid(f[F_ID].value, f[F_ID].len) ||
	    f[F_ID].len < ALIAS_MIN || f[F_ID].value[0] == '-' ||
	    f[F_ID].value[0] == '_' ||
	    id_reserved(f[F_ID].value, f[F_ID].len)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct field	 f[F_N];
	char		*copy, err[128];
	int64_t		 us;

	/* An exact-size heap copy: ASan sees any overread. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);

	fuzz_init(f);
	fuzz_check(f, json_parse_fields(copy, size, f, F_N, err,
	    sizeof(err)));
	fields_free(f, F_N);
	fuzz_init(f);
	fuzz_check(f, form_parse_fields(copy, size, f, F_N, err,
	    sizeof(err)));
	fields_free(f, F_N);
	/* The raw bytes as a date-time too. */
	(void)rfc3339_parse(copy, size, &us);
	free(copy);
	return 0;
}
