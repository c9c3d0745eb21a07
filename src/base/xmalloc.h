/* xmalloc: allocation wrappers that end the process on out-of-memory.
 * Running out of memory is one of the few conditions where fatal() is
 * right (docs/design.md): every caller can then assume success. */
#ifndef TERN_BASE_XMALLOC_H
#define TERN_BASE_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns an owned copy of s; the caller frees it. */
char *xstrdup(const char *s);
/* Returns an owned, NUL-terminated copy of the first n bytes of s. */
char *xstrndup(const char *s, size_t n);

#endif
