/*
 * Fuzz json_parse_fields() with the PUT /users shape (three fields,
 * aliases on two).  Besides "no crash, no leak", what it accepts must
 * keep its promises: every present value is NUL-terminated, valid
 * UTF-8 without NUL, and re-escaped with json_put_str() it parses back
 * to the same bytes.  A failure leaves no value behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_fields(struct field f[3])
{
	memset(f, 0, 3 * sizeof(f[0]));
	f[0].names[0] = "username";
	f[0].required = 1;
	f[1].names[0] = "password";
	f[1].names[1] = "old-password";
	f[1].names[2] = "old_password";
	f[2].names[0] = "new_password";
	f[2].names[1] = "new-password";
}

/* A value must survive json_put_str() and a second parse unchanged. */
static void
fuzz_round_trip(const struct field *v)
{
	struct field	 g[1];
	struct buf	 b;
	char		 err[128];

	buf_init(&b);
	buf_puts(&b, "{\"v\":");
	json_put_str(&b, v->value, v->len);
	buf_puts(&b, "}");
	memset(g, 0, sizeof(g));
	g[0].names[0] = "v";
	g[0].required = 1;
	if (b.failed || json_parse_fields((char *)b.data, b.len, g, 1, err,
	    sizeof(err)) != BODY_OK || g[0].len != v->len ||
	    memcmp(g[0].value, v->value, v->len) != 0)
		abort();
	fields_free(g, 1);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct field	 f[3];
	char		*copy, err[128];
	enum body_status st;
	size_t		 i;

	/* An exact-size heap copy: ASan sees any overread. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);

	fuzz_fields(f);
	err[0] = 'x';
	st = json_parse_fields(copy, size, f, 3, err, sizeof(err));
	if (st == BODY_OK) {
		if (!f[0].present)
			abort();
		for (i = 0; i < 3; i++) {
			if (!f[i].present) {
				if (f[i].value != NULL)
					abort();
				continue;
			}
			if (f[i].value == NULL || f[i].value[f[i].len] != '\0' ||
			    !utf8_valid(f[i].value, f[i].len))
				abort();
			fuzz_round_trip(&f[i]);
		}
	} else {
		for (i = 0; i < 3; i++)
			if (f[i].value != NULL || f[i].present)
				abort();
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
	}
	fields_free(f, 3);

	/* A tiny error buffer and none at all must be safe too. */
	fuzz_fields(f);
	(void)json_parse_fields(copy, size, f, 3, err, 1);
	fields_free(f, 3);
	fuzz_fields(f);
	(void)json_parse_fields(copy, size, f, 3, NULL, 0);
	fields_free(f, 3);

	free(copy);
	return 0;
}
