/*
 * Fuzz jwt_verify() with a fixed key and clock.  Nothing the fuzzer
 * builds can carry a valid signature, so JWT_OK (or an "expired" or
 * "not yet valid", which are only reported after the signature
 * checked out) means a forgery and aborts.  The seed corpus holds one
 * genuine token, which is allowed through.  b64url_decode() is
 * exercised on the raw input too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_KEY	"fuzzing key, not a secret"
#define FUZZ_NOW	1700000000

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwt_claims c;
	enum jwt_status	 st;
	char		*copy, good[512];
	uint8_t		*out;
	long		 n;

	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);

	st = jwt_verify((const uint8_t *)FUZZ_KEY, sizeof(FUZZ_KEY) - 1, copy,
	    size, FUZZ_NOW, 30, &c);
	if (st == JWT_OK || st == JWT_EXPIRED || st == JWT_NOT_YET_VALID ||
	    st == JWT_MISSING_CLAIM) {
		/* Only a token we signed ourselves may get this far. */
		if (jwt_sign((const uint8_t *)FUZZ_KEY, sizeof(FUZZ_KEY) - 1,
		    "alice", FUZZ_NOW, FUZZ_NOW + 3600, good,
		    sizeof(good)) == -1 || strlen(good) != size ||
		    memcmp(good, copy, size) != 0)
			abort();
		if (st != JWT_OK || strcmp(c.sub, "alice") != 0)
			abort();
	}
	if (jwt_strerror(st) == NULL)
		abort();

	if ((out = malloc(size + 1)) != NULL) {
		n = b64url_decode(copy, size, out, size);
		if (n > (long)size)
			abort();
		free(out);
	}
	free(copy);
	return 0;
}
