/* config: tern's settings. One file of "key = value" lines (see
 * docs/config.md); every setting has a default; errors name file:line.
 * With no file at all, config_default() gives the embedded local
 * development mode of `make run`. */
#ifndef TERN_CONF_CONFIG_H
#define TERN_CONF_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "mail/mailaddr.h"

#define CONF_MAX_LISTENERS 32

enum conf_role { CONF_ROLE_MX = 0, CONF_ROLE_SUBMISSION = 1, CONF_ROLE_SMTPS = 2 };
enum conf_bare_lf { CONF_BARE_NORMALIZE = 0, CONF_BARE_REJECT = 1 };
enum conf_log { CONF_LOG_STDERR = 0, CONF_LOG_SYSLOG = 1 };
enum conf_log_format { CONF_LOG_LINE = 0, CONF_LOG_JSON = 1 };

struct conf_listener {
    char addr[64]; /* numeric IPv4 or IPv6 (without brackets) */
    int port;
    enum conf_role role;
    char *tls_cert; /* owned, NULL = the global tls_cert */
    char *tls_key;  /* owned, NULL = the global tls_key */
};

/* A certificate chosen by the client's SNI (tls_sni lines). */
struct conf_sni {
    char *name; /* owned, lowercased; "*.example.org" matches one label */
    char *cert; /* owned path */
    char *key;  /* owned path */
};

/* dkim_sign lines at most: their keys travel to the queue process in one
 * IPC message (proc/dkim_keys.h). */
#define CONF_DKIM_SIGN_MAX 48

/* A DKIM signing key (dkim_sign lines): mail whose From domain is
 * `domain` is signed with it, with d=domain and s=selector. */
struct conf_dkim_sign {
    char *domain;   /* owned, lowercased, no final dot */
    char *selector; /* owned */
    char *key;      /* owned path of the PEM private key (RSA or Ed25519) */
};

/* A network of relay_networks: addr/prefix, IPv4 as 4 bytes. */
struct conf_cidr {
    unsigned char addr[16];
    int family; /* AF_INET or AF_INET6 */
    unsigned prefix;
};

/* Where mail for a domain goes (route lines). */
enum conf_route_kind {
    CONF_ROUTE_MX = 0,
    CONF_ROUTE_HOST = 1,
    CONF_ROUTE_DISCARD = 2,
    CONF_ROUTE_LOCAL = 3, /* delivered here: the domain is added to local_domains */
};
/* Outbound TLS: opportunistic (RFC 7435), required, required with a
 * certificate that verifies for the host name, or never (a next hop whose
 * STARTTLS is known to be broken; Postfix's security level "none"). */
enum conf_tls_policy {
    CONF_TLS_MAY = 0,
    CONF_TLS_REQUIRE = 1,
    CONF_TLS_VERIFY = 2,
    CONF_TLS_NONE = 3,
};
struct conf_route {
    char *domain; /* owned, lowercased; "*" for every other domain */
    enum conf_route_kind kind;
    char host[64]; /* CONF_ROUTE_HOST: numeric address */
    int port;
    enum conf_tls_policy tls;
    char *auth_user; /* owned, NULL: no AUTH (a smarthost's login) */
    char *auth_pass; /* owned */
};

/* What a DMARC failure does (RFC 7489 §6.7): enforce the domain's policy
 * (p=reject refused, p=quarantine filed as junk) or only report it. */
enum conf_dmarc_policy { CONF_DMARC_ENFORCE = 0, CONF_DMARC_REPORT = 1 };

/* Which envelope senders an authenticated user may use. */
enum conf_sender_check { CONF_SENDER_OWN = 0, CONF_SENDER_DOMAIN = 1, CONF_SENDER_ANY = 2 };

struct conf_table; /* users and aliases, opaque */

struct config {
    char *path; /* owned; NULL for the embedded default */
    char *hostname; /* owned */
    struct conf_listener listeners[CONF_MAX_LISTENERS];
    size_t nlisteners;
    char **local_domains; /* owned array of owned, lowercased names */
    size_t nlocal_domains;
    char *users_file;   /* owned, may be NULL */
    char *aliases_file; /* owned, may be NULL */
    int accept_any_user; /* embedded default: every safe local part exists */
    char *maildir;   /* owned template: %u local part, %d domain; relative to cwd allowed */
    char *spool_dir; /* owned */
    char *control_socket; /* owned, NULL = <spool_dir>/control (config_control_socket) */
    char *run_user;  /* owned: the unprivileged user of the daemon when started as root */
    char *mail_user; /* owned: the owner of Maildirs; local delivery runs as this user */
    unsigned shutdown_timeout; /* 30 s: SIGTERM lets sessions finish this long */
    enum conf_log log;
    enum conf_log_format log_format; /* line (Postfix's shape) or json */
    int debug;

