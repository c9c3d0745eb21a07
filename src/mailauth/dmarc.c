/* dmarc.c: the DMARC evaluator (dmarc.h). Each From domain is a slot
 * that moves through ASK_FROM -> WAIT_FROM -> (ASK_ORG -> WAIT_ORG) ->
 * DONE; the slots move together, so the first batch asks every From
 * domain's record and the second every fallback still needed, a name
 * shared by several slots asked once. Answers are digested as they
 * arrive (the record parsed into each slot that waits on it), so nothing
 * of the caller's answer is kept. */
#include "mailauth/dmarc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/psl.h"

enum dmarc_stage {
    DMARC_ST_ASK_FROM,
    DMARC_ST_WAIT_FROM,
    DMARC_ST_ASK_ORG,
    DMARC_ST_WAIT_ORG,
    DMARC_ST_DONE,
};

struct dmarc_slot {
    struct dmarc_domain out;
    enum dmarc_stage stage;
};

struct dmarc_dkim_copy {
    enum dkim_result result;
    char domain[DNS_NAME_MAX];
};

struct dmarc_eval {
    struct dmarc_slot slots[DMARC_FROM_MAX];
    size_t nslots;
    struct dmarc_domain verdict;

    enum spf_result spf;
    char spf_domain[DNS_NAME_MAX];
    struct dmarc_dkim_copy dkim[DMARC_DKIM_MAX];
    size_t ndkim;
    unsigned sample;

    /* The current batch: each question with the slots waiting on it. */
    struct dnsq_question qs[DNSQ_BATCH_MAX];
    unsigned waiters[DNSQ_BATCH_MAX]; /* bit i: slot i */
    bool answered[DNSQ_BATCH_MAX];
    size_t nq, nanswered;

    struct buf txt; /* a TXT RR's strings, joined */
    bool done;
};

const char *dmarc_result_name(enum dmarc_result r)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "?";
}

/* Copies name without a final dot into out; false if it is no valid name. */
static bool dmarc_name_copy(char out[DNS_NAME_MAX], const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (!dnsq_name_ok(name, n))
        return false;
    memcpy(out, name, n);
    out[n] = '\0';
    return true;
}

bool dmarc_aligned(const char *a, const char *b, enum dmarc_align m)
{
    char x[DNS_NAME_MAX], y[DNS_NAME_MAX];
    if (!dmarc_name_copy(x, a) || !dmarc_name_copy(y, b))
        return false;
    if (m == DMARC_ALIGN_STRICT)
        return strutil_casecmp(x, y) == 0;
    return psl_org_same(x, y);
}

/* ---- outcome ---- */

static void dmarc_slot_end(struct dmarc_slot *s, enum dmarc_result r, const char *reason)
{
    s->out.result = r;
    s->out.reason = reason;
    s->stage = DMARC_ST_DONE;
}

/* §3.1, §4.2, §6.6.4: a slot with a record is judged. */
static void dmarc_slot_judge(struct dmarc_eval *e, struct dmarc_slot *s)
{
    struct dmarc_domain *d = &s->out;
    const struct dmarc_record *rec = &d->rec;
    d->policy = strutil_casecmp(d->policy_domain, d->from) == 0 ? rec->p : rec->sp;
    d->spf_aligned = e->spf == SPF_PASS && dmarc_aligned(e->spf_domain, d->from, rec->aspf);
    d->dkim_aligned_index = -1;
    for (size_t i = 0; i < e->ndkim && d->dkim_aligned_index < 0; i++)
        if (e->dkim[i].result == DKIM_PASS &&
            dmarc_aligned(e->dkim[i].domain, d->from, rec->adkim))
            d->dkim_aligned_index = (int)i;
    d->dkim_aligned = d->dkim_aligned_index >= 0;
    if (d->spf_aligned || d->dkim_aligned) {
        dmarc_slot_end(s, DMARC_PASS,
                       d->spf_aligned && d->dkim_aligned ? "aligned SPF and DKIM pass"
                       : d->spf_aligned                  ? "aligned SPF pass"
                                                         : "aligned DKIM pass");
        return;
    }
    d->disposition = d->policy;
    if (d->policy != DMARC_POLICY_NONE && e->sample >= rec->pct) {
        d->sampled_out = true;
        d->disposition = d->policy == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE
                                                          : DMARC_POLICY_NONE;
    }
    dmarc_slot_end(s, DMARC_FAIL, "no aligned SPF or DKIM pass");
}

