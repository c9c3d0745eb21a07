/* envelope.c: the envelope and its serialisation.
 *
 * The format is text, one field per line, so an operator can read a spool
 * file with less(1):
 *
 *     TERNENV 1
 *     qid 4Yx2kQ7bF3z
 *     from alice@example.org
 *     body 8bitmime
 *     smtputf8 0
 *     ret_hdrs 0
 *     ret_full 1     (only when set: RET=FULL)
 *     size 1234
 *     arrival 1767225600
 *     client_ip 192.0.2.1
 *     helo mail.example.org
 *     rcpt bob@example.net
 *     notify 6
 *     end
 *
 * A line is "key value\n" (key, one space, value; the value may be
 * empty). String values escape every octet outside %x21-7E and the
 * backslash as \xHH (lowercase hex), so a value never holds a space, a
 * line end or a control. A string field that is NULL has no line; "" has
 * a line with an empty value. "rcpt" starts a recipient; the "orcpt" and
 * "notify" lines after it belong to it. "end" closes the envelope, so a
 * truncated file is recognised. Numbers are decimal.
 *
 * The parser accepts only this: a known version, known keys each at most
 * once (per recipient for orcpt/notify), values within bounds, nothing
 * after "end". It never allocates more than a field's bounded size at a
 * time, and at most ENVELOPE_MAX_RCPTS recipients. */
#include "mail/envelope.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"

/* The longest string value, decoded. Every field holds something SMTP
 * bounds to a few hundred octets (a path is 256, RFC 5321 §4.5.3.1.3). */
#define ENVELOPE_FIELD_MAX 1024

#define ENVELOPE_MAGIC "TERNENV"

static const char *const envelope_body_names[] = {"7bit", "8bitmime", "binarymime"};

void envelope_init(struct envelope *e)
{
    memset(e, 0, sizeof *e);
    e->from = NULL;
    e->envid = NULL;
    e->client_ip = NULL;
    e->client_name = NULL;
    e->helo = NULL;
    e->auth_user = NULL;
    e->rcpts = NULL;
    e->body = ENV_BODY_7BIT;
}

void envelope_clear(struct envelope *e)
{
    free(e->from);
    free(e->envid);
    free(e->client_ip);
    free(e->client_name);
    free(e->helo);
    free(e->auth_user);
    for (size_t i = 0; i < e->nrcpts; i++) {
        free(e->rcpts[i].addr);
        free(e->rcpts[i].orcpt);
    }
    free(e->rcpts);
    envelope_init(e);
}

void envelope_set(char **field, const char *s)
{
    char *copy = s ? xstrdup(s) : NULL;
    free(*field);
    *field = copy;
}

void envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt, unsigned notify)
{
    if (e->nrcpts == e->rcpts_cap) {
        size_t cap = e->rcpts_cap ? e->rcpts_cap * 2 : 4;
        e->rcpts = xrealloc(e->rcpts, cap * sizeof *e->rcpts);
        e->rcpts_cap = cap;
    }
    struct envelope_rcpt *r = &e->rcpts[e->nrcpts++];
    r->addr = xstrdup(addr ? addr : "");
    r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
    r->notify = notify;
}

/* ---- serialisation ---- */

static void envelope_put_escaped(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c > 0x20 && c < 0x7f && c != '\\') {
            buf_putc(out, (char)c);
        } else {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, 4);
        }
    }
}

static void envelope_put_str(struct buf *out, const char *key, const char *s)
{
    if (s == NULL)
        return;
    buf_puts(out, key);
    buf_putc(out, ' ');
    envelope_put_escaped(out, s);
    buf_putc(out, '\n');
}

