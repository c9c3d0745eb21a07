/* libFuzzer target: the whole SPF evaluator (mailauth/spf) with DNS
 * answers the fuzzer chooses. The input:
 *
 *   octet 0     bit 0: IPv6 client, bit 1: HELO identity, bit 2: answer
 *               each batch last question first
 *   octets 1-16 the client's address (the first 4 for IPv4)
 *   a line      MAIL FROM, then a line HELO
 *   the rest    answers, one per question as asked: an octet whose low
 *               2 bits are the status (OK, NODATA, NXDOMAIN, TEMPFAIL) and,
 *               for OK, a record count (octet % 13) and the records:
 *               TXT a line (bit 2 of the status octet splits it in two
 *               strings), A/AAAA 4/16 octets (bit 3: the client's own
 *               address), MX a preference octet and a line, PTR a line.
 *               When the input runs out every answer is NXDOMAIN.
 *
 * Every answer is built in memory freed right after it is fed, so an
 * evaluator that kept a pointer into one is an ASan report. Checks that
 * the check ends, within the lookup bound the limits promise, with a
 * result in range, questions that are valid names, an explanation only
 * for a fail, and a printable reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mailauth/spf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 TXT, 10 terms of at most 11 questions, the PTR names (11), the exp
 * TXT: the bound of spf.h's "about 130". */
#define FUZZ_LOOKUPS_MAX 130

struct fuzz_in {
    const uint8_t *p;
    size_t n, i;
};

static int fuzz_byte(struct fuzz_in *in)
{
    return in->i < in->n ? in->p[in->i++] : -1;
}

/* The next line as a malloc'd string (without its '\n'). */
static char *fuzz_line(struct fuzz_in *in, size_t *len)
{
    size_t start = in->i;
    while (in->i < in->n && in->p[in->i] != '\n')
        in->i++;
    size_t l = in->i - start;
    if (in->i < in->n)
        in->i++;
    char *s = malloc(l + 1);
    memcpy(s, in->p + start, l);
    s[l] = '\0';
    if (len)
        *len = l;
    return s;
}

struct fuzz_answer {
    struct dnsq_answer a;
    struct dnsq_rr *rrs;
    struct dnsq_str *strs;
    char **bufs;
    size_t nbufs;
};

static void fuzz_keep(struct fuzz_answer *fa, char *p)
{
    fa->bufs[fa->nbufs++] = p;
}

static void fuzz_build(struct fuzz_in *in, const struct spf_ip *ip,
                       const struct dnsq_question *q, struct fuzz_answer *fa)
{
    memset(fa, 0, sizeof *fa);
    int b = fuzz_byte(in);
    if (b < 0) {
        fa->a.status = DNSQ_NXDOMAIN;
        return;
    }
    static const enum dnsq_status st[] = {DNSQ_OK, DNSQ_NODATA, DNSQ_NXDOMAIN, DNSQ_TEMPFAIL};
    fa->a.status = st[b & 3];
    if (fa->a.status != DNSQ_OK)
        return;
    int cnt = fuzz_byte(in);
    size_t n = cnt < 0 ? 0 : (size_t)cnt % 13;
    fa->rrs = calloc(n ? n : 1, sizeof *fa->rrs);
    fa->strs = calloc(2 * (n ? n : 1), sizeof *fa->strs);
    fa->bufs = calloc(n ? n : 1, sizeof *fa->bufs);
    for (size_t k = 0; k < n; k++) {
        struct dnsq_rr *rr = &fa->rrs[k];
        size_t len;
        switch (q->type) {
        case DNSQ_TXT: {
            char *s = fuzz_line(in, &len);
            fuzz_keep(fa, s);
            struct dnsq_str *str = &fa->strs[2 * k];
            size_t cut = (b & 4) ? len / 2 : len;
            if (cut > 255)
                cut = 255;
            size_t rest = len - cut > 255 ? 255 : len - cut;
            str[0].p = (const unsigned char *)s;
            str[0].len = cut;
            str[1].p = (const unsigned char *)s + cut;
            str[1].len = rest;
            rr->u.txt.strs = str;
            rr->u.txt.n = rest ? 2 : 1;
            break;
        }
        case DNSQ_A:
        case DNSQ_AAAA: {
            size_t w = q->type == DNSQ_A ? 4 : 16;
            if (b & 8) {
                memcpy(rr->u.addr, ip->addr, w);
            } else {
                for (size_t j = 0; j < w; j++) {
                    int x = fuzz_byte(in);
                    rr->u.addr[j] = (unsigned char)(x < 0 ? 0 : x);
                }
            }
            break;
        }
        case DNSQ_MX: {
            int pref = fuzz_byte(in);
            rr->u.mx.pref = pref < 0 ? 0 : (unsigned)pref;
            char *s = fuzz_line(in, NULL);
            fuzz_keep(fa, s);
            rr->u.mx.name = s;
            break;
        }
        case DNSQ_PTR: {
            char *s = fuzz_line(in, NULL);
            fuzz_keep(fa, s);
            rr->u.ptr = s;
            break;
        }
        }
    }
    fa->a.count = n;
    fa->a.rrs = fa->rrs;
}

