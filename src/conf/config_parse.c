/* config_parse.c: one "key = value" line of the config file, and the
 * value types (numbers with size and time suffixes, booleans, listeners,
 * domain lists, paths relative to the file). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/config_priv.h"
#include "mail/mailaddr.h"

struct conf_key;
typedef int (*conf_set_fn)(struct conf_load *ld, const struct conf_key *k, char *val,
                           unsigned line);

/* One key of the file: its setter, and for numbers where the value goes
 * and what range it must be in ("why" explains a minimum in messages). */
struct conf_key {
    const char *name;
    conf_set_fn set;
    size_t off;
    int width; /* sizeof the field, for numbers */
    uint64_t min, max;
    int zero_ok; /* 0 allowed below min (meaning "unlimited") */
    const char *why;
};

#define CONF_ERR(ld, line, ...) conf_error((ld)->err, (ld)->file, (line), __VA_ARGS__)

static int conf_is_sep(char c, int comma)
{
    return c == ' ' || c == '\t' || (comma && c == ',');
}

/* Next token of s separated by white space (and commas if comma);
 * NUL-terminates it in place and advances *s. NULL at the end. */
static char *conf_token(char **s, int comma)
{
    char *p = *s;
    while (*p && conf_is_sep(*p, comma))
        p++;
    if (*p == '\0') {
        *s = p;
        return NULL;
    }
    char *tok = p;
    while (*p && !conf_is_sep(*p, comma))
        p++;
    if (*p)
        *p++ = '\0';
    *s = p;
    return tok;
}

/* Decimal digits then an optional one-letter unit from `units` whose
 * multipliers are in `mult`. Fails on overflow. */
static int conf_parse_number(const char *s, const char *units, const uint64_t *mult,
                             uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*p) {
        const char *u = units ? strchr(units, *p) : NULL;
        if (u == NULL || p[1] != '\0')
            return -EINVAL;
        uint64_t m = mult[u - units];
        if (v && m > UINT64_MAX / v)
            return -EINVAL;
        v *= m;
    }
    *out = v;
    return 0;
}

/* Stores v (already within the key's range, which fits the field) into a
 * field of 4 or 8 bytes: unsigned, size_t or uint64_t. */
static void conf_store(struct config *cfg, const struct conf_key *k, uint64_t v)
{
    char *field = (char *)cfg + k->off;
    if (k->width == 8) {
        memcpy(field, &v, 8);
    } else {
        uint32_t u = (uint32_t)v;
        memcpy(field, &u, 4);
    }
}

static int conf_set_numeric(struct conf_load *ld, const struct conf_key *k, const char *val,
                            unsigned line, const char *units, const uint64_t *mult,
                            const char *what)
{
    uint64_t v;
    if (conf_parse_number(val, units, mult, &v) < 0) {
        CONF_ERR(ld, line, "%s: '%s' is not %s", k->name, strutil_esc(val), what);
        return -EINVAL;
    }
    if (!(v == 0 && k->zero_ok) && v < k->min) {
        CONF_ERR(ld, line, "%s: %s is below the minimum %llu%s%s", k->name, strutil_esc(val),
                 (unsigned long long)k->min, k->why ? " " : "", k->why ? k->why : "");
        return -EINVAL;
    }
    if (v > k->max) {
        CONF_ERR(ld, line, "%s: %s is above the maximum %llu", k->name, strutil_esc(val),
                 (unsigned long long)k->max);
        return -EINVAL;
    }
    conf_store(ld->cfg, k, v);
    return 0;
}

static int conf_set_count(struct conf_load *ld, const struct conf_key *k, char *val,
                          unsigned line)
{
    return conf_set_numeric(ld, k, val, line, NULL, NULL, "a number");
}

/* Sizes in bytes; k, m, g are powers of 1024. */
static int conf_set_bytes(struct conf_load *ld, const struct conf_key *k, char *val,
                          unsigned line)
{
    static const uint64_t mult[] = {1ull << 10, 1ull << 10, 1ull << 20,
                                    1ull << 20, 1ull << 30, 1ull << 30};
    return conf_set_numeric(ld, k, val, line, "kKmMgG", mult,
                            "a size (bytes, or a number with k, m or g)");
}

static int conf_set_duration(struct conf_load *ld, const struct conf_key *k, char *val,
                             unsigned line)
{
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    if (conf_set_numeric(ld, k, val, line, "smhd", mult,
                         "a duration (seconds, or a number with s, m, h or d)") < 0)
        return -EINVAL;
    if (!strcmp(k->name, "retry_min"))
        ld->retry_min_line = line;
    else if (!strcmp(k->name, "retry_max"))
        ld->retry_max_line = line;
    return 0;
}

