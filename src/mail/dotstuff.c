/* dotstuff.c: the DATA/BDAT content decoder (see dotstuff.h).
 *
 * One octet at a time through a small state machine; nothing is written
 * until it is decided, so where the input is split makes no difference to
 * the output. A CR is held back until the next octet shows whether it is
 * half of a CRLF; a dot at the start of a line is held back until the next
 * octet shows whether it is the end of the data.
 *
 * Only a CRLF (CR immediately followed by LF) ends a line (RFC 5321 §2.3.8).
 * A bare CR or bare LF is content: it is written out as CRLF whatever the
 * policy (so no stored message ever holds a line ending that another
 * server could read differently) and sets DOTSTUFF_F_BARE, on which the
 * caller refuses the message in DOTSTUFF_REJECT mode. The octet after a
 * bare CR/LF is not at a line start for the end-of-data and transparency
 * rules: "\n.\r\n" is content, never the end of the data (the SMTP
 * smuggling attacks of December 2023 relied on servers that disagreed
 * about this). */
#include "mail/dotstuff.h"

#include <string.h>

enum {
    DS_BOL = 0,  /* at the start of a line (after a real CRLF, or the first octet) */
    DS_TEXT,     /* inside a line */
    DS_CR,       /* a CR is held back: CRLF or bare CR? */
    DS_DOT,      /* a line-leading dot is held back (DATA only) */
    DS_DOTCR,    /* "<BOL>.\r" held back: the end, or a dot and a bare CR? */
    DS_END,      /* DATA ended; nothing more is consumed */
};

void dotstuff_init(struct dotstuff *d, enum dotstuff_mode mode, enum dotstuff_bare_policy bare,
                   size_t max_line, uint64_t max_size)
{
    memset(d, 0, sizeof *d);
    d->mode = mode;
    d->bare = bare;
    d->max_line = max_line;
    d->max_size = max_size;
    d->state = DS_BOL;
    d->linelen = 0;
}

/* Appends n decoded content octets: counts them (RFC 1870 size), and
 * appends only those that fit under max_size. */
static void dotstuff_put(struct dotstuff *d, struct buf *out, const char *p, size_t n)
{
    size_t room = n;
    if (d->max_size) {
        uint64_t left = d->size < d->max_size ? d->max_size - d->size : 0;
        if (left < n) {
            room = (size_t)left;
            d->flags |= DOTSTUFF_F_TOOBIG;
        }
    }
    if (room)
        buf_append(out, p, room);
    d->size += n;
}

/* Content octets inside a line (never CR or LF). */
static void dotstuff_text(struct dotstuff *d, struct buf *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x80)
            d->flags |= DOTSTUFF_F_8BIT;
        else if (c == 0)
            d->flags |= DOTSTUFF_F_NUL;
    }
    d->linelen += n;
    /* RFC 5321 §4.5.3.1.6: the line with its CRLF, the stuffed dot not counted. */
    if (d->max_line && d->linelen > d->max_line)
        d->flags |= DOTSTUFF_F_LONGLINE;
    dotstuff_put(d, out, p, n);
}

/* A line ending: a real CRLF, or a bare CR/LF written out as CRLF. */
static void dotstuff_eol(struct dotstuff *d, struct buf *out, int bare)
{
    if (bare)
        d->flags |= DOTSTUFF_F_BARE;
    d->linelen += 2;
    if (d->max_line && d->linelen > d->max_line)
        d->flags |= DOTSTUFF_F_LONGLINE;
    d->linelen = 0;
    dotstuff_put(d, out, "\r\n", 2);
}

/* The length of the run of octets at p[0..n) that are neither CR nor LF. */
static size_t dotstuff_span(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}

/* DATA and BDAT text modes. Returns the octets consumed. */
static size_t dotstuff_run(struct dotstuff *d, const char *in, size_t len, struct buf *out)
{
    int dots = d->mode == DOTSTUFF_DATA;
    size_t i = 0;
    while (i < len) {
        char c = in[i];
        switch (d->state) {
        case DS_BOL:
            if (c == '.' && dots) {
                d->state = DS_DOT;
                i++;
                continue;
            }
            d->state = DS_TEXT;
            continue; /* the same octet, as text */
        case DS_TEXT:
            if (c == '\r') {
                d->state = DS_CR;
                i++;
            } else if (c == '\n') {
                dotstuff_eol(d, out, 1); /* bare LF */
                i++;
            } else {
                size_t n = dotstuff_span(in + i, len - i);
                dotstuff_text(d, out, in + i, n);
                i += n;
            }
            continue;
        case DS_CR:
            if (c == '\n') {
                dotstuff_eol(d, out, 0);
                d->state = DS_BOL;
                i++;
            } else {
                /* Bare CR; the octet after it is not at a line start. */
                dotstuff_eol(d, out, 1);
                d->state = DS_TEXT;
            }
            continue;
        case DS_DOT:
            if (c == '\r') {
                d->state = DS_DOTCR;
                i++;
            } else {
                /* RFC 5321 §4.5.2: a line-leading dot is removed when the
                 * line has more in it, even if that is a bare LF. */
                d->state = DS_TEXT;
            }
            continue;
        case DS_DOTCR:
            if (c == '\n') {
                d->state = DS_END;
                return i + 1;
            }
            /* ".\r" then something else: the dot is removed and the CR
             * is bare ("\r\n.\rX" is never the end). */
            dotstuff_eol(d, out, 1);
            d->state = DS_TEXT;
            continue;
        default:
            return i;
        }
    }
    return i;
}

/* BINARYMIME (RFC 3030 §3): the octets are the content. */
static void dotstuff_binary(struct dotstuff *d, const char *in, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x80)
            d->flags |= DOTSTUFF_F_8BIT;
        else if (c == 0)
            d->flags |= DOTSTUFF_F_NUL;
    }
    dotstuff_put(d, out, in, len);
}

int dotstuff_feed(struct dotstuff *d, const char *in, size_t len, struct buf *out,
                  size_t *consumed)
{
    if (d->state == DS_END) {
        *consumed = 0;
        return DOTSTUFF_END;
    }
    if (d->mode == DOTSTUFF_BINARY) {
        dotstuff_binary(d, in, len, out);
        *consumed = len;
        return DOTSTUFF_MORE;
    }
    *consumed = dotstuff_run(d, in, len, out);
    return d->state == DS_END ? DOTSTUFF_END : DOTSTUFF_MORE;
}

void dotstuff_finish(struct dotstuff *d, struct buf *out)
{
    if (d->mode == DOTSTUFF_DATA)
        return;
    if (d->state == DS_CR) {
        /* The chunk ended in a CR that no LF followed. */
        dotstuff_eol(d, out, 1);
        d->state = DS_TEXT;
    }
}
