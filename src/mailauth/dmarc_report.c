/* dmarc_report.c: aggregate-report rows and XML (dmarc_report.h). */
#include "mailauth/dmarc_report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/keycount.h"
#include "base/siphash.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mailauth/authres.h"
#include "mailauth/dnsq.h"

#define DMARC_ROW_FIELDS_MIN 21
#define DMARC_ROW_FIELDS_MAX (DMARC_ROW_FIELDS_MIN + 3 * DMARC_REPORT_DKIM_MAX)

static const char *const dmarc_reason_names[] = {"forwarded",    "sampled_out",
                                                 "trusted_forwarder", "mailing_list",
                                                 "local_policy", "other"};
#define DMARC_REASONS (sizeof dmarc_reason_names / sizeof dmarc_reason_names[0])

/* ---- filling ---- */

/* The numeric text of an address, IPv4-mapped IPv6 as IPv4; with
 * `full`, IPv6 in eight uncompressed groups (the form the RFC schema's
 * IPAddress pattern accepts). 0 or -EINVAL. */
static int dmarc_ip_norm(const char *in, char out[IP_TEXT_MAX], bool full)
{
    unsigned char a[16];
    if (inet_pton(AF_INET, in, a) == 1) {
        inet_ntop(AF_INET, a, out, IP_TEXT_MAX);
        return 0;
    }
    if (inet_pton(AF_INET6, in, a) != 1)
        return -EINVAL;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0) {
        inet_ntop(AF_INET, a + 12, out, IP_TEXT_MAX);
        return 0;
    }
    if (!full) {
        inet_ntop(AF_INET6, a, out, IP_TEXT_MAX);
        return 0;
    }
    size_t n = 0;
    for (int g = 0; g < 8; g++)
        n += (size_t)snprintf(out + n, IP_TEXT_MAX - n, g ? ":%x" : "%x",
                              (unsigned)(a[2 * g] << 8 | a[2 * g + 1]));
    return 0;
}

static void dmarc_cpy(char *dst, const char *src, size_t size)
{
    strutil_lcpy(dst, src ? src : "", size);
}

/* A domain of the message's (MAIL FROM's, HELO's, d=): kept when it
 * passes dnsq_name_ok (as the line's reader checks), else "" (an empty
 * label, a name over 253 octets), so that every row filled reads back. Returns whether it was kept. */
static bool dmarc_cpy_domain(char *dst, const char *src, size_t size)
{
    dmarc_cpy(dst, src, size);
    if (dst[0] && !dnsq_name_ok(dst, strlen(dst)))
        dst[0] = '\0';
    return dst[0] != '\0';
}

int dmarc_report_row_fill(struct dmarc_report_row *row, const struct dmarc_domain *d,
                          const struct dmarc_report_msg *m)
{
    memset(row, 0, sizeof *row);
    if (!d->have_record)
        return -EINVAL;
    if (m->source_ip == NULL || dmarc_ip_norm(m->source_ip, row->source_ip, false) < 0)
        return -EINVAL;
    row->time = m->time;
    dmarc_cpy(row->policy_domain, d->policy_domain, sizeof row->policy_domain);
    dmarc_cpy(row->header_from, d->from, sizeof row->header_from);
    dmarc_cpy_domain(row->envelope_from, m->envelope_from, sizeof row->envelope_from);
    dmarc_cpy_domain(row->envelope_to, m->envelope_to, sizeof row->envelope_to);
    strutil_lower(row->envelope_from);
    strutil_lower(row->envelope_to);
    row->disposition = m->applied;
    row->dkim_pass = d->dkim_aligned;
    row->spf_pass = d->spf_aligned;
    row->reasons = m->reasons;
    if (d->sampled_out)
        row->reasons |= DMARC_REASON_SAMPLED_OUT;
    if (m->applied != d->disposition && m->reasons == 0)
        row->reasons |= DMARC_REASON_LOCAL_POLICY;
    row->p = d->rec.p;
    row->sp = d->rec.sp;
    row->pct = d->rec.pct;
    row->adkim = d->rec.adkim;
    row->aspf = d->rec.aspf;
    row->fo = d->rec.fo;
    row->nrua = d->rec.nrua;
    memcpy(row->rua, d->rec.rua, sizeof row->rua);
    row->spf_helo = m->spf_helo;
    row->spf_result = m->spf_result;
    dmarc_cpy_domain(row->spf_domain, m->spf_domain, sizeof row->spf_domain);
    for (size_t i = 0; i < m->ndkim && row->ndkim < DMARC_REPORT_DKIM_MAX; i++) {
        struct dmarc_report_dkim *k = &row->dkim[row->ndkim];
        if (!dmarc_cpy_domain(k->domain, m->dkim[i].domain, sizeof k->domain))
            continue; /* a d= that is no domain: nothing to report it under */
        k->result = m->dkim[i].result;
        dmarc_cpy(k->selector, m->dkim[i].selector, sizeof k->selector);
        row->ndkim++;
    }
    return 0;
}

