/* config.c: defaults, loading a file over them, freeing, lookups. */
#include "conf/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/sizes.h"
#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/config_priv.h"
#include "conf/table.h"

/* The machine's name for the greeting and Received: lines. We do not ask
 * DNS for a fully qualified name (start-up must not hang on a resolver);
 * an operator whose host name has no dot sets `hostname` instead. */
static char *config_default_hostname(void)
{
    char name[DNS_NAME_MAX];
    if (gethostname(name, sizeof name) < 0 || name[0] == '\0')
        return xstrdup("localhost");
    name[sizeof name - 1] = '\0';
    return xstrdup(name);
}

void config_default(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->hostname = config_default_hostname();
    /* Loopback only, unprivileged ports: mx, submission (RFC 6409) and
     * implicit TLS (RFC 8314), as 25, 587 and 465 would be. */
    static const struct {
        int port;
        enum conf_role role;
    } dl[] = {{2525, CONF_ROLE_MX}, {2587, CONF_ROLE_SUBMISSION}, {2465, CONF_ROLE_SMTPS}};
    for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++) {
        strutil_lcpy(cfg->listeners[i].addr, "127.0.0.1", sizeof cfg->listeners[i].addr);
        cfg->listeners[i].port = dl[i].port;
        cfg->listeners[i].role = dl[i].role;
    }
    cfg->nlisteners = sizeof dl / sizeof dl[0];
    cfg->local_domains = xmalloc(sizeof *cfg->local_domains);
    cfg->local_domains[0] = xstrdup("localhost");
    cfg->nlocal_domains = 1;
    cfg->accept_any_user = 1;
    cfg->maildir = xstrdup("var/mail/%u/Maildir");
    cfg->spool_dir = xstrdup("var/spool");
    cfg->run_user = xstrdup("tern");
    cfg->mail_user = xstrdup("vmail");
    cfg->shutdown_timeout = 30;
    cfg->log = CONF_LOG_STDERR;
    cfg->log_format = CONF_LOG_LINE;
    cfg->debug = 0;
    cfg->cmd_line_max = 512;      /* RFC 5321 §4.5.3.1.4 */
    cfg->text_line_max = 1000;    /* RFC 5321 §4.5.3.1.6 */
    cfg->message_size_max = 35ull << 20;
    cfg->rcpt_max = 100;          /* RFC 5321 §4.5.3.1.8 */
    cfg->bad_commands_max = 20;
    cfg->rcpt_refused_max = 100;
    cfg->sessions_max = 2000;
    cfg->sessions_per_ip = 50;
    cfg->received_max = 100;      /* RFC 5321 §6.3: "at least 100" */
    cfg->bare_lf = CONF_BARE_NORMALIZE;
    cfg->timeout_command = 300;   /* RFC 5321 §4.5.3.2.7: 5 minutes */
    cfg->timeout_data = 180;      /* RFC 5321 §4.5.3.2.5: 3 minutes */
    /* RFC 5321 §4.5.3.2.7 asks for at least 5 minutes of waiting for a
     * command: a whole line gets that long, however slowly it comes. */
    cfg->timeout_command_line = 300;
    /* A 2400 bit/s modem still moves 240 octets/s: a client below 256
     * over a whole 30 s window is trickling, not on a bad link. */
    cfg->data_rate_min = 256;
    cfg->data_rate_window = 30;
    cfg->stress_threshold = 80;
    cfg->timeout_stress = 10; /* Postfix's smtpd_timeout under stress */
    cfg->delivery_threads = 8;
    cfg->retry_min = 300;
    cfg->queue_minfree = 64ull << 20;
    cfg->retry_max = 4000;
    cfg->queue_lifetime = 5 * 86400;
    /* A self-signed certificate is made on first start (tls/selfsigned). */
    cfg->tls_cert = xstrdup("var/tls/cert.pem");
    cfg->tls_key = xstrdup("var/tls/key.pem");
    cfg->tls_selfsigned = 1;
    cfg->tls_min_version = 12;
    cfg->tls_ciphers = xstrdup("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL");
    cfg->timeout_tls = 60;
    cfg->auth_failures_max = 10;
    cfg->auth_failure_window = 900;
    /* Below the 10-15 s some clients wait for a reply; the block after
     * auth_failures_max failures is what bounds guessing. */
    cfg->auth_failure_delay_max = 8;
    cfg->auth_cache_ttl = 3600;
    cfg->sender_check = CONF_SENDER_OWN;
    cfg->relay_port = 25;
    cfg->delay_warning = 4 * 3600;
    cfg->connections_max = 100;
    cfg->connections_per_destination = 10;
    cfg->relay_time_limit = 3600;
    cfg->mail_auth_checks = 1;
    cfg->mail_auth_time_limit = 20;
    cfg->dmarc_policy = CONF_DMARC_ENFORCE;
    cfg->users_file = xstrdup("var/users"); /* read only if it exists */
}

