/* net_mailauth.c: see net_mailauth.h. */
#include "proc/net_mailauth.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/hdrfield.h"
#include "mail/mailaddr.h"
#include "mailauth/arc_verify.h"
#include "mailauth/authres.h"
#include "mailauth/dkim_verify.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc_from.h"
#include "mailauth/spf.h"
#include "proc/net_dmarc.h"
#include "proc/net_dnsq.h"

/* An evaluator as the driver below steps it: the pure evaluators of
 * mailauth/ all have this shape (spf.h). */
struct ma_ops {
    bool (*step)(void *e); /* true: questions wait */
    size_t (*questions)(const void *e, const struct dnsq_question **q);
    int (*answer)(void *e, size_t i, const struct dnsq_answer *a);
    void (*timeout)(void *e);
};

/* DKIM's and ARC's keys are asked for while the body streams (the header
 * section ended), DKIM's first, ARC's when DKIM's are in (one batch at a
 * time on the session's net_dnsq), so their stages may run before the
 * verdict; the verdict then waits for them. */
enum ma_stage { MA_IDLE, MA_SPF_HELO, MA_SPF_MAILFROM, MA_DKIM, MA_ARC, MA_DMARC };

struct net_mailauth {
    struct ev_loop *loop;
    const struct config *cfg;
    struct smtp_session *s; /* not owned: the session owns us */
    struct spf_ip ip;
    bool ip_ok;
    char ip_text[IP_TEXT_MAX];
    struct net_dnsq *dq; /* owned */
    ev_timer_id timer;   /* mail_auth_time_limit of the stage */
    enum ma_stage stage;
    const struct ma_ops *ops; /* the evaluator being stepped, or NULL */
    void *ev;
    uint32_t txn;

    /* SPF (at MAIL). */
    struct spf_check *spf; /* owned, reused */
    char helo[DNS_NAME_MAX];
    char from[MAILADDR_PATH_MAX + 1];
    bool helo_checked;
    enum spf_result helo_res, mfrom_res;
    char helo_reason[128], mfrom_reason[128];
    char spf_domain[DNS_NAME_MAX]; /* MAIL FROM's domain, or the HELO name */
    char explanation[256];

    /* The content: the From fields, for DMARC. */
    struct hdrfield hf;
    struct buf hf_out; /* what hf passes, thrown away */
    struct dmarc_from fromdom;
    struct dkim_verify *dkim; /* owned, reused */
    bool dkim_asked;          /* its one batch of key questions went out */
    struct arc_verify *arc;   /* owned, reused */
    bool arc_asked;           /* its first batch went out (the rest follow it) */
    bool at_verdict;          /* the content ended: DMARC follows DKIM and ARC */

    /* DMARC (at the end). */
    struct dmarc_eval *dmarc; /* owned, reused */
};

/* ---- stepping an evaluator ---- */

static void ma_stage_done(struct net_mailauth *m);
static void ma_on_answer(void *arg, size_t i, const struct dnsq_answer *a);

static void ma_run(struct net_mailauth *m)
{
    if (m->ops->step(m->ev)) {
        const struct dnsq_question *q;
        size_t n = m->ops->questions(m->ev, &q);
        net_dnsq_ask(m->dq, q, n, ma_on_answer, m);
        return;
    }
    ev_timer_cancel(m->loop, m->timer);
    m->timer = 0;
    m->ops = NULL;
    ma_stage_done(m);
}

static void ma_on_answer(void *arg, size_t i, const struct dnsq_answer *a)
{
    struct net_mailauth *m = arg;
    if (m->ops == NULL)
        return;
    (void)m->ops->answer(m->ev, i, a);
    if (net_dnsq_pending(m->dq) == 0)
        ma_run(m);
}

static void ma_on_timeout(struct ev_loop *loop, void *arg)
{
    struct net_mailauth *m = arg;
    m->timer = 0;
    if (m->ops == NULL)
        return;
    net_dnsq_cancel(m->dq);
    m->ops->timeout(m->ev); /* what waits is temperror now */
    ma_run(m);
}