/* ---- the line ---- */

static void dmarc_field(struct buf *out, const char *s, bool first)
{
    if (!first)
        buf_putc(out, '\t');
    if (*s == '\0' || strcmp(s, "-") == 0) {
        buf_puts(out, *s ? "%2D" : "-");
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x21 || c == 0x7f || c == '%')
            buf_printf(out, "%%%02X", c);
        else
            buf_putc(out, (char)c);
    }
}

static void dmarc_reasons_text(unsigned reasons, struct buf *out)
{
    for (size_t i = 0; i < DMARC_REASONS; i++) {
        if (!(reasons & (1u << i)))
            continue;
        if (out->len)
            buf_putc(out, ',');
        buf_puts(out, dmarc_reason_names[i]);
    }
}

/* The row's line without its LF. Without `all`, the time and the
 * published policy are written as fixed values (0, p=none sp=none pct=0
 * adkim=r aspf=r fo=0, no rua): what is left tells rows apart in a
 * report, and still reads back as a row (the aggregation's key). */
static void dmarc_row_fields(const struct dmarc_report_row *r, struct buf *out, bool all)
{
    char num[32];
    struct buf tmp = BUF_INIT;
    buf_puts(out, "dmarc1");
    snprintf(num, sizeof num, "%lld", all ? r->time : 0);
    dmarc_field(out, num, false);
    dmarc_field(out, r->source_ip, false);
    dmarc_field(out, r->policy_domain, false);
    dmarc_field(out, r->header_from, false);
    dmarc_field(out, r->envelope_from, false);
    dmarc_field(out, r->envelope_to, false);
    dmarc_field(out, dmarc_policy_name(r->disposition), false);
    dmarc_field(out, r->dkim_pass ? "pass" : "fail", false);
    dmarc_field(out, r->spf_pass ? "pass" : "fail", false);
    dmarc_reasons_text(r->reasons, &tmp);
    dmarc_field(out, tmp.data ? tmp.data : "", false);
    if (all) {
        char fo[8];
        dmarc_field(out, dmarc_policy_name(r->p), false);
        dmarc_field(out, dmarc_policy_name(r->sp), false);
        snprintf(num, sizeof num, "%u", r->pct);
        dmarc_field(out, num, false);
        dmarc_field(out, dmarc_align_name(r->adkim), false);
        dmarc_field(out, dmarc_align_name(r->aspf), false);
        dmarc_record_fo_text(r->fo, fo);
        dmarc_field(out, fo, false);
        buf_reset(&tmp);
        for (size_t i = 0; i < r->nrua; i++) {
            if (i)
                buf_putc(&tmp, ',');
            buf_puts(&tmp, r->rua[i].uri);
            if (r->rua[i].max_bytes)
                buf_printf(&tmp, "!%llu", (unsigned long long)r->rua[i].max_bytes);
        }
        dmarc_field(out, tmp.data ? tmp.data : "", false);
    } else {
        buf_puts(out, "\tnone\tnone\t0\tr\tr\t0\t-");
    }
    dmarc_field(out, r->spf_helo ? "helo" : "mfrom", false);
    dmarc_field(out, spf_result_name(r->spf_result), false);
    dmarc_field(out, r->spf_domain, false);
    for (size_t i = 0; i < r->ndkim && i < DMARC_REPORT_DKIM_MAX; i++) {
        dmarc_field(out, dkim_result_name(r->dkim[i].result), false);
        dmarc_field(out, r->dkim[i].domain, false);
        dmarc_field(out, r->dkim[i].selector, false);
    }
    buf_free(&tmp);
}

