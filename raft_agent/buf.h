/*
 * buf.h — a growable byte buffer.
 *
 * A zero-initialised struct agenda_buf is an empty buffer.  The buffer owns
 * its memory; agenda_buf_free() releases it and leaves an empty buffer.
 * Functions return 0 or -1 when memory cannot be had; on failure the buffer
 * keeps its previous contents.
 */
#ifndef AGENDA_BUF_H
#define AGENDA_BUF_H

#include <stddef.h>
#include <stdint.h>

struct agenda_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

int agenda_buf_reserve(struct agenda_buf *b, size_t extra);
int agenda_buf_append(struct agenda_buf *b, const void *p, size_t n);
int agenda_buf_printf(struct agenda_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void agenda_buf_reset(struct agenda_buf *b);
void agenda_buf_free(struct agenda_buf *b);

#endif /* AGENDA_BUF_H */
