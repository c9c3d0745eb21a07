/* spf_suite_runner: runs SPF test cases against tern's evaluator
 * (mailauth/spf) with each scenario's DNS data in an in-memory zone
 * (tests/unit/dnsq_zone.h). tests/spf/run_suite.py turns the OpenSPF RFC
 * 7208 suite into this line format on stdin:
 *
 *     zone NAME TXT [STRING...]    one TXT RR of zero or more strings
 *     zone NAME A|AAAA ADDRESS
 *     zone NAME MX PREF HOST
 *     zone NAME PTR|CNAME TARGET
 *     zone NAME NONE               the name exists, without records
 *     zone NAME TIMEOUT TYPE|ALL   questions time out
 *     test ID HOST HELO MAILFROM   run check_host() for MAIL FROM
 *     end                          the scenario ends: the zone empties
 *
 * Fields are separated by one space; in a field, '\', '"' and octets
 * outside 0x21-0x7e are written \xHH, and "" is the empty string. For
 * each test it prints "ID RESULT EXPLANATION REASON LOOKUPS", the
 * explanation "DEFAULT" when a fail has none (as pyspf's driver sets) and
 * "-" for other results, fields escaped the same way. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "dnsq_zone.h"
#include "mailauth/spf.h"

#define RUNNER_FIELDS 64

static int runner_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes field f in place; returns its length or -1. */
static long runner_unescape(char *f)
{
    if (strcmp(f, "\"\"") == 0) {
        f[0] = '\0';
        return 0;
    }
    char *w = f;
    for (char *r = f; *r; r++) {
        if (*r != '\\') {
            *w++ = *r;
            continue;
        }
        if (r[1] != 'x' || runner_hex(r[2]) < 0 || runner_hex(r[3]) < 0)
            return -1;
        *w++ = (char)(runner_hex(r[2]) << 4 | runner_hex(r[3]));
        r += 3;
    }
    *w = '\0';
    return w - f;
}

static void runner_put(const char *s)
{
    if (*s == '\0') {
        fputs("\"\"", stdout);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '\\' && *p != '"')
            putchar(*p);
        else
            printf("\\x%02x", *p);
    }
}

static int runner_type(const char *t)
{
    static const struct {
        const char *name;
        int type;
    } types[] = {{"TXT", DNSQ_TXT}, {"A", DNSQ_A},     {"AAAA", DNSQ_AAAA},
                 {"MX", DNSQ_MX},   {"PTR", DNSQ_PTR}, {"ALL", 0}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(t, types[i].name) == 0)
            return types[i].type;
    return -1;
}

static int runner_zone(struct zone *z, char **f, long *len, int n)
{
    if (n < 3)
        return -1;
    const char *name = f[1], *type = f[2];
    if (strcmp(type, "TXT") == 0) {
        size_t lens[RUNNER_FIELDS];
        for (int i = 3; i < n; i++)
            lens[i - 3] = (size_t)len[i];
        zone_txt_n(z, name, (size_t)(n - 3), (const char *const *)f + 3, lens);
    } else if ((strcmp(type, "A") == 0 || strcmp(type, "AAAA") == 0) && n == 4) {
        zone_addr(z, name, f[3]);
    } else if (strcmp(type, "MX") == 0 && n == 5) {
        zone_mx(z, name, (unsigned)strtoul(f[3], NULL, 10), f[4]);
    } else if (strcmp(type, "PTR") == 0 && n == 4) {
        zone_ptr(z, name, f[3]);
    } else if (strcmp(type, "CNAME") == 0 && n == 4) {
        zone_cname(z, name, f[3]);
    } else if (strcmp(type, "NONE") == 0 && n == 3) {
        zone_present(z, name);
    } else if (strcmp(type, "TIMEOUT") == 0 && n == 4 && runner_type(f[3]) >= 0) {
        zone_timeout(z, name, runner_type(f[3]));
    } else {
        return -1;
    }
    return 0;
}

static int runner_test(struct zone *z, struct spf_check *c, char **f, int n)
{
    if (n != 5)
        return -1;
    struct spf_params p = {.identity = SPF_ID_MAILFROM, .helo = f[3], .mail_from = f[4],
                           .receiver = "receiver.example.org", .now = 1700000000};
    if (spf_ip_parse(&p.ip, f[2]) < 0)
        return -1;
    spf_check_start(c, &p);
    if (zone_run(z, c) < 0) {
        printf("%s evaluator-misbehaved - - 0\n", f[1]);
        return 0;
    }
    enum spf_result r = spf_check_result(c);
    const char *exp = spf_check_explanation(c);
    runner_put(f[1]);
    printf(" %s ", spf_result_name(r));
    runner_put(r != SPF_FAIL ? "-" : exp ? exp : "DEFAULT");
    putchar(' ');
    runner_put(spf_check_reason(c));
    printf(" %u\n", spf_check_lookups(c));
    return 0;
}

int main(void)
{
    struct zone z;
    memset(&z, 0, sizeof z);
    z.error_prefix = 1;
    struct spf_check *c = spf_check_new();
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
            if (n == RUNNER_FIELDS || (len[n] = runner_unescape(t)) < 0) {
                n = -1;
                break;
            }
            f[n++] = t;
        }
        int rc = -1;
        if (n > 0 && strcmp(f[0], "zone") == 0)
            rc = runner_zone(&z, f, len, n);
        else if (n > 0 && strcmp(f[0], "test") == 0)
            rc = runner_test(&z, c, f, n);
        else if (n == 1 && strcmp(f[0], "end") == 0) {
            zone_clear(&z);
            rc = 0;
        }
        if (rc < 0) {
            fprintf(stderr, "spf_suite_runner: line %d: cannot read it\n", lineno);
            status = 2;
        }
        buf_reset(&line);
    } while (ch != EOF);
    fflush(stdout);
    zone_clear(&z);
    buf_free(&line);
    spf_check_free(c);
    return status;
}