static void ma_timer_start(struct net_mailauth *m)
{
    ev_timer_cancel(m->loop, m->timer);
    m->timer = ev_timer_add(m->loop, (uint64_t)m->cfg->mail_auth_time_limit * 1000,
                            ma_on_timeout, m);
}

/* Steps evaluator e until it is done, then ma_stage_done(). */
static void ma_drive(struct net_mailauth *m, const struct ma_ops *ops, void *e)
{
    m->ops = ops;
    m->ev = e;
    ma_timer_start(m);
    ma_run(m);
}

static bool ma_spf_step(void *e)
{
    return spf_check_step(e) == SPF_STEP_DNS;
}

static size_t ma_spf_questions(const void *e, const struct dnsq_question **q)
{
    return spf_check_questions(e, q);
}

static int ma_spf_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return spf_check_answer(e, i, a);
}

static void ma_spf_timeout(void *e)
{
    spf_check_timeout(e);
}

static const struct ma_ops ma_spf_ops = {ma_spf_step, ma_spf_questions, ma_spf_answer,
                                         ma_spf_timeout};

static bool ma_dmarc_step(void *e)
{
    return dmarc_eval_step(e) == DMARC_STEP_DNS;
}

static size_t ma_dmarc_questions(const void *e, const struct dnsq_question **q)
{
    return dmarc_eval_questions(e, q);
}

static int ma_dmarc_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return dmarc_eval_answer(e, i, a);
}

static void ma_dmarc_timeout(void *e)
{
    dmarc_eval_timeout(e);
}

static bool ma_dkim_step(void *e)
{
    return dkim_verify_step(e) == DKIM_STEP_DNS;
}

static size_t ma_dkim_questions(const void *e, const struct dnsq_question **q)
{
    return dkim_verify_questions(e, q);
}

static int ma_dkim_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return dkim_verify_answer(e, i, a);
}

static void ma_dkim_timeout(void *e)
{
    dkim_verify_timeout(e);
}

static const struct ma_ops ma_dkim_ops = {ma_dkim_step, ma_dkim_questions, ma_dkim_answer,
                                          ma_dkim_timeout};

static bool ma_arc_step(void *e)
{
    return arc_verify_step(e) == ARC_STEP_DNS;
}

static size_t ma_arc_questions(const void *e, const struct dnsq_question **q)
{
    return arc_verify_questions(e, q);
}

static int ma_arc_answer(void *e, size_t i, const struct dnsq_answer *a)
{
    return arc_verify_answer(e, i, a);
}

static void ma_arc_timeout(void *e)
{
    arc_verify_timeout(e);
}

static const struct ma_ops ma_arc_ops = {ma_arc_step, ma_arc_questions, ma_arc_answer,
                                         ma_arc_timeout};

static const struct ma_ops ma_dmarc_ops = {ma_dmarc_step, ma_dmarc_questions, ma_dmarc_answer,
                                           ma_dmarc_timeout};

/* ---- SPF at MAIL ---- */

static void ma_spf_begin(struct net_mailauth *m, enum spf_identity id)
{
    struct spf_params p = {
        .identity = id,
        .ip = m->ip,
        .mail_from = m->from,
        .helo = m->helo,
        .receiver = m->cfg->hostname,
        .now = (long long)clock_wall(),
    };
    spf_check_start(m->spf, &p);
    m->stage = id == SPF_ID_HELO ? MA_SPF_HELO : MA_SPF_MAILFROM;
    ma_drive(m, &ma_spf_ops, m->spf);
}

/* RFC 7372 §3.2: the codes of an SPF refusal. The explanation is the
 * domain's own text (exp=, §6.2), else a pointer at the result. */
