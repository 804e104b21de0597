/*
 * qr.c — a QR code of a short URL, drawn as SVG.
 *
 * libqrencode does the encoding (8-bit mode, error correction level M,
 * the smallest version that holds the text); this file only draws its
 * modules: a white square, then one path of the dark modules with each
 * horizontal run as one rectangle, inside the four-module quiet zone
 * the standard asks for.  The drawing carries no text of its own, so
 * nothing a user wrote ends up inside an SVG document.
 *
 * Pure: no logging, no global state (libqrencode keeps none for
 * QRcode_encodeString8bit).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "workers.h"

#define QR_QUIET	4	/* modules of white border */
#define QR_PIXELS	8	/* suggested size of a module */
#define QR_TEXT_MAX	2048

int
qr_svg(const char *text, size_t len, struct buf *out)
{
	QRcode		*q;
	char		*copy;
	const unsigned char *row;
	int		 x, y, run, size;

	if (text == NULL || len == 0 || len > QR_TEXT_MAX)
		return -1;
	/* libqrencode wants a C string. */
	if ((copy = malloc(len + 1)) == NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0';
	q = QRcode_encodeString8bit(copy, 0, QR_ECLEVEL_M);
	free(copy);
	if (q == NULL)
		return -1;
	size = q->width + 2 * QR_QUIET;
	buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
	    "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
	    "shape-rendering=\"crispEdges\">\n"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n"
	    "<path fill=\"#000\" d=\"", size, size, size * QR_PIXELS,
	    size * QR_PIXELS, size, size);
	for (y = 0; y < q->width; y++) {
		row = q->data + (size_t)y * (size_t)q->width;
		for (x = 0; x < q->width; x += run > 0 ? run : 1) {
			/* Bit 0 of each byte: the module is dark. */
			for (run = 0; x + run < q->width &&
			    (row[x + run] & 1); run++)
				;
			if (run > 0)
				buf_printf(out, "M%d %dh%dv1h-%dz",
				    x + QR_QUIET, y + QR_QUIET, run, run);
		}
	}
	buf_puts(out, "\"/>\n</svg>\n");
	QRcode_free(q);
	return out->failed ? -1 : 0;
}