void dmarc_report_row_format(const struct dmarc_report_row *row, struct buf *out)
{
    dmarc_row_fields(row, out, true);
    buf_putc(out, '\n');
}

static int dmarc_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -EINVAL;
}

/* A decimal number of only digits, at most max: 0 or -EINVAL. */
static int dmarc_number(const char *s, unsigned long long max, unsigned long long *out)
{
    if (strutil_parse_u64(s, out) < 0 || *out > max || (s[0] == '0' && s[1]))
        return -EINVAL;
    return 0;
}

/* Decodes field f[0..n) into out (size bytes). 0 or -EINVAL. */
static int dmarc_unfield(const char *f, size_t n, char *out, size_t size)
{
    if (n == 1 && f[0] == '-') {
        out[0] = '\0';
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c < 0x21 || c == 0x7f)
            return -EINVAL;
        if (c == '%') {
            int hi = i + 2 < n ? dmarc_hex(f[i + 1]) : -EINVAL;
            int lo = i + 2 < n ? dmarc_hex(f[i + 2]) : -EINVAL;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -EINVAL; /* %00 would cut the field */
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (k + 1 >= size)
            return -EINVAL;
        out[k++] = (char)c;
    }
    out[k] = '\0';
    return 0;
}

static int dmarc_lookup(const char *s, const char *const *names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -ENOENT;
}

static int dmarc_parse_policy_name(const char *s, enum dmarc_policy *p)
{
    static const char *const names[] = {"none", "quarantine", "reject"};
    int v = dmarc_lookup(s, names, 3);
    if (v < 0)
        return -EINVAL;
    *p = (enum dmarc_policy)v;
    return 0;
}

static int dmarc_parse_passfail(const char *s, bool *pass)
{
    if (strcmp(s, "pass") != 0 && strcmp(s, "fail") != 0)
        return -EINVAL;
    *pass = s[0] == 'p';
    return 0;
}

static int dmarc_parse_align_name(const char *s, enum dmarc_align *a)
{
    if (strcmp(s, "r") != 0 && strcmp(s, "s") != 0)
        return -EINVAL;
    *a = s[0] == 's' ? DMARC_ALIGN_STRICT : DMARC_ALIGN_RELAXED;
    return 0;
}

/* A domain field: empty (when allowed) or a name DNS can hold. */
static int dmarc_check_domain(const char *s, bool empty_ok)
{
    if (*s == '\0')
        return empty_ok ? 0 : -EINVAL;
    return dnsq_name_ok(s, strlen(s)) ? 0 : -EINVAL;
}

/* The reasons list. */
static int dmarc_parse_reasons(char *s, unsigned *out)
{
    *out = 0;
    if (*s == '\0')
        return 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = dmarc_lookup(t, dmarc_reason_names, DMARC_REASONS);
        if (v < 0)
            return -EINVAL;
        *out |= 1u << v;
    }
    return 0;
}

/* The rua list, through the record parser's URI rules. */
static int dmarc_parse_rua(const char *s, struct dmarc_report_row *row)
{
    row->nrua = 0;
    if (*s == '\0')
        return 0;
    char rec[DMARC_URIS_MAX * DMARC_URI_MAX + 64];
    int n = snprintf(rec, sizeof rec, "v=DMARC1; p=none; rua=%s", s);
    if (n < 0 || (size_t)n >= sizeof rec)
        return -EINVAL;
    struct dmarc_record r;
    if (dmarc_record_parse(&r, rec, (size_t)n, NULL) < 0 || r.nrua == 0)
        return -EINVAL;
    row->nrua = r.nrua;
    memcpy(row->rua, r.rua, sizeof row->rua);
    return 0;
}

