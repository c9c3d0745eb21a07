/* table_load.c: the users and aliases files.
 *
 * users:   "name" or "name@domain", optionally ":hash" (kept for AUTH).
 *          A name without a domain is a user in every local domain.
 * aliases: "alias: target, target2 ..." where the alias and each target
 *          are a local part or local@<local domain>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "conf/config_priv.h"
#include "conf/table.h"
#include "mail/mailaddr.h"

struct conf_table_load {
    struct config *cfg;
    struct conf_table *t;
    const char *file;
    struct buf *err;
};

/* Checks "local" or "local@domain" (lowercasing it in place) as a name
 * of the users or aliases file. `what` names it in messages. Returns 0,
 * 1 for a domain that is not local (the caller decides what that means),
 * or -EINVAL after appending an error. */
static int conf_check_name(struct conf_table_load *tl, char *name, unsigned line,
                           const char *what)
{
    strutil_lower(name);
    char *at = strchr(name, '@');
    if (at)
        *at = '\0';
    int rc = 0;
    if (!conf_name_safe(name)) {
        conf_error(tl->err, tl->file, line,
                   "%s '%s': a local part may only hold a-z 0-9 . _ + - (not first '.'), "
                   "at most 64 octets",
                   what, strutil_esc(name));
        rc = -EINVAL;
    } else if (at && conf_local_domain_index(tl->cfg, at + 1) < 0) {
        rc = 1;
    }
    if (at)
        *at = '@';
    return rc;
}

static int conf_users_line(void *arg, char *line, unsigned lineno)
{
    struct conf_table_load *tl = arg;
    char *hash = strchr(line, ':');
    if (hash) {
        char *end = hash;
        *hash++ = '\0';
        while (end > line && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        while (*hash == ' ' || *hash == '\t')
            hash++;
    }
    if (*line == '\0' || strpbrk(line, " \t")) {
        conf_error(tl->err, tl->file, lineno, "expected 'name' or 'name@domain' [':' hash]");
        return -EINVAL;
    }
    int rc = conf_check_name(tl, line, lineno, "user");
    if (rc < 0)
        return rc;
    if (rc > 0) {
        conf_error(tl->err, tl->file, lineno, "user '%s': the domain is not in local_domains",
                   strutil_esc(line));
        return -EINVAL;
    }
    unsigned prev = 0;
    struct conf_entry *e = conf_table_add(tl->t, line, lineno, &prev);
    if (e == NULL) {
        conf_error(tl->err, tl->file, lineno, "duplicate user '%s' (first on line %u)",
                   strutil_esc(line), prev);
        return -EINVAL;
    }
    if (hash && *hash)
        conf_entry_add_val(e, hash);
    return 0;
}

static int conf_aliases_line(void *arg, char *line, unsigned lineno)
{
    struct conf_table_load *tl = arg;
    char *colon = strchr(line, ':');
    if (colon == NULL) {
        conf_error(tl->err, tl->file, lineno, "missing ':' (expected alias: target, ...)");
        return -EINVAL;
    }
    char *name = line, *end = colon;
    *colon = '\0';
    while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    if (*name == '\0' || strpbrk(name, " \t")) {
        conf_error(tl->err, tl->file, lineno, "expected 'alias: target, ...'");
        return -EINVAL;
    }
    int rc = conf_check_name(tl, name, lineno, "alias");
    if (rc < 0)
        return rc;
    if (rc > 0) {
        conf_error(tl->err, tl->file, lineno, "alias '%s': the domain is not in local_domains",
                   strutil_esc(name));
        return -EINVAL;
    }
    /* Check every target before adding anything, so a bad line leaves no
     * half alias behind. */
    char **targets = NULL; /* pointers into line */
    size_t nt = 0;
    int bad = 0;
    char *p = colon + 1;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        char *t = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        if (*p)
            *p++ = '\0';
        /* A target in another domain (rc > 0) is relayed to. */
        rc = conf_check_name(tl, t, lineno, "alias target");
        if (rc < 0) {
            bad = 1;
        } else {
            targets = xrealloc(targets, (nt + 1) * sizeof *targets);
            targets[nt++] = t;
        }
    }
    if (bad)
        goto out;
    if (nt == 0) {
        conf_error(tl->err, tl->file, lineno, "alias '%s' has no targets", strutil_esc(name));
        bad = 1;
        goto out;
    }
    unsigned prev = 0;
    struct conf_entry *e = conf_table_add(tl->t, name, lineno, &prev);
    if (e == NULL) {
        conf_error(tl->err, tl->file, lineno, "duplicate alias '%s' (first on line %u)",
                   strutil_esc(name), prev);
        bad = 1;
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = !strcmp(targets[i], targets[j]);
        if (!dup)
            conf_entry_add_val(e, targets[i]);
    }
out:
    free(targets);
    return bad ? -EINVAL : 0;
}

static int conf_table_load(struct config *cfg, struct conf_table **slot, const char *path,
                           conf_line_fn fn, struct buf *err, int *oserr)
{
    struct conf_table_load tl = {.cfg = cfg, .file = path, .err = err};
    tl.t = conf_table_new(path);
    int rc = conf_lines_read(path, CONF_TABLE_FILE_MAX, fn, &tl, err, oserr);
    conf_table_free(*slot);
    *slot = tl.t;
    return rc;
}

int conf_users_load(struct config *cfg, const char *path, struct buf *err, int *oserr)
{
    return conf_table_load(cfg, &cfg->users, path, conf_users_line, err, oserr);
}

int conf_aliases_load(struct config *cfg, const char *path, struct buf *err, int *oserr)
{
    return conf_table_load(cfg, &cfg->aliases, path, conf_aliases_line, err, oserr);
}
