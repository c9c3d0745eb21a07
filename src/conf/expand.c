/* expand.c: who a local recipient is. RCPT TO classification, alias
 * expansion into final mailboxes, and the Maildir path of a mailbox. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/config.h"
#include "conf/config_priv.h"
#include "conf/table.h"

int conf_is_user(const struct config *cfg, const char *local, const char *domain)
{
    if (!conf_name_safe(local))
        return 0;
    if (cfg->accept_any_user)
        return 1;
    return conf_table_find(cfg->users, local, domain) != NULL;
}

/* One address on the way down an alias chain. */
struct conf_frame {
    char local[MAILADDR_LOCAL_MAX + 1];
    const char *domain; /* one of cfg->local_domains */
};

/* An alias already expanded in this call, and how deep. */
struct conf_seen {
    const struct conf_entry *alias;
    const char *domain;
    size_t depth;
};

struct conf_expand {
    const struct config *cfg;
    struct conf_mailbox **out;
    size_t *n;
    size_t n0; /* where this call's mailboxes start: dedupe from here */
    struct conf_frame chain[CONF_EXPAND_DEPTH_MAX + 1];
    /* Aliases reached twice through different paths (a: b c; b: d; c: d)
     * are expanded once, so nested lists cost their size, not the number
     * of paths through them, which grows exponentially with depth. */
    struct conf_seen *seen; /* owned */
    size_t nseen;
};

/* Was this alias already expanded at this depth or shallower? If not,
 * records it. */
static int conf_expand_seen(struct conf_expand *x, const struct conf_entry *alias,
                            const char *domain, size_t depth)
{
    for (size_t i = 0; i < x->nseen; i++) {
        struct conf_seen *s = &x->seen[i];
        if (s->alias == alias && s->domain == domain) {
            if (s->depth <= depth)
                return 1;
            s->depth = depth;
            return 0;
        }
    }
    x->seen = xrealloc(x->seen, (x->nseen + 1) * sizeof *x->seen);
    x->seen[x->nseen++] = (struct conf_seen){alias, domain, depth};
    return 0;
}

static void conf_expand_add(struct conf_expand *x, const char *local, const char *domain)
{
    for (size_t i = x->n0; i < *x->n; i++)
        if (!strcmp((*x->out)[i].user, local) && !strcmp((*x->out)[i].domain, domain))
            return;
    *x->out = xrealloc(*x->out, (*x->n + 1) * sizeof **x->out);
    struct conf_mailbox *mb = &(*x->out)[(*x->n)++];
    strutil_lcpy(mb->user, local, sizeof mb->user);
    strutil_lcpy(mb->domain, domain, sizeof mb->domain);
}

/* Expands the address x->chain[depth] (lowercased local part, a local
 * domain). An alias wins over a user of the same name; an address met
 * again further down its own chain is a loop: that branch ends there (in
 * the user's own mailbox if the address is also a user, so the classic
 * "john: john, john-archive" works). */
static void conf_expand_one(struct conf_expand *x, size_t depth)
{
    const struct config *cfg = x->cfg;
    const struct conf_frame *f = &x->chain[depth];
    for (size_t i = 0; i < depth; i++) {
        if (!strcmp(x->chain[i].local, f->local) && x->chain[i].domain == f->domain) {
            if (conf_is_user(cfg, f->local, f->domain))
                conf_expand_add(x, f->local, f->domain);
            return;
        }
    }
    const struct conf_entry *alias = conf_table_find(cfg->aliases, f->local, f->domain);
    if (alias) {
        if (depth >= CONF_EXPAND_DEPTH_MAX)
            return; /* too deep: this branch delivers nothing */
        if (conf_expand_seen(x, alias, f->domain, depth))
            return;
        for (size_t i = 0; i < alias->nvals; i++) {
            const char *t = alias->vals[i];
            const char *at = strchr(t, '@');
            struct conf_frame *next = &x->chain[depth + 1];
            size_t ll = at ? (size_t)(at - t) : strlen(t);
            if (ll > MAILADDR_LOCAL_MAX)
                continue;
            memcpy(next->local, t, ll);
            next->local[ll] = '\0';
            /* A bare target stays in the domain of the address expanded. */
            next->domain = f->domain;
            if (at) {
                int d = conf_local_domain_index(cfg, at + 1);
                if (d < 0) {
                    /* Another domain: the relay delivers it. */
                    conf_expand_add(x, next->local, at + 1);
                    continue;
                }
                next->domain = cfg->local_domains[d];
            }
            conf_expand_one(x, depth + 1);
        }
        return;
    }
    if (conf_is_user(cfg, f->local, f->domain)) {
        conf_expand_add(x, f->local, f->domain);
        return;
    }
    /* RFC 5321 §4.5.1: postmaster must always be deliverable. Without an
     * alias or a user of that name it is one mailbox, in the first local
     * domain. */
    if (!strcmp(f->local, "postmaster") && cfg->nlocal_domains)
        conf_expand_add(x, "postmaster", cfg->local_domains[0]);
}

