/* buf: a growable byte buffer. The struct owns `data`; buf_free() releases
 * it. `data` is always NUL-terminated (one spare byte beyond `len`) so a
 * buffer of text can be handed to string functions directly. */
#ifndef TERN_BASE_BUF_H
#define TERN_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;  /* owned; NULL until the first append */
    size_t len;
    size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Zeroes all of b's storage (its capacity, not only its length), for
 * secrets such as private keys; b keeps it. */
void buf_wipe(struct buf *b);
/* Empties the buffer, keeping its storage for reuse. */
void buf_reset(struct buf *b);
/* Makes room for at least `extra` more bytes; returns a pointer to the
 * first free byte. Follow with buf_commit() for what was written. */
char *buf_reserve(struct buf *b, size_t extra);
void buf_commit(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Transfers ownership of the data to the caller (never NULL) and resets b. */
char *buf_steal(struct buf *b);

#endif
