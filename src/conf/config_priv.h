/* config_priv: what the files of conf/ share and nobody else sees. */
#ifndef TERN_CONF_CONFIG_PRIV_H
#define TERN_CONF_CONFIG_PRIV_H

#include <errno.h>
#include <stddef.h>

#include "base/buf.h"
#include "conf/config.h"

/* The config file is small and read once; the users and aliases tables
 * may hold many entries. Both are read whole, so both are capped. */
#define CONF_FILE_MAX (1u << 20)
#define CONF_TABLE_FILE_MAX (64u << 20)

/* Alias expansion stops this many levels below the original address. */
#define CONF_EXPAND_DEPTH_MAX 16

/* Called for each non-blank line of a file with comments removed and
 * leading and trailing white space trimmed (the line is writable).
 * Returns 0, or -EINVAL after appending one error line to the reader's err. */
typedef int (*conf_line_fn)(void *arg, char *line, unsigned lineno);

/* What conf_lines_read() and the table loaders return. */
#define CONF_ELINES (-EINVAL) /* errors in lines, appended to err */
#define CONF_EREAD (-EIO)     /* the file cannot be read; *oserr holds errno */

/* Reads `path` (at most `max` bytes) and calls fn for each line. A '#' at
 * the start of a line or after white space starts a comment; CRLF line
 * ends are accepted. Returns CONF_EREAD if the file cannot be read
 * (nothing appended: the caller says who named the file), CONF_ELINES if
 * a line had an error (fn's, or a NUL byte, appended to err as
 * "path:line: ..."), else 0. Every line is visited even after an error,
 * so all errors are reported at once. */
int conf_lines_read(const char *path, size_t max, conf_line_fn fn, void *arg, struct buf *err,
                    int *oserr);

/* Is s (1..64 octets) safe as a single path element once lowercased:
 * only ASCII letters, digits, '.', '_', '+', '-', and not starting with
 * '.'? This is what keeps "../x" or "a/b" from ever reaching a Maildir
 * path, whatever a peer sends. */
int conf_name_safe(const char *s);

/* Is s a domain name (letters, digits, '-', labels of 1..63 octets, at
 * most 255 octets)? With allow_literal, an address literal "[1.2.3.4]"
 * or "[IPv6:::1]" (RFC 5321 §4.1.3) is accepted too. */
int conf_domain_valid(const char *s, int allow_literal);

/* Index of `domain` in cfg->local_domains (case-insensitive), or -ENOENT. */
int conf_local_domain_index(const struct config *cfg, const char *domain);

/* Loads the users and aliases files into cfg->users / cfg->aliases
 * (replacing any previous table). Needs cfg->local_domains to be final.
 * Errors are appended as "file:line: ..."; returns 0, CONF_ELINES or
 * CONF_EREAD (with *oserr) like conf_lines_read(). */
int conf_users_load(struct config *cfg, const char *path, struct buf *err, int *oserr);
int conf_aliases_load(struct config *cfg, const char *path, struct buf *err, int *oserr);

/* Is local@domain (domain already known local) a user: in the users table,
 * or any safe name when accept_any_user is on? */
int conf_is_user(const struct config *cfg, const char *local, const char *domain);

/* Parses one "key = value" line of the config file into cfg (see
 * config_parse.c); the state lives across the lines of one file. */
struct conf_load {
    struct config *cfg;
    const char *file; /* as given to config_load, for messages */
    char *dir;        /* owned: directory of the file, absolute if possible */
    struct buf *err;
    int listen_set;   /* the first listen/local_domains replace the defaults */
    int domains_set;
    unsigned users_line, aliases_line; /* where the files were named */
    unsigned retry_min_line, retry_max_line;
};

int conf_parse_line(void *arg, char *line, unsigned lineno);

/* Parses "ADDR:PORT" ("[v6]:PORT" for IPv6) into l (role untouched).
 * Returns 0, or -EINVAL with a short reason in *why. */
int conf_parse_hostport(const char *s, struct conf_listener *l, const char **why);

/* Parses "ADDR/PREFIX" (or a bare address: a host) into c. Returns 0 or -EINVAL. */
int conf_parse_cidr(const char *s, struct conf_cidr *c);

/* Appends "file:line: " then the formatted text and a newline to err. */
void conf_error(struct buf *err, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
