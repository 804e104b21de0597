/*
 * Growable byte buffers.  A struct buf owns its data.  An allocation
 * failure is sticky: it sets failed, and every later append fails too,
 * so a caller may build a whole response and check failed once.
 *
 * The data is always followed by a NUL byte (when allocated), which
 * costs one byte and lets callers hand text to C string functions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/*
 * No buffer grows past 1 GiB: far from size_t overflow, and below
 * INT_MAX, which vsnprintf()'s return value needs.  Nothing shortd
 * holds in memory comes near it.
 */
#define BUF_MAX		((size_t)1 << 30)
#define BUF_MIN		64

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

/* Empty the buffer, keep its memory, and forget a past failure. */
void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Make room for n more bytes (plus the trailing NUL). */
int
buf_reserve(struct buf *b, size_t n)
{
	uint8_t	*nd;
	size_t	 need, ncap;

	if (b->failed)
		return -1;
	if (n >= BUF_MAX || b->len >= BUF_MAX - n)
		goto fail;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap > BUF_MIN ? b->cap : BUF_MIN;
	while (ncap < need)
		ncap = ncap > BUF_MAX / 2 ? BUF_MAX : ncap * 2;
	if ((nd = realloc(b->data, ncap)) == NULL)
		goto fail;
	b->data = nd;
	b->cap = ncap;
	return 0;
fail:
	b->failed = 1;
	return -1;
}

int
buf_add(struct buf *b, const void *data, size_t n)
{
	if (n == 0)
		return b->failed ? -1 : 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/*
 * Format into the free space; if it does not fit, grow once to the
 * size vsnprintf() reported and format again.  A formatting error
 * marks the buffer failed too: its content would be incomplete.
 */
int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	size_t	 room;
	int	 n;

	if (buf_reserve(b, 0) == -1)
		return -1;
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto fail;
	if ((size_t)n >= room) {
		if (buf_reserve(b, (size_t)n) == -1)
			goto fail;
		room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf((char *)b->data + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= room)
			goto fail;
	}
	b->len += (size_t)n;
	return 0;
fail:
	b->data[b->len] = '\0';
	b->failed = 1;
	return -1;
}

/* Drop n bytes at the front (all of them if n >= len). */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len)
		b->len = 0;
	else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
}