/* How bad an outcome is, for the verdict over several From domains. */
static int dmarc_severity(const struct dmarc_domain *d)
{
    switch (d->result) {
    case DMARC_PASS:
        return 0;
    case DMARC_NONE:
        return 1;
    case DMARC_PERMERROR:
        return 2;
    case DMARC_TEMPERROR:
        return 3;
    case DMARC_FAIL:
        return 4 + (int)d->disposition;
    }
    return 2;
}

static void dmarc_finish(struct dmarc_eval *e)
{
    e->done = true;
    e->nq = 0;
    if (e->nslots == 0)
        return; /* the verdict was set at start */
    size_t worst = 0;
    for (size_t i = 1; i < e->nslots; i++)
        if (dmarc_severity(&e->slots[i].out) > dmarc_severity(&e->slots[worst].out))
            worst = i;
    e->verdict = e->slots[worst].out;
}

/* ---- questions and answers ---- */

/* Asks TXT _dmarc.<name> for slot i, sharing a question already in the
 * batch. False when the name cannot be asked (too long). */
static bool dmarc_ask(struct dmarc_eval *e, size_t slot, const char *name)
{
    char q[DNS_NAME_MAX];
    size_t len = strlen(name);
    if (len + 7 >= sizeof q)
        return false;
    memcpy(q, "_dmarc.", 7);
    memcpy(q + 7, name, len + 1);
    if (!dnsq_name_ok(q, len + 7))
        return false;
    for (size_t k = 0; k < e->nq; k++) {
        if (strutil_casecmp(e->qs[k].name, q) == 0) {
            e->waiters[k] |= 1u << slot;
            return true;
        }
    }
    if (e->nq == 0)
        e->nanswered = 0;
    size_t k = e->nq++;
    e->qs[k].type = DNSQ_TXT;
    memcpy(e->qs[k].name, q, len + 8);
    e->waiters[k] = 1u << slot;
    e->answered[k] = false;
    return true;
}

/* No record where slot s looked: the fallback, or none. */
static void dmarc_slot_nothing(struct dmarc_slot *s, const char *reason)
{
    if (s->stage == DMARC_ST_WAIT_FROM && strcmp(s->out.org, s->out.from) != 0)
        s->stage = DMARC_ST_ASK_ORG;
    else
        dmarc_slot_end(s, DMARC_NONE, reason);
}

int dmarc_eval_answer(struct dmarc_eval *e, size_t i, const struct dnsq_answer *a)
{
    if (e->done || i >= e->nq || e->answered[i])
        return -EINVAL;
    e->answered[i] = true;
    e->nanswered++;
    /* §6.6.3 steps 3-5: the v=DMARC1 records among the TXT RRs. */
    size_t found = 0, which = 0;
    for (size_t k = 0; a->status == DNSQ_OK && k < a->count; k++) {
        dnsq_txt_join(&e->txt, &a->rrs[k]);
        if (dmarc_record_is_dmarc(e->txt.data ? e->txt.data : "", e->txt.len)) {
            found++;
            which = k;
        }
    }
    struct dmarc_record rec;
    const char *why = NULL;
    int parsed = -EINVAL;
    if (found == 1) {
        dnsq_txt_join(&e->txt, &a->rrs[which]);
        parsed = dmarc_record_parse(&rec, e->txt.data, e->txt.len, &why);
    }
    for (size_t si = 0; si < e->nslots; si++) {
        if (!(e->waiters[i] & (1u << si)))
            continue;
        struct dmarc_slot *s = &e->slots[si];
        if (a->status == DNSQ_TEMPFAIL) {
            dmarc_slot_end(s, DMARC_TEMPERROR, "DNS failure looking up the DMARC record");
        } else if (found == 0) {
            dmarc_slot_nothing(s, "no DMARC record");
        } else if (found > 1) {
            dmarc_slot_end(s, DMARC_NONE, "multiple DMARC records");
        } else if (parsed < 0) {
            dmarc_slot_end(s, DMARC_NONE, why ? why : "unusable DMARC record");
        } else {
            s->out.have_record = true;
            s->out.rec = rec;
            strutil_lcpy(s->out.policy_domain, e->qs[i].name + 7, sizeof s->out.policy_domain);
            strutil_lower(s->out.policy_domain);
            dmarc_slot_judge(e, s);
        }
    }
    return 0;
}