static int conf_set_bool(struct conf_load *ld, const struct conf_key *k, char *val,
                         unsigned line)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    int v = -1;
    for (size_t i = 0; i < 4; i++) {
        if (strutil_casecmp(val, yes[i]) == 0)
            v = 1;
        else if (strutil_casecmp(val, no[i]) == 0)
            v = 0;
    }
    if (v < 0) {
        CONF_ERR(ld, line, "%s: '%s' is not yes or no", k->name, strutil_esc(val));
        return -EINVAL;
    }
    memcpy((char *)ld->cfg + k->off, &v, sizeof v);
    return 0;
}

static int conf_set_hostname(struct conf_load *ld, const struct conf_key *k, char *val,
                             unsigned line)
{
    if (!conf_domain_valid(val, 0)) {
        CONF_ERR(ld, line, "hostname: '%s' is not a valid host name", strutil_esc(val));
        return -EINVAL;
    }
    free(ld->cfg->hostname);
    ld->cfg->hostname = xstrdup(val);
    return 0;
}

int conf_parse_hostport(const char *s, struct conf_listener *l, const char **why)
{
    const char *addr = s, *colon;
    size_t alen;
    int v6 = 0;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            *why = "expected [IPv6]:PORT";
            return -EINVAL;
        }
        addr = s + 1;
        alen = (size_t)(close - addr);
        colon = close + 1;
        v6 = 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected ADDRESS:PORT";
            return -EINVAL;
        }
        alen = (size_t)(colon - s);
        if (memchr(s, ':', alen)) {
            *why = "an IPv6 address needs brackets, as in [::1]:25";
            return -EINVAL;
        }
    }
    if (alen == 0 || alen >= sizeof l->addr) {
        *why = "not a numeric IP address";
        return -EINVAL;
    }
    char a[sizeof l->addr];
    memcpy(a, addr, alen);
    a[alen] = '\0';
    unsigned char bin[16];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, a, bin) != 1) {
        *why = "not a numeric IP address";
        return -EINVAL;
    }
    uint64_t port;
    if (conf_parse_number(colon + 1, NULL, NULL, &port) < 0 || port == 0 || port > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return -EINVAL;
    }
    memcpy(l->addr, a, alen + 1);
    l->port = (int)port;
    return 0;
}

/* A relative path in the file is relative to the file's directory. */
static char *conf_path_resolve(const struct conf_load *ld, const char *val)
{
    if (val[0] == '/')
        return xstrdup(val);
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/%s", strcmp(ld->dir, "/") ? ld->dir : "", val);
    return buf_steal(&b);
}

static int conf_parse_role(const char *role, enum conf_role *out)
{
    static const char *const names[] = {"mx", "submission", "smtps"};
    for (int i = 0; i < 3; i++) {
        if (!strcmp(role, names[i])) {
            *out = (enum conf_role)i;
            return 0;
        }
    }
    return -EINVAL;
}

static int conf_set_listen(struct conf_load *ld, const struct conf_key *k, char *val,
                           unsigned line)
{
    struct config *cfg = ld->cfg;
    char *p = val;
    char *hp = conf_token(&p, 0), *tok;
    struct conf_listener l = {.role = CONF_ROLE_MX};
    const char *why = NULL;
    int have_role = 0;
    if (conf_parse_hostport(hp, &l, &why) < 0) {
        CONF_ERR(ld, line, "listen: '%s': %s", strutil_esc(hp), why);
        return -EINVAL;
    }
    while ((tok = conf_token(&p, 0)) != NULL) {
        char **field = !strncmp(tok, "cert=", 5) ? &l.tls_cert
                       : !strncmp(tok, "key=", 4)  ? &l.tls_key
                                                   : NULL;
        if (field && strchr(tok, '=')[1] != '\0' && *field == NULL) {
            *field = conf_path_resolve(ld, strchr(tok, '=') + 1);
        } else if (!field && !have_role && conf_parse_role(tok, &l.role) == 0) {
            have_role = 1;
        } else if (!field && !have_role && !strchr(tok, '=')) {
            CONF_ERR(ld, line, "listen: unknown role '%s' (mx, submission or smtps)",
                     strutil_esc(tok));
            free(l.tls_cert);
            free(l.tls_key);
            return -EINVAL;
        } else {
            CONF_ERR(ld, line, "listen: unexpected '%s' (expected ADDRESS:PORT "
                     "[mx|submission|smtps] [cert=FILE key=FILE])", strutil_esc(tok));
            free(l.tls_cert);
            free(l.tls_key);
            return -EINVAL;
        }
    }
    if ((l.tls_cert == NULL) != (l.tls_key == NULL)) {
        CONF_ERR(ld, line, "listen: cert= and key= go together");
        free(l.tls_cert);
        free(l.tls_key);
        return -EINVAL;
    }
    /* The first listen line replaces the default listeners; later ones add. */
    if (!ld->listen_set) {
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            free(cfg->listeners[i].tls_cert);
            free(cfg->listeners[i].tls_key);
        }
        cfg->nlisteners = 0;
        ld->listen_set = 1;
    }
    if (cfg->nlisteners >= CONF_MAX_LISTENERS) {
        CONF_ERR(ld, line, "listen: too many listeners (at most %d)", CONF_MAX_LISTENERS);
        free(l.tls_cert);
        free(l.tls_key);
        return -EINVAL;
    }
    cfg->listeners[cfg->nlisteners++] = l;
    return 0;
}

