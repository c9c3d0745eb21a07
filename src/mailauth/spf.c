/* spf.c: check_host() (RFC 7208 §4, §5, §6) as a resumable state machine.
 *
 * The evaluation is a stack of frames, one per include level (§5.2: an
 * include is a recursive check_host() whose result only says match or
 * not); a redirect (§6.1) replaces the frame's domain and record in place.
 * Each frame walks its record's mechanisms; a mechanism that needs DNS
 * asks its questions, remembers how far it got in the frame (`ms`) and
 * returns, and runs again from there once the answers are in. The
 * answers are digested as they arrive (spf_check_answer), so nothing of
 * the caller's answer is kept.
 *
 * The client's PTR names are looked up at most once per check and each
 * name validated at most once (§5.5): the ptr mechanism and the %{p}
 * macro share them. Functions that ensure such a cache are idempotent:
 * called again after their answers arrived, they find the work done. */
#include "mailauth/spf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/spf_macro.h"

#define SPF_TERMS_MAX 10 /* §4.6.4: DNS-querying terms per evaluation */
#define SPF_VOID_MAX 2   /* §4.6.4: void lookups */
#define SPF_NAMES_MAX 10 /* §4.6.4: MX names per mx, PTR names */
/* Only an include adds a level, and each costs a term. */
#define SPF_DEPTH_MAX (SPF_TERMS_MAX + 1)

enum spf_stage {
    SPF_ST_FETCH,    /* ask for the domain's TXT records */
    SPF_ST_RECORD,   /* they are in: select and parse */
    SPF_ST_TERMS,    /* evaluate mechanism `term` */
    SPF_ST_REDIRECT, /* no mechanism matched */
    SPF_ST_EXP,      /* the top frame failed: fetch the explanation */
};

/* What the current batch asks for: how to digest its answers. */
enum spf_wait {
    SPF_W_RECORD,   /* TXT of a frame's domain */
    SPF_W_ADDR,     /* a: A or AAAA of the target */
    SPF_W_EXISTS,   /* exists: A of the target */
    SPF_W_MX,       /* mx: MX of the target */
    SPF_W_HOSTS,    /* mx: A or AAAA of each MX name */
    SPF_W_PTR,      /* PTR of the client's address */
    SPF_W_VALIDATE, /* A or AAAA of PTR names */
    SPF_W_EXP,      /* TXT of the exp domain */
};

enum spf_rec_outcome {
    SPF_REC_OK,
    SPF_REC_NONE, /* no SPF record, NODATA or NXDOMAIN */
    SPF_REC_TEMPFAIL,
    SPF_REC_MULTIPLE,
    SPF_REC_SYNTAX,
};

enum spf_ptr_state { SPF_PTR_UNFETCHED, SPF_PTR_ASKED, SPF_PTR_DONE };
enum spf_valid { SPF_V_UNKNOWN, SPF_V_ASKED, SPF_V_VALID, SPF_V_INVALID };

/* What evaluating a mechanism came to. */
enum spf_mres {
    SPF_M_NOMATCH,
    SPF_M_MATCH,
    SPF_M_NEED,   /* questions asked */
    SPF_M_PUSHED, /* an include's frame is on top */
    SPF_M_FINAL,  /* the check is done (an error) */
};

struct spf_frame {
    char domain[DNS_NAME_MAX]; /* <domain> of this level */
    struct spf_record rec;     /* storage kept across checks */
    size_t term;               /* the mechanism being evaluated */
    uint8_t stage;             /* enum spf_stage */
    uint8_t ms;                /* how far the current step got */
    bool redirected;           /* reached by redirect: none is permerror */
};

struct spf_check {
    struct spf_ip ip;
    struct buf strs; /* owned: the strings vars points at */
    char ip_i[64], ip_c[INET6_ADDRSTRLEN], rev[80], now[24];
    struct spf_macro_vars vars;
    char domain[DNS_NAME_MAX]; /* the <domain> checked first */

    struct spf_frame frames[SPF_DEPTH_MAX];
    size_t depth;            /* index of the top frame */
    enum spf_result child;   /* what an include's frame came back with */

    /* The current batch. */
    struct dnsq_question qs[DNSQ_BATCH_MAX];
    uint8_t qidx[DNSQ_BATCH_MAX]; /* SPF_W_VALIDATE: the PTR name asked */
    bool answered[DNSQ_BATCH_MAX];
    size_t nq, nanswered;
    enum spf_wait wait;
    unsigned cidr; /* SPF_W_ADDR, SPF_W_HOSTS: prefix length to match */

