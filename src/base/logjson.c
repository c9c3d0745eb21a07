#include "base/logjson.h"

#include <errno.h>
#include <string.h>

#include "base/strutil.h"

void logjson_string(struct buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    buf_putc(out, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_append(out, e, 2);
            i++;
        } else if (c >= 0x20 && c < 0x7f) {
            buf_putc(out, (char)c);
            i++;
        } else if (c >= 0x80) {
            size_t len = strutil_utf8_len(p + i, n - i);
            if (len > 0) {
                buf_append(out, p + i, len);
                i += len;
                continue;
            }
            /* Not UTF-8: the byte as the code point of the same value. */
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 6);
            i++;
        } else {
            /* Controls (RFC 8259 §7 requires escaping U+0000-U+001F) and
             * DEL, so a terminal reading the log sees no raw control. */
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(out, e, 6);
            i++;
        }
    }
    buf_putc(out, '"');
}

size_t logjson_qid_len(const char *msg, size_t n)
{
    size_t i = 0;
    int digit = 0;
    for (; i < n && i <= 24; i++) {
        char c = msg[i];
        if (c >= '0' && c <= '9')
            digit = 1;
        else if (!(c >= 'A' && c <= 'Z'))
            break;
    }
    if (i < 8 || i > 24 || !digit || i + 1 >= n || msg[i] != ':' || msg[i + 1] != ' ')
        return 0;
    return i;
}

/* The fields taken from a message. `last` ends the scan: what follows
 * status= is a remote server's text and what follows helo= nothing of
 * ours, so neither is searched for more fields. */
static const struct logjson_key {
    const char *name;
    int number;
    int last;
} logjson_keys[] = {
    {"client", 0, 0},   {"message-id", 0, 0}, {"from", 0, 0},     {"size", 1, 0},
    {"nrcpt", 1, 0},    {"to", 0, 0},         {"orig_to", 0, 0},  {"relay", 0, 0},
    {"delay", 0, 0},    {"delays", 0, 0},     {"dsn", 0, 0},      {"status", 0, 1},
    {"proto", 0, 0},    {"helo", 0, 1},       {"sasl_method", 0, 0}, {"sasl_username", 0, 0},
};
#define LOGJSON_NKEYS (sizeof logjson_keys / sizeof logjson_keys[0])

/* The index of the key at p[0..n) ending in '=', or -ENOENT. */
static int logjson_key_at(const char *p, size_t n)
{
    for (size_t k = 0; k < LOGJSON_NKEYS; k++) {
        size_t len = strlen(logjson_keys[k].name);
        if (len < n && memcmp(p, logjson_keys[k].name, len) == 0 && p[len] == '=')
            return (int)k;
    }
    return -ENOENT;
}

static int logjson_all_digits(const char *p, size_t n)
{
    if (n == 0 || n > 18)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return 0;
    return !(n > 1 && p[0] == '0');
}

/* Appends the fields of m[from..n) as ,"key":value. A field starts the
 * text or follows a space; a value is <...> (tern's log lines write
 * addresses with '<', '>' and space escaped, so the first '>' ends it) or
 * runs to the next ',', ';' or space. */
static void logjson_fields(struct buf *out, const char *m, size_t from, size_t n)
{
    unsigned seen = 0;
    size_t i = from;
    while (i < n) {
        int k = (i == from || m[i - 1] == ' ') ? logjson_key_at(m + i, n - i) : -ENOENT;
        if (k < 0) {
            i++;
            continue;
        }
        const struct logjson_key *key = &logjson_keys[k];
        size_t v = i + strlen(key->name) + 1, vend;
        size_t next;
        if (v < n && m[v] == '<') {
            const char *gt = memchr(m + v + 1, '>', n - v - 1);
            if (gt == NULL)
                return; /* unterminated: nothing after it is trusted */
            v++;
            vend = (size_t)(gt - m);
            next = vend + 1;
        } else {
            vend = v;
            while (vend < n && m[vend] != ',' && m[vend] != ';' && m[vend] != ' ')
                vend++;
            next = vend;
        }
        if (!(seen & (1u << k))) {
            seen |= 1u << k;
            buf_putc(out, ',');
            logjson_string(out, key->name, strlen(key->name));
            buf_putc(out, ':');
            if (key->number && logjson_all_digits(m + v, vend - v))
                buf_append(out, m + v, vend - v);
            else
                logjson_string(out, m + v, vend - v);
        }
        if (key->last)
            return;
        i = next;
    }
}

/* Where the fields of a message start, or n when it has none: in a line
 * that starts with a field ("QID: to=<...>, relay=...") at that field; in
 * a reject line ("NOQUEUE: reject: RCPT from ...: 550 ...; from=<...>
 * to=<...> proto=ESMTP helo=<...>") after the first "; ", which the reply
 * text before it cannot hold (its address is escaped). Other lines have
 * no fields, so a remote reply quoted in them is never read as one. */
static size_t logjson_fields_start(const char *m, size_t body, size_t n)
{
    if (logjson_key_at(m + body, n - body) >= 0)
        return body;
    static const char rej[] = "reject: ";
    if (n - body >= sizeof rej - 1 && memcmp(m + body, rej, sizeof rej - 1) == 0) {
        for (size_t i = body; i + 1 < n; i++)
            if (m[i] == ';' && m[i + 1] == ' ')
                return i + 2;
    }
    return n;
}

void logjson_encode(struct buf *out, const struct logjson_event *ev)
{
    const char *m = ev->msg ? ev->msg : "";
    size_t n = ev->msg ? ev->msglen : 0;
    buf_puts(out, "{\"ts\":");
    logjson_string(out, ev->ts, strlen(ev->ts));
    buf_puts(out, ",\"host\":");
    logjson_string(out, ev->host, strlen(ev->host));
    buf_puts(out, ",\"prog\":");
    logjson_string(out, ev->prog, strlen(ev->prog));
    buf_printf(out, ",\"pid\":%ld,\"level\":", ev->pid);
    logjson_string(out, ev->level, strlen(ev->level));
    buf_puts(out, ",\"msg\":");
    logjson_string(out, m, n);
    size_t body = 0;
    size_t q = logjson_qid_len(m, n);
    if (q) {
        buf_puts(out, ",\"qid\":");
        logjson_string(out, m, q);
        body = q + 2;
    } else if (n >= 9 && memcmp(m, "NOQUEUE: ", 9) == 0) {
        body = 9;
    }
    logjson_fields(out, m, logjson_fields_start(m, body, n), n);
    buf_puts(out, "}\n");
}
