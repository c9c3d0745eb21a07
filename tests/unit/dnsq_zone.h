/* dnsq_zone.h: a small in-memory DNS zone that answers the questions of
 * the mail-authentication evaluators (mailauth/dnsq.h), for the unit tests
 * and the RFC 7208 conformance runner (tests/spf/). Names match without
 * regard to case or a final dot; CNAMEs are followed (a loop or a chain
 * over 8 is a temporary failure, as a resolver's SERVFAIL); a name with
 * records of other types only answers NODATA, an unknown name NXDOMAIN;
 * zone_timeout() makes a name (and type) time out.
 *
 * Each answer is built in fresh memory that zone_run() frees right after
 * the evaluator took it, so an evaluator that kept a pointer into an
 * answer is caught by ASan. */
#ifndef TERN_TEST_DNSQ_ZONE_H
#define TERN_TEST_DNSQ_ZONE_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xmalloc.h"
#include "mailauth/dnsq.h"
#include "mailauth/spf.h"

#define ZONE_CNAME 5    /* RFC 1035 type code */
#define ZONE_PRESENT -1 /* the name exists, without records */
#define ZONE_TIMEOUT -2 /* questions for the name (and ttype) time out */

struct zone_rr {
    char *name;     /* owned */
    int type;       /* enum dnsq_type, ZONE_CNAME, ZONE_PRESENT, ZONE_TIMEOUT */
    int ttype;      /* ZONE_TIMEOUT: the type, 0 for all */
    unsigned char addr[16];
    unsigned pref;
    char *target;   /* MX, PTR, CNAME: owned */
    struct dnsq_str *strs; /* TXT: owned, and each p owned */
    size_t nstrs;
};

struct zone {
    struct zone_rr *rrs;
    size_t n, cap;
    int error_prefix;   /* unknown names under "error." time out (pyspf's
                         * test driver does this) */
    unsigned asked;     /* questions answered */
    char log[8192];     /* "TYPE name\n" per question, cut when full */
};

static inline void zone_name_norm(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

static inline struct zone_rr *zone_add(struct zone *z, const char *name, int type)
{
    if (z->n == z->cap) {
        z->cap = z->cap ? z->cap * 2 : 16;
        z->rrs = xrealloc(z->rrs, z->cap * sizeof *z->rrs);
    }
    struct zone_rr *rr = &z->rrs[z->n++];
    memset(rr, 0, sizeof *rr);
    rr->name = xstrdup(name);
    zone_name_norm(rr->name);
    rr->type = type;
    return rr;
}

/* A TXT RR of n character-strings given with their lengths. */
static inline void zone_txt_n(struct zone *z, const char *name, size_t n,
                              const char *const *strs, const size_t *lens)
{
    struct zone_rr *rr = zone_add(z, name, DNSQ_TXT);
    rr->strs = xcalloc(n ? n : 1, sizeof *rr->strs);
    rr->nstrs = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = xmalloc(lens[i] ? lens[i] : 1);
        memcpy(p, strs[i], lens[i]);
        rr->strs[i].p = p;
        rr->strs[i].len = lens[i];
    }
}

/* A TXT RR of one NUL-terminated string. */
static inline void zone_txt(struct zone *z, const char *name, const char *s)
{
    size_t len = strlen(s);
    zone_txt_n(z, name, 1, &s, &len);
}

static inline void zone_addr(struct zone *z, const char *name, const char *ip)
{
    struct zone_rr *rr = zone_add(z, name, DNSQ_A);
    if (inet_pton(AF_INET, ip, rr->addr) != 1) {
        rr->type = DNSQ_AAAA;
        if (inet_pton(AF_INET6, ip, rr->addr) != 1) {
            fprintf(stderr, "zone: bad address %s\n", ip);
            exit(2);
        }
    }
}

static inline void zone_name_rr(struct zone *z, const char *name, int type, unsigned pref,
                                const char *target)
{
    struct zone_rr *rr = zone_add(z, name, type);
    rr->pref = pref;
    rr->target = xstrdup(target);
}

static inline void zone_mx(struct zone *z, const char *name, unsigned pref, const char *host)
{
    zone_name_rr(z, name, DNSQ_MX, pref, host);
}

static inline void zone_ptr(struct zone *z, const char *name, const char *target)
{
    zone_name_rr(z, name, DNSQ_PTR, 0, target);
}

