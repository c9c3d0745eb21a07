/* dmarc_runner: drives tern's DMARC evaluator (mailauth/dmarc), the
 * Authentication-Results builder (mailauth/authres) and the aggregate
 * report (mailauth/dmarc_report) from lines on stdin, for the
 * cross-checks in tests/dmarc/ (python3-authheaders, python3-authres,
 * xmllint with the RFC 7489 schema). DNS data is an in-memory zone
 * (tests/unit/dnsq_zone.h).
 *
 *   zone NAME TXT [STRING...]   one TXT RR
 *   zone NAME TIMEOUT           TXT questions for NAME time out
 *   case ID IP MAILFROM HELO FROM SPF SAMPLE [DKIM-RESULT D S]...
 *                               evaluate; FROM is a From field body, SPF
 *                               the MAIL FROM check's result; prints
 *                               "ID RESULT POLICY DISPOSITION HEADER-FROM
 *                               POLICY-DOMAIN" and keeps a report row
 *                               per From domain with a record
 *   end                         the zone empties
 *   reports DIR                 writes DIR/<policy domain>.xml from the
 *                               rows kept (each through its line format)
 *   ar AUTHSERV-ID              starts an Authentication-Results field
 *   spf RESULT mailfrom|helo IDENTITY REASON
 *   dkim RESULT D I S A B REASON
 *   dmarc RESULT HEADER-FROM POLICY REASON
 *   arc RESULT REMOTE-IP OLDEST-PASS REASON
 *   build ID                    prints "ID FIELD" (the whole field)
 *
 * Fields are separated by one space; in a field '\', '"' and octets
 * outside 0x21-0x7e are written \xHH, "" is the empty string and "-"
 * means absent. Output fields are escaped the same way. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "dnsq_zone.h"
#include "mailauth/authres.h"
#include "mailauth/dmarc.h"
#include "mailauth/dmarc_report.h"

#define RUNNER_FIELDS 64
#define RUNNER_ROWS 4096

static int runner_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes field f in place; returns its length or -1. */
static long runner_field(char *f)
{
    if (strcmp(f, "\"\"") == 0) {
        f[0] = '\0';
        return 0;
    }
    char *w = f;
    for (char *r = f; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
        } else if (r[1] == 'x' && runner_hex(r[2]) >= 0 && runner_hex(r[3]) >= 0) {
            *w++ = (char)(runner_hex(r[2]) << 4 | runner_hex(r[3]));
            r += 3;
        } else {
            return -1;
        }
    }
    *w = '\0';
    return w - f;
}

static void runner_out(const char *s, size_t n)
{
    if (n == 0)
        fputs("\"\"", stdout);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '\\' && c != '"')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

static const char *opt(const char *f)
{
    return strcmp(f, "-") == 0 ? NULL : f;
}

static int runner_name(const char *s, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

static const char *const spf_names[] = {"none",     "neutral",   "pass",     "fail",
                                        "softfail", "temperror", "permerror"};
static const char *const dkim_names[] = {"none",    "pass",      "fail",     "policy",
                                         "neutral", "temperror", "permerror"};
static const char *const dmarc_names[] = {"none", "pass", "fail", "temperror", "permerror"};
static const char *const policy_names[] = {"none", "quarantine", "reject"};
static const char *const arc_names[] = {"none", "pass", "fail"};

struct runner {
    struct zone z;
    struct dmarc_eval *ev;
    struct dmarc_report_row *rows;
    size_t nrows;
    /* The Authentication-Results field being put together. */
    char *ar_id;
    struct authres_spf spf[4];
    struct authres_dkim dkim[8];
    struct authres_dmarc dmarc;
    struct authres_arc arc;
    size_t nspf, ndkim;
    bool have_dmarc, have_arc;
    char *kept[64]; /* owned copies of the field's strings */
    size_t nkept;
};

static const char *runner_keep(struct runner *r, const char *s)
{
    if (s == NULL || r->nkept == 64)
        return NULL;
    return r->kept[r->nkept++] = xstrdup(s);
}

static void runner_ar_clear(struct runner *r)
{
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i]);
    r->nkept = 0;
    free(r->ar_id);
    r->ar_id = NULL;
    r->nspf = r->ndkim = 0;
    r->have_dmarc = r->have_arc = false;
}