    /* Limits (RFC 5321 §4.5.3.1 minimums as defaults where it gives one). */
    size_t cmd_line_max;      /* 512 */
    size_t text_line_max;     /* 1000, 0 = unlimited */
    uint64_t message_size_max; /* 36700160 (35 MiB) */
    size_t rcpt_max;          /* 100 */
    unsigned bad_commands_max; /* 20 */
    unsigned rcpt_refused_max; /* 100 */
    unsigned sessions_max;     /* 2000 */
    unsigned sessions_per_ip;  /* 50 */
    size_t received_max;       /* 100: loop detection (Received headers) */
    enum conf_bare_lf bare_lf;

    /* Timeouts in seconds (RFC 5321 §4.5.3.2: server 5 minutes). */
    unsigned timeout_command; /* 300 */
    unsigned timeout_data;    /* 180, between blocks of DATA */
    unsigned timeout_command_line; /* 300: a whole command line, however it trickles */
    uint64_t data_rate_min;   /* 256 octets/s of DATA/BDAT content per window, 0 = off */
    unsigned data_rate_window; /* 30 s */
    /* Stress (Postfix's stress mode): with stress_threshold % of
     * sessions_max open, idle timeouts and the command line deadline
     * shrink to timeout_stress. */
    unsigned stress_threshold; /* 80 (%), 0 = never */
    unsigned timeout_stress;   /* 10 s */
    unsigned delivery_threads; /* 8: parallel local deliveries */
    unsigned retry_min;  /* 300 s: first retry */
    unsigned retry_max;  /* 4000 s: cap of the backoff */
    unsigned queue_lifetime; /* 432000 s (5 days) */
    uint64_t queue_minfree;  /* 64 MiB: spool space kept for the queue's own notices */

    /* TLS (RFC 3207, RFC 8314). */
    char *tls_cert; /* owned PEM chain path, may be NULL */
    char *tls_key;  /* owned PEM key path, may be NULL */
    int tls_selfsigned; /* embedded default: create tls_cert/tls_key if missing */
    struct conf_sni *tls_sni; /* owned array */
    size_t ntls_sni;
    struct conf_dkim_sign *dkim_sign; /* owned array, in the file's order */
    size_t ndkim_sign;
    int tls_min_version; /* 12 or 13 */
    char *tls_ciphers;   /* owned: OpenSSL list for TLS 1.2 */
    unsigned timeout_tls; /* 60 s: the whole handshake */

    /* AUTH (RFC 4954) and relay control. */
    int auth_plaintext_loopback; /* AUTH without TLS from 127.0.0.0/8 and ::1 */
    unsigned auth_failures_max;   /* 10 per IP or user within the window */
    unsigned auth_failure_window; /* 900 s */
    unsigned auth_failure_delay_max; /* 8 s: cap of the growing delay per failure, 0 = none */
    unsigned auth_cache_ttl;      /* 3600 s: verified credentials remembered */
    struct conf_cidr *relay_networks; /* owned array */
    size_t nrelay_networks;
    enum conf_sender_check sender_check;

    /* Relay (outbound SMTP). */
    struct conf_route *routes; /* owned array, in file order */
    size_t nroutes;
    unsigned relay_port;  /* 25: the port of MX hosts */
    char *resolver;       /* owned "ADDR:PORT", NULL = the system's resolv.conf */
    unsigned delay_warning; /* 4 h: a delay DSN after this long (0 = never) */
    unsigned connections_max;   /* 100 outbound connections in all */
    unsigned connections_per_destination; /* 10 to one next-hop address */
    unsigned relay_time_limit; /* 3600 s: one relay request, all its next hops */

    /* Mail authentication of inbound mail (SPF, DKIM, DMARC) from clients
     * that are neither authenticated nor in relay_networks. */
    int mail_auth_checks;         /* yes */
    char *authserv_id;            /* owned, NULL = hostname (config_authserv_id) */
    unsigned mail_auth_time_limit; /* 20 s: DNS for one message's checks */
    int spf_reject_fail;          /* no: SPF fail refused at RCPT (550 5.7.23) */
    int spf_defer_temperror;      /* no: SPF temperror deferred at RCPT (451 4.7.24) */
    enum conf_dmarc_policy dmarc_policy;
    /* DMARC aggregate reports (`tern dmarc report`, RFC 7489 §7.2). */
    char *dmarc_report_org;  /* owned, NULL = hostname: the report's org_name */
    char *dmarc_report_from; /* owned, NULL = noreply-dmarc@<hostname>: From and
                              * the report's contact email */

    /* Prometheus metrics over HTTP (proc/metrics_http): port 0 = off.
     * Loopback only (config_check): the endpoint has no authentication. */
    struct conf_listener metrics_listen; /* no cert/key: those stay NULL */