static void ma_spf_answer_session(struct net_mailauth *m)
{
    struct result r;
    result_set(&r, RESULT_OK, 250, "2.1.5", "Ok");
    enum spf_result res = m->mfrom_res;
    if (res == SPF_FAIL && m->cfg->spf_reject_fail) {
        if (m->explanation[0])
            result_set(&r, RESULT_PERMFAIL, 550, "5.7.23", "SPF: %s", m->explanation);
        else
            result_set(&r, RESULT_PERMFAIL, 550, "5.7.23",
                       "SPF: %s is not allowed to send mail for %s", m->ip_text,
                       strutil_esc(m->spf_domain));
    } else if (res == SPF_TEMPERROR && m->cfg->spf_defer_temperror) {
        result_set(&r, RESULT_TEMPFAIL, 451, "4.7.24", "SPF: temporary error checking %s",
                   strutil_esc(m->spf_domain));
    }
    smtp_session_spf_done(m->s, m->txn, &r);
}

/* The MAIL FROM check's domain: the reverse path's, or the HELO name for
 * the null path (RFC 7208 §2.4). */
static void ma_spf_domain(struct net_mailauth *m)
{
    const char *at = strrchr(m->from, '@');
    strutil_lcpy(m->spf_domain, m->from[0] && at ? at + 1 : m->helo, sizeof m->spf_domain);
}

static void ma_spf_stage_done(struct net_mailauth *m)
{
    if (m->stage == MA_SPF_HELO) {
        m->helo_res = spf_check_result(m->spf);
        strutil_lcpy(m->helo_reason, spf_check_reason(m->spf), sizeof m->helo_reason);
        m->helo_checked = true;
        if (m->from[0]) {
            ma_spf_begin(m, SPF_ID_MAILFROM);
            return;
        }
        /* <>: the MAIL FROM identity is postmaster@<HELO>, checked already. */
        m->mfrom_res = m->helo_res;
        strutil_lcpy(m->mfrom_reason, m->helo_reason, sizeof m->mfrom_reason);
    } else {
        m->mfrom_res = spf_check_result(m->spf);
        strutil_lcpy(m->mfrom_reason, spf_check_reason(m->spf), sizeof m->mfrom_reason);
        const char *exp = spf_check_explanation(m->spf);
        strutil_lcpy(m->explanation, m->mfrom_res == SPF_FAIL && exp ? exp : "",
                     sizeof m->explanation);
    }
    m->stage = MA_IDLE;
    ma_spf_answer_session(m);
}

/* ---- the content: From fields ---- */

static bool ma_on_field(void *arg, const char *name, size_t name_len, const char *f, size_t n,
                        bool complete)
{
    struct net_mailauth *m = arg;
    if (name_len == 4 && strncasecmp(name, "From", 4) == 0) {
        const char *v = memchr(f, ':', n);
        /* A From too long to hold is judged on its start: a syntax
         * error, so DMARC fails closed rather than reading half of it. */
        if (v && complete) {
            (void)dmarc_from_add_field(&m->fromdom, v + 1, n - (size_t)(v + 1 - f));
        } else {
            m->fromdom.nfields++;
            m->fromdom.status = DMARC_FROM_SYNTAX; /* sticky, as a parse error */
        }
    }
    return false;
}

/* The keys are asked for once the header section is in (SPF is over by
 * then: the session reads no content before it answers). The time limit
 * starts at the verdict: until then the session's own timeouts bound the
 * content, and the lookups overlap it. */
static void ma_dkim_ask(struct net_mailauth *m)
{
    if (m->dkim_asked || m->stage != MA_IDLE || !ma_dkim_step(m->dkim))
        return;
    m->dkim_asked = true;
    m->stage = MA_DKIM;
    m->ops = &ma_dkim_ops;
    m->ev = m->dkim;
    ma_run(m);
}

/* ARC's keys likewise (RFC 8617 §5.2), once DKIM's stage is over; the
 * later batches of a long chain follow through ma_run. At the verdict the
 * time limit runs from the start of this stage. */
static void ma_arc_ask(struct net_mailauth *m)
{
    if (m->arc_asked || m->stage != MA_IDLE || !ma_arc_step(m->arc))
        return;
    m->arc_asked = true;
    m->stage = MA_ARC;
    m->ops = &ma_arc_ops;
    m->ev = m->arc;
    if (m->at_verdict)
        ma_timer_start(m);
    ma_run(m);
}