int config_load_default_tables(struct config *cfg, struct buf *err)
{
    if (cfg->users_file == NULL || access(cfg->users_file, F_OK) != 0)
        return 0;
    int oserr = 0;
    int rc = conf_users_load(cfg, cfg->users_file, err, &oserr);
    if (rc == CONF_EREAD)
        conf_error(err, cfg->users_file, 0, "cannot read: %s", strerror(oserr));
    return rc < 0 ? -EINVAL : 0;
}

struct conf_table *config_users_read(const struct config *cfg, struct buf *err)
{
    if (cfg->users_file == NULL)
        return NULL;
    if (cfg->path == NULL && access(cfg->users_file, F_OK) != 0)
        return NULL; /* the embedded default before `tern user add` */
    struct config tmp = *cfg; /* conf_users_load fills tmp.users only */
    tmp.users = NULL;
    int oserr = 0;
    int rc = conf_users_load(&tmp, cfg->users_file, err, &oserr);
    if (rc == CONF_EREAD)
        conf_error(err, cfg->users_file, 0, "cannot read: %s", strerror(oserr));
    if (rc < 0) {
        conf_table_free(tmp.users);
        return NULL;
    }
    return tmp.users;
}

const struct conf_route *config_route(const struct config *cfg, const char *domain)
{
    const struct conf_route *any = NULL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (!strcmp(cfg->routes[i].domain, "*"))
            any = any ? any : &cfg->routes[i];
        else if (!strutil_casecmp(cfg->routes[i].domain, domain))
            return &cfg->routes[i];
    }
    return any;
}

const char *config_listener_cert(const struct config *cfg, const struct conf_listener *l)
{
    return l->tls_cert ? l->tls_cert : cfg->tls_cert;
}

const char *config_listener_key(const struct config *cfg, const struct conf_listener *l)
{
    return l->tls_key ? l->tls_key : cfg->tls_key;
}

/* The directory relative paths of the file are taken from: absolute when
 * it can be, so a later chdir() of the server changes nothing. */
static char *config_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL)
        dir = xstrdup(".");
    else if (slash == path)
        dir = xstrdup("/");
    else
        dir = xstrndup(path, (size_t)(slash - path));
    char *real = realpath(dir, NULL);
    if (real == NULL)
        return dir;
    free(dir);
    char *copy = xstrdup(real); /* ours comes from xmalloc, theirs from malloc */
    free(real);
    return copy;
}

static int config_load_impl(struct config *cfg, const char *path, struct buf *err, int tables);

int config_load(struct config *cfg, const char *path, struct buf *err)
{
    return config_load_impl(cfg, path, err, 1);
}

int config_load_settings(struct config *cfg, const char *path, struct buf *err)
{
    return config_load_impl(cfg, path, err, 0);
}