static int conf_set_domains(struct conf_load *ld, const struct conf_key *k, char *val,
                            unsigned line)
{
    struct config *cfg = ld->cfg;
    int bad = 0;
    /* The first local_domains line replaces the default; later ones add. */
    if (!ld->domains_set) {
        for (size_t i = 0; i < cfg->nlocal_domains; i++)
            free(cfg->local_domains[i]);
        cfg->nlocal_domains = 0;
        ld->domains_set = 1;
    }
    char *p = val, *d;
    while ((d = conf_token(&p, 1)) != NULL) {
        if (!conf_domain_valid(d, 1)) {
            CONF_ERR(ld, line, "local_domains: '%s' is not a valid domain", strutil_esc(d));
            bad = 1;
            continue;
        }
        strutil_lower(d);
        if (conf_local_domain_index(cfg, d) >= 0)
            continue;
        cfg->local_domains = xrealloc(cfg->local_domains,
                                      (cfg->nlocal_domains + 1) * sizeof *cfg->local_domains);
        cfg->local_domains[cfg->nlocal_domains++] = xstrdup(d);
    }
    return bad ? -EINVAL : 0;
}

static int conf_set_path(struct conf_load *ld, const struct conf_key *k, char *val,
                         unsigned line)
{
    char **field = (char **)((char *)ld->cfg + k->off);
    free(*field);
    *field = conf_path_resolve(ld, val);
    if (!strcmp(k->name, "users_file"))
        ld->users_line = line;
    else if (!strcmp(k->name, "aliases_file"))
        ld->aliases_line = line;
    return 0;
}

static int conf_set_maildir(struct conf_load *ld, const struct conf_key *k, char *val,
                            unsigned line)
{
    int has_u = 0;
    for (const char *p = val; *p; p++) {
        if (*p != '%')
            continue;
        p++;
        if (*p == 'u')
            has_u = 1;
        else if (*p != 'd' && *p != '%') {
            CONF_ERR(ld, line, "maildir: unknown '%%%c' (use %%u, %%d or %%%%)",
                     *p ? *p : ' ');
            return -EINVAL;
        }
    }
    /* Without %u every user would share one mailbox. */
    if (!has_u) {
        CONF_ERR(ld, line, "maildir: the template must contain %%u");
        return -EINVAL;
    }
    return conf_set_path(ld, k, val, line);
}

/* A setting that is one of a few words, k->why listing them ("a|b|c"):
 * the enum field (of width k->width) gets the word's position. */
static int conf_set_choice(struct conf_load *ld, const struct conf_key *k, char *val,
                           unsigned line)
{
    const char *w = k->why;
    for (int i = 0; *w; i++) {
        size_t n = strcspn(w, "|");
        if (strlen(val) == n && strncmp(val, w, n) == 0) {
            if (k->width == (int)sizeof(int)) {
                memcpy((char *)ld->cfg + k->off, &i, sizeof i);
                return 0;
            }
            break; /* a table entry of the wrong width: a bug, refused */
        }
        w += n + (w[n] == '|');
    }
    struct buf alt = BUF_INIT;
    for (const char *c = k->why; *c; c++) {
        if (*c == '|')
            buf_puts(&alt, strchr(c + 1, '|') ? ", " : " or ");
        else
            buf_putc(&alt, *c);
    }
    CONF_ERR(ld, line, "%s: '%s' is not %s", k->name, strutil_esc(val), alt.data);
    buf_free(&alt);
    return -EINVAL;
}