    /* What the batch's answers came to. */
    enum dnsq_status status; /* of a one-question batch */
    size_t count;            /* its records */
    bool hit, tempfail;
    enum spf_rec_outcome rec;
    struct spf_record_error rec_err;
    char names[SPF_NAMES_MAX][DNS_NAME_MAX]; /* the MX names of an mx */
    size_t nnames;
    bool mx_over;

    /* The client's PTR names, looked up once (§5.5). */
    uint8_t ptr_state;
    char ptr[SPF_NAMES_MAX][DNS_NAME_MAX];
    uint8_t ptr_valid[SPF_NAMES_MAX];
    size_t nptr;

    unsigned terms, voids, lookups, limits;

    char name[DNS_NAME_MAX]; /* the target of the mechanism evaluated */
    struct buf scratch;      /* macro expansion, a record being parsed */
    struct buf txt;          /* the explanation's TXT record */
    bool have_txt;
    struct buf exp, reason;
    bool exp_ok;
    enum spf_result result;
    bool done;
};

/* ---- addresses ---- */

static void spf_ip_normalize(struct spf_ip *ip)
{
    /* §5: "an IPv4-mapped IPv6 address ... MUST still be considered an
     * IPv4 address". */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip->family == AF_INET6 && memcmp(ip->addr, mapped, 12) == 0) {
        memmove(ip->addr, ip->addr + 12, 4);
        memset(ip->addr + 4, 0, 12);
        ip->family = AF_INET;
    }
}

int spf_ip_from_sockaddr(struct spf_ip *ip, const struct sockaddr *sa)
{
    memset(ip, 0, sizeof *ip);
    if (sa->sa_family == AF_INET) {
        ip->family = AF_INET;
        memcpy(ip->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        ip->family = AF_INET6;
        memcpy(ip->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    } else {
        return -EAFNOSUPPORT;
    }
    spf_ip_normalize(ip);
    return 0;
}

int spf_ip_parse(struct spf_ip *ip, const char *text)
{
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, text, ip->addr) == 1) {
        ip->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, ip->addr) == 1) {
        ip->family = AF_INET6;
        spf_ip_normalize(ip);
        return 0;
    }
    return -EINVAL;
}

/* Whether the first `bits` bits of a and b agree. */
static bool spf_prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    size_t whole = bits / 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (bits % 8 == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff00u >> (bits % 8));
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

static enum dnsq_type spf_addr_type(const struct spf_check *c)
{
    return c->ip.family == AF_INET ? DNSQ_A : DNSQ_AAAA;
}

/* Whether an address answer holds one within c->cidr bits of <ip>. */
static bool spf_addrs_match(const struct spf_check *c, const struct dnsq_answer *a,
                            unsigned bits)
{
    if (a->status != DNSQ_OK)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (spf_prefix_eq(a->rrs[i].u.addr, c->ip.addr, bits))
            return true;
    return false;
}