static int config_load_impl(struct config *cfg, const char *path, struct buf *err, int tables)
{
    /* Callers fill the defaults first; a zeroed struct gets them here. */
    if (cfg->hostname == NULL)
        config_default(cfg);
    struct conf_load ld = {.cfg = cfg, .file = path, .err = err};
    ld.dir = config_dir_of(path);
    size_t err0 = err->len;
    int bad = 0;

    free(cfg->path);
    cfg->path = xstrdup(path);
    /* With a file, local users are explicit, and mail goes next to it. */
    cfg->accept_any_user = 0;
    /* With a file, certificates and users are explicit too. */
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->users_file);
    cfg->tls_cert = cfg->tls_key = cfg->users_file = NULL;
    cfg->tls_selfsigned = 0;
    cfg->nlisteners = 1; /* 127.0.0.1:2525 mx; TLS listeners need a certificate */
    free(cfg->maildir);
    struct buf m = BUF_INIT;
    buf_printf(&m, "%s/var/mail/%%d/%%u/Maildir", strcmp(ld.dir, "/") ? ld.dir : "");
    cfg->maildir = buf_steal(&m);

    int oserr = 0;
    int rc = conf_lines_read(path, CONF_FILE_MAX, conf_parse_line, &ld, err, &oserr);
    if (rc == CONF_EREAD) {
        conf_error(err, path, 0, "cannot read: %s", strerror(oserr));
        bad = 1;
        goto out;
    }
    if (rc < 0)
        bad = 1;

    if (cfg->retry_max < cfg->retry_min) {
        unsigned line = ld.retry_max_line > ld.retry_min_line ? ld.retry_max_line
                                                              : ld.retry_min_line;
        conf_error(err, path, line, "retry_max (%us) is less than retry_min (%us)",
                   cfg->retry_max, cfg->retry_min);
        bad = 1;
    }

    /* "route = DOMAIN local" makes the domain local, wherever the line is. */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const char *d = cfg->routes[i].domain;
        if (cfg->routes[i].kind != CONF_ROUTE_LOCAL || conf_local_domain_index(cfg, d) >= 0)
            continue;
        cfg->local_domains = xrealloc(cfg->local_domains,
                                      (cfg->nlocal_domains + 1) * sizeof *cfg->local_domains);
        cfg->local_domains[cfg->nlocal_domains++] = xstrdup(d);
    }

    /* The tables come last: they check domains against local_domains. */
    conf_table_free(cfg->users);
    cfg->users = NULL;
    conf_table_free(cfg->aliases);
    cfg->aliases = NULL;
    if (tables && cfg->users_file) {
        rc = conf_users_load(cfg, cfg->users_file, err, &oserr);
        if (rc == CONF_EREAD)
            conf_error(err, path, ld.users_line, "users_file: cannot read %s: %s",
                       cfg->users_file, strerror(oserr));
        if (rc < 0)
            bad = 1;
    }
    if (tables && cfg->aliases_file) {
        rc = conf_aliases_load(cfg, cfg->aliases_file, err, &oserr);
        if (rc == CONF_EREAD)
            conf_error(err, path, ld.aliases_line, "aliases_file: cannot read %s: %s",
                       cfg->aliases_file, strerror(oserr));
        if (rc < 0)
            bad = 1;
    }
out:
    free(ld.dir);
    if (bad && err->len == err0)
        conf_error(err, path, 0, "invalid configuration");
    return bad ? -EINVAL : 0;
}

const char *config_authserv_id(const struct config *cfg)
{
    return cfg->authserv_id ? cfg->authserv_id : cfg->hostname;
}

void config_free(struct config *cfg)
{
    free(cfg->path);
    free(cfg->hostname);
    free(cfg->authserv_id);
    free(cfg->dmarc_report_org);
    free(cfg->dmarc_report_from);
    for (size_t i = 0; i < cfg->nlocal_domains; i++)
        free(cfg->local_domains[i]);
    free(cfg->local_domains);
    free(cfg->users_file);
    free(cfg->aliases_file);
    free(cfg->maildir);
    free(cfg->spool_dir);
    free(cfg->control_socket);
    free(cfg->run_user);
    free(cfg->mail_user);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].tls_cert);
        free(cfg->listeners[i].tls_key);
    }
    free(cfg->tls_cert);
    free(cfg->tls_key);
    for (size_t i = 0; i < cfg->ntls_sni; i++) {
        free(cfg->tls_sni[i].name);
        free(cfg->tls_sni[i].cert);
        free(cfg->tls_sni[i].key);
    }
    free(cfg->tls_sni);
    for (size_t i = 0; i < cfg->ndkim_sign; i++) {
        free(cfg->dkim_sign[i].domain);
        free(cfg->dkim_sign[i].selector);
        free(cfg->dkim_sign[i].key);
    }
    free(cfg->dkim_sign);
    free(cfg->tls_ciphers);
    free(cfg->relay_networks);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].domain);
        free(cfg->routes[i].auth_user);
        if (cfg->routes[i].auth_pass)
            explicit_bzero(cfg->routes[i].auth_pass, strlen(cfg->routes[i].auth_pass));
        free(cfg->routes[i].auth_pass);
    }
    free(cfg->routes);
    free(cfg->resolver);
    conf_table_free(cfg->users);
    conf_table_free(cfg->aliases);
    memset(cfg, 0, sizeof *cfg);
}