/* RFC 8601 §2.2: the authserv-id is a token (or a quoted string, which
 * tern never needs to write): a host name is one. */
static int conf_set_authserv_id(struct conf_load *ld, const struct conf_key *k, char *val,
                                unsigned line)
{
    if (!conf_domain_valid(val, 0)) {
        CONF_ERR(ld, line, "authserv_id: '%s' is not a host name", strutil_esc(val));
        return -EINVAL;
    }
    free(ld->cfg->authserv_id);
    ld->cfg->authserv_id = xstrdup(val);
    return 0;
}

/* dmarc_report_org: a name people read in a report (org_name), one line
 * of printable text. */
static int conf_set_dmarc_org(struct conf_load *ld, const struct conf_key *k, char *val,
                              unsigned line)
{
    size_t n = strlen(val);
    for (const unsigned char *c = (const unsigned char *)val; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            n = 0;
    if (n == 0 || n > 255) {
        CONF_ERR(ld, line, "dmarc_report_org: '%s' is not one line of 1 to 255 printable "
                           "characters", strutil_esc(val));
        return -EINVAL;
    }
    free(ld->cfg->dmarc_report_org);
    ld->cfg->dmarc_report_org = xstrdup(val);
    return 0;
}

/* dmarc_report_from: the reports' sender, an ASCII mailbox with a
 * domain (the envelope and the From field). */
static int conf_set_dmarc_from(struct conf_load *ld, const struct conf_key *k, char *val,
                               unsigned line)
{
    struct mailaddr a;
    if (mailaddr_parse_mailbox(val, strlen(val), 0, &a) != MAILADDR_OK ||
        (a.flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER)) || !conf_domain_valid(a.domain, 0)) {
        CONF_ERR(ld, line, "dmarc_report_from: '%s' is not an address local@domain",
                 strutil_esc(val));
        return -EINVAL;
    }
    free(ld->cfg->dmarc_report_from);
    ld->cfg->dmarc_report_from = xstrdup(a.text);
    return 0;
}

static int conf_set_string(struct conf_load *ld, const struct conf_key *k, char *val,
                           unsigned line)
{
    char **field = (char **)((char *)ld->cfg + k->off);
    free(*field);
    *field = xstrdup(val);
    return 0;
}

/* tls_sni = HOSTNAME CERTFILE KEYFILE (repeatable). */
static int conf_set_sni(struct conf_load *ld, const struct conf_key *k, char *val,
                        unsigned line)
{
    struct config *cfg = ld->cfg;
    char *p = val;
    char *name = conf_token(&p, 0), *cert = conf_token(&p, 0), *key = conf_token(&p, 0);
    if (name == NULL || cert == NULL || key == NULL || conf_token(&p, 0) != NULL) {
        CONF_ERR(ld, line, "tls_sni: expected HOSTNAME CERTFILE KEYFILE");
        return -EINVAL;
    }
    const char *host = strncmp(name, "*.", 2) ? name : name + 2;
    if (!conf_domain_valid(host, 0)) {
        CONF_ERR(ld, line, "tls_sni: '%s' is not a host name", strutil_esc(name));
        return -EINVAL;
    }
    cfg->tls_sni = xrealloc(cfg->tls_sni, (cfg->ntls_sni + 1) * sizeof *cfg->tls_sni);
    struct conf_sni *e = &cfg->tls_sni[cfg->ntls_sni++];
    e->name = xstrdup(name);
    strutil_lower(e->name);
    e->cert = conf_path_resolve(ld, cert);
    e->key = conf_path_resolve(ld, key);
    return 0;
}

/* dkim_sign = DOMAIN SELECTOR KEYFILE (repeatable; a domain may have
 * several selectors, say RSA and Ed25519 as RFC 8463 §5 suggests). */
