/* dkim.c: `tern dkim keygen|check`, the operator's side of DKIM signing.
 *
 *   tern dkim keygen DOMAIN SELECTOR [--rsa BITS | --ed25519] [-o FILE]
 *       makes a key (RSA-2048 unless told: every verifier knows RSA;
 *       Ed25519, RFC 8463, is best added as a second selector), writes
 *       it 0600 to FILE (default DOMAIN.SELECTOR.key; never over an
 *       existing file), and prints the TXT record to publish and the
 *       dkim_sign line to add.
 *   tern dkim check DOMAIN SELECTOR [-c FILE]
 *       looks up SELECTOR._domainkey.DOMAIN through the configured
 *       resolver and says whether it publishes the public half of the
 *       key that the dkim_sign line of DOMAIN SELECTOR names.
 *
 * Exit codes (sysexits.h): 0 ok (check: the record matches), 1 the record
 * is missing, revoked or another key, 64 usage, 65 bad name, 74 I/O,
 * 75 DNS temporary failure, 78 configuration. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/strutil.h"
#include "cmd/cmds.h"
#include "conf/config.h"
#include "conf/config_priv.h" /* conf_domain_valid: the rule dkim_sign lines obey */
#include "dns/resolver.h"
#include "ev/loop.h"
#include "mailauth/dkim_key.h"
#include "mailauth/dnsq.h"
#include "proc/net_dnsq.h"

#define DKIM_EX_MISMATCH 1
#define DKIM_EX_USAGE 64
#define DKIM_EX_DATAERR 65
#define DKIM_EX_IOERR 74
#define DKIM_EX_TEMPFAIL 75
#define DKIM_EX_CONFIG 78

#define DKIM_KEYGEN_BITS 2048
#define DKIM_PEM_READ_MAX (64 * 1024)

static void dkim_usage(FILE *f)
{
    fprintf(f, "usage: tern dkim keygen DOMAIN SELECTOR [--rsa BITS | --ed25519] [-o FILE]\n"
               "       tern dkim check DOMAIN SELECTOR [-c FILE]\n");
}

/* DOMAIN and SELECTOR as a dkim_sign line takes them. */
static int dkim_names_ok(const char *domain, const char *selector)
{
    if (!conf_domain_valid(domain, 0)) {
        fprintf(stderr, "tern dkim: '%s' is not a domain name\n", strutil_esc(domain));
        return 0;
    }
    if (!conf_domain_valid(selector, 0) ||
        strlen(selector) + strlen("._domainkey.") + strlen(domain) > 253) {
        fprintf(stderr, "tern dkim: '%s' is not a selector\n", strutil_esc(selector));
        return 0;
    }
    return 1;
}

static void dkim_print_record(EVP_PKEY *key, const char *domain, const char *selector)
{
    struct buf rec = BUF_INIT;
    if (dkim_key_record_zone(key, &rec) == 0)
        printf("%s._domainkey.%s. IN TXT ( %s )\n", selector, domain, rec.data);
    buf_free(&rec);
}

static int dkim_keygen(int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *out = NULL;
    unsigned bits = DKIM_KEYGEN_BITS;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ed25519")) {
            bits = 0;
        } else if (!strcmp(argv[i], "--rsa") && i + 1 < argc) {
            char *end;
            unsigned long b = strtoul(argv[++i], &end, 10);
            if (*end || b < DKIM_RSA_BITS_MIN || b > DKIM_RSA_BITS_MAX) {
                fprintf(stderr, "tern dkim keygen: --rsa takes %d to %d bits\n",
                        DKIM_RSA_BITS_MIN, DKIM_RSA_BITS_MAX);
                return DKIM_EX_USAGE;
            }
            bits = (unsigned)b;
        } else if ((!strcmp(argv[i], "-o") || !strcmp(argv[i], "--out")) && i + 1 < argc) {
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            dkim_usage(stderr);
            return DKIM_EX_USAGE;
        } else if (domain == NULL) {
            domain = argv[i];
        } else if (selector == NULL) {
            selector = argv[i];
        } else {
            dkim_usage(stderr);
            return DKIM_EX_USAGE;
        }
    }
    if (selector == NULL) {
        dkim_usage(stderr);
        return DKIM_EX_USAGE;
    }
    if (!dkim_names_ok(domain, selector))
        return DKIM_EX_DATAERR;
    char path[PATH_MAX];
    if (out == NULL) {
        snprintf(path, sizeof path, "%s.%s.key", domain, selector);
        out = path;
    }
    struct buf pem = BUF_INIT;
    EVP_PKEY *key = dkim_key_generate(bits, &pem);
    if (key == NULL) {
        fprintf(stderr, "tern dkim keygen: cannot make the key\n");
        return DKIM_EX_IOERR;
    }
    int rc = fsio_create_file(out, pem.data, pem.len, 0600);
    buf_wipe(&pem);
    buf_free(&pem);
    if (rc < 0) {
        fprintf(stderr, "tern dkim keygen: %s: %s\n", out, strerror(-rc));
        EVP_PKEY_free(key);
        return DKIM_EX_IOERR;
    }
    if (bits)
        printf("wrote %s (RSA, %u bits)\n\npublish this record:\n", out, bits);
    else
        printf("wrote %s (Ed25519)\n\npublish this record:\n", out);
    dkim_print_record(key, domain, selector);
    printf("\nand add this line to tern.conf (then tern dkim check %s %s):\n"
           "dkim_sign = %s %s %s\n",
           domain, selector, domain, selector, out);
    EVP_PKEY_free(key);
    return 0;
}