/* The macro forms of <ip> (§7.3) and its reverse name (§5.5). */
static void spf_ip_texts(struct spf_check *c)
{
    static const char hex[] = "0123456789ABCDEF", lhex[] = "0123456789abcdef";
    const unsigned char *a = c->ip.addr;
    if (c->ip.family == AF_INET) {
        snprintf(c->ip_i, sizeof c->ip_i, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
        memcpy(c->ip_c, c->ip_i, strlen(c->ip_i) + 1);
        snprintf(c->rev, sizeof c->rev, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        c->vars.v = "in-addr";
        return;
    }
    char *p = c->ip_i, *r = c->rev;
    for (int k = 0; k < 16; k++) {
        *p++ = hex[a[k] >> 4];
        *p++ = '.';
        *p++ = hex[a[k] & 15];
        *p++ = '.';
        *r++ = lhex[a[15 - k] & 15];
        *r++ = '.';
        *r++ = lhex[a[15 - k] >> 4];
        *r++ = '.';
    }
    p[-1] = '\0';
    memcpy(r, "ip6.arpa", 9);
    inet_ntop(AF_INET6, a, c->ip_c, sizeof c->ip_c);
    c->vars.v = "ip6";
}

/* ---- names ---- */

/* Copies name (a final dot dropped) into out if it can be asked of DNS.
 * Returns 0, or -EINVAL for "" / "." (a null MX) and malformed names. */
static int spf_name_copy(char out[DNS_NAME_MAX], const char *name)
{
    if (name == NULL)
        return -EINVAL;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (!dnsq_name_ok(name, len))
        return -EINVAL;
    memcpy(out, name, len);
    out[len] = '\0';
    return 0;
}

/* Whether name is dom or a subdomain of it, ignoring case (§5.5). */
static bool spf_name_under(const char *name, const char *dom)
{
    size_t n = strlen(name), d = strlen(dom);
    if (n < d || strutil_casecmp(name + n - d, dom) != 0)
        return false;
    return n == d || name[n - d - 1] == '.';
}

/* ---- outcome ---- */

static void spf_reason(struct spf_check *c, const char *what, const char *arg, size_t n)
{
    buf_reset(&c->reason);
    const char *d = c->frames[c->depth].domain;
    strutil_escape(&c->reason, d, strlen(d));
    buf_puts(&c->reason, ": ");
    buf_puts(&c->reason, what);
    if (arg) {
        buf_putc(&c->reason, ' ');
        strutil_escape(&c->reason, arg, n);
    }
}

/* The term's text, for a reason. */
static void spf_reason_term(struct spf_check *c, const char *what, const struct spf_frame *f,
                            const struct spf_term *t)
{
    spf_reason(c, what, spf_record_at(&f->rec, t->text), t->text.len);
}

static enum spf_mres spf_finish(struct spf_check *c, enum spf_result r)
{
    c->result = r;
    c->done = true;
    c->nq = 0;
    return SPF_M_FINAL;
}

static enum spf_mres spf_fail_term(struct spf_check *c, enum spf_result r, const char *what,
                                   const struct spf_frame *f, const struct spf_term *t)
{
    spf_reason_term(c, what, f, t);
    return spf_finish(c, r);
}

/* ---- questions ---- */

/* Adds a question to the batch; the first one of a batch sets what it is
 * for and clears what the answers will tell. */
static size_t spf_ask(struct spf_check *c, enum spf_wait w, enum dnsq_type type,
                      const char *name)
{
    if (c->nq == 0) {
        c->wait = w;
        c->hit = c->tempfail = false;
        c->status = DNSQ_OK;
        c->count = 0;
        c->nanswered = 0;
    }
    size_t i = c->nq++;
    c->qs[i].type = type;
    strutil_lcpy(c->qs[i].name, name, sizeof c->qs[i].name);
    c->answered[i] = false;
    c->lookups++;
    return i;
}

/* The TXT RR's first 7 octets, across its strings, for the version test. */
static bool spf_txt_is_spf(const struct dnsq_rr *rr)
{
    char head[7];
    size_t n = 0;
    for (size_t s = 0; s < rr->u.txt.n && n < sizeof head; s++) {
        const struct dnsq_str *str = &rr->u.txt.strs[s];
        size_t take = str->len < sizeof head - n ? str->len : sizeof head - n;
        memcpy(head + n, str->p, take);
        n += take;
    }
    return spf_record_is_spf(head, n);
}

/* §4.4, §4.5: the records of the frame's domain. */
static void spf_take_record(struct spf_check *c, const struct dnsq_answer *a)
{
    if (a->status == DNSQ_TEMPFAIL) {
        c->rec = SPF_REC_TEMPFAIL;
        return;
    }
    size_t found = 0, which = 0;
    for (size_t i = 0; a->status == DNSQ_OK && i < a->count; i++) {
        if (spf_txt_is_spf(&a->rrs[i])) {
            found++;
            which = i;
        }
    }
    if (found != 1) {
        c->rec = found ? SPF_REC_MULTIPLE : SPF_REC_NONE;
        return;
    }
    dnsq_txt_join(&c->scratch, &a->rrs[which]);
    struct spf_frame *f = &c->frames[c->depth];
    c->rec = spf_record_parse(&f->rec, c->scratch.data, c->scratch.len, &c->rec_err) == 0
                 ? SPF_REC_OK
                 : SPF_REC_SYNTAX;
}

static void spf_take_mx(struct spf_check *c, const struct dnsq_answer *a)
{
    c->nnames = 0;
    c->mx_over = false;
    if (a->status != DNSQ_OK)
        return;
    /* §4.6.4: more than 10 MX names make the mechanism permerror. */
    if (a->count > SPF_NAMES_MAX) {
        c->mx_over = true;
        return;
    }
    for (size_t i = 0; i < a->count && c->nnames < SPF_NAMES_MAX; i++)
        if (spf_name_copy(c->names[c->nnames], a->rrs[i].u.mx.name) == 0)
            c->nnames++;
}

static void spf_take_ptr(struct spf_check *c, const struct dnsq_answer *a)
{
    c->ptr_state = SPF_PTR_DONE;
    c->nptr = 0;
    if (a->status != DNSQ_OK)
        return; /* §5.5: a DNS error here is no match, not temperror */
    size_t n = a->count;
    if (n > SPF_NAMES_MAX) {
        c->limits |= SPF_LIMIT_PTR; /* §4.6.4: the rest are ignored */
        n = SPF_NAMES_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        if (spf_name_copy(c->ptr[c->nptr], a->rrs[i].u.ptr) == 0)
            c->ptr_valid[c->nptr++] = SPF_V_UNKNOWN;
    }
}

int spf_check_answer(struct spf_check *c, size_t i, const struct dnsq_answer *a)
{
    if (c->done || i >= c->nq || c->answered[i])
        return -EINVAL;
    c->answered[i] = true;
    c->nanswered++;
    enum dnsq_status st = a->status;
    size_t count = st == DNSQ_OK ? a->count : 0;
    switch (c->wait) {
    case SPF_W_RECORD:
        spf_take_record(c, a);
        break;
    case SPF_W_ADDR:
    case SPF_W_EXISTS:
        c->status = st;
        c->count = count;
        c->hit = c->wait == SPF_W_EXISTS ? count > 0 : spf_addrs_match(c, a, c->cidr);
        break;
    case SPF_W_HOSTS:
        if (st == DNSQ_TEMPFAIL)
            c->tempfail = true;
        else if (spf_addrs_match(c, a, c->cidr))
            c->hit = true;
        break;
    case SPF_W_MX:
        c->status = st;
        c->count = count;
        spf_take_mx(c, a);
        break;
    case SPF_W_PTR:
        spf_take_ptr(c, a);
        break;
    case SPF_W_VALIDATE:
        /* §5.5: an error on a name's lookup skips that name. */
        c->ptr_valid[c->qidx[i]] = spf_addrs_match(c, a, c->ip.family == AF_INET ? 32 : 128)
                                       ? SPF_V_VALID
                                       : SPF_V_INVALID;
        break;
    case SPF_W_EXP:
        /* §6.2: anything but exactly one record means no explanation. */
        c->have_txt = st == DNSQ_OK && count == 1;
        if (c->have_txt)
            dnsq_txt_join(&c->txt, &a->rrs[0]);
        break;
    }
    return 0;
}

/* ---- the PTR names ---- */

/* Ensures the PTR names are known: 0, or SPF_M_NEED with the question
 * asked. */
static int spf_ptr_fetch(struct spf_check *c)
{
    if (c->ptr_state == SPF_PTR_DONE)
        return 0;
    spf_ask(c, SPF_W_PTR, DNSQ_PTR, c->rev);
    c->ptr_state = SPF_PTR_ASKED;
    return SPF_M_NEED;
}

/* Ensures the PTR names in `mask` are validated (their addresses looked
 * up, in one batch): 0, or SPF_M_NEED. */
static int spf_ptr_validate(struct spf_check *c, unsigned mask)
{
    for (size_t i = 0; i < c->nptr; i++) {
        if ((mask & (1u << i)) && c->ptr_valid[i] == SPF_V_UNKNOWN) {
            size_t q = spf_ask(c, SPF_W_VALIDATE, spf_addr_type(c), c->ptr[i]);
            c->qidx[q] = (uint8_t)i;
            c->ptr_valid[i] = SPF_V_ASKED;
        }
    }
    return c->nq ? SPF_M_NEED : 0;
}

/* Sets vars.p for the frame's domain (§7.3): a validated name that is
 * <domain> is preferred, then one under it, then any. 0 or SPF_M_NEED. */
static int spf_p_ready(struct spf_check *c, const struct spf_frame *f)
{
    if (spf_ptr_fetch(c) || spf_ptr_validate(c, (1u << c->nptr) - 1))
        return SPF_M_NEED;
    int best = -1, rank = 3;
    for (size_t i = 0; i < c->nptr; i++) {
        if (c->ptr_valid[i] != SPF_V_VALID)
            continue;
        int r = strutil_casecmp(c->ptr[i], f->domain) == 0     ? 0
                : spf_name_under(c->ptr[i], f->domain)          ? 1
                                                                 : 2;
        if (r < rank) {
            rank = r;
            best = (int)i;
        }
    }
    c->vars.p = best >= 0 ? c->ptr[best] : NULL;
    return 0;
}

/* ---- mechanisms ---- */

/* The target name of a term into c->name: the expanded domain-spec, or
 * <domain> when there is none. 0, or -EDOM for a name DNS cannot ask. */
static int spf_target(struct spf_check *c, const struct spf_frame *f, struct spf_span spec)
{
    if (spec.len == 0) {
        memcpy(c->name, f->domain, strlen(f->domain) + 1);
        return 0;
    }
    int rc = spf_macro_domain(spf_record_at(&f->rec, spec), spec.len, &c->vars, &c->scratch,
                              c->name);
    return rc < 0 ? -EDOM : 0;
}

/* §4.6.4: counts a void lookup; the third is permerror. */
static enum spf_mres spf_void(struct spf_check *c, const struct spf_frame *f,
                              const struct spf_term *t)
{
    if (++c->voids > SPF_VOID_MAX) {
        c->limits |= SPF_LIMIT_VOID;
        return spf_fail_term(c, SPF_PERMERROR, "more than 2 void lookups at", f, t);
    }
    return SPF_M_NOMATCH;
}

static enum spf_mres spf_mech_ptr(struct spf_check *c, const struct spf_frame *f)
{
    if (spf_ptr_fetch(c))
        return SPF_M_NEED;
    unsigned mask = 0;
    for (size_t i = 0; i < c->nptr; i++)
        if (spf_name_under(c->ptr[i], c->name))
            mask |= 1u << i;
    if (spf_ptr_validate(c, mask))
        return SPF_M_NEED;
    for (size_t i = 0; i < c->nptr; i++)
        if ((mask & (1u << i)) && c->ptr_valid[i] == SPF_V_VALID)
            return SPF_M_MATCH;
    return SPF_M_NOMATCH;
}

static enum spf_mres spf_push(struct spf_check *c, const struct spf_frame *f,
                              const struct spf_term *t)
{
    if (c->depth + 1 >= SPF_DEPTH_MAX) /* cannot happen: terms run out first */
        return spf_fail_term(c, SPF_PERMERROR, "includes nested too deep at", f, t);
    struct spf_frame *g = &c->frames[++c->depth];
    memcpy(g->domain, c->name, strlen(c->name) + 1);
    g->stage = SPF_ST_FETCH;
    g->term = 0;
    g->ms = 0;
    g->redirected = false;
    return SPF_M_PUSHED;
}

/* After the lookup of an a, mx or exists target. */
static enum spf_mres spf_mech_looked(struct spf_check *c, const struct spf_frame *f,
                                     const struct spf_term *t)
{
    /* §5: an RCODE other than 0 or 3, or a timeout: temperror. */
    if (c->status == DNSQ_TEMPFAIL)
        return spf_fail_term(c, SPF_TEMPERROR, "DNS failure at", f, t);
    if (c->hit)
        return SPF_M_MATCH;
    if (c->count == 0)
        return spf_void(c, f, t);
    return SPF_M_NOMATCH;
}

static enum spf_mres spf_mech(struct spf_check *c, struct spf_frame *f, const struct spf_term *t)
{
    switch (t->mech) {
    case SPF_MECH_ALL:
        return SPF_M_MATCH;
    case SPF_MECH_IP4:
        return c->ip.family == AF_INET && spf_prefix_eq(c->ip.addr, t->addr, t->cidr4)
                   ? SPF_M_MATCH
                   : SPF_M_NOMATCH;
    case SPF_MECH_IP6:
        return c->ip.family == AF_INET6 && spf_prefix_eq(c->ip.addr, t->addr, t->cidr6)
                   ? SPF_M_MATCH
                   : SPF_M_NOMATCH;
    }
    if (f->ms == 0) {
        if (++c->terms > SPF_TERMS_MAX) {
            c->limits |= SPF_LIMIT_TERMS;
            return spf_fail_term(c, SPF_PERMERROR, "more than 10 DNS-querying terms at", f, t);
        }
        f->ms = 1;
    }
    unsigned bits = c->ip.family == AF_INET ? t->cidr4 : t->cidr6;
    if (f->ms == 1) {
        if ((t->letters & SPF_MACRO_BIT('p')) && spf_p_ready(c, f))
            return SPF_M_NEED;
        bool ok = spf_target(c, f, t->spec) == 0;
        f->ms = 2;
        switch (t->mech) {
        case SPF_MECH_INCLUDE:
            if (!ok)
                return spf_fail_term(c, SPF_PERMERROR, "not a valid domain at", f, t);
            return spf_push(c, f, t);
        case SPF_MECH_A:
        case SPF_MECH_MX:
        case SPF_MECH_EXISTS:
            if (!ok)
                return SPF_M_NOMATCH;
            c->cidr = bits;
            spf_ask(c,
                    t->mech == SPF_MECH_A    ? SPF_W_ADDR
                    : t->mech == SPF_MECH_MX ? SPF_W_MX
                                             : SPF_W_EXISTS,
                    t->mech == SPF_MECH_A    ? spf_addr_type(c)
                    : t->mech == SPF_MECH_MX ? DNSQ_MX
                                             : DNSQ_A,
                    c->name);
            return SPF_M_NEED;
        case SPF_MECH_PTR:
            if (!ok)
                return SPF_M_NOMATCH;
            break;
        }
    }
    switch (t->mech) {
    case SPF_MECH_INCLUDE:
        /* §5.2: pass matches; fail, softfail, neutral do not; none is
         * permerror (temperror and permerror ended the check already). */
        if (c->child == SPF_NONE)
            return spf_fail_term(c, SPF_PERMERROR, "no SPF record at", f, t);
        return c->child == SPF_PASS ? SPF_M_MATCH : SPF_M_NOMATCH;
    case SPF_MECH_A:
    case SPF_MECH_EXISTS:
        return spf_mech_looked(c, f, t);
    case SPF_MECH_PTR:
        return spf_mech_ptr(c, f);
    }
    /* mx */
    if (f->ms == 2) {
        if (c->mx_over) {
            c->limits |= SPF_LIMIT_MX;
            return spf_fail_term(c, SPF_PERMERROR, "more than 10 MX names at", f, t);
        }
        enum spf_mres r = spf_mech_looked(c, f, t);
        if (r != SPF_M_NOMATCH || c->nnames == 0)
            return r;
        c->cidr = bits;
        for (size_t i = 0; i < c->nnames; i++)
            spf_ask(c, SPF_W_HOSTS, spf_addr_type(c), c->names[i]);
        f->ms = 3;
        return SPF_M_NEED;
    }
    if (c->hit)
        return SPF_M_MATCH;
    if (c->tempfail)
        return spf_fail_term(c, SPF_TEMPERROR, "DNS failure at", f, t);
    return SPF_M_NOMATCH;
}

/* ---- frames ---- */

/* A frame came to result r (not temperror or permerror, which end the
 * check where they happen). */
static void spf_frame_end(struct spf_check *c, enum spf_result r)
{
    struct spf_frame *f = &c->frames[c->depth];
    if (c->depth > 0) {
        c->child = r; /* the include term, frame below, resumes at ms 2 */
        c->depth--;
        return;
    }
    if (r == SPF_NONE && f->redirected) {
        /* §6.1: a redirect to a domain without a record is permerror. */
        spf_reason(c, "no SPF record after redirect", NULL, 0);
        spf_finish(c, SPF_PERMERROR);
        return;
    }
    if (r == SPF_FAIL && f->rec.exp.len) {
        c->result = SPF_FAIL;
        f->stage = SPF_ST_EXP;
        f->ms = 0;
        return;
    }
    spf_finish(c, r);
}

static void spf_frame_record(struct spf_check *c, struct spf_frame *f)
{
    switch (c->rec) {
    case SPF_REC_OK:
        f->stage = SPF_ST_TERMS;
        f->term = 0;
        f->ms = 0;
        return;
    case SPF_REC_NONE:
        spf_reason(c, "no SPF record", NULL, 0);
        spf_frame_end(c, SPF_NONE);
        return;
    case SPF_REC_TEMPFAIL:
        spf_reason(c, "DNS failure on TXT", NULL, 0);
        spf_finish(c, SPF_TEMPERROR);
        return;
    case SPF_REC_MULTIPLE:
        spf_reason(c, "multiple SPF records", NULL, 0);
        spf_finish(c, SPF_PERMERROR);
        return;
    case SPF_REC_SYNTAX: {
        /* The text that failed is still in scratch. */
        const struct spf_record_error *e = &c->rec_err;
        spf_reason(c, e->what, e->term.len ? c->scratch.data + e->term.off : NULL,
                   e->term.len);
        spf_finish(c, SPF_PERMERROR);
        return;
    }
    }
}

/* No mechanism matched (§4.7): redirect, or neutral. */
static int spf_frame_redirect(struct spf_check *c, struct spf_frame *f)
{
    const struct spf_record *rec = &f->rec;
    /* §6.1: redirect is ignored when the record has an "all". */
    if (rec->redirect.len == 0 || rec->has_all) {
        if (c->depth == 0)
            spf_reason(c, "no mechanism matched", NULL, 0);
        spf_frame_end(c, SPF_NEUTRAL);
        return 0;
    }
    if (f->ms == 0) {
        if (++c->terms > SPF_TERMS_MAX) {
            c->limits |= SPF_LIMIT_TERMS;
            spf_reason(c, "more than 10 DNS-querying terms at redirect", NULL, 0);
            spf_finish(c, SPF_PERMERROR);
            return 0;
        }
        f->ms = 1;
    }
    if ((rec->redirect_letters & SPF_MACRO_BIT('p')) && spf_p_ready(c, f))
        return SPF_M_NEED;
    if (spf_target(c, f, rec->redirect) < 0) {
        spf_reason(c, "redirect to an invalid domain", NULL, 0);
        spf_finish(c, SPF_PERMERROR);
        return 0;
    }
    memcpy(f->domain, c->name, strlen(c->name) + 1);
    f->redirected = true;
    f->stage = SPF_ST_FETCH;
    f->term = 0;
    f->ms = 0;
    return 0;
}

/* §6.2: the explanation of a fail, best effort: any problem leaves none. */
static int spf_frame_exp(struct spf_check *c, struct spf_frame *f)
{
    const struct spf_record *rec = &f->rec;
    if (f->ms == 0) {
        if ((rec->exp_letters & SPF_MACRO_BIT('p')) && spf_p_ready(c, f))
            return SPF_M_NEED;
        if (spf_target(c, f, rec->exp) < 0) {
            spf_finish(c, SPF_FAIL);
            return 0;
        }
        c->have_txt = false;
        spf_ask(c, SPF_W_EXP, DNSQ_TXT, c->name);
        f->ms = 1;
        return SPF_M_NEED;
    }
    uint32_t letters;
    if (c->have_txt &&
        spf_macro_check(c->txt.data, c->txt.len, SPF_MACRO_EXP, &letters) == 0) {
        if ((letters & SPF_MACRO_BIT('p')) && spf_p_ready(c, f))
            return SPF_M_NEED;
        buf_reset(&c->exp);
        c->exp_ok = spf_macro_expand(c->txt.data, c->txt.len, SPF_MACRO_EXP, &c->vars,
                                     &c->exp) == 0;
    }
    spf_finish(c, SPF_FAIL);
    return 0;
}

static enum spf_step spf_run(struct spf_check *c)
{
    while (!c->done) {
        struct spf_frame *f = &c->frames[c->depth];
        c->vars.d = f->domain;
        int need = 0;
        switch (f->stage) {
        case SPF_ST_FETCH:
            spf_ask(c, SPF_W_RECORD, DNSQ_TXT, f->domain);
            f->stage = SPF_ST_RECORD;
            need = 1;
            break;
        case SPF_ST_RECORD:
            spf_frame_record(c, f);
            break;
        case SPF_ST_TERMS: {
            if (f->term == f->rec.nterms) {
                f->stage = SPF_ST_REDIRECT;
                f->ms = 0;
                break;
            }
            const struct spf_term *t = &f->rec.terms[f->term];
            enum spf_mres r = spf_mech(c, f, t);
            if (r == SPF_M_NEED) {
                need = 1;
            } else if (r == SPF_M_MATCH) {
                if (c->depth == 0)
                    spf_reason_term(c, "matched", f, t);
                spf_frame_end(c, (enum spf_result)t->result);
            } else if (r == SPF_M_NOMATCH) {
                f->term++;
                f->ms = 0;
            }
            break;
        }
        case SPF_ST_REDIRECT:
            need = spf_frame_redirect(c, f) == SPF_M_NEED;
            break;
        case SPF_ST_EXP:
            need = spf_frame_exp(c, f) == SPF_M_NEED;
            break;
        }
        if (need) {
            if (c->nq == 0) { /* broken invariant: never wait on nothing */
                spf_reason(c, "internal error", NULL, 0);
                spf_finish(c, SPF_TEMPERROR);
                break;
            }
            return SPF_STEP_DNS;
        }
    }
    c->nq = 0;
    return SPF_STEP_DONE;
}

/* ---- the interface ---- */

struct spf_check *spf_check_new(void)
{
    struct spf_check *c = xcalloc(1, sizeof *c);
    c->done = true;
    return c;
}

void spf_check_free(struct spf_check *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < SPF_DEPTH_MAX; i++)
        spf_record_free(&c->frames[i].rec);
    buf_free(&c->strs);
    buf_free(&c->scratch);
    buf_free(&c->txt);
    buf_free(&c->exp);
    buf_free(&c->reason);
    free(c);
}

/* §4.3: a multi-label name of valid labels, not an address literal. */
static bool spf_domain_ok(const char *d)
{
    size_t n = strlen(d);
    return dnsq_name_ok(d, n) && memchr(d, '.', n) != NULL && d[0] != '[';
}

void spf_check_start(struct spf_check *c, const struct spf_params *p)
{
    c->ip = p->ip;
    spf_ip_normalize(&c->ip);
    c->depth = 0;
    c->nq = c->nanswered = 0;
    c->terms = c->voids = c->lookups = c->limits = 0;
    c->ptr_state = SPF_PTR_UNFETCHED;
    c->nptr = 0;
    c->exp_ok = c->have_txt = false;
    c->done = false;
    c->result = SPF_NONE;
    buf_reset(&c->reason);
    buf_reset(&c->exp);
    memset(&c->vars, 0, sizeof c->vars);
    spf_ip_texts(c);

    /* <sender> and <domain> (§2.3, §2.4, §4.3): the null path and the
     * HELO identity check postmaster@<HELO>; a sender without a
     * local-part gets "postmaster". */
    const char *helo = p->helo ? p->helo : "";
    const char *mf = p->identity == SPF_ID_MAILFROM ? p->mail_from : NULL;
    const char *local = "", *dom = helo;
    size_t llen = 0;
    if (mf && *mf) {
        const char *at = strrchr(mf, '@');
        local = mf;
        llen = at ? (size_t)(at - mf) : strlen(mf);
        dom = at ? at + 1 : "";
    }
    if (llen == 0) {
        local = "postmaster";
        llen = strlen(local);
    }
    struct buf *s = &c->strs;
    buf_reset(s);
    buf_append(s, local, llen);
    buf_putc(s, '@');
    buf_puts(s, dom);
    size_t o_l = s->len + 1;
    buf_append(s, "", 1);
    buf_append(s, local, llen);
    size_t o_h = s->len + 1;
    buf_append(s, "", 1);
    buf_puts(s, helo);
    size_t o_r = s->len + 1;
    buf_append(s, "", 1);
    buf_puts(s, p->receiver ? p->receiver : "");
    buf_append(s, "", 1);
    c->vars.s = s->data;
    c->vars.o = s->data + llen + 1;
    c->vars.l = s->data + o_l;
    c->vars.h = s->data + o_h;
    c->vars.r = p->receiver ? s->data + o_r : NULL;
    snprintf(c->now, sizeof c->now, "%lld", p->now);
    c->vars.t = c->now;
    c->vars.i = c->ip_i;
    c->vars.c = c->ip_c;

    struct spf_frame *f = &c->frames[0];
    size_t dlen = strlen(dom);
    if (dlen > 0 && dom[dlen - 1] == '.')
        dlen--;
    f->domain[0] = '\0';
    if (dlen < sizeof f->domain) {
        memcpy(f->domain, dom, dlen);
        f->domain[dlen] = '\0';
    }
    f->stage = SPF_ST_FETCH;
    f->term = 0;
    f->ms = 0;
    f->redirected = false;
    c->vars.d = f->domain;
    memcpy(c->domain, f->domain, strlen(f->domain) + 1);
    if (dlen >= sizeof f->domain || !spf_domain_ok(f->domain)) {
        buf_reset(&c->reason);
        buf_puts(&c->reason, "not a valid domain: ");
        strutil_escape(&c->reason, dom, strlen(dom));
        spf_finish(c, SPF_NONE);
    }
}

enum spf_step spf_check_step(struct spf_check *c)
{
    if (c->done)
        return SPF_STEP_DONE;
    if (c->nanswered < c->nq)
        return SPF_STEP_DNS;
    c->nq = 0;
    return spf_run(c);
}

size_t spf_check_questions(const struct spf_check *c, const struct dnsq_question **q)
{
    *q = c->qs;
    return c->done ? 0 : c->nq;
}

void spf_check_timeout(struct spf_check *c)
{
    if (c->done)
        return;
    spf_reason(c, "time limit reached", NULL, 0);
    spf_finish(c, SPF_TEMPERROR);
}

enum spf_result spf_check_result(const struct spf_check *c)
{
    return c->result;
}

const char *spf_check_explanation(const struct spf_check *c)
{
    return c->result == SPF_FAIL && c->exp_ok ? (c->exp.data ? c->exp.data : "") : NULL;
}

const char *spf_check_reason(const struct spf_check *c)
{
    return c->reason.data ? c->reason.data : "";
}

const char *spf_check_domain(const struct spf_check *c)
{
    return c->domain;
}

unsigned spf_check_limits(const struct spf_check *c)
{
    return c->limits;
}

unsigned spf_check_lookups(const struct spf_check *c)
{
    return c->lookups;
}