static enum dmarc_step dmarc_run(struct dmarc_eval *e)
{
    e->nq = 0;
    for (int pass = 0; pass < 2; pass++) {
        enum dmarc_stage ask = pass == 0 ? DMARC_ST_ASK_FROM : DMARC_ST_ASK_ORG;
        for (size_t i = 0; i < e->nslots; i++) {
            struct dmarc_slot *s = &e->slots[i];
            if (s->stage != ask)
                continue;
            const char *name = pass == 0 ? s->out.from : s->out.org;
            s->stage = pass == 0 ? DMARC_ST_WAIT_FROM : DMARC_ST_WAIT_ORG;
            if (!dmarc_ask(e, i, name))
                dmarc_slot_nothing(s, "no DMARC record (name too long)");
        }
        if (e->nq)
            return DMARC_STEP_DNS;
    }
    dmarc_finish(e);
    return DMARC_STEP_DONE;
}

/* ---- the interface ---- */

struct dmarc_eval *dmarc_eval_new(void)
{
    struct dmarc_eval *e = xcalloc(1, sizeof *e);
    e->done = true;
    return e;
}

void dmarc_eval_free(struct dmarc_eval *e)
{
    if (e == NULL)
        return;
    buf_free(&e->txt);
    free(e);
}

static void dmarc_domain_reset(struct dmarc_domain *d)
{
    memset(d, 0, sizeof *d);
    d->result = DMARC_NONE;
    d->policy = d->disposition = DMARC_POLICY_NONE;
    d->dkim_aligned_index = -1;
    d->reason = "";
}

int dmarc_eval_start(struct dmarc_eval *e, const struct dmarc_params *p)
{
    e->nq = e->nanswered = 0;
    e->nslots = 0;
    e->done = false;
    dmarc_domain_reset(&e->verdict);
    if (p->from == NULL || p->sample > 99) {
        e->verdict.result = DMARC_PERMERROR;
        e->verdict.reason = "internal error: bad parameters";
        e->done = true;
        return -EINVAL;
    }
    e->spf = p->spf;
    if (!dmarc_name_copy(e->spf_domain, p->spf_domain))
        e->spf_domain[0] = '\0';
    e->ndkim = 0;
    for (size_t i = 0; i < p->ndkim && e->ndkim < DMARC_DKIM_MAX; i++) {
        struct dmarc_dkim_copy *c = &e->dkim[e->ndkim];
        if (!dmarc_name_copy(c->domain, p->dkim[i].domain))
            continue; /* no d= to align */
        c->result = p->dkim[i].result;
        e->ndkim++;
    }
    e->sample = p->sample;
    const struct dmarc_from *f = p->from;
    if (f->status != DMARC_FROM_OK || f->ndomains == 0) {
        /* dmarc.h: no author domain to judge is permerror, rejected. */
        e->verdict.result = DMARC_PERMERROR;
        e->verdict.disposition = DMARC_POLICY_REJECT;
        e->verdict.reason = dmarc_from_status_name(f->status == DMARC_FROM_OK
                                                       ? DMARC_FROM_EMPTY
                                                       : f->status);
        e->done = true;
        return 0;
    }
    for (size_t i = 0; i < f->ndomains && i < DMARC_FROM_MAX; i++) {
        struct dmarc_slot *s = &e->slots[e->nslots++];
        dmarc_domain_reset(&s->out);
        s->stage = DMARC_ST_ASK_FROM;
        if (!dmarc_name_copy(s->out.from, f->domains[i])) {
            dmarc_slot_end(s, DMARC_PERMERROR, "From domain is no DNS name");
            continue;
        }
        strutil_lower(s->out.from);
        if (psl_org_domain(s->out.from, s->out.org) < 0)
            memcpy(s->out.org, s->out.from, strlen(s->out.from) + 1);
    }
    return 0;
}

enum dmarc_step dmarc_eval_step(struct dmarc_eval *e)
{
    if (e->done)
        return DMARC_STEP_DONE;
    if (e->nanswered < e->nq)
        return DMARC_STEP_DNS;
    return dmarc_run(e);
}

size_t dmarc_eval_questions(const struct dmarc_eval *e, const struct dnsq_question **q)
{
    *q = e->qs;
    return e->done ? 0 : e->nq;
}

void dmarc_eval_timeout(struct dmarc_eval *e)
{
    if (e->done)
        return;
    for (size_t i = 0; i < e->nslots; i++)
        if (e->slots[i].stage != DMARC_ST_DONE)
            dmarc_slot_end(&e->slots[i], DMARC_TEMPERROR, "time limit reached");
    dmarc_finish(e);
}

const struct dmarc_domain *dmarc_eval_verdict(const struct dmarc_eval *e)
{
    return &e->verdict;
}

size_t dmarc_eval_ndomains(const struct dmarc_eval *e)
{
    return e->nslots;
}

const struct dmarc_domain *dmarc_eval_domain(const struct dmarc_eval *e, size_t i)
{
    return i < e->nslots ? &e->slots[i].out : NULL;
}