void net_mailauth_content(struct net_mailauth *m, const char *p, size_t n)
{
    dkim_verify_feed(m->dkim, p, n);
    arc_verify_feed(m->arc, p, n);
    ma_dkim_ask(m);
    ma_arc_ask(m);
    if (m->hf.done)
        return;
    hdrfield_feed(&m->hf, p, n, &m->hf_out);
    buf_reset(&m->hf_out);
}

/* ---- the verdict ---- */

static enum dmarc_policy ma_disposition(const struct dmarc_domain *v)
{
    return v->result == DMARC_FAIL || v->result == DMARC_PERMERROR ? v->disposition
                                                                   : DMARC_POLICY_NONE;
}

/* The log's word for DKIM: "none", or each signature's result and d=,
 * "pass:example.org,fail:example.net". */
static void ma_dkim_log(const struct net_mailauth *m, struct buf *out)
{
    size_t n = dkim_verify_count(m->dkim);
    if (n == 0)
        buf_puts(out, "none");
    for (size_t i = 0; i < n; i++) {
        const struct dkim_sig_result *r = dkim_verify_result(m->dkim, i);
        buf_printf(out, "%s%s", i ? "," : "", dkim_result_name(r->result));
        if (r->parsed)
            buf_printf(out, ":%s", r->d); /* checked printable: dkim_verify.h */
    }
}

/* The Authentication-Results field (RFC 8601) and the session's answer. */
static void ma_verdict_done(struct net_mailauth *m)
{
    const struct dmarc_domain *v = dmarc_eval_verdict(m->dmarc);
    struct authres_spf spf[2];
    size_t nspf = 0;
    spf[nspf++] = (struct authres_spf){
        .result = m->mfrom_res,
        .identity = m->from[0] ? m->from : m->spf_domain,
        .reason = m->mfrom_reason[0] ? m->mfrom_reason : NULL,
    };
    if (m->helo_checked && m->from[0])
        spf[nspf++] = (struct authres_spf){
            .result = m->helo_res,
            .helo = true,
            .identity = m->helo,
            .reason = m->helo_reason[0] ? m->helo_reason : NULL,
        };
    enum dmarc_policy disp = ma_disposition(v);
    struct authres_dmarc dm = {
        .result = v->result,
        .header_from = v->from[0] ? v->from : NULL,
        .has_policy = v->result == DMARC_FAIL || v->result == DMARC_PERMERROR,
        .policy = disp,
        .reason = v->reason,
    };
    struct authres_dkim dkim[DKIM_SIGS_MAX];
    size_t ndkim = dkim_verify_count(m->dkim);
    for (size_t i = 0; i < ndkim; i++) {
        const struct dkim_sig_result *r = dkim_verify_result(m->dkim, i);
        dkim[i] = (struct authres_dkim){
            .result = r->result,
            .reason = r->reason[0] ? r->reason : NULL,
        };
        if (r->parsed) {
            dkim[i].d = r->d;
            dkim[i].i = r->i;
            dkim[i].s = r->s;
            dkim[i].a = dkim_alg_name(r->alg);
            dkim[i].b = r->b;
        }
    }
    if (ndkim == 0) /* RFC 8601 §2.7.1: none, no signature */
        dkim[ndkim++] = (struct authres_dkim){.result = DKIM_NONE};
    /* RFC 8617 §6: arc= with the client's address and, for a pass, how
     * far back the chain's signatures hold (§5.2 step 5). */
    const struct arc_verify_result *av = arc_verify_result(m->arc);
    struct authres_arc arc = {
        .result = av->result,
        .remote_ip = av->result != ARC_NONE ? m->ip_text : NULL,
        .oldest_pass = av->result == ARC_PASS ? av->oldest_pass : -1,
        .reason = av->reason[0] ? av->reason : NULL,
    };
    struct authres_results ar = {
        .authserv_id = config_authserv_id(m->cfg),
        .spf = spf,
        .nspf = nspf,
        .dkim = dkim,
        .ndkim = ndkim,
        .dmarc = &dm,
        .arc = &arc,
    };
    struct buf field = BUF_INIT;
    if (authres_build(&ar, &field) < 0)
        buf_reset(&field);
    struct result r;
    result_set(&r, RESULT_OK, 250, "2.0.0", "Ok");
    int junk = 0;
    int enforce = m->cfg->dmarc_policy == CONF_DMARC_ENFORCE;
    if (enforce && disp == DMARC_POLICY_REJECT) {
        /* RFC 7489 §6.7, §10.3: refused at the end of DATA, not bounced. */
        if (v->from[0])
            result_set(&r, RESULT_PERMFAIL, 550, "5.7.1",
                       "Message rejected by the DMARC policy of %s", strutil_esc(v->from));
        else
            result_set(&r, RESULT_PERMFAIL, 550, "5.7.1",
                       "Message rejected: no usable From address (%s)", v->reason);
    } else if (enforce && disp == DMARC_POLICY_QUARANTINE) {
        junk = 1;
    }
    net_dmarc_record(m->dmarc, m->dkim,
                     &(struct net_dmarc_msg){m->ip_text, m->from, m->spf_domain, m->mfrom_res,
                                             enforce ? disp : DMARC_POLICY_NONE});
    /* Peer text, each word escaped into its own buffer. */
    struct buf f = BUF_INIT, h = BUF_INIT;
    strutil_escape_word(&f, m->from, strlen(m->from));
    strutil_escape_word(&h, v->from[0] ? v->from : "-", v->from[0] ? strlen(v->from) : 1);
    struct buf d = BUF_INIT;
    ma_dkim_log(m, &d);
    /* arc=pass:<the newest seal's d=> (a checked domain, arc_verify.h). */
    char arcw[DNS_NAME_MAX + 8];
    snprintf(arcw, sizeof arcw, "%s%s%s", arc_result_name(av->result), av->as_d[0] ? ":" : "",
             av->as_d);
    log_info("%s: authentication: spf=%s smtp.mailfrom=<%s> helo-spf=%s dkim=%s arc=%s "
             "dmarc=%s header.from=%s policy=%s disposition=%s%s",
             smtp_session_qid(m->s), spf_result_name(m->mfrom_res), f.data ? f.data : "",
             m->helo_checked ? spf_result_name(m->helo_res) : "none", d.data, arcw,
             dmarc_result_name(v->result), h.data, dmarc_policy_name(v->policy),
             dmarc_policy_name(disp), enforce ? "" : " (dmarc_policy report)");
    buf_free(&f);
    buf_free(&h);
    buf_free(&d);
    m->stage = MA_IDLE;
    smtp_session_verdict(m->s, m->txn, &r, field.data, field.len, junk);
    buf_free(&field);
}

