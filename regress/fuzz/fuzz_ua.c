/*
 * Fuzz the two headers visit analytics reads from the network: the
 * User-Agent (ua_classify) and the Referer (referer_host).  Besides
 * "no crash", the class ids stay in range (they are stored in TINYINT
 * columns and index the name tables), a bot is exactly device "bot",
 * and a referer host is short, NUL-terminated, lowercase and made of
 * the bytes of a host name only (it goes into the database and into
 * JSON answers).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_host(const char *h, int n, size_t cap)
{
	int	 i;

	if (n < 0 || (size_t)n >= cap || (n > 0 && (int)strlen(h) != n))
		abort();
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '-' || c == '_' || c == '[' ||
		    c == ']' || c == ':'))
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ua_class	 c;
	char		*copy, host[REFERER_HOST_MAX + 1], small[5];
	int		 n;

	/* An exact-size heap copy: ASan sees any overread. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);

	ua_classify(copy, size, &c);
	if (c.browser >= UA_BROWSERS || c.os >= UA_OSES ||
	    c.device >= UA_DEVICES || (c.device == UA_D_BOT) != (c.bot != 0))
		abort();
	if (c.browser != 0 && ua_browser_name(c.browser) == NULL)
		abort();

	n = referer_host(copy, size, host, sizeof(host));
	check_host(host, n, sizeof(host));
	n = referer_host(copy, size, small, sizeof(small));
	check_host(small, n, sizeof(small));
	(void)referer_host(copy, size, small, 1);

	free(copy);
	return 0;
}
