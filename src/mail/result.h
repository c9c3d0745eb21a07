/* result: the outcome of one delivery attempt for one recipient. Never a
 * bare int: the scheduler, the logs and (later) bounces need the code,
 * the enhanced status code and the text. */
#ifndef TERN_MAIL_RESULT_H
#define TERN_MAIL_RESULT_H

#include <stdint.h>

enum result_kind { RESULT_OK = 0, RESULT_TEMPFAIL = 1, RESULT_PERMFAIL = 2 };

struct result {
    enum result_kind kind;
    int code;       /* SMTP reply code: 250, 451, 550, ... */
    char enh[16];   /* RFC 3463 enhanced status code: "2.0.0" */
    char text[256]; /* human text, no CR/LF */
};

/* Fills *r; text is printf-style and cut to fit. */
void result_set(struct result *r, enum result_kind kind, int code, const char *enh,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Completes *r from another process's answer (r->enh and r->text
 * already read): a kind, a code of that class (2xx OK, 4xx TEMPFAIL, 5xx
 * PERMFAIL) and an enhanced code "c.x.y" of the same class are believed;
 * anything else returns -1. The text goes into logs and notices: what is
 * not printable ASCII becomes '?'. Returns 0. */
int result_from_peer(struct result *r, uint32_t kind, int32_t code);

#endif