static void fuzz_free(struct fuzz_answer *fa)
{
    for (size_t i = 0; i < fa->nbufs; i++)
        free(fa->bufs[i]);
    free(fa->bufs);
    free(fa->strs);
    free(fa->rrs);
}

static struct spf_check *check;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 17)
        return 0;
    if (check == NULL)
        check = spf_check_new(); /* reused: as a session would */
    struct fuzz_in in = {data, size, 17};
    int flags = data[0];
    struct spf_params p = {.identity = (flags & 2) ? SPF_ID_HELO : SPF_ID_MAILFROM,
                           .receiver = "mx.fuzz.test",
                           .now = 1};
    p.ip.family = (flags & 1) ? AF_INET6 : AF_INET;
    memcpy(p.ip.addr, data + 1, 16);
    if (p.ip.family == AF_INET)
        memset(p.ip.addr + 4, 0, 12);
    char *mf = fuzz_line(&in, NULL);
    char *helo = fuzz_line(&in, NULL);
    p.mail_from = mf;
    p.helo = helo;
    spf_check_start(check, &p);
    struct spf_ip ip = p.ip;
    /* The evaluator sees a mapped address as IPv4; so do the answers. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (ip.family == AF_INET6 && memcmp(ip.addr, mapped, 12) == 0)
        memmove(ip.addr, ip.addr + 12, 4);

    int batches = 0;
    while (spf_check_step(check) == SPF_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = spf_check_questions(check, &q);
        if (n == 0 || n > DNSQ_BATCH_MAX || ++batches > FUZZ_LOOKUPS_MAX)
            abort();
        for (size_t j = 0; j < n; j++) {
            size_t k = (flags & 4) ? n - 1 - j : j;
            if (!dnsq_name_ok(q[k].name, strlen(q[k].name)))
                abort();
            if (q[k].type != DNSQ_TXT && q[k].type != DNSQ_A && q[k].type != DNSQ_AAAA &&
                q[k].type != DNSQ_MX && q[k].type != DNSQ_PTR)
                abort();
            struct fuzz_answer fa;
            fuzz_build(&in, &ip, &q[k], &fa);
            if (spf_check_answer(check, k, &fa.a) != 0)
                abort();
            fuzz_free(&fa);
        }
        if (spf_check_lookups(check) > FUZZ_LOOKUPS_MAX)
            abort();
    }
    enum spf_result r = spf_check_result(check);
    if (r > SPF_PERMERROR || spf_check_lookups(check) > FUZZ_LOOKUPS_MAX)
        abort();
    if (spf_check_explanation(check) && r != SPF_FAIL)
        abort();
    for (const char *s = spf_check_reason(check); *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            abort();
    if ((spf_check_limits(check) & ~0xfu) != 0)
        abort();
    free(mf);
    free(helo);
    return 0;
}