static void ma_dmarc_begin(struct net_mailauth *m)
{
    struct dmarc_dkim dkim[DKIM_SIGS_MAX];
    size_t ndkim = 0;
    for (size_t i = 0; i < dkim_verify_count(m->dkim); i++) {
        const struct dkim_sig_result *r = dkim_verify_result(m->dkim, i);
        if (r->parsed)
            dkim[ndkim++] = (struct dmarc_dkim){r->result, r->d, r->s};
    }
    struct dmarc_params p = {
        .from = &m->fromdom,
        .spf = m->mfrom_res,
        .spf_domain = m->spf_domain,
        .dkim = dkim,
        .ndkim = ndkim,
        .sample = arc4random_uniform(100),
    };
    (void)dmarc_eval_start(m->dmarc, &p);
    m->stage = MA_DMARC;
    ma_drive(m, &ma_dmarc_ops, m->dmarc);
}

void net_mailauth_verdict(struct net_mailauth *m, uint32_t txn)
{
    if (txn != m->txn)
        return;
    hdrfield_end(&m->hf, &m->hf_out);
    buf_reset(&m->hf_out);
    dkim_verify_end(m->dkim);
    arc_verify_end(m->arc);
    m->at_verdict = true;
    /* Each verifier draws its verdict in its step once the content ended:
     * one whose keys all came while the content streamed has not yet. */
    (void)dkim_verify_step(m->dkim);
    (void)arc_verify_step(m->arc);
    ma_dkim_ask(m); /* a header section that ended only now */
    ma_arc_ask(m);
    if (m->stage == MA_DKIM || m->stage == MA_ARC) {
        ma_timer_start(m); /* the keys still owed are temperror (ARC: fail) by then */
        return;
    }
    ma_dmarc_begin(m);
}