static int conf_set_dkim_sign(struct conf_load *ld, const struct conf_key *k, char *val,
                              unsigned line)
{
    (void)k;
    struct config *cfg = ld->cfg;
    char *p = val;
    char *dom = conf_token(&p, 0), *sel = conf_token(&p, 0), *key = conf_token(&p, 0);
    if (dom == NULL || sel == NULL || key == NULL || conf_token(&p, 0) != NULL) {
        CONF_ERR(ld, line, "dkim_sign: expected DOMAIN SELECTOR KEYFILE");
        return -EINVAL;
    }
    size_t n = strlen(dom);
    if (n > 1 && dom[n - 1] == '.')
        dom[n - 1] = '\0';
    if (!conf_domain_valid(dom, 0)) {
        CONF_ERR(ld, line, "dkim_sign: '%s' is not a domain name", strutil_esc(dom));
        return -EINVAL;
    }
    /* The selector goes into a DNS name (<s>._domainkey.<d>): labels of
     * letters, digits and hyphens, dot-separated (RFC 6376 §3.1). */
    if (!conf_domain_valid(sel, 0) || strlen(sel) + strlen("._domainkey.") + strlen(dom) > 253) {
        CONF_ERR(ld, line, "dkim_sign: '%s' is not a selector", strutil_esc(sel));
        return -EINVAL;
    }
    if (cfg->ndkim_sign >= CONF_DKIM_SIGN_MAX) {
        CONF_ERR(ld, line, "dkim_sign: more than %d lines", CONF_DKIM_SIGN_MAX);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->ndkim_sign; i++)
        if (!strcasecmp(cfg->dkim_sign[i].domain, dom) && !strcasecmp(cfg->dkim_sign[i].selector, sel)) {
            CONF_ERR(ld, line, "dkim_sign: %s %s given twice", strutil_esc(dom), strutil_esc(sel));
            return -EINVAL;
        }
    cfg->dkim_sign = xrealloc(cfg->dkim_sign, (cfg->ndkim_sign + 1) * sizeof *cfg->dkim_sign);
    struct conf_dkim_sign *e = &cfg->dkim_sign[cfg->ndkim_sign++];
    e->domain = xstrdup(dom);
    strutil_lower(e->domain);
    e->selector = xstrdup(sel);
    e->key = conf_path_resolve(ld, key);
    return 0;
}

static int conf_set_tls_version(struct conf_load *ld, const struct conf_key *k, char *val,
                                unsigned line)
{
    if (!strcmp(val, "TLSv1.2"))
        ld->cfg->tls_min_version = 12;
    else if (!strcmp(val, "TLSv1.3"))
        ld->cfg->tls_min_version = 13;
    else {
        CONF_ERR(ld, line, "tls_min_version: '%s' is not TLSv1.2 or TLSv1.3",
                 strutil_esc(val));
        return -EINVAL;
    }
    return 0;
}

static int conf_set_networks(struct conf_load *ld, const struct conf_key *k, char *val,
                             unsigned line)
{
    struct config *cfg = ld->cfg;
    int bad = 0;
    char *p = val, *tok;
    while ((tok = conf_token(&p, 1)) != NULL) {
        struct conf_cidr c;
        if (conf_parse_cidr(tok, &c) < 0) {
            CONF_ERR(ld, line, "relay_networks: '%s' is not ADDRESS/PREFIX",
                     strutil_esc(tok));
            bad = 1;
            continue;
        }
        cfg->relay_networks = xrealloc(cfg->relay_networks,
                                       (cfg->nrelay_networks + 1) * sizeof c);
        cfg->relay_networks[cfg->nrelay_networks++] = c;
    }
    return bad ? -EINVAL : 0;
}

/* route = DOMAIN|* mx|ADDR:PORT|[ADDR]:PORT|local|discard
 * [tls=may|require|verify|none] [auth=USER:PASSWORD] (repeatable). */