void envelope_serialize(const struct envelope *e, struct buf *out)
{
    buf_printf(out, "%s %d\n", ENVELOPE_MAGIC, ENVELOPE_VERSION);
    envelope_put_str(out, "qid", e->qid);
    envelope_put_str(out, "from", e->from);
    if ((unsigned)e->body < sizeof envelope_body_names / sizeof envelope_body_names[0])
        buf_printf(out, "body %s\n", envelope_body_names[e->body]);
    buf_printf(out, "smtputf8 %d\n", e->smtputf8 ? 1 : 0);
    buf_printf(out, "ret_hdrs %d\n", e->ret_hdrs ? 1 : 0);
    /* Written only when set, so envelopes without it read as before. */
    if (e->ret_full)
        buf_puts(out, "ret_full 1\n");
    envelope_put_str(out, "envid", e->envid);
    buf_printf(out, "size %llu\n", (unsigned long long)e->size);
    buf_printf(out, "arrival %lld\n", (long long)e->arrival);
    envelope_put_str(out, "client_ip", e->client_ip);
    envelope_put_str(out, "client_name", e->client_name);
    envelope_put_str(out, "helo", e->helo);
    envelope_put_str(out, "auth_user", e->auth_user);
    /* Written only when set, so envelopes without it read as before. */
    if (e->junk)
        buf_puts(out, "junk 1\n");
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];
        envelope_put_str(out, "rcpt", r->addr ? r->addr : "");
        envelope_put_str(out, "orcpt", r->orcpt);
        buf_printf(out, "notify %u\n", r->notify);
    }
    buf_puts(out, "end\n");
}

/* ---- parsing ---- */

/* Fields that may appear once per envelope, for the duplicate check. */
enum {
    ENVF_QID = 1u << 0,
    ENVF_FROM = 1u << 1,
    ENVF_BODY = 1u << 2,
    ENVF_SMTPUTF8 = 1u << 3,
    ENVF_RET = 1u << 4,
    ENVF_ENVID = 1u << 5,
    ENVF_SIZE = 1u << 6,
    ENVF_ARRIVAL = 1u << 7,
    ENVF_CLIENT_IP = 1u << 8,
    ENVF_CLIENT_NAME = 1u << 9,
    ENVF_HELO = 1u << 10,
    ENVF_AUTH_USER = 1u << 11,
    ENVF_RET_FULL = 1u << 12,
    ENVF_JUNK = 1u << 13,
};

static int envelope_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -EBADMSG; /* uppercase is not what we write: refused, one form only */
}

/* Decodes an escaped value into an owned string; NULL when malformed, too
 * long, or holding an octet that must have been escaped, or a NUL. */
static char *envelope_get_str(const char *v, size_t n)
{
    /* Each decoded octet takes 1 or 4 encoded ones: bound before allocating. */
    if (n > 4 * ENVELOPE_FIELD_MAX)
        return NULL;
    char *s = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '\\') {
            if (n - i < 4 || v[i + 1] != 'x')
                goto bad;
            int hi = envelope_hexval(v[i + 2]), lo = envelope_hexval(v[i + 3]);
            if (hi < 0 || lo < 0)
                goto bad;
            c = (unsigned char)(hi << 4 | lo);
            /* NUL would cut the string; the other octets would have been
             * written as they are. */
            if (c == 0 || (c > 0x20 && c < 0x7f && c != '\\'))
                goto bad;
            i += 3;
        } else if (c <= 0x20 || c >= 0x7f) {
            goto bad;
        }
        if (o == ENVELOPE_FIELD_MAX)
            goto bad;
        s[o++] = (char)c;
    }
    s[o] = '\0';
    return s;
bad:
    free(s);
    return NULL;
}

/* Strict decimal: digits only, no sign, no leading zero, no overflow. */
static int envelope_get_u64(const char *v, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && v[0] == '0'))
        return -EBADMSG;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -EBADMSG;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -EBADMSG;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

static int envelope_get_time(const char *v, size_t n, time_t *out)
{
    int neg = n > 0 && v[0] == '-';
    uint64_t x;
    if (envelope_get_u64(v + neg, n - (size_t)neg, &x) < 0)
        return -EBADMSG;
    /* time_t is a signed 64-bit count on every platform we build for. */
    if (neg) {
        if (x == 0 || x > (uint64_t)INT64_MAX)
            return -EBADMSG; /* "-0" is not what we write */
        *out = (time_t)-(int64_t)x;
    } else {
        if (x > (uint64_t)INT64_MAX)
            return -EBADMSG;
        *out = (time_t)x;
    }
    return 0;
}