/* The fields of a line, decoded. */
struct dmarc_fields {
    char f[DMARC_ROW_FIELDS_MAX][DMARC_URIS_MAX * DMARC_URI_MAX];
    size_t n;
};

static int dmarc_fo_parse(const char *s, unsigned *fo)
{
    char rec[64];
    int n = snprintf(rec, sizeof rec, "v=DMARC1; p=none; fo=%s", s);
    struct dmarc_record r;
    if (n < 0 || (size_t)n >= sizeof rec || dmarc_record_parse(&r, rec, (size_t)n, NULL) < 0)
        return -EINVAL;
    char back[8];
    dmarc_record_fo_text(r.fo, back);
    if (strcmp(back, s) != 0)
        return -EINVAL; /* an invalid fo read as the default */
    *fo = r.fo;
    return 0;
}

static int dmarc_row_decode(struct dmarc_report_row *row, struct dmarc_fields *F)
{
    char (*f)[sizeof F->f[0]] = F->f;
    if (strcmp(f[0], "dmarc1") != 0)
        return -EINVAL;
    unsigned long long x;
    if (dmarc_number(f[1], (unsigned long long)LLONG_MAX, &x) < 0)
        return -EINVAL;
    row->time = (long long)x;
    if (strlen(f[2]) >= IP_TEXT_MAX || dmarc_ip_norm(f[2], row->source_ip, false) < 0)
        return -EINVAL;
    char *const domains[] = {row->policy_domain, row->header_from, row->envelope_from,
                             row->envelope_to};
    for (int i = 0; i < 4; i++) {
        if (strlen(f[3 + i]) >= DNS_NAME_MAX || dmarc_check_domain(f[3 + i], i >= 2) < 0)
            return -EINVAL;
        memcpy(domains[i], f[3 + i], strlen(f[3 + i]) + 1);
    }
    if (dmarc_parse_policy_name(f[7], &row->disposition) < 0 ||
        dmarc_parse_passfail(f[8], &row->dkim_pass) < 0 ||
        dmarc_parse_passfail(f[9], &row->spf_pass) < 0 ||
        dmarc_parse_reasons(f[10], &row->reasons) < 0 ||
        dmarc_parse_policy_name(f[11], &row->p) < 0 ||
        dmarc_parse_policy_name(f[12], &row->sp) < 0)
        return -EINVAL;
    if (dmarc_number(f[13], 100, &x) < 0)
        return -EINVAL;
    row->pct = (unsigned)x;
    if (dmarc_parse_align_name(f[14], &row->adkim) < 0 ||
        dmarc_parse_align_name(f[15], &row->aspf) < 0 || dmarc_fo_parse(f[16], &row->fo) < 0 ||
        dmarc_parse_rua(f[17], row) < 0)
        return -EINVAL;
    if (strcmp(f[18], "helo") != 0 && strcmp(f[18], "mfrom") != 0)
        return -EINVAL;
    row->spf_helo = f[18][0] == 'h';
    static const char *const spf_names[] = {"none",     "neutral",   "pass",     "fail",
                                            "softfail", "temperror", "permerror"};
    int v = dmarc_lookup(f[19], spf_names, 7);
    if (v < 0 || strlen(f[20]) >= DNS_NAME_MAX || dmarc_check_domain(f[20], true) < 0)
        return -EINVAL;
    row->spf_result = (enum spf_result)v;
    memcpy(row->spf_domain, f[20], strlen(f[20]) + 1);
    static const char *const dkim_names[] = {"none",    "pass",      "fail",     "policy",
                                             "neutral", "temperror", "permerror"};
    for (size_t i = DMARC_ROW_FIELDS_MIN; i < F->n; i += 3) {
        struct dmarc_report_dkim *k = &row->dkim[row->ndkim++];
        v = dmarc_lookup(f[i], dkim_names, 7);
        if (v < 0 || strlen(f[i + 1]) >= DNS_NAME_MAX || dmarc_check_domain(f[i + 1], false) < 0 ||
            strlen(f[i + 2]) >= DNS_NAME_MAX)
            return -EINVAL;
        k->result = (enum dkim_result)v;
        memcpy(k->domain, f[i + 1], strlen(f[i + 1]) + 1);
        memcpy(k->selector, f[i + 2], strlen(f[i + 2]) + 1);
    }
    return 0;
}