static int conf_set_route(struct conf_load *ld, const struct conf_key *k, char *val,
                          unsigned line)
{
    struct config *cfg = ld->cfg;
    char *p = val;
    char *dom = conf_token(&p, 0), *act = conf_token(&p, 0), *opt;
    if (dom == NULL || act == NULL) {
        CONF_ERR(ld, line, "route: expected DOMAIN|* mx|ADDRESS:PORT|local|discard "
                           "[tls=may|require|verify|none] [auth=USER:PASSWORD]");
        return -EINVAL;
    }
    if (strcmp(dom, "*") && !conf_domain_valid(dom, 0)) {
        CONF_ERR(ld, line, "route: '%s' is not a domain", strutil_esc(dom));
        return -EINVAL;
    }
    struct conf_route r = {0};
    if (!strcmp(act, "mx")) {
        r.kind = CONF_ROUTE_MX;
    } else if (!strcmp(act, "discard")) {
        r.kind = CONF_ROUTE_DISCARD;
    } else if (!strcmp(act, "local")) {
        /* Every domain local would make tern a sink for the world. */
        if (!strcmp(dom, "*")) {
            CONF_ERR(ld, line, "route: '* local' is not allowed; name the domains");
            return -EINVAL;
        }
        r.kind = CONF_ROUTE_LOCAL;
    } else {
        struct conf_listener l;
        const char *why = NULL;
        /* "[192.0.2.1]:25" as Postfix writes a next hop: brackets around
         * an IPv4 address too. */
        char hp[80];
        const char *close = act[0] == '[' ? strchr(act, ']') : NULL;
        if (close && !memchr(act, ':', (size_t)(close - act)) && strlen(act) < sizeof hp) {
            snprintf(hp, sizeof hp, "%.*s%s", (int)(close - act - 1), act + 1, close + 1);
            act = hp;
        }
        if (conf_parse_hostport(act, &l, &why) < 0) {
            CONF_ERR(ld, line, "route: '%s': %s", strutil_esc(act), why);
            return -EINVAL;
        }
        r.kind = CONF_ROUTE_HOST;
        memcpy(r.host, l.addr, sizeof r.host);
        r.port = l.port;
    }
    while ((opt = conf_token(&p, 0)) != NULL) {
        char *colon;
        if (!strcmp(opt, "tls=may")) {
            r.tls = CONF_TLS_MAY;
        } else if (!strcmp(opt, "tls=require")) {
            r.tls = CONF_TLS_REQUIRE;
        } else if (!strcmp(opt, "tls=verify")) {
            r.tls = CONF_TLS_VERIFY;
        } else if (!strcmp(opt, "tls=none")) {
            r.tls = CONF_TLS_NONE;
        } else if (!strncmp(opt, "auth=", 5) && (colon = strchr(opt + 5, ':')) != NULL &&
                   colon > opt + 5 && colon[1] && r.auth_user == NULL) {
            r.auth_user = xstrndup(opt + 5, (size_t)(colon - opt - 5));
            r.auth_pass = xstrdup(colon + 1);
        } else {
            CONF_ERR(ld, line, "route: unknown option '%s' (tls=may|require|verify|none, "
                               "auth=USER:PASSWORD)", strutil_esc(opt));
            free(r.auth_user);
            free(r.auth_pass);
            return -EINVAL;
        }
    }
    /* A password is never sent where it could be read: AUTH implies TLS. */
    if (r.auth_user && r.tls == CONF_TLS_NONE) {
        CONF_ERR(ld, line, "route: auth= with tls=none would send the password in the clear");
        free(r.auth_user);
        free(r.auth_pass);
        return -EINVAL;
    }
    if (r.auth_user && r.tls == CONF_TLS_MAY)
        r.tls = CONF_TLS_REQUIRE;
    r.domain = xstrdup(dom);
    strutil_lower(r.domain);
    cfg->routes = xrealloc(cfg->routes, (cfg->nroutes + 1) * sizeof *cfg->routes);
    cfg->routes[cfg->nroutes++] = r;
    return 0;
}

static int conf_set_resolver(struct conf_load *ld, const struct conf_key *k, char *val,
                             unsigned line)
{
    struct conf_listener l;
    const char *why = NULL;
    if (conf_parse_hostport(val, &l, &why) < 0) {
        CONF_ERR(ld, line, "resolver: '%s': %s", strutil_esc(val), why);
        return -EINVAL;
    }
    free(ld->cfg->resolver);
    ld->cfg->resolver = xstrdup(val);
    return 0;
}

/* metrics_listen = ADDR:PORT ([::1]:PORT); loopback is enforced by
 * config_check, so that `tern check-config` names the problem. */
static int conf_set_metrics_listen(struct conf_load *ld, const struct conf_key *k, char *val,
                                   unsigned line)
{
    struct conf_listener l = {.role = CONF_ROLE_MX};
    const char *why = NULL;
    if (conf_parse_hostport(val, &l, &why) < 0) {
        CONF_ERR(ld, line, "metrics_listen: '%s': %s", strutil_esc(val), why);
        return -EINVAL;
    }
    ld->cfg->metrics_listen = l;
    return 0;
}

static int conf_set_sender_check(struct conf_load *ld, const struct conf_key *k, char *val,
                                 unsigned line)
{
    if (!strcmp(val, "own"))
        ld->cfg->sender_check = CONF_SENDER_OWN;
    else if (!strcmp(val, "domain"))
        ld->cfg->sender_check = CONF_SENDER_DOMAIN;
    else if (!strcmp(val, "any"))
        ld->cfg->sender_check = CONF_SENDER_ANY;
    else {
        CONF_ERR(ld, line, "sender_check: '%s' is not own, domain or any", strutil_esc(val));
        return -EINVAL;
    }
    return 0;
}

