/* dkim_canon.c: header and body canonicalisation (RFC 6376 §3.4).
 *
 * The body canonicalisers are line machines that hold back only what the
 * rest of the body decides: empty lines (dropped if nothing but empty
 * lines follows, §3.4.3, §3.4.4), counted; in relaxed, whether the line
 * has a run of white space not yet written (one SP if content follows on
 * the line, nothing if the line ends, §3.4.4 a); a CR, which is a line
 * end if LF follows and an ordinary octet otherwise. Their output goes
 * through a fixed staging buffer into one SHA-256 per canonicalisation;
 * the digest of an l= slot is a copy of that state finalised when the
 * canonical body reaches the limit, so no octet is hashed twice. */
#include "mailauth/dkim_canon.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "base/log.h"
#include "base/xmalloc.h"

#define DKIM_STAGE 4096

const char *dkim_canon_name(enum dkim_canon c)
{
    return c == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

static bool dkim_wsp(char c)
{
    return c == ' ' || c == '\t';
}

static char dkim_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

void dkim_canon_header(enum dkim_canon c, const char *field, size_t n, struct buf *out)
{
    if (c == DKIM_CANON_SIMPLE) {
        buf_append(out, field, n);
        buf_append(out, "\r\n", 2);
        return;
    }
    const char *colon = memchr(field, ':', n);
    size_t name_end = colon ? (size_t)(colon - field) : n;
    size_t name_len = name_end;
    while (name_len > 0 && dkim_wsp(field[name_len - 1]))
        name_len--; /* "WSP before the colon" (§3.4.2) */
    char *w = buf_reserve(out, n + 3);
    size_t k = 0;
    for (size_t i = 0; i < name_len; i++)
        w[k++] = dkim_lower(field[i]);
    if (colon) {
        w[k++] = ':';
        bool space = false, any = false;
        for (size_t i = name_end + 1; i < n; i++) {
            char ch = field[i];
            if (ch == '\r' && i + 1 < n && field[i + 1] == '\n') {
                i++; /* unfold: the CRLF goes, the WSP after it stays */
                continue;
            }
            if (dkim_wsp(ch)) {
                space = any; /* white space right after the colon goes */
                continue;
            }
            if (space)
                w[k++] = ' ';
            space = false;
            any = true;
            w[k++] = ch;
        }
    }
    w[k++] = '\r';
    w[k++] = '\n';
    buf_commit(out, k);
}

/* ---- the body ---- */

struct dkim_slot {
    uint8_t canon;
    bool done;
    uint64_t limit;
    unsigned char digest[DKIM_HASH_LEN];
};

struct dkim_bstate {
    EVP_MD_CTX *md;
    bool on;
    bool cr;        /* a CR held back */
    bool wsp;       /* relaxed: white space held back in this line */
    bool inl;       /* the line has content */
    uint64_t out;   /* canonical octets staged and flushed so far */
    uint64_t crlfs; /* empty lines held back */
    uint64_t upto;  /* hash no further than the largest limit */
    size_t nstage;
    unsigned char stage[DKIM_STAGE];
};

struct dkim_body {
    struct dkim_bstate st[2];
    struct dkim_slot slot[DKIM_BODY_SLOTS_MAX];
    size_t nslots;
    EVP_MD_CTX *tmp;
    bool fed, finished;
};

static pthread_once_t dkim_md_once = PTHREAD_ONCE_INIT;
static EVP_MD *dkim_md;

static void dkim_md_fetch(void)
{
    dkim_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *dkim_sha256(void)
{
    pthread_once(&dkim_md_once, dkim_md_fetch);
    if (dkim_md == NULL)
        fatal("dkim: OpenSSL has no SHA-256");
    return dkim_md;
}

static EVP_MD_CTX *dkim_md_new(void)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (m == NULL)
        fatal("dkim: out of memory");
    return m;
}

struct dkim_body *dkim_body_new(void)
{
    struct dkim_body *b = xcalloc(1, sizeof *b);
    for (int c = 0; c < 2; c++)
        b->st[c].md = dkim_md_new();
    b->tmp = dkim_md_new();
    dkim_body_reset(b);
    return b;
}

void dkim_body_free(struct dkim_body *b)
{
    if (b == NULL)
        return;
    for (int c = 0; c < 2; c++)
        EVP_MD_CTX_free(b->st[c].md);
    EVP_MD_CTX_free(b->tmp);
    free(b);
}

void dkim_body_reset(struct dkim_body *b)
{
    for (int c = 0; c < 2; c++) {
        struct dkim_bstate *s = &b->st[c];
        s->on = s->cr = s->wsp = s->inl = false;
        s->out = s->crlfs = s->upto = 0;
        s->nstage = 0;
    }
    b->nslots = 0;
    b->fed = b->finished = false;
}

int dkim_body_want(struct dkim_body *b, enum dkim_canon c, uint64_t limit)
{
    if (b->fed || b->finished)
        return -EBUSY;
    for (size_t i = 0; i < b->nslots; i++)
        if (b->slot[i].canon == c && b->slot[i].limit == limit)
            return (int)i;
    if (b->nslots == DKIM_BODY_SLOTS_MAX)
        return -ENOSPC;
    struct dkim_bstate *s = &b->st[c];
    if (!s->on) {
        if (EVP_DigestInit_ex(s->md, dkim_sha256(), NULL) != 1)
            fatal("dkim: SHA-256 init failed");
        s->on = true;
    }
    if (limit > s->upto)
        s->upto = limit;
    struct dkim_slot *sl = &b->slot[b->nslots];
    sl->canon = (uint8_t)c;
    sl->limit = limit;
    sl->done = false;
    return (int)b->nslots++;
}

static void dkim_snapshot(struct dkim_body *b, struct dkim_slot *sl, EVP_MD_CTX *md)
{
    if (EVP_MD_CTX_copy_ex(b->tmp, md) != 1 || EVP_DigestFinal_ex(b->tmp, sl->digest, NULL) != 1)
        fatal("dkim: SHA-256 failed");
    sl->done = true;
}

/* Hashes the staged output of canonicalisation c, taking the snapshot of
 * every slot whose limit falls inside it at that exact octet. */
static void dkim_stage_flush(struct dkim_body *b, int c)
{
    struct dkim_bstate *s = &b->st[c];
    const unsigned char *p = s->stage;
    size_t k = s->nstage;
    s->nstage = 0;
    for (;;) {
        uint64_t next = UINT64_MAX;
        for (size_t i = 0; i < b->nslots; i++) {
            struct dkim_slot *sl = &b->slot[i];
            if (sl->canon != c || sl->done || sl->limit == DKIM_NO_LIMIT)
                continue;
            if (sl->limit == s->out)
                dkim_snapshot(b, sl, s->md);
            else if (sl->limit > s->out && sl->limit < next)
                next = sl->limit;
        }
        if (k == 0)
            return;
        size_t take = next - s->out < k ? (size_t)(next - s->out) : k;
        if (s->out < s->upto) {
            size_t h = s->upto - s->out < take ? (size_t)(s->upto - s->out) : take;
            if (EVP_DigestUpdate(s->md, p, h) != 1)
                fatal("dkim: SHA-256 failed");
        }
        s->out += take;
        p += take;
        k -= take;
    }
}

static inline void dkim_put(struct dkim_body *b, int c, unsigned char ch)
{
    struct dkim_bstate *s = &b->st[c];
    s->stage[s->nstage++] = ch;
    if (s->nstage == DKIM_STAGE)
        dkim_stage_flush(b, c);
}

/* Content is coming on a line that had none: the empty lines held back
 * were inside the body after all. */
static void dkim_line_begins(struct dkim_body *b, int c)
{
    struct dkim_bstate *s = &b->st[c];
    for (; s->crlfs > 0; s->crlfs--) {
        dkim_put(b, c, '\r');
        dkim_put(b, c, '\n');
    }
    s->inl = true;
}

static void dkim_line_ends(struct dkim_body *b, int c)
{
    struct dkim_bstate *s = &b->st[c];
    if (s->inl) {
        dkim_put(b, c, '\r');
        dkim_put(b, c, '\n');
        s->inl = false;
    } else {
        s->crlfs++;
    }
    s->wsp = false; /* §3.4.4 a: white space at the end of a line goes */
}

static void dkim_content(struct dkim_body *b, int c, unsigned char ch)
{
    struct dkim_bstate *s = &b->st[c];
    if (!s->inl)
        dkim_line_begins(b, c);
    if (s->wsp) {
        dkim_put(b, c, ' ');
        s->wsp = false;
    }
    dkim_put(b, c, ch);
}

/* Appends p[0..n) to the staged output of c. */
static void dkim_stage_copy(struct dkim_body *b, int c, const char *p, size_t n)
{
    struct dkim_bstate *s = &b->st[c];
    while (n > 0) {
        size_t room = DKIM_STAGE - s->nstage;
        size_t take = n < room ? n : room;
        memcpy(s->stage + s->nstage, p, take);
        s->nstage += take;
        p += take;
        n -= take;
        if (s->nstage == DKIM_STAGE)
            dkim_stage_flush(b, c);
    }
}

/* §3.4.3: lines pass as they are; only trailing empty lines go. The run
 * between line ends is copied in one piece. */
static void dkim_feed_simple(struct dkim_body *b, const char *p, size_t n)
{
    struct dkim_bstate *s = &b->st[DKIM_CANON_SIMPLE];
    size_t i = 0;
    while (i < n) {
        if (s->cr) {
            s->cr = false;
            if (p[i] == '\n') {
                dkim_line_ends(b, DKIM_CANON_SIMPLE);
                i++;
                continue;
            }
            dkim_content(b, DKIM_CANON_SIMPLE, '\r');
        }
        if (p[i] == '\r') {
            s->cr = true;
            i++;
            continue;
        }
        /* Content up to the next CR. */
        const char *cr = memchr(p + i, '\r', n - i);
        size_t run = cr ? (size_t)(cr - (p + i)) : n - i;
        if (!s->inl)
            dkim_line_begins(b, DKIM_CANON_SIMPLE);
        dkim_stage_copy(b, DKIM_CANON_SIMPLE, p + i, run);
        i += run;
    }
}

/* §3.4.4: runs of WSP become one SP, WSP at the end of a line goes,
 * trailing empty lines (white space only, by then) go. Inside a line
 * with nothing held back, the run up to the next SP, HTAB or CR is copied
 * in one piece. */
static void dkim_feed_relaxed(struct dkim_body *b, const char *p, size_t n)
{
    struct dkim_bstate *s = &b->st[DKIM_CANON_RELAXED];
    size_t i = 0;
    while (i < n) {
        if (s->inl && !s->wsp && !s->cr) {
            size_t j = i;
            while (j < n && p[j] != ' ' && p[j] != '\t' && p[j] != '\r')
                j++;
            dkim_stage_copy(b, DKIM_CANON_RELAXED, p + i, j - i);
            i = j;
            if (i == n)
                break;
        }
        unsigned char ch = (unsigned char)p[i++];
        if (s->cr) {
            s->cr = false;
            if (ch == '\n') {
                dkim_line_ends(b, DKIM_CANON_RELAXED);
                continue;
            }
            dkim_content(b, DKIM_CANON_RELAXED, '\r');
        }
        if (ch == '\r')
            s->cr = true;
        else if (ch == ' ' || ch == '\t')
            s->wsp = true;
        else
            dkim_content(b, DKIM_CANON_RELAXED, ch);
    }
}

void dkim_body_feed(struct dkim_body *b, const char *p, size_t n)
{
    if (b->finished || n == 0)
        return;
    b->fed = true;
    if (b->st[DKIM_CANON_SIMPLE].on)
        dkim_feed_simple(b, p, n);
    if (b->st[DKIM_CANON_RELAXED].on)
        dkim_feed_relaxed(b, p, n);
}

void dkim_body_finish(struct dkim_body *b)
{
    if (b->finished)
        return;
    b->finished = true;
    for (int c = 0; c < 2; c++) {
        struct dkim_bstate *s = &b->st[c];
        if (!s->on)
            continue;
        if (s->cr) {
            s->cr = false;
            dkim_content(b, c, '\r');
        }
        if (s->inl) /* a last line without CRLF gets one */
            dkim_line_ends(b, c);
        s->crlfs = 0; /* trailing empty lines go */
        s->wsp = false;
        if (c == DKIM_CANON_SIMPLE && s->out + s->nstage == 0) {
            dkim_put(b, c, '\r'); /* §3.4.3: an empty body is CRLF */
            dkim_put(b, c, '\n');
        }
        dkim_stage_flush(b, c);
    }
    /* Whole-body digests, and limits the body never reached. */
    for (size_t i = 0; i < b->nslots; i++) {
        struct dkim_slot *sl = &b->slot[i];
        if (!sl->done)
            dkim_snapshot(b, sl, b->st[sl->canon].md);
    }
}

const unsigned char *dkim_body_digest(const struct dkim_body *b, int slot)
{
    return b->slot[slot].digest;
}

uint64_t dkim_body_length(const struct dkim_body *b, enum dkim_canon c)
{
    return b->st[c].on ? b->st[c].out : 0;
}
