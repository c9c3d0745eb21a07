/* config_check.c: semantic checks of a loaded configuration, for
 * `tern check-config` and start-up: what parses can still be wrong. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/config.h"
#include "conf/config_priv.h"
#include "conf/table.h"

struct conf_checker {
    const struct config *cfg;
    const char *file;
    struct buf *err;
    int bad;
};

static void conf_check_msg(struct conf_checker *c, int warn, const char *file, const char *fmt,
                           va_list ap)
{
    buf_printf(c->err, "%s%s: ", warn ? "warning: " : "", file);
    buf_vprintf(c->err, fmt, ap);
    buf_putc(c->err, '\n');
}

__attribute__((format(printf, 2, 3))) static void conf_check_error(struct conf_checker *c,
                                                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_check_msg(c, 0, c->file, fmt, ap);
    va_end(ap);
    c->bad = 1;
}

/* Warnings are reported with a "warning: " prefix and do not fail. They
 * name `file` (the config file, or the aliases file they are about). */
__attribute__((format(printf, 3, 4))) static void conf_check_warn(struct conf_checker *c,
                                                                  const char *file,
                                                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conf_check_msg(c, 1, file, fmt, ap);
    va_end(ap);
}

static int conf_listener_v6(const struct conf_listener *l)
{
    return strchr(l->addr, ':') != NULL;
}

static int conf_listener_wild(const struct conf_listener *l)
{
    return !strcmp(l->addr, "0.0.0.0") || !strcmp(l->addr, "::");
}

static void conf_listener_name(const struct conf_listener *l, char *out, size_t n)
{
    struct buf b = BUF_INIT;
    if (conf_listener_v6(l))
        buf_printf(&b, "[%s]:%d", l->addr, l->port);
    else
        buf_printf(&b, "%s:%d", l->addr, l->port);
    strutil_lcpy(out, b.data, n);
    buf_free(&b);
}

/* Each listener must be a numeric address and port, and no two may want
 * the same socket: the same address twice, or a wildcard and a specific
 * address of the same family and port (Linux refuses the second bind;
 * IPv6 sockets are V6ONLY, so "::" and "0.0.0.0" do not collide). */
static void conf_check_listeners(struct conf_checker *c)
{
    const struct config *cfg = c->cfg;
    if (cfg->nlisteners == 0)
        conf_check_error(c, "no listen address");
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct conf_listener *l = &cfg->listeners[i];
        char name[96];
        conf_listener_name(l, name, sizeof name);
        unsigned char bin[16];
        if (inet_pton(conf_listener_v6(l) ? AF_INET6 : AF_INET, l->addr, bin) != 1 ||
            l->port < 1 || l->port > 65535) {
            conf_check_error(c, "listen %s: not a numeric address and port", name);
            continue;
        }
        if (l->role != CONF_ROLE_MX && l->role != CONF_ROLE_SUBMISSION &&
            l->role != CONF_ROLE_SMTPS)
            conf_check_error(c, "listen %s: unknown role", name);
        for (size_t j = 0; j < i; j++) {
            const struct conf_listener *o = &cfg->listeners[j];
            if (o->port != l->port || conf_listener_v6(o) != conf_listener_v6(l))
                continue;
            unsigned char a[16], b[16];
            int fam = conf_listener_v6(l) ? AF_INET6 : AF_INET;
            if (inet_pton(fam, o->addr, a) != 1 || inet_pton(fam, l->addr, b) != 1)
                continue;
            if (!memcmp(a, b, fam == AF_INET6 ? 16 : 4)) {
                conf_check_error(c, "listen %s: given twice", name);
                break;
            }
            if (conf_listener_wild(o) || conf_listener_wild(l)) {
                char oname[96];
                conf_listener_name(o, oname, sizeof oname);
                conf_check_error(c, "listen %s overlaps listen %s", name, oname);
                break;
            }
        }
    }
}

/* The spool directory must exist or be creatable: its nearest existing
 * ancestor must be a directory we may write into. Nothing is created. */