_Static_assert(sizeof(unsigned) == 4, "conf_store writes unsigned fields as 4 bytes");

#define F(field) offsetof(struct config, field), (int)sizeof(((struct config *)0)->field)
#define DAY 86400ull

static const struct conf_key conf_keys[] = {
    {"hostname", conf_set_hostname, 0, 0, 0, 0, 0, NULL},
    {"listen", conf_set_listen, 0, 0, 0, 0, 0, NULL},
    {"local_domains", conf_set_domains, 0, 0, 0, 0, 0, NULL},
    {"users_file", conf_set_path, F(users_file), 0, 0, 0, NULL},
    {"aliases_file", conf_set_path, F(aliases_file), 0, 0, 0, NULL},
    {"accept_any_user", conf_set_bool, F(accept_any_user), 0, 0, 0, NULL},
    {"maildir", conf_set_maildir, F(maildir), 0, 0, 0, NULL},
    {"spool_dir", conf_set_path, F(spool_dir), 0, 0, 0, NULL},
    {"control_socket", conf_set_path, F(control_socket), 0, 0, 0, NULL},
    {"user", conf_set_string, F(run_user), 0, 0, 0, NULL},
    {"mail_user", conf_set_string, F(mail_user), 0, 0, 0, NULL},
    {"shutdown_timeout", conf_set_duration, F(shutdown_timeout), 0, 3600, 0, NULL},
    /* Choices in enum order (conf_set_choice). */
    {"log", conf_set_choice, F(log), 0, 0, 0, "stderr|syslog"},
    {"log_format", conf_set_choice, F(log_format), 0, 0, 0, "line|json"},
    {"debug", conf_set_bool, F(debug), 0, 0, 0, NULL},
    /* RFC 5321 §4.5.3.1.4: a command line of 512 octets must be accepted.
     * The cap keeps a session's line buffer bounded. */
    {"cmd_line_max", conf_set_count, F(cmd_line_max), 512, 65536, 0,
     "(RFC 5321 4.5.3.1.4)"},
    /* RFC 5321 §4.5.3.1.6: text lines of 1000 octets including CRLF. */
    {"text_line_max", conf_set_count, F(text_line_max), 1000, UINT32_MAX, 1,
     "(RFC 5321 4.5.3.1.6; 0 means unlimited)"},
    {"message_size_max", conf_set_bytes, F(message_size_max), 0, UINT64_MAX / 2, 1, NULL},
    /* RFC 5321 §4.5.3.1.8: at least 100 recipients must be buffered. */
    {"rcpt_max", conf_set_count, F(rcpt_max), 100, 1000000, 0, "(RFC 5321 4.5.3.1.8)"},
    {"bad_commands_max", conf_set_count, F(bad_commands_max), 1, 1000000, 0, NULL},
    {"rcpt_refused_max", conf_set_count, F(rcpt_refused_max), 1, 1000000, 0, NULL},
    {"sessions_max", conf_set_count, F(sessions_max), 1, 1000000, 0, NULL},
    {"sessions_per_ip", conf_set_count, F(sessions_per_ip), 1, 1000000, 0, NULL},
    {"received_max", conf_set_count, F(received_max), 1, 100000, 0, NULL},
    {"bare_lf", conf_set_choice, F(bare_lf), 0, 0, 0, "normalize|reject"},
    {"timeout_command", conf_set_duration, F(timeout_command), 1, DAY, 0, NULL},
    {"timeout_data", conf_set_duration, F(timeout_data), 1, DAY, 0, NULL},
    {"timeout_command_line", conf_set_duration, F(timeout_command_line), 1, DAY, 0, NULL},
    {"data_rate_min", conf_set_bytes, F(data_rate_min), 0, 1ull << 30, 0, NULL},
    {"data_rate_window", conf_set_duration, F(data_rate_window), 1, 3600, 0, NULL},
    {"stress_threshold", conf_set_count, F(stress_threshold), 0, 100, 0, NULL},
    {"timeout_stress", conf_set_duration, F(timeout_stress), 1, DAY, 0, NULL},
    {"delivery_threads", conf_set_count, F(delivery_threads), 1, 64, 0, NULL},
    {"retry_min", conf_set_duration, F(retry_min), 1, 365 * DAY, 0, NULL},
    {"retry_max", conf_set_duration, F(retry_max), 1, 365 * DAY, 0, NULL},
    {"queue_lifetime", conf_set_duration, F(queue_lifetime), 1, 365 * DAY, 0, NULL},
    {"queue_minfree", conf_set_bytes, F(queue_minfree), 0, UINT64_MAX / 2, 0, NULL},
    {"tls_cert", conf_set_path, F(tls_cert), 0, 0, 0, NULL},
    {"tls_key", conf_set_path, F(tls_key), 0, 0, 0, NULL},
    {"tls_sni", conf_set_sni, 0, 0, 0, 0, 0, NULL},
    {"dkim_sign", conf_set_dkim_sign, 0, 0, 0, 0, 0, NULL},
    {"tls_min_version", conf_set_tls_version, 0, 0, 0, 0, 0, NULL},
    {"tls_ciphers", conf_set_string, F(tls_ciphers), 0, 0, 0, NULL},
    {"timeout_tls", conf_set_duration, F(timeout_tls), 1, 3600, 0, NULL},
    {"auth_plaintext_loopback", conf_set_bool, F(auth_plaintext_loopback), 0, 0, 0, NULL},
    {"auth_failures_max", conf_set_count, F(auth_failures_max), 1, 1000000, 0, NULL},
    {"auth_failure_window", conf_set_duration, F(auth_failure_window), 1, DAY, 0, NULL},
    {"auth_failure_delay_max", conf_set_duration, F(auth_failure_delay_max), 0, 300, 0, NULL},
    {"auth_cache_ttl", conf_set_duration, F(auth_cache_ttl), 0, DAY, 0, NULL},
    {"relay_networks", conf_set_networks, 0, 0, 0, 0, 0, NULL},
    {"sender_check", conf_set_sender_check, 0, 0, 0, 0, 0, NULL},
    {"route", conf_set_route, 0, 0, 0, 0, 0, NULL},
    {"resolver", conf_set_resolver, 0, 0, 0, 0, 0, NULL},
    {"metrics_listen", conf_set_metrics_listen, 0, 0, 0, 0, 0, NULL},
    {"relay_port", conf_set_count, F(relay_port), 1, 65535, 0, NULL},
    {"delay_warning", conf_set_duration, F(delay_warning), 0, 365 * DAY, 0, NULL},
    {"connections_max", conf_set_count, F(connections_max), 1, 100000, 0, NULL},
    {"connections_per_destination", conf_set_count, F(connections_per_destination), 1, 100000,
     0, NULL},
    {"relay_time_limit", conf_set_duration, F(relay_time_limit), 1, DAY, 0, NULL},
    {"mail_auth_checks", conf_set_bool, F(mail_auth_checks), 0, 0, 0, NULL},
    {"authserv_id", conf_set_authserv_id, 0, 0, 0, 0, 0, NULL},
    {"mail_auth_time_limit", conf_set_duration, F(mail_auth_time_limit), 1, 300, 0, NULL},
    {"spf_reject_fail", conf_set_bool, F(spf_reject_fail), 0, 0, 0, NULL},
    {"spf_defer_temperror", conf_set_bool, F(spf_defer_temperror), 0, 0, 0, NULL},
    {"dmarc_policy", conf_set_choice, F(dmarc_policy), 0, 0, 0, "enforce|report"},
    {"dmarc_report_org", conf_set_dmarc_org, 0, 0, 0, 0, 0, NULL},
    {"dmarc_report_from", conf_set_dmarc_from, 0, 0, 0, 0, 0, NULL},
};

int conf_parse_line(void *arg, char *line, unsigned lineno)
{
    struct conf_load *ld = arg;
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        conf_error(ld->err, ld->file, lineno, "missing '=' (expected key = value): '%s'",
                   strutil_esc(line));
        return -EINVAL;
    }
    char *key = line, *kend = eq;
    while (kend > key && (kend[-1] == ' ' || kend[-1] == '\t'))
        kend--;
    *kend = '\0';
    char *val = eq + 1;
    while (*val == ' ' || *val == '\t')
        val++;
    if (*key == '\0') {
        conf_error(ld->err, ld->file, lineno, "missing key before '='");
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof conf_keys / sizeof conf_keys[0]; i++) {
        const struct conf_key *k = &conf_keys[i];
        if (strcmp(k->name, key))
            continue;
        if (*val == '\0') {
            conf_error(ld->err, ld->file, lineno, "%s: missing value", key);
            return -EINVAL;
        }
        return k->set(ld, k, val, lineno);
    }
    conf_error(ld->err, ld->file, lineno, "unknown key '%s'", strutil_esc(key));
    return -EINVAL;
}