int dmarc_report_row_parse(struct dmarc_report_row *row, const char *line, size_t n)
{
    memset(row, 0, sizeof *row);
    if (n > 0 && line[n - 1] == '\n')
        n--;
    if (n == 0 || n >= DMARC_REPORT_LINE_MAX || memchr(line, '\n', n))
        return -EINVAL;
    struct dmarc_fields *F = xmalloc(sizeof *F);
    F->n = 0;
    int rc = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        if (i < n && line[i] != '\t')
            continue;
        if (F->n == DMARC_ROW_FIELDS_MAX || i == start)
            rc = -EINVAL;
        else
            rc = dmarc_unfield(line + start, i - start, F->f[F->n++], sizeof F->f[0]);
        start = i + 1;
    }
    if (rc == 0 && (F->n < DMARC_ROW_FIELDS_MIN || (F->n - DMARC_ROW_FIELDS_MIN) % 3 != 0))
        rc = -EINVAL;
    if (rc == 0)
        rc = dmarc_row_decode(row, F);
    free(F);
    if (rc < 0)
        memset(row, 0, sizeof *row);
    return rc;
}

/* ---- the XML ---- */

/* An ASCII octet of XML 1.0 character data: & < > " ' as entities,
 * characters XML cannot hold (controls but TAB, LF, CR) as '?'. */