int config_expand(const struct config *cfg, const char *addr, struct conf_mailbox **out,
                  size_t *n)
{
    if (cfg->nlocal_domains == 0)
        return -ENOENT;
    struct conf_expand x = {.cfg = cfg, .out = out, .n = n, .n0 = *n};
    const char *at = strrchr(addr, '@');
    size_t ll = at ? (size_t)(at - addr) : strlen(addr);
    if (ll == 0 || ll > MAILADDR_LOCAL_MAX)
        return -ENOENT;
    memcpy(x.chain[0].local, addr, ll);
    x.chain[0].local[ll] = '\0';
    strutil_lower(x.chain[0].local);
    if (at) {
        int d = conf_local_domain_index(cfg, at + 1);
        if (d < 0)
            return -ENOENT;
        x.chain[0].domain = cfg->local_domains[d];
    } else if (!strcmp(x.chain[0].local, "postmaster")) {
        /* Bare "<postmaster>" (RFC 5321 §4.1.1.3) means the first domain. */
        x.chain[0].domain = cfg->local_domains[0];
    } else {
        return -ENOENT;
    }
    conf_expand_one(&x, 0);
    free(x.seen);
    return *n > x.n0 ? 0 : -ENOENT;
}

enum conf_rcpt config_rcpt_check(const struct config *cfg, const struct mailaddr *rcpt)
{
    if (rcpt->flags & MAILADDR_F_POSTMASTER)
        return CONF_RCPT_LOCAL;
    if (rcpt->domain[0] == '\0')
        return CONF_RCPT_UNKNOWN;
    if (!config_is_local_domain(cfg, rcpt->domain))
        return CONF_RCPT_REMOTE;
    if (strutil_casecmp(rcpt->local, "postmaster") == 0)
        return CONF_RCPT_LOCAL;
    /* Only safe names can be users or aliases: this is also what stops a
     * quoted "../../etc" before it could reach a path. */
    if (!conf_name_safe(rcpt->local))
        return CONF_RCPT_UNKNOWN;
    /* Accept exactly what delivery can deliver: an alias that expands to
     * nothing (a loop, unknown targets) is refused now rather than
     * bounced later. */
    char addr[MAILADDR_LOCAL_MAX + 1 + MAILADDR_DOMAIN_MAX + 1];
    strutil_lcpy(addr, rcpt->local, sizeof addr);
    size_t ll = strlen(addr);
    addr[ll] = '@';
    strutil_lcpy(addr + ll + 1, rcpt->domain, sizeof addr - ll - 1);
    struct conf_mailbox *mb = NULL;
    size_t n = 0;
    int rc = config_expand(cfg, addr, &mb, &n);
    free(mb);
    return rc == 0 ? CONF_RCPT_LOCAL : CONF_RCPT_UNKNOWN;
}

/* A domain as a path element: never empty, "." or "..", never a '/'. */
static int conf_domain_path_safe(const char *d)
{
    return d[0] != '\0' && d[0] != '.' && strchr(d, '/') == NULL;
}

int config_maildir_path(const struct config *cfg, const struct conf_mailbox *mb, char *out,
                        size_t outsize)
{
    /* The checks are repeated here, where the path is made, so no caller
     * can hand us "../x" by mistake. */
    if (!conf_name_safe(mb->user) || !conf_domain_path_safe(mb->domain))
        return -EINVAL;
    if (outsize == 0)
        return -ENAMETOOLONG;
    size_t len = 0;
    for (const char *p = cfg->maildir; *p; p++) {
        const char *piece = p;
        size_t plen = 1;
        int lower = 0;
        if (*p == '%') {
            p++;
            if (*p == 'u' || *p == 'd') {
                /* Mailboxes do not depend on the case a sender used. */
                piece = *p == 'u' ? mb->user : mb->domain;
                plen = strlen(piece);
                lower = 1;
            } else if (*p == '%') {
                piece = "%";
            } else {
                return -EINVAL;
            }
        }
        if (plen >= outsize - len)
            return -ENAMETOOLONG;
        for (size_t i = 0; i < plen; i++) {
            char c = piece[i];
            out[len++] = (lower && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    }
    out[len] = '\0';
    return 0;
}