static int envelope_get_bool(const char *v, size_t n, int *out)
{
    if (n != 1 || (v[0] != '0' && v[0] != '1'))
        return -EBADMSG;
    *out = v[0] == '1';
    return 0;
}

/* A string field that may appear once. */
static int envelope_take_str(char **field, unsigned *seen, unsigned bit, const char *v, size_t n)
{
    if (*seen & bit)
        return -EBADMSG;
    *seen |= bit;
    char *s = envelope_get_str(v, n);
    if (s == NULL)
        return -EBADMSG;
    free(*field);
    *field = s;
    return 0;
}

/* The queue ID names spool files: letters, digits, '-', '_' and '.',
 * not starting with '.', so it can never be a path outside the spool. */
static int envelope_take_qid(struct envelope *e, const char *v, size_t n)
{
    if (n > ENVELOPE_QID_MAX || (n > 0 && v[0] == '.'))
        return -EBADMSG;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return -EBADMSG;
    }
    memcpy(e->qid, v, n);
    e->qid[n] = '\0';
    return 0;
}

static int envelope_take_body(struct envelope *e, const char *v, size_t n)
{
    for (size_t i = 0; i < sizeof envelope_body_names / sizeof envelope_body_names[0]; i++) {
        if (strlen(envelope_body_names[i]) == n && !memcmp(v, envelope_body_names[i], n)) {
            e->body = (enum envelope_body)i;
            return 0;
        }
    }
    return -EBADMSG;
}

/* State of a parse: which once-only fields were seen, and for the current
 * recipient whether orcpt and notify were. */
struct envelope_pstate {
    unsigned seen;
    int rcpt_orcpt;
    int rcpt_notify;
};

static int envelope_key_is(const char *k, size_t kn, const char *name)
{
    return strlen(name) == kn && !memcmp(k, name, kn);
}