static void conf_check_spool(struct conf_checker *c)
{
    const char *spool = c->cfg->spool_dir;
    if (spool == NULL || spool[0] == '\0') {
        conf_check_error(c, "spool_dir is empty");
        return;
    }
    char *p = xstrdup(spool);
    struct stat st;
    if (stat(p, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            conf_check_error(c, "spool_dir %s: not a directory", spool);
        else if (access(p, W_OK | X_OK) < 0)
            conf_check_error(c, "spool_dir %s: %s", spool, strerror(errno));
        goto out;
    }
    for (;;) {
        char *slash = strrchr(p, '/');
        while (slash && slash > p && slash[1] == '\0') { /* "a/b/" */
            *slash = '\0';
            slash = strrchr(p, '/');
        }
        if (slash == NULL) {
            strcpy(p, ".");
        } else if (slash == p) {
            p[1] = '\0';
        } else {
            *slash = '\0';
        }
        if (stat(p, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                conf_check_error(c, "spool_dir %s: cannot be created: %s is not a directory",
                                 spool, p);
            else if (access(p, W_OK | X_OK) < 0)
                conf_check_error(c, "spool_dir %s: cannot be created: %s", spool,
                                 strerror(errno));
            break;
        }
        if (!strcmp(p, ".") || !strcmp(p, "/")) {
            conf_check_error(c, "spool_dir %s: cannot be created: %s", spool, strerror(errno));
            break;
        }
    }
out:
    free(p);
}

static void conf_check_file(struct conf_checker *c, const char *key, const char *path)
{
    if (path && access(path, R_OK) < 0)
        conf_check_error(c, "%s %s: %s", key, path, strerror(errno));
}

/* Submission needs TLS before AUTH and smtps is TLS: both need a
 * certificate. Files are checked readable; their contents are checked
 * when the server loads them. The self-signed default is made at start. */
static void conf_check_tls(struct conf_checker *c)
{
    const struct config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct conf_listener *l = &cfg->listeners[i];
        const char *cert = config_listener_cert(cfg, l), *key = config_listener_key(cfg, l);
        char name[80];
        conf_listener_name(l, name, sizeof name);
        if ((cert == NULL || key == NULL) && l->role != CONF_ROLE_MX) {
            conf_check_error(c, "listen %s (%s): needs a certificate (tls_cert and tls_key, "
                             "or cert= and key= on the listen line)",
                             name, config_role_name(l->role));
            continue;
        }
        if (cert && key && !(cfg->tls_selfsigned && !l->tls_cert)) {
            conf_check_file(c, "tls_cert", cert);
            conf_check_file(c, "tls_key", key);
        }
    }
    for (size_t i = 0; i < cfg->ntls_sni; i++) {
        conf_check_file(c, "tls_sni certificate", cfg->tls_sni[i].cert);
        conf_check_file(c, "tls_sni key", cfg->tls_sni[i].key);
    }
    for (size_t i = 0; i < cfg->ndkim_sign; i++)
        conf_check_file(c, "dkim_sign key", cfg->dkim_sign[i].key);
}

/* Warns when an alias target is neither a user nor an alias: expansion
 * would skip it. A bare target is fine if it exists in some form. */
static void conf_check_aliases(struct conf_checker *c)
{
    const struct config *cfg = c->cfg;
    size_t it = 0;
    const struct conf_entry *e;
    while ((e = conf_table_next(cfg->aliases, &it)) != NULL) {
        for (size_t i = 0; i < e->nvals; i++) {
            const char *t = e->vals[i];
            char local[MAILADDR_LOCAL_MAX + 1];
            const char *at = strchr(t, '@');
            size_t ll = at ? (size_t)(at - t) : strlen(t);
            if (ll >= sizeof local)
                continue;
            memcpy(local, t, ll);
            local[ll] = '\0';
            int found = !strcmp(local, "postmaster") || cfg->accept_any_user ||
                        conf_table_get(cfg->users, t) || conf_table_get(cfg->aliases, t) ||
                        conf_table_get(cfg->users, local) || conf_table_get(cfg->aliases, local);
            for (size_t d = 0; !found && !at && d < cfg->nlocal_domains; d++)
                found = conf_table_find(cfg->users, local, cfg->local_domains[d]) ||
                        conf_table_find(cfg->aliases, local, cfg->local_domains[d]);
            if (!found) {
                struct buf where = BUF_INIT;
                buf_printf(&where, "%s:%u", cfg->aliases->file, e->line);
                conf_check_warn(c, where.data, "alias target '%s' is neither a user nor an alias",
                                t);
                buf_free(&where);
            }
        }
    }
}

int config_check(const struct config *cfg, struct buf *err)
{
    struct conf_checker c = {.cfg = cfg, .file = cfg->path ? cfg->path : "(embedded default)",
                             .err = err};
    if (cfg->hostname == NULL || cfg->hostname[0] == '\0')
        conf_check_error(&c, "hostname is empty");
    conf_check_listeners(&c);
    /* The metrics endpoint answers anyone who can connect: loopback only. */
    if (cfg->metrics_listen.port && !config_ip_is_loopback(cfg->metrics_listen.addr))
        conf_check_error(&c, "metrics_listen %s: not a loopback address (127.0.0.0/8 or ::1); "
                             "the metrics endpoint has no authentication",
                         cfg->metrics_listen.addr);
    if (cfg->nlocal_domains == 0)
        conf_check_error(&c, "no local_domains");
    conf_check_spool(&c);
    if (cfg->maildir == NULL || strstr(cfg->maildir, "%u") == NULL)
        conf_check_error(&c, "maildir %s: the template must contain %%u",
                         cfg->maildir ? cfg->maildir : "(none)");
    /* The embedded default reads var/users only once `tern user add` made it. */
    if (cfg->path || (cfg->users_file && access(cfg->users_file, F_OK) == 0))
        conf_check_file(&c, "users_file", cfg->users_file);
    conf_check_tls(&c);
    conf_check_file(&c, "aliases_file", cfg->aliases_file);
    if (cfg->retry_max < cfg->retry_min)
        conf_check_error(&c, "retry_max is less than retry_min");
    if (cfg->delivery_threads < 1 || cfg->delivery_threads > 64)
        conf_check_error(&c, "delivery_threads must be 1 to 64");

    /* RFC 5321 §4.5.1: postmaster must exist at every local domain. It
     * always does (its fallback mailbox), but an operator should know
     * where that mail goes. */
    for (size_t i = 0; i < cfg->nlocal_domains; i++) {
        const char *d = cfg->local_domains[i];
        if (conf_table_find(cfg->aliases, "postmaster", d) ||
            conf_is_user(cfg, "postmaster", d))
            continue;
        conf_check_warn(&c, c.file,
                        "postmaster@%s is neither an alias nor a user: its mail goes to "
                        "the mailbox postmaster@%s",
                        d, cfg->local_domains[0]);
    }
    conf_check_aliases(&c);
    return c.bad ? -EINVAL : 0;
}
