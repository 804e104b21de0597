/*
 * Fuzz url_validate() and the id/username shape checks.  Besides "no
 * crash", an accepted URL must keep the promises the redirect relies
 * on: an http(s) scheme, at most URL_MAX bytes, no byte that could end
 * or split a header line, no user info in the authority.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_accepted(const char *u, size_t len)
{
	size_t	 i;

	if (len == 0 || len > URL_MAX)
		abort();
	if (!(len >= 7 && strncasecmp(u, "http://", 7) == 0) &&
	    !(len >= 8 && strncasecmp(u, "https://", 8) == 0))
		abort();
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)u[i];

		if (c < 0x20 || c == 0x7f || c == '"' || c == '<' ||
		    c == '>' || c == '\\')
			abort();
	}
	/* no user info: no '@' before the path, query or fragment */
	for (i = u[4] == ':' ? 7 : 8; i < len; i++) {
		if (u[i] == '/' || u[i] == '?' || u[i] == '#')
			break;
		if (u[i] == '@')
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data;
	char		*copy;
	char		 err[128];
	size_t		 i;

	/* Work on an exact-size heap copy: ASan sees any overread. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, s, size);

	err[0] = 'x';
	if (url_validate(copy, size, err, sizeof(err)) == 0)
		check_accepted(copy, size);
	else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
		abort();
	(void)url_validate(copy, size, err, 1);
	(void)url_validate(copy, size, NULL, 0);

	if (id_valid(copy, size))
		for (i = 0; i < size; i++)
			if (copy[i] == '/' || copy[i] == '\0' ||
			    copy[i] == '.')
				abort();
	if (username_valid(copy, size) && (size == 0 || size > 64))
		abort();
	(void)id_reserved(copy, size);

	free(copy);
	return 0;
}