static void dmarc_xml_ascii(struct buf *out, unsigned char c, const void *arg)
{
    (void)arg;
    static const char *const ent[] = {['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
                                      ['"'] = "&quot;", ['\''] = "&apos;"};
    if (c < sizeof ent / sizeof ent[0] && ent[c])
        buf_puts(out, ent[c]);
    else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
        buf_putc(out, '?');
    else
        buf_putc(out, (char)c);
}

static void dmarc_xml_text(struct buf *out, const char *s)
{
    authres_text(out, s, strlen(s), dmarc_xml_ascii, NULL);
}

static void dmarc_xml_elem(struct buf *out, int indent, const char *name, const char *text)
{
    buf_printf(out, "%*s<%s>", indent, "", name);
    dmarc_xml_text(out, text);
    buf_printf(out, "</%s>\n", name);
}

static void dmarc_xml_open(struct buf *out, int indent, const char *name)
{
    buf_printf(out, "%*s<%s>\n", indent, "", name);
}

static void dmarc_xml_close(struct buf *out, int indent, const char *name)
{
    buf_printf(out, "%*s</%s>\n", indent, "", name);
}

static void dmarc_xml_record(struct buf *out, const struct dmarc_report_row *r, size_t count)
{
    char ip[IP_TEXT_MAX], num[32];
    if (dmarc_ip_norm(r->source_ip, ip, true) < 0)
        memcpy(ip, "0.0.0.0", 8); /* cannot happen: rows are checked */
    dmarc_xml_open(out, 2, "record");
    dmarc_xml_open(out, 4, "row");
    dmarc_xml_elem(out, 6, "source_ip", ip);
    snprintf(num, sizeof num, "%zu", count);
    dmarc_xml_elem(out, 6, "count", num);
    dmarc_xml_open(out, 6, "policy_evaluated");
    dmarc_xml_elem(out, 8, "disposition", dmarc_policy_name(r->disposition));
    dmarc_xml_elem(out, 8, "dkim", r->dkim_pass ? "pass" : "fail");
    dmarc_xml_elem(out, 8, "spf", r->spf_pass ? "pass" : "fail");
    for (size_t i = 0; i < DMARC_REASONS; i++) {
        if (!(r->reasons & (1u << i)))
            continue;
        dmarc_xml_open(out, 8, "reason");
        dmarc_xml_elem(out, 10, "type", dmarc_reason_names[i]);
        dmarc_xml_close(out, 8, "reason");
    }
    dmarc_xml_close(out, 6, "policy_evaluated");
    dmarc_xml_close(out, 4, "row");
    dmarc_xml_open(out, 4, "identifiers");
    if (r->envelope_to[0])
        dmarc_xml_elem(out, 6, "envelope_to", r->envelope_to);
    dmarc_xml_elem(out, 6, "envelope_from", r->envelope_from);
    dmarc_xml_elem(out, 6, "header_from", r->header_from);
    dmarc_xml_close(out, 4, "identifiers");
    dmarc_xml_open(out, 4, "auth_results");
    for (size_t i = 0; i < r->ndkim; i++) {
        dmarc_xml_open(out, 6, "dkim");
        dmarc_xml_elem(out, 8, "domain", r->dkim[i].domain);
        if (r->dkim[i].selector[0])
            dmarc_xml_elem(out, 8, "selector", r->dkim[i].selector);
        dmarc_xml_elem(out, 8, "result", dkim_result_name(r->dkim[i].result));
        dmarc_xml_close(out, 6, "dkim");
    }
    dmarc_xml_open(out, 6, "spf");
    dmarc_xml_elem(out, 8, "domain", r->spf_domain);
    dmarc_xml_elem(out, 8, "scope", r->spf_helo ? "helo" : "mfrom");
    dmarc_xml_elem(out, 8, "result", spf_result_name(r->spf_result));
    dmarc_xml_close(out, 6, "spf");
    dmarc_xml_close(out, 4, "auth_results");
    dmarc_xml_close(out, 2, "record");
}


/* ---- aggregation ---- */

/* One policy domain's report in the making. */
struct dmarc_agg_domain {
    struct dmarc_report_row newest; /* policy_published, rua */
    struct keycount records;        /* row key (dmarc_row_fields) -> messages */
    uint64_t messages;
};

struct dmarc_report_agg {
    struct dmarc_agg_domain **dom; /* owned, in the order first seen */
    size_t n, cap;
    size_t *slot;                  /* policy domain hash table: index + 1, 0 = free */
    size_t nslots;                 /* 0 or a power of two, over 2 n */
    struct siphash_key seed;       /* the names come from the network */
    size_t records;                /* distinct records over all domains */
};

struct dmarc_report_agg *dmarc_report_agg_new(void)
{
    struct dmarc_report_agg *a = xcalloc(1, sizeof *a);
    siphash_key_random(&a->seed);
    return a;
}

void dmarc_report_agg_free(struct dmarc_report_agg *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        keycount_free(&a->dom[i]->records);
        free(a->dom[i]);
    }
    free(a->dom);
    free(a->slot);
    free(a);
}

/* The table slot of `name`: where it is, or the free slot it would take. */
static size_t dmarc_agg_find(const struct dmarc_report_agg *a, const char *name)
{
    size_t mask = a->nslots - 1;
    size_t i = (size_t)siphash24(&a->seed, name, strlen(name)) & mask;
    while (a->slot[i] && strcmp(a->dom[a->slot[i] - 1]->newest.policy_domain, name) != 0)
        i = (i + 1) & mask;
    return i;
}

static void dmarc_agg_grow(struct dmarc_report_agg *a)
{
    free(a->slot);
    a->nslots = a->nslots ? a->nslots * 2 : 64;
    a->slot = xcalloc(a->nslots, sizeof *a->slot);
    for (size_t i = 0; i < a->n; i++)
        a->slot[dmarc_agg_find(a, a->dom[i]->newest.policy_domain)] = i + 1;
}

