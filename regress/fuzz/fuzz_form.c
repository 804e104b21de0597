/*
 * Fuzz form_parse_fields() and url_decode().  Accepted values must be
 * NUL-terminated, valid UTF-8 without NUL; url_decode() never writes
 * past its buffer and never returns more than it was given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct field	 f[2];
	char		*copy, *dst, err[128];
	long		 n;
	size_t		 i;

	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);

	memset(f, 0, sizeof(f));
	f[0].names[0] = "username";
	f[0].required = 1;
	f[1].names[0] = "password";
	f[1].names[1] = "old-password";
	if (form_parse_fields(copy, size, f, 2, err, sizeof(err)) ==
	    BODY_OK) {
		for (i = 0; i < 2; i++)
			if (f[i].present && (f[i].value[f[i].len] != '\0' ||
			    !utf8_valid(f[i].value, f[i].len)))
				abort();
	} else
		for (i = 0; i < 2; i++)
			if (f[i].value != NULL)
				abort();
	fields_free(f, 2);

	/* Exact-size and short destinations. */
	if ((dst = malloc(size + 1)) != NULL) {
		n = url_decode(copy, size, dst, size + 1, 1);
		if (n > (long)size || (n >= 0 && dst[n] != '\0'))
			abort();
		n = url_decode(copy, size, dst, size / 2 + 1, 0);
		if (n > (long)(size / 2))
			abort();
		free(dst);
	}
	free(copy);
	return 0;
}
