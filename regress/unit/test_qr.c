/*
 * qr.c: the SVG drawing.  That it decodes to the short URL is checked
 * end to end (regress/e2e/test_features.py rasterises and scans it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/workers.h"
#include "unit.h"

UNIT_TEST(drawing)
{
	struct buf	 a, b;
	const char	*url = "https://s.example/abc1234";
	char		*text;
	int		 size;

	buf_init(&a);
	buf_init(&b);
	CHECK(qr_svg(url, strlen(url), &a) == 0);
	CHECK(qr_svg(url, strlen(url), &b) == 0);
	buf_add(&a, "", 1);
	text = (char *)a.data;
	CHECK(strncmp(text, "<?xml version=\"1.0\"", 19) == 0);
	CHECK(strstr(text, "<svg xmlns=\"http://www.w3.org/2000/svg\"") !=
	    NULL);
	/* Version 2 (25 modules) holds 25 bytes at level M; with the
	 * quiet zone the picture is 33 modules wide. */
	CHECK(sscanf(strstr(text, "viewBox=\"0 0 "), "viewBox=\"0 0 %d",
	    &size) == 1 && size == 33);
	/* The finder pattern's top row: 7 dark modules at the corner. */
	CHECK(strstr(text, "d=\"M4 4h7v1h-7z") != NULL);
	CHECK(strstr(text, url) == NULL);	/* no text inside */
	CHECK(strcmp(text + a.len - 8, "</svg>\n") == 0);
	/* Deterministic: the ETag relies on it. */
	CHECK(b.len + 1 == a.len && memcmp(a.data, b.data, b.len) == 0);
	buf_free(&a);
	buf_free(&b);
}

UNIT_TEST(limits)
{
	struct buf	 b;
	char		*big;

	buf_init(&b);
	CHECK(qr_svg("", 0, &b) == -1);
	CHECK(qr_svg(NULL, 0, &b) == -1);
	if ((big = malloc(4000)) != NULL) {
		memset(big, 'a', 4000);
		/* Beyond a QR code's capacity (2331 bytes at level M). */
		CHECK(qr_svg(big, 4000, &b) == -1);
		/* Beyond any short URL: refused before encoding. */
		CHECK(qr_svg(big, 2049, &b) == -1);
		CHECK(b.len == 0);
		CHECK(qr_svg(big, 2048, &b) == 0);
		free(big);
	}
	buf_free(&b);
}

UNIT_MAIN(UNIT(drawing), UNIT(limits))
