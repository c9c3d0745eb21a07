/* config_fixture.h: what test_config and test_tables share: a temporary
 * directory, files written into it, a configuration loaded from text, and
 * the lookups the checks read. Static, per test program. */
#ifndef TERN_TEST_CONFIG_FIXTURE_H
#define TERN_TEST_CONFIG_FIXTURE_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "check.h"
#include "conf/config.h"
#include "conf/table.h"
#include "mail/mailaddr.h"

#define FIXTURE_UNUSED __attribute__((unused))

static char tmpdir[PATH_MAX]; /* realpath of this run's directory */

FIXTURE_UNUSED static void make_tmpdir(void)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/test_conf.XXXXXX", base);
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Writes tmpdir/name and returns its path in a static buffer per slot. */
FIXTURE_UNUSED static const char *put(const char *name, const char *content)
{
    static char paths[8][PATH_MAX + 64];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, PATH_MAX + 64, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    if (f == NULL) {
        perror(p);
        exit(1);
    }
    fputs(content, f);
    fclose(f);
    return p;
}

/* Loads `content` as tmpdir/tern.conf over the defaults. */
FIXTURE_UNUSED static int load(struct config *cfg, struct buf *err, const char *content)
{
    config_default(cfg);
    buf_reset(err);
    return config_load(cfg, put("tern.conf", content), err);
}

FIXTURE_UNUSED static int has(const struct buf *err, const char *s)
{
    return err->data && strstr(err->data, s) != NULL;
}

/* Is there an error line "tmpdir/tern.conf:LINE: <text...>"? */
FIXTURE_UNUSED static int has_at(const struct buf *err, const char *file, unsigned line, const char *text)
{
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want, "%s/%s:%u: %s", tmpdir, file, line, text);
    int ok = has(err, want);
    if (!ok)
        fprintf(stderr, "  missing \"%s\" in:\n%s", want, err->data ? err->data : "(none)\n");
    return ok;
}

FIXTURE_UNUSED static size_t count_lines(const struct buf *err)
{
    size_t n = 0;
    for (size_t i = 0; i < err->len; i++)
        n += err->data[i] == '\n';
    return n;
}

FIXTURE_UNUSED static struct mailaddr addr(const char *local, const char *domain)
{
    struct mailaddr a;
    memset(&a, 0, sizeof a);
    snprintf(a.local, sizeof a.local, "%s", local);
    snprintf(a.domain, sizeof a.domain, "%s", domain);
    snprintf(a.text, sizeof a.text, "%s@%s", local, domain);
    return a;
}

FIXTURE_UNUSED static enum conf_rcpt rcpt(const struct config *cfg, const char *local, const char *domain)
{
    struct mailaddr a = addr(local, domain);
    return config_rcpt_check(cfg, &a);
}

/* Expands addr and returns the mailboxes as "u@d u@d ..." in order, or
 * "-1" when config_expand fails. */
FIXTURE_UNUSED static const char *expand(const struct config *cfg, const char *a)
{
    static char out[4096];
    struct conf_mailbox *mb = NULL;
    size_t n = 0;
    if (config_expand(cfg, a, &mb, &n) < 0) {
        CHECK_EQ_INT(n, 0);
        free(mb);
        return "-1";
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(out);
        snprintf(out + l, sizeof out - l, "%s%s@%s", i ? " " : "", mb[i].user, mb[i].domain);
    }
    free(mb);
    return out;
}

#endif