static void ma_stage_done(struct net_mailauth *m)
{
    switch (m->stage) {
    case MA_SPF_HELO:
    case MA_SPF_MAILFROM:
        ma_spf_stage_done(m);
        break;
    case MA_DKIM:
    case MA_ARC:
        if (!m->at_verdict)
            log_debug("%s: mailauth: %s keys answered while the content streams",
                      smtp_session_qid(m->s), m->stage == MA_DKIM ? "dkim" : "arc");
        m->stage = MA_IDLE;
        ma_dkim_ask(m);
        ma_arc_ask(m);
        if (m->stage == MA_IDLE && m->at_verdict)
            ma_dmarc_begin(m);
        break;
    case MA_DMARC:
        ma_verdict_done(m);
        break;
    default:
        break;
    }
}

/* ---- life ---- */

void net_mailauth_start(struct net_mailauth *m, uint32_t txn, const char *helo, const char *from)
{
    net_dnsq_cancel(m->dq);
    ev_timer_cancel(m->loop, m->timer);
    m->timer = 0;
    m->ops = NULL;
    m->txn = txn;
    strutil_lcpy(m->helo, helo, sizeof m->helo);
    strutil_lcpy(m->from, from, sizeof m->from);
    m->helo_checked = false;
    m->helo_res = m->mfrom_res = SPF_NONE;
    m->helo_reason[0] = m->mfrom_reason[0] = m->explanation[0] = '\0';
    ma_spf_domain(m);
    hdrfield_free(&m->hf);
    hdrfield_init(&m->hf, ma_on_field, m);
    buf_reset(&m->hf_out);
    dmarc_from_init(&m->fromdom);
    struct dkim_verify_params dp = {.now = (long long)clock_wall()};
    dkim_verify_start(m->dkim, &dp);
    struct arc_verify_params ap = {.now = dp.now};
    arc_verify_start(m->arc, &ap);
    m->dkim_asked = m->arc_asked = m->at_verdict = false;
    if (!m->ip_ok) {
        /* No address to judge (cannot happen on TCP): nothing to say. */
        m->stage = MA_IDLE;
        ma_spf_answer_session(m);
        return;
    }
    /* RFC 7208 §2.3: the HELO identity first, when it is a domain; then
     * MAIL FROM (the same check for <>, done once). */
    if (dnsq_name_ok(m->helo, strlen(m->helo)) && strchr(m->helo, '.')) {
        ma_spf_begin(m, SPF_ID_HELO);
        return;
    }
    ma_spf_begin(m, SPF_ID_MAILFROM);
}

struct net_mailauth *net_mailauth_new(struct ev_loop *loop, const struct config *cfg,
                                      struct dns *dns, struct smtp_session *s, const char *ip)
{
    struct net_mailauth *m = xcalloc(1, sizeof *m);
    m->loop = loop;
    m->cfg = cfg;
    m->s = s;
    m->ip_ok = spf_ip_parse(&m->ip, ip) == 0;
    strutil_lcpy(m->ip_text, ip, sizeof m->ip_text);
    m->dq = net_dnsq_new(loop, dns);
    m->spf = spf_check_new();
    m->dmarc = dmarc_eval_new();
    m->dkim = dkim_verify_new();
    m->arc = arc_verify_new();
    hdrfield_init(&m->hf, ma_on_field, m);
    buf_init(&m->hf_out);
    dmarc_from_init(&m->fromdom);
    return m;
}

void net_mailauth_free(struct net_mailauth *m)
{
    if (m == NULL)
        return;
    net_dnsq_free(m->dq);
    ev_timer_cancel(m->loop, m->timer);
    spf_check_free(m->spf);
    dmarc_eval_free(m->dmarc);
    dkim_verify_free(m->dkim);
    arc_verify_free(m->arc);
    hdrfield_free(&m->hf);
    buf_free(&m->hf_out);
    free(m);
}