int dmarc_report_agg_add(struct dmarc_report_agg *a, const struct dmarc_report_row *row)
{
    if (a->nslots == 0)
        dmarc_agg_grow(a);
    size_t s = dmarc_agg_find(a, row->policy_domain);
    struct dmarc_agg_domain *d;
    if (a->slot[s]) {
        d = a->dom[a->slot[s] - 1];
    } else {
        if (a->n == DMARC_REPORT_DOMAINS_MAX || a->records == DMARC_REPORT_RECORDS_MAX)
            return -ENOSPC;
        d = xcalloc(1, sizeof *d);
        keycount_init(&d->records);
        d->newest = *row;
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 16;
            a->dom = xrealloc(a->dom, a->cap * sizeof *a->dom);
        }
        a->dom[a->n++] = d;
        a->slot[s] = a->n;
        if (2 * a->n > a->nslots)
            dmarc_agg_grow(a);
    }
    struct buf key = BUF_INIT;
    dmarc_row_fields(row, &key, false);
    int rc = 0;
    if (keycount_get(&d->records, key.data) == 0 && a->records == DMARC_REPORT_RECORDS_MAX) {
        rc = -ENOSPC;
    } else {
        if (keycount_add(&d->records, key.data) == 1)
            a->records++;
        d->messages++;
        if (row->time >= d->newest.time)
            d->newest = *row;
    }
    buf_free(&key);
    return rc;
}

int dmarc_report_agg_add_line(struct dmarc_report_agg *a, const char *line, size_t n,
                              long long begin, long long end)
{
    struct dmarc_report_row *row = xmalloc(sizeof *row);
    int rc = dmarc_report_row_parse(row, line, n);
    if (rc == 0 && (row->time < begin || row->time >= end))
        rc = -ERANGE;
    if (rc == 0)
        rc = dmarc_report_agg_add(a, row);
    free(row);
    return rc;
}

void dmarc_report_reader_init(struct dmarc_report_reader *r, struct dmarc_report_agg *a,
                              long long begin, long long end)
{
    memset(r, 0, sizeof *r);
    r->agg = a;
    r->begin = begin;
    r->end = end;
    buf_init(&r->line);
}

static void dmarc_reader_line(struct dmarc_report_reader *r)
{
    int rc = r->overlong ? -EINVAL
                         : dmarc_report_agg_add_line(r->agg, r->line.data ? r->line.data : "",
                                                     r->line.len, r->begin, r->end);
    if (rc == 0)
        r->rows++;
    else if (rc == -ERANGE)
        r->outside++;
    else if (rc == -ENOSPC)
        r->full++;
    else
        r->malformed++;
    buf_reset(&r->line);
    r->overlong = false;
}

void dmarc_report_reader_feed(struct dmarc_report_reader *r, const char *p, size_t n)
{
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t seg = lf ? (size_t)(lf - p) : n;
        if (!r->overlong && r->line.len + seg >= DMARC_REPORT_LINE_MAX) {
            r->overlong = true; /* no row is this long: not kept */
            buf_reset(&r->line);
        }
        if (!r->overlong)
            buf_append(&r->line, p, seg);
        if (lf == NULL)
            return;
        dmarc_reader_line(r);
        p += seg + 1;
        n -= seg + 1;
    }
}

void dmarc_report_reader_end(struct dmarc_report_reader *r)
{
    if (r->line.len || r->overlong) {
        r->overlong = true; /* torn: what was written of it is not trusted */
        dmarc_reader_line(r);
    }
}

void dmarc_report_reader_free(struct dmarc_report_reader *r)
{
    buf_free(&r->line);
}

size_t dmarc_report_agg_count(const struct dmarc_report_agg *a)
{
    return a->n;
}

const struct dmarc_report_row *dmarc_report_agg_policy(const struct dmarc_report_agg *a,
                                                       size_t i)
{
    return i < a->n ? &a->dom[i]->newest : NULL;
}

uint64_t dmarc_report_agg_messages(const struct dmarc_report_agg *a, size_t i)
{
    return i < a->n ? a->dom[i]->messages : 0;
}

size_t dmarc_report_agg_records(const struct dmarc_report_agg *a, size_t i)
{
    return i < a->n ? keycount_size(&a->dom[i]->records) : 0;
}

static int dmarc_key_cmp(const void *a, const void *b)
{
    const struct keycount_slot *const *x = a, *const *y = b;
    return strcmp((*x)->key, (*y)->key);
}

