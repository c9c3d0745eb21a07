/* hdrscan: a streaming look at a message's header section (RFC 5322
 * §2.2) for the fields a submission server adds when they are missing
 * (RFC 6409 §8: Date:, Message-ID:, and From: for local submissions) and
 * the Received: count of loop detection (RFC 5321 §6.3). Pure: it reads
 * the content it is shown and builds the lines to insert; the caller
 * decides where they go (at hdrscan's end offset). Used by smtp_session
 * (submission roles, -bs) and queue/pickup (sendmail). */
#ifndef TERN_MAIL_HDRSCAN_H
#define TERN_MAIL_HDRSCAN_H

#include <stddef.h>

#include "base/buf.h"

/* Fields seen (hdrscan.seen). */
#define HDRSCAN_DATE 0x01
#define HDRSCAN_MSGID 0x02
#define HDRSCAN_FROM 0x04

struct hdrscan {
    int done;          /* the end of the header section was seen */
    size_t end;        /* valid when done: offset of the empty line (before its CR), or of
                        * the first line that is no header field (when nosep) */
    int nosep;         /* the header ended at a line that is no field, without an empty
                        * line: the body starts there, and hdrscan_fixes adds the
                        * empty line after what it inserts */
    unsigned seen;     /* HDRSCAN_* */
    unsigned received; /* Received: fields counted */
    /* The first Message-ID: field's value, unfolded, cut to fit (for the
     * log's "message-id=<...>"; see hdrscan_message_id). */
    char msgid[256];
    size_t msgid_len;
    /* Scanner state between calls. */
    int bol, in_name, in_msgid;
    int name_ws;       /* white space after the name (obsolete "Name :" syntax) */
    size_t name_total; /* octets of the name so far (name[] keeps the first few) */
    size_t line_start; /* offset of the line being scanned */
    int fed;           /* line_start set from the first feed */
    int bol_cr;        /* the line being scanned began with a CR */
    unsigned nfields;
    char name[16];
    size_t name_len;
};

void hdrscan_init(struct hdrscan *h);

/* Scans p[from..len), where p holds the content from some offset on and
 * p[0..from) was scanned before (offsets in h->end are relative to p; a
 * caller that drops scanned octets may pass a new p whose offset 0 is the
 * first octet it kept, as long as the header's end has not been seen).
 * Stops at the header's end: an empty line, or a line that is no field
 * (RFC 5322 §3.6.8: a name of printable ASCII but ':', then ':'), which
 * starts the body, as Postfix's cleanup decides; line ends may be CRLF or
 * LF. */
void hdrscan_feed(struct hdrscan *h, const char *p, size_t from, size_t len);

/* The message identifier of the first Message-ID: field seen (or of the
 * lines `added`, when not NULL, which hdrscan_fixes made): the text
 * between its first '<' and the '>' after it, or the whole value, trimmed,
 * when it has no brackets; into out (raw: the caller escapes it). 0, or
 * -ENOENT when there is none. */
int hdrscan_message_id(const struct hdrscan *h, const struct buf *added, struct buf *out);

/* Appends to out the header fields a submission adds for what was not
 * seen: "Date:" (now), "Message-ID: <id_left@host>" and, when from_addr is
 * not NULL, "From:" with the optional display name (quoted as RFC 5322
 * §3.2.4 needs; control characters dropped). Lines end in CRLF. */
void hdrscan_fixes(const struct hdrscan *h, const char *id_left, const char *host,
                   const char *from_name, const char *from_addr, struct buf *out);

#endif
