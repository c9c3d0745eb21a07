/* hdrfield: a message's header section (RFC 5322 §2.2, §3.6) field by
 * field, as it streams in. The inbound session passes the content through
 * a filter that hands each complete field (its name, the colon, the value
 * with its folded lines and line ends) to a callback, which keeps or drops
 * it: tern removes the Authentication-Results fields that claim its own
 * authserv-id before it adds its own (RFC 8601 §5). Pure: no I/O.
 *
 * The header ends where hdrscan says (mail/hdrscan.h): at an empty line,
 * or at a line that is no field (a name of printable ASCII but ':', white
 * space, then ':'); everything from there passes untouched. Line ends may
 * be CRLF or LF. A field is held back until the line after it shows that
 * it is complete, up to HDRFIELD_HOLD_MAX octets; a longer one is judged
 * on its first HDRFIELD_HOLD_MAX octets (the name is known by then) and
 * the rest of it follows that judgement. */
#ifndef TERN_MAIL_HDRFIELD_H
#define TERN_MAIL_HDRFIELD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define HDRFIELD_HOLD_MAX 65536

/* Called for each field f[0..n) (name[0..name_len) is its name, without
 * white space or colon); returns true to drop it. `complete` is false
 * when the field is longer than the hold and f has only its start. */
typedef bool (*hdrfield_drop_fn)(void *arg, const char *name, size_t name_len, const char *f,
                                 size_t n, bool complete);

struct hdrfield {
    bool done;      /* the header has ended: everything passes */
    bool streaming; /* a field over the hold: its rest follows `dropping` */
    bool dropping;
    bool bol;       /* the next octet starts a line */
    bool eol_seen;  /* the held field's last line has ended */
    struct buf held; /* owned: the field being collected */
    hdrfield_drop_fn drop;
    void *arg;
};

void hdrfield_init(struct hdrfield *h, hdrfield_drop_fn drop, void *arg);
void hdrfield_free(struct hdrfield *h);

/* Passes in[0..n) to out (appended), without the fields drop() refuses.
 * What may still be part of a held field stays in h until a later call
 * or hdrfield_end(). */
void hdrfield_feed(struct hdrfield *h, const char *in, size_t n, struct buf *out);
/* The content ended: a held field is judged as it is and passed or not. */
void hdrfield_end(struct hdrfield *h, struct buf *out);

/* Whether p[0..n) is a block of header fields that can stand above a
 * message's own header: one or more fields, each a name of printable
 * ASCII but ':', a colon, printable ASCII, tabs and spaces, folded only by
 * CRLF followed by a space or a tab; every line ending in CRLF; no empty
 * line, NUL, bare CR or bare LF (which would end the header early or
 * smuggle a line in). For what another process hands the queue. */
bool hdrfield_block_ok(const char *p, size_t n);

#endif