    struct conf_table *users;   /* owned, may be NULL */
    struct conf_table *aliases; /* owned, may be NULL */
};

/* Fills *cfg with the embedded default: 127.0.0.1:2525 mx, hostname from
 * the machine, local domain "localhost", any local part,
 * var/mail/%u/Maildir, var/spool. */
void config_default(struct config *cfg);

/* The authserv-id of the Authentication-Results tern writes (RFC 8601
 * §2.5): authserv_id, or the hostname. */
const char *config_authserv_id(const struct config *cfg);

/* Reads `path` over the defaults. On error returns -EINVAL and appends
 * "file:line: what is wrong" lines to *err. Loads the users and aliases
 * files it names. */
int config_load(struct config *cfg, const char *path, struct buf *err);
/* The same without the users and aliases files (left NULL): for
 * `tern sendmail`, whose users may not read them. */
int config_load_settings(struct config *cfg, const char *path, struct buf *err);

/* The embedded default's tables: loads users_file (var/users) if it
 * exists. Returns 0, or -EINVAL with messages appended to *err. */
int config_load_default_tables(struct config *cfg, struct buf *err);

/* Reads users_file again into a new table (owned by the caller), for
 * password changes without a restart. NULL when there is no file, or on
 * an error (then with messages in *err). */
struct conf_table *config_users_read(const struct config *cfg, struct buf *err);

/* The control socket's path (control_socket, else <spool_dir>/control)
 * into out. Returns 0, or -ENAMETOOLONG if it does not fit. */
int config_control_socket(const struct config *cfg, char *out, size_t outsize);

/* Semantic checks (listeners bindable addresses, files present, aliases
 * resolve, ...). Returns 0, or -EINVAL with messages appended to *err;
 * warnings (also appended, prefixed "warning: ") do not fail. */
int config_check(const struct config *cfg, struct buf *err);

void config_free(struct config *cfg);

/* A reload: the settings only a restart can change (listen, spool_dir,
 * control_socket, user, mail_user, maildir, delivery_threads,
 * metrics_listen, log) are copied from
 * old into nc; the names of those that differed are appended to *changed
 * (", "-separated). */
void config_keep_restart_settings(struct config *nc, const struct config *old,
                                  struct buf *changed);

/* The certificate and key of listener l: its own, else the global ones
 * (either may be NULL when none is configured). */
const char *config_listener_cert(const struct config *cfg, const struct conf_listener *l);
const char *config_listener_key(const struct config *cfg, const struct conf_listener *l);

/* The route for a (lowercased) domain: its own line, else "*", else
 * NULL (deliver by MX). */
const struct conf_route *config_route(const struct config *cfg, const char *domain);

/* Is the numeric address ip inside one of relay_networks? */
int config_relay_allowed(const struct config *cfg, const char *ip);

/* Is the numeric address ip a loopback address (127.0.0.0/8, ::1)? */
int config_ip_is_loopback(const char *ip);

/* Name of a role as written in the file ("mx", "submission", "smtps"). */
const char *config_role_name(enum conf_role r);

/* Is `domain` one of the local domains (case-insensitive)? */
int config_is_local_domain(const struct config *cfg, const char *domain);

enum conf_rcpt {
    CONF_RCPT_LOCAL = 0,    /* a local user, an alias, or postmaster */
    CONF_RCPT_UNKNOWN = 1,  /* local domain, no such user: 550 5.1.1 */
    CONF_RCPT_REMOTE = 2,   /* not a local domain: relaying */
};

/* Classifies a recipient for RCPT TO. Bare "<postmaster>" and
 * postmaster@<any local domain> are always local (RFC 5321 §4.5.1). */
enum conf_rcpt config_rcpt_check(const struct config *cfg, const struct mailaddr *rcpt);

/* One final local mailbox after alias expansion. */
struct conf_mailbox {
    char user[MAILADDR_LOCAL_MAX + 1]; /* lowercased local part, safe as a path element */
    char domain[MAILADDR_DOMAIN_MAX + 1];
};

/* Expands a local recipient ("user@domain" or "postmaster") through the
 * aliases (recursively, at most 16 deep, each mailbox once) into final
 * mailboxes, appended to *out (an owned array the caller frees) with
 * *n updated. Returns 0, or -ENOENT if nothing deliverable results (an
 * alias loop, an unknown user, a domain that is not local). */
int config_expand(const struct config *cfg, const char *addr, struct conf_mailbox **out,
                  size_t *n);

/* Writes the Maildir path of a mailbox (the template with %u and %d
 * filled in) to out. Returns 0, -EINVAL for a user or domain that is no
 * safe path element (or a bad template), or -ENAMETOOLONG if it does not
 * fit. */
int config_maildir_path(const struct config *cfg, const struct conf_mailbox *mb, char *out,
                        size_t outsize);

#endif