static inline void zone_cname(struct zone *z, const char *name, const char *target)
{
    zone_name_rr(z, name, ZONE_CNAME, 0, target);
}

static inline void zone_present(struct zone *z, const char *name)
{
    zone_add(z, name, ZONE_PRESENT);
}

/* Questions for name of type ttype (0: any type) time out. */
static inline void zone_timeout(struct zone *z, const char *name, int ttype)
{
    zone_add(z, name, ZONE_TIMEOUT)->ttype = ttype;
}

static inline void zone_clear(struct zone *z)
{
    for (size_t i = 0; i < z->n; i++) {
        struct zone_rr *rr = &z->rrs[i];
        free(rr->name);
        free(rr->target);
        for (size_t k = 0; k < rr->nstrs; k++)
            free((void *)rr->strs[k].p);
        free(rr->strs);
    }
    free(z->rrs);
    int ep = z->error_prefix;
    memset(z, 0, sizeof *z);
    z->error_prefix = ep;
}

static inline int zone_name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la && a[la - 1] == '.')
        la--;
    if (lb && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* Answers q into *a; a->rrs is malloc'd (free it after use). */
static inline void zone_answer(struct zone *z, const struct dnsq_question *q,
                               struct dnsq_answer *a)
{
    size_t used = strlen(z->log);
    snprintf(z->log + used, sizeof z->log - used, "%s %s\n", dnsq_type_name(q->type),
             q->name);
    z->asked++;
    struct dnsq_rr *out = xcalloc(z->n ? z->n : 1, sizeof *out);
    a->rrs = out;
    a->count = 0;
    const char *name = q->name;
    for (int hop = 0; hop < 8; hop++) {
        int present = 0, timeout = 0;
        const char *cname = NULL;
        size_t count = 0;
        for (size_t i = 0; i < z->n; i++) {
            const struct zone_rr *rr = &z->rrs[i];
            if (!zone_name_eq(rr->name, name))
                continue;
            present = 1;
            if (rr->type == ZONE_TIMEOUT && (rr->ttype == 0 || rr->ttype == (int)q->type))
                timeout = 1;
            if (rr->type == ZONE_CNAME)
                cname = rr->target;
            if (rr->type != (int)q->type)
                continue;
            struct dnsq_rr *o = &out[count++];
            switch (q->type) {
            case DNSQ_TXT:
                o->u.txt.strs = rr->strs;
                o->u.txt.n = rr->nstrs;
                break;
            case DNSQ_A:
            case DNSQ_AAAA:
                memcpy(o->u.addr, rr->addr, 16);
                break;
            case DNSQ_MX:
                o->u.mx.pref = rr->pref;
                o->u.mx.name = rr->target;
                break;
            case DNSQ_PTR:
                o->u.ptr = rr->target;
                break;
            }
        }
        if (timeout) {
            a->status = DNSQ_TEMPFAIL;
            return;
        }
        if (count) {
            a->status = DNSQ_OK;
            a->count = count;
            return;
        }
        if (cname) {
            name = cname;
            continue;
        }
        if (present) {
            a->status = DNSQ_NODATA;
        } else if (z->error_prefix && strncasecmp(name, "error.", 6) == 0) {
            a->status = DNSQ_TEMPFAIL;
        } else {
            a->status = DNSQ_NXDOMAIN;
        }
        return;
    }
    a->status = DNSQ_TEMPFAIL;
}

/* Runs c to its result against z, answering each batch last question
 * first (the evaluator must not care). Returns the number of batches, or
 * -1 if the evaluator misbehaved (more than 1000 batches, an answer
 * refused, a batch of nothing). */
static inline int zone_run(struct zone *z, struct spf_check *c)
{
    int rounds = 0;
    while (spf_check_step(c) == SPF_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = spf_check_questions(c, &q);
        if (n == 0 || n > DNSQ_BATCH_MAX || ++rounds > 1000)
            return -1;
        for (size_t k = n; k-- > 0;) {
            struct dnsq_answer a;
            zone_answer(z, &q[k], &a);
            int rc = spf_check_answer(c, k, &a);
            free((void *)a.rrs);
            if (rc != 0)
                return -1;
        }
    }
    return rounds;
}

#endif