struct dkim_lookup {
    struct ev_loop *loop;
    EVP_PKEY *key;
    int status; /* exit code */
    const char *why;
};

static void dkim_on_answer(void *arg, size_t i, const struct dnsq_answer *a)
{
    (void)i;
    struct dkim_lookup *l = arg;
    ev_loop_stop(l->loop);
    if (a->status == DNSQ_TEMPFAIL) {
        l->status = DKIM_EX_TEMPFAIL;
        l->why = "the DNS lookup failed; try again";
        return;
    }
    l->status = DKIM_EX_MISMATCH;
    l->why = "no key record is published there";
    struct buf txt = BUF_INIT, tmp = BUF_INIT;
    for (size_t k = 0; k < a->count; k++) {
        dnsq_txt_join(&txt, &a->rrs[k]);
        struct dkim_key pub = {0};
        const char *why = NULL;
        if (dkim_key_parse(&pub, txt.data ? txt.data : "", txt.len, &tmp, &why) < 0) {
            if (why)
                l->why = why;
            continue;
        }
        if (pub.revoked)
            l->why = "the record revokes the key (empty p=)";
        else if (dkim_key_matches(&pub, l->key))
            l->status = 0;
        else
            l->why = "the record publishes another key";
        dkim_key_clear(&pub);
        if (l->status == 0)
            break;
    }
    buf_free(&txt);
    buf_free(&tmp);
}

static int dkim_check(int argc, char **argv)
{
    const char *cfgpath = NULL;
    const char *names[2] = {NULL, NULL};
    size_t nn = 0;
    for (int i = 2; i < argc; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            cfgpath = argv[++i];
        else if (argv[i][0] != '-' && nn < 2)
            names[nn++] = argv[i];
        else {
            dkim_usage(stderr);
            return DKIM_EX_USAGE;
        }
    }
    if (nn != 2) {
        dkim_usage(stderr);
        return DKIM_EX_USAGE;
    }
    if (!dkim_names_ok(names[0], names[1]))
        return DKIM_EX_DATAERR;
    struct config cfg;
    config_default(&cfg);
    struct buf err = BUF_INIT;
    int ex = 0;
    if (cfgpath && config_load(&cfg, cfgpath, &err) < 0) {
        fprintf(stderr, "%s", err.data);
        ex = DKIM_EX_CONFIG;
        goto out;
    }
    const struct conf_dkim_sign *line = NULL;
    for (size_t i = 0; i < cfg.ndkim_sign && line == NULL; i++)
        if (!strcasecmp(cfg.dkim_sign[i].domain, names[0]) &&
            !strcasecmp(cfg.dkim_sign[i].selector, names[1]))
            line = &cfg.dkim_sign[i];
    if (line == NULL) {
        fprintf(stderr, "tern dkim check: no dkim_sign line for %s %s in %s\n", names[0],
                names[1], cfgpath ? cfgpath : "the embedded default");
        ex = DKIM_EX_CONFIG;
        goto out;
    }
    char *pem = NULL;
    size_t plen = 0;
    int rc = fsio_read_file(line->key, DKIM_PEM_READ_MAX, &pem, &plen);
    if (rc < 0) {
        fprintf(stderr, "tern dkim check: %s: %s\n", line->key, strerror(-rc));
        ex = DKIM_EX_IOERR;
        goto out;
    }
    EVP_PKEY *key = dkim_key_from_pem(pem, plen);
    memset(pem, 0, plen);
    free(pem);
    if (key == NULL) {
        fprintf(stderr, "tern dkim check: %s: not an RSA (1024 bits or more) or Ed25519 "
                        "private key without a passphrase\n", line->key);
        ex = DKIM_EX_DATAERR;
        goto out;
    }
    struct dkim_lookup l = {.loop = ev_loop_new(), .key = key, .status = DKIM_EX_TEMPFAIL,
                            .why = "no answer"};
    struct dns *dns = dns_new(l.loop, cfg.resolver, &err);
    if (dns == NULL) {
        fprintf(stderr, "tern dkim check: DNS: %s\n", err.data ? err.data : "");
        ex = DKIM_EX_TEMPFAIL;
    } else {
        struct net_dnsq *dq = net_dnsq_new(l.loop, dns);
        struct dnsq_question q = {.type = DNSQ_TXT};
        snprintf(q.name, sizeof q.name, "%s._domainkey.%s", line->selector, line->domain);
        net_dnsq_ask(dq, &q, 1, dkim_on_answer, &l);
        (void)ev_loop_run(l.loop);
        net_dnsq_free(dq);
        dns_free(dns);
        ex = l.status;
        if (ex == 0)
            printf("%s: ok, it publishes the key of %s\n", q.name, line->key);
        else
            printf("%s: %s\n", q.name, l.why);
        if (ex == DKIM_EX_MISMATCH) {
            printf("publish this record:\n");
            dkim_print_record(key, line->domain, line->selector);
        }
    }
    ev_loop_free(l.loop);
    EVP_PKEY_free(key);
out:
    buf_free(&err);
    config_free(&cfg);
    return ex;
}

int cmd_dkim(int argc, char **argv)
{
    if (argc >= 2 && cmd_is_help(argv[1])) {
        dkim_usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "keygen"))
        return dkim_keygen(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "check"))
        return dkim_check(argc, argv);
    dkim_usage(stderr);
    return DKIM_EX_USAGE;
}