static int runner_eval(struct runner *r)
{
    int rounds = 0;
    while (dmarc_eval_step(r->ev) == DMARC_STEP_DNS) {
        const struct dnsq_question *q;
        size_t n = dmarc_eval_questions(r->ev, &q);
        if (n == 0 || ++rounds > 10)
            return -1;
        for (size_t k = 0; k < n; k++) {
            struct dnsq_answer a;
            zone_answer(&r->z, &q[k], &a);
            int rc = dmarc_eval_answer(r->ev, k, &a);
            free((void *)a.rrs);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int runner_case(struct runner *r, char **f, int n)
{
    /* case ID IP MAILFROM HELO FROM SPF SAMPLE [R D S]... */
    if (n < 8 || (n - 8) % 3 != 0)
        return -1;
    int spf = runner_name(f[6], spf_names, 7);
    char *end;
    unsigned long sample = strtoul(f[7], &end, 10);
    if (spf < 0 || *end || sample > 99)
        return -1;
    struct dmarc_dkim dkim[DMARC_DKIM_MAX];
    size_t ndkim = 0;
    for (int i = 8; i < n && ndkim < DMARC_DKIM_MAX; i += 3) {
        int res = runner_name(f[i], dkim_names, 7);
        if (res < 0)
            return -1;
        dkim[ndkim++] = (struct dmarc_dkim){(enum dkim_result)res, opt(f[i + 1]),
                                            opt(f[i + 2])};
    }
    /* The SPF domain: MAIL FROM's, or HELO for the null path. */
    const char *at = strrchr(f[3], '@');
    const char *spf_domain = f[3][0] ? (at ? at + 1 : f[3]) : f[4];
    struct dmarc_from from;
    dmarc_from_init(&from);
    if (opt(f[5]))
        dmarc_from_add_field(&from, f[5], strlen(f[5]));
    struct dmarc_params p = {&from, (enum spf_result)spf, spf_domain, dkim, ndkim,
                             (unsigned)sample};
    if (dmarc_eval_start(r->ev, &p) < 0 || runner_eval(r) < 0)
        return -1;
    const struct dmarc_domain *v = dmarc_eval_verdict(r->ev);
    runner_out(f[1], strlen(f[1]));
    printf(" %s %s %s ", dmarc_result_name(v->result),
           v->have_record ? dmarc_policy_name(v->policy) : "-",
           dmarc_policy_name(v->disposition));
    runner_out(v->from, strlen(v->from));
    putchar(' ');
    runner_out(v->policy_domain, strlen(v->policy_domain));
    putchar('\n');
    for (size_t i = 0; i < dmarc_eval_ndomains(r->ev) && r->nrows < RUNNER_ROWS; i++) {
        const struct dmarc_domain *d = dmarc_eval_domain(r->ev, i);
        struct dmarc_report_msg m = {1700000000 + (long long)r->nrows, f[2],
                                     f[3][0] ? spf_domain : "", NULL, (enum spf_result)spf,
                                     spf_domain, f[3][0] == '\0', dkim, ndkim,
                                     d->disposition, 0};
        if (d->have_record && dmarc_report_row_fill(&r->rows[r->nrows], d, &m) == 0)
            r->nrows++;
    }
    return 0;
}

static int runner_reports(struct runner *r, const char *dir)
{
    /* Each row through its line and back, as the queue's file would. */
    struct buf line = BUF_INIT;
    for (size_t i = 0; i < r->nrows; i++) {
        buf_reset(&line);
        dmarc_report_row_format(&r->rows[i], &line);
        if (dmarc_report_row_parse(&r->rows[i], line.data, line.len) < 0) {
            fprintf(stderr, "dmarc_runner: a row did not read back: %s", line.data);
            buf_free(&line);
            return -1;
        }
    }
    buf_free(&line);
    bool *done = xcalloc(r->nrows ? r->nrows : 1, sizeof *done);
    struct dmarc_report_row *group = xcalloc(r->nrows ? r->nrows : 1, sizeof *group);
    int rc = 0;
    for (size_t i = 0; i < r->nrows && rc == 0; i++) {
        if (done[i])
            continue;
        size_t n = 0;
        for (size_t j = i; j < r->nrows; j++) {
            if (!done[j] && strcmp(r->rows[j].policy_domain, r->rows[i].policy_domain) == 0) {
                group[n++] = r->rows[j];
                done[j] = true;
            }
        }
        struct dmarc_report_meta meta = {"tern test <reporter> & co", "dmarc@tern.example",
                                         "https://tern.example/dmarc", "id.1700000000",
                                         1699920000, 1700006400};
        struct buf x = BUF_INIT;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.xml", dir, r->rows[i].policy_domain);
        FILE *fp = fopen(path, "w");
        if (fp == NULL || dmarc_report_xml(&meta, group, n, &x) < 0 ||
            fwrite(x.data, 1, x.len, fp) != x.len) {
            rc = -1;
        }
        if (fp && fclose(fp) != 0)
            rc = -1;
        buf_free(&x);
        printf("report %s %zu\n", path, n);
    }
    free(done);
    free(group);
    return rc;
}

static int runner_ar(struct runner *r, char **f, int n)
{
    int res;
    if (strcmp(f[0], "ar") == 0 && n == 2) {
        runner_ar_clear(r);
        r->ar_id = xstrdup(f[1]);
    } else if (strcmp(f[0], "spf") == 0 && n == 5 && r->nspf < 4 &&
               (res = runner_name(f[1], spf_names, 7)) >= 0) {
        r->spf[r->nspf++] = (struct authres_spf){(enum spf_result)res, strcmp(f[2], "helo") == 0,
                                                 runner_keep(r, opt(f[3])),
                                                 runner_keep(r, opt(f[4]))};
    } else if (strcmp(f[0], "dkim") == 0 && n == 8 && r->ndkim < 8 &&
               (res = runner_name(f[1], dkim_names, 7)) >= 0) {
        struct authres_dkim *d = &r->dkim[r->ndkim++];
        d->result = (enum dkim_result)res;
        d->d = runner_keep(r, opt(f[2]));
        d->i = runner_keep(r, opt(f[3]));
        d->s = runner_keep(r, opt(f[4]));
        d->a = runner_keep(r, opt(f[5]));
        d->b = runner_keep(r, opt(f[6]));
        d->reason = runner_keep(r, opt(f[7]));
    } else if (strcmp(f[0], "dmarc") == 0 && n == 5 &&
               (res = runner_name(f[1], dmarc_names, 5)) >= 0) {
        int pol = opt(f[3]) ? runner_name(f[3], policy_names, 3) : -1;
        r->dmarc = (struct authres_dmarc){(enum dmarc_result)res, runner_keep(r, opt(f[2])),
                                          pol >= 0, pol >= 0 ? (enum dmarc_policy)pol : 0,
                                          runner_keep(r, opt(f[4]))};
        r->have_dmarc = true;
    } else if (strcmp(f[0], "arc") == 0 && n == 5 &&
               (res = runner_name(f[1], arc_names, 3)) >= 0) {
        r->arc = (struct authres_arc){(enum arc_result)res, runner_keep(r, opt(f[2])),
                                      opt(f[3]) ? atoi(f[3]) : -1, runner_keep(r, opt(f[4]))};
        r->have_arc = true;
    } else if (strcmp(f[0], "build") == 0 && n == 2) {
        struct authres_results ar = {r->ar_id, r->spf, r->nspf, r->dkim, r->ndkim,
                                     r->have_dmarc ? &r->dmarc : NULL,
                                     r->have_arc ? &r->arc : NULL};
        struct buf b = BUF_INIT;
        int rc = authres_build(&ar, &b);
        runner_out(f[1], strlen(f[1]));
        putchar(' ');
        if (rc == 0)
            runner_out(b.data, b.len);
        else
            fputs("-", stdout);
        putchar('\n');
        buf_free(&b);
    } else {
        return -1;
    }
    return 0;
}

int main(void)
{
    struct runner r;
    memset(&r, 0, sizeof r);
    r.ev = dmarc_eval_new();
    r.rows = xcalloc(RUNNER_ROWS, sizeof *r.rows);
    struct buf line = BUF_INIT;
    int ch, lineno = 0, status = 0;
    do {
        ch = getchar();
        if (ch != '\n' && ch != EOF) {
            buf_putc(&line, (char)ch);
            continue;
        }
        if (line.len == 0)
            continue;
        lineno++;
        char *f[RUNNER_FIELDS];
        long len[RUNNER_FIELDS];
        int n = 0;
        for (char *save = NULL, *t = strtok_r(line.data, " ", &save); t;
             t = strtok_r(NULL, " ", &save)) {
            if (n == RUNNER_FIELDS || (len[n] = runner_field(t)) < 0) {
                n = -1;
                break;
            }
            f[n++] = t;
        }
        int rc = -1;
        if (n >= 3 && strcmp(f[0], "zone") == 0 && strcmp(f[2], "TXT") == 0) {
            size_t lens[RUNNER_FIELDS];
            for (int i = 3; i < n; i++)
                lens[i - 3] = (size_t)len[i];
            zone_txt_n(&r.z, f[1], (size_t)(n - 3), (const char *const *)f + 3, lens);
            rc = 0;
        } else if (n == 3 && strcmp(f[0], "zone") == 0 && strcmp(f[2], "TIMEOUT") == 0) {
            zone_timeout(&r.z, f[1], DNSQ_TXT);
            rc = 0;
        } else if (n > 0 && strcmp(f[0], "case") == 0) {
            rc = runner_case(&r, f, n);
        } else if (n == 1 && strcmp(f[0], "end") == 0) {
            zone_clear(&r.z);
            rc = 0;
        } else if (n == 2 && strcmp(f[0], "reports") == 0) {
            rc = runner_reports(&r, f[1]);
        } else if (n > 0) {
            rc = runner_ar(&r, f, n);
        }
        if (rc < 0) {
            fprintf(stderr, "dmarc_runner: line %d: cannot do it\n", lineno);
            status = 2;
        }
        buf_reset(&line);
    } while (ch != EOF);
    fflush(stdout);
    runner_ar_clear(&r);
    zone_clear(&r.z);
    buf_free(&line);
    free(r.rows);
    dmarc_eval_free(r.ev);
    return status;
}