const char *config_role_name(enum conf_role r)
{
    switch (r) {
    case CONF_ROLE_MX:
        return "mx";
    case CONF_ROLE_SUBMISSION:
        return "submission";
    case CONF_ROLE_SMTPS:
        return "smtps";
    }
    return "unknown";
}

int config_is_local_domain(const struct config *cfg, const char *domain)
{
    return conf_local_domain_index(cfg, domain) >= 0;
}

int config_control_socket(const struct config *cfg, char *out, size_t outsize)
{
    int n = cfg->control_socket ? snprintf(out, outsize, "%s", cfg->control_socket)
                                : snprintf(out, outsize, "%s/control", cfg->spool_dir);
    return n < 0 || (size_t)n >= outsize ? -ENAMETOOLONG : 0;
}

static void config_note(struct buf *changed, const char *name)
{
    buf_printf(changed, "%s%s", changed->len ? ", " : "", name);
}

/* *dst = a copy of src, noting name in *changed when they differ. */
static void config_keep_str(char **dst, const char *src, const char *name, struct buf *changed)
{
    if ((*dst == NULL) != (src == NULL) || (src && strcmp(*dst, src) != 0))
        config_note(changed, name);
    free(*dst);
    *dst = src ? xstrdup(src) : NULL;
}

static int config_listener_same(const struct conf_listener *a, const struct conf_listener *b)
{
    return !strcmp(a->addr, b->addr) && a->port == b->port && a->role == b->role &&
           !((a->tls_cert == NULL) != (b->tls_cert == NULL) ||
             (a->tls_cert && strcmp(a->tls_cert, b->tls_cert))) &&
           !((a->tls_key == NULL) != (b->tls_key == NULL) ||
             (a->tls_key && strcmp(a->tls_key, b->tls_key)));
}

void config_keep_restart_settings(struct config *nc, const struct config *old,
                                  struct buf *changed)
{
    int same = nc->nlisteners == old->nlisteners;
    for (size_t i = 0; same && i < nc->nlisteners; i++)
        same = config_listener_same(&nc->listeners[i], &old->listeners[i]);
    if (!same)
        config_note(changed, "listen");
    for (size_t i = 0; i < nc->nlisteners; i++) {
        free(nc->listeners[i].tls_cert);
        free(nc->listeners[i].tls_key);
    }
    nc->nlisteners = old->nlisteners;
    for (size_t i = 0; i < old->nlisteners; i++) {
        nc->listeners[i] = old->listeners[i];
        nc->listeners[i].tls_cert = old->listeners[i].tls_cert ? xstrdup(old->listeners[i].tls_cert) : NULL;
        nc->listeners[i].tls_key = old->listeners[i].tls_key ? xstrdup(old->listeners[i].tls_key) : NULL;
    }
    config_keep_str(&nc->spool_dir, old->spool_dir, "spool_dir", changed);
    config_keep_str(&nc->control_socket, old->control_socket, "control_socket", changed);
    config_keep_str(&nc->run_user, old->run_user, "user", changed);
    config_keep_str(&nc->mail_user, old->mail_user, "mail_user", changed);
    /* The delivery process checks paths against the maildir it started with. */
    config_keep_str(&nc->maildir, old->maildir, "maildir", changed);
    if (nc->delivery_threads != old->delivery_threads)
        config_note(changed, "delivery_threads");
    nc->delivery_threads = old->delivery_threads;
    if (!config_listener_same(&nc->metrics_listen, &old->metrics_listen))
        config_note(changed, "metrics_listen");
    nc->metrics_listen = old->metrics_listen;
    if (nc->log != old->log || nc->log_format != old->log_format)
        config_note(changed, "log");
    nc->log = old->log;
    nc->log_format = old->log_format;
}