int dmarc_report_agg_xml(const struct dmarc_report_agg *a, size_t i,
                         const struct dmarc_report_meta *m, struct buf *out)
{
    if (i >= a->n || m->org_name == NULL || m->email == NULL || m->report_id == NULL)
        return -EINVAL;
    const struct dmarc_agg_domain *d = a->dom[i];
    const struct dmarc_report_row *pub = &d->newest;
    /* The records in the order of their keys: the same report for the
     * same rows, whatever order they came in. */
    size_t nk = 0;
    const struct keycount_slot **keys =
        xcalloc(keycount_size(&d->records) + 1, sizeof *keys);
    for (size_t s = 0; s < d->records.cap; s++)
        if (d->records.slots[s].key)
            keys[nk++] = &d->records.slots[s];
    qsort(keys, nk, sizeof *keys, dmarc_key_cmp);
    struct dmarc_report_row *row = xmalloc(sizeof *row);
    struct buf x = BUF_INIT;
    char num[32], fo[8];
    buf_puts(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
    dmarc_xml_elem(&x, 2, "version", "1.0");
    dmarc_xml_open(&x, 2, "report_metadata");
    dmarc_xml_elem(&x, 4, "org_name", m->org_name);
    dmarc_xml_elem(&x, 4, "email", m->email);
    if (m->extra_contact_info)
        dmarc_xml_elem(&x, 4, "extra_contact_info", m->extra_contact_info);
    dmarc_xml_elem(&x, 4, "report_id", m->report_id);
    dmarc_xml_open(&x, 4, "date_range");
    snprintf(num, sizeof num, "%lld", m->begin);
    dmarc_xml_elem(&x, 6, "begin", num);
    snprintf(num, sizeof num, "%lld", m->end);
    dmarc_xml_elem(&x, 6, "end", num);
    dmarc_xml_close(&x, 4, "date_range");
    dmarc_xml_close(&x, 2, "report_metadata");
    dmarc_xml_open(&x, 2, "policy_published");
    dmarc_xml_elem(&x, 4, "domain", pub->policy_domain);
    dmarc_xml_elem(&x, 4, "adkim", dmarc_align_name(pub->adkim));
    dmarc_xml_elem(&x, 4, "aspf", dmarc_align_name(pub->aspf));
    dmarc_xml_elem(&x, 4, "p", dmarc_policy_name(pub->p));
    dmarc_xml_elem(&x, 4, "sp", dmarc_policy_name(pub->sp));
    snprintf(num, sizeof num, "%u", pub->pct);
    dmarc_xml_elem(&x, 4, "pct", num);
    dmarc_record_fo_text(pub->fo, fo);
    dmarc_xml_elem(&x, 4, "fo", fo);
    dmarc_xml_close(&x, 2, "policy_published");
    int rc = 0;
    for (size_t k = 0; k < nk && rc == 0; k++) {
        /* Cannot fail: the keys are lines this file wrote. */
        rc = dmarc_report_row_parse(row, keys[k]->key, strlen(keys[k]->key)) < 0 ? -EBADMSG : 0;
        if (rc == 0)
            dmarc_xml_record(&x, row, keys[k]->count);
    }
    buf_puts(&x, "</feedback>\n");
    if (rc == 0)
        buf_append(out, x.data, x.len);
    buf_free(&x);
    free(row);
    free(keys);
    return rc;
}

int dmarc_report_xml(const struct dmarc_report_meta *m, const struct dmarc_report_row *rows,
                     size_t n, struct buf *out)
{
    if (n == 0 || m->org_name == NULL || m->email == NULL || m->report_id == NULL)
        return -EINVAL;
    for (size_t i = 1; i < n; i++)
        if (strcmp(rows[i].policy_domain, rows[0].policy_domain) != 0)
            return -EINVAL;
    struct dmarc_report_agg *a = dmarc_report_agg_new();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = dmarc_report_agg_add(a, &rows[i]);
    if (rc == 0)
        rc = dmarc_report_agg_xml(a, 0, m, out);
    dmarc_report_agg_free(a);
    return rc;
}