/* Applies one "key value" line. */
static int envelope_take_line(struct envelope *e, struct envelope_pstate *ps, const char *k,
                              size_t kn, const char *v, size_t vn)
{
    if (envelope_key_is(k, kn, "qid")) {
        if (ps->seen & ENVF_QID)
            return -EBADMSG;
        ps->seen |= ENVF_QID;
        return envelope_take_qid(e, v, vn);
    }
    if (envelope_key_is(k, kn, "from"))
        return envelope_take_str(&e->from, &ps->seen, ENVF_FROM, v, vn);
    if (envelope_key_is(k, kn, "envid"))
        return envelope_take_str(&e->envid, &ps->seen, ENVF_ENVID, v, vn);
    if (envelope_key_is(k, kn, "client_ip"))
        return envelope_take_str(&e->client_ip, &ps->seen, ENVF_CLIENT_IP, v, vn);
    if (envelope_key_is(k, kn, "client_name"))
        return envelope_take_str(&e->client_name, &ps->seen, ENVF_CLIENT_NAME, v, vn);
    if (envelope_key_is(k, kn, "helo"))
        return envelope_take_str(&e->helo, &ps->seen, ENVF_HELO, v, vn);
    if (envelope_key_is(k, kn, "auth_user"))
        return envelope_take_str(&e->auth_user, &ps->seen, ENVF_AUTH_USER, v, vn);
    if (envelope_key_is(k, kn, "body")) {
        if (ps->seen & ENVF_BODY)
            return -EBADMSG;
        ps->seen |= ENVF_BODY;
        return envelope_take_body(e, v, vn);
    }
    if (envelope_key_is(k, kn, "smtputf8")) {
        if (ps->seen & ENVF_SMTPUTF8)
            return -EBADMSG;
        ps->seen |= ENVF_SMTPUTF8;
        return envelope_get_bool(v, vn, &e->smtputf8);
    }
    if (envelope_key_is(k, kn, "ret_hdrs")) {
        if (ps->seen & ENVF_RET)
            return -EBADMSG;
        ps->seen |= ENVF_RET;
        return envelope_get_bool(v, vn, &e->ret_hdrs);
    }
    if (envelope_key_is(k, kn, "ret_full")) {
        if (ps->seen & ENVF_RET_FULL)
            return -EBADMSG;
        ps->seen |= ENVF_RET_FULL;
        return envelope_get_bool(v, vn, &e->ret_full);
    }
    if (envelope_key_is(k, kn, "junk")) {
        if (ps->seen & ENVF_JUNK)
            return -EBADMSG;
        ps->seen |= ENVF_JUNK;
        return envelope_get_bool(v, vn, &e->junk);
    }
    if (envelope_key_is(k, kn, "size")) {
        if (ps->seen & ENVF_SIZE)
            return -EBADMSG;
        ps->seen |= ENVF_SIZE;
        return envelope_get_u64(v, vn, &e->size);
    }
    if (envelope_key_is(k, kn, "arrival")) {
        if (ps->seen & ENVF_ARRIVAL)
            return -EBADMSG;
        ps->seen |= ENVF_ARRIVAL;
        return envelope_get_time(v, vn, &e->arrival);
    }
    if (envelope_key_is(k, kn, "rcpt")) {
        /* The limit is checked before anything is allocated for it. */
        if (e->nrcpts >= ENVELOPE_MAX_RCPTS)
            return -EBADMSG;
        char *addr = envelope_get_str(v, vn);
        if (addr == NULL)
            return -EBADMSG;
        envelope_add_rcpt(e, "", NULL, 0);
        free(e->rcpts[e->nrcpts - 1].addr);
        e->rcpts[e->nrcpts - 1].addr = addr;
        ps->rcpt_orcpt = 0;
        ps->rcpt_notify = 0;
        return 0;
    }
    if (envelope_key_is(k, kn, "orcpt")) {
        if (e->nrcpts == 0 || ps->rcpt_orcpt)
            return -EBADMSG;
        ps->rcpt_orcpt = 1;
        char *s = envelope_get_str(v, vn);
        if (s == NULL)
            return -EBADMSG;
        e->rcpts[e->nrcpts - 1].orcpt = s;
        return 0;
    }
    if (envelope_key_is(k, kn, "notify")) {
        uint64_t x;
        if (e->nrcpts == 0 || ps->rcpt_notify)
            return -EBADMSG;
        ps->rcpt_notify = 1;
        /* Only the RFC 3461 flags we define. */
        if (envelope_get_u64(v, vn, &x) < 0 ||
            x > (ENV_NOTIFY_NEVER | ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY))
            return -EBADMSG;
        e->rcpts[e->nrcpts - 1].notify = (unsigned)x;
        return 0;
    }
    return -EBADMSG; /* unknown key: not something this version wrote */
}

int envelope_parse(const char *in, size_t len, struct envelope *e)
{
    struct envelope_pstate ps = {0, 0, 0};
    size_t pos = 0, lineno = 0;
    int ended = 0;

    envelope_clear(e);
    while (pos < len) {
        const char *line = in + pos;
        const char *nl = memchr(line, '\n', len - pos);
        if (nl == NULL)
            goto bad; /* truncated: every line ends with LF */
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        if (ended)
            goto bad; /* nothing after "end" */
        if (lineno++ == 0) {
            /* "TERNENV <version>": an unknown version is refused, not guessed at. */
            size_t ml = sizeof ENVELOPE_MAGIC - 1;
            uint64_t ver;
            if (n <= ml + 1 || memcmp(line, ENVELOPE_MAGIC, ml) || line[ml] != ' ' ||
                envelope_get_u64(line + ml + 1, n - ml - 1, &ver) < 0 || ver != ENVELOPE_VERSION)
                goto bad;
            continue;
        }
        if (n == 3 && !memcmp(line, "end", 3)) {
            ended = 1;
            continue;
        }
        const char *sp = memchr(line, ' ', n);
        if (sp == NULL)
            goto bad;
        size_t kn = (size_t)(sp - line);
        if (envelope_take_line(e, &ps, line, kn, sp + 1, n - kn - 1) < 0)
            goto bad;
    }
    if (!ended)
        goto bad;
    if (e->ret_hdrs && e->ret_full)
        goto bad; /* RET is one of FULL and HDRS (RFC 3461 §4.3) */
    return 0;
bad:
    envelope_clear(e);
    return -EBADMSG;
}
