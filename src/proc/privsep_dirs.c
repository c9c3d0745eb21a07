/* privsep_dirs.c: see privsep.h (privsep_prepare_dirs). */
#include "proc/privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/log.h"

/* The ids a dropped process has: no supplementary groups. */
struct privsep_who {
    const char *name;
    uid_t uid;
    gid_t gid;
};

static int privsep_who(const char *user, struct privsep_who *w)
{
    w->name = user;
    return privsep_user(user, &w->uid, &w->gid);
}

/* May w do `bits` (a mask of 4 read, 2 write, 1 search) to what st is? */
static int privsep_may(const struct stat *st, const struct privsep_who *w, unsigned bits)
{
    unsigned have = st->st_uid == w->uid   ? (st->st_mode >> 6) & 7
                    : st->st_gid == w->gid ? (st->st_mode >> 3) & 7
                                           : st->st_mode & 7;
    return (have & bits) == bits;
}

/* Every directory above `path` (which need not exist) must let w pass.
 * Returns 0, -EACCES after logging which one does not, or -ENAMETOOLONG /
 * getcwd's -errno. */
static int privsep_reachable(const char *path, const struct privsep_who *w, const char *what)
{
    char abs[PATH_MAX];
    if (path[0] == '/') {
        if (strlen(path) >= sizeof abs)
            return -ENAMETOOLONG;
        strcpy(abs, path);
    } else {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd) == NULL)
            return -errno;
        if ((size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, path) >= sizeof abs)
            return -ENAMETOOLONG;
    }
    for (char *p = abs + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        int ok = stat(abs, &st) < 0 || privsep_may(&st, w, 1);
        if (!ok) {
            log_err("the %s is out of reach of the user %s: %s is not searchable by it "
                    "(chmod o+x %s, or give it to the group %s)",
                    what, w->name, abs, abs, w->name);
            return -EACCES;
        }
        *p = '/';
    }
    return 0;
}

/* The directory the maildir template fixes (up to the last '/' before the
 * first '%'), into out; "" when there is none. */
static void privsep_maildir_root(const char *tmpl, char *out, size_t outsize)
{
    const char *pct = strchr(tmpl, '%');
    size_t n = pct ? (size_t)(pct - tmpl) : strlen(tmpl);
    while (n > 0 && tmpl[n - 1] != '/')
        n--;
    while (n > 1 && tmpl[n - 1] == '/')
        n--;
    if (n >= outsize)
        n = 0;
    memcpy(out, tmpl, n);
    out[n] = '\0';
}

/* A table the queue process reads again on a reload and for AUTH. */
static void privsep_warn_unreadable(const char *path, const struct privsep_who *w)
{
    struct stat st;
    if (path == NULL || stat(path, &st) < 0 || privsep_may(&st, w, 4))
        return;
    log_warn("%s is not readable by the user %s: reloads and AUTH will not see it "
             "(chgrp %s %s; chmod g+r %s)",
             path, w->name, w->name, path, path);
}

/* pickup/ must be the daemon user's: in a sticky directory only its owner
 * may remove the files others drop (`tern sendmail` run by root before the
 * daemon ever started creates it as root's). Returns 0 or -errno (logged
 * when the change failed). */
static int privsep_own_pickup(const struct config *cfg, const struct privsep_who *run)
{
    char dir[PATH_MAX];
    if ((size_t)snprintf(dir, sizeof dir, "%s/pickup", cfg->spool_dir) >= sizeof dir)
        return -ENAMETOOLONG;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno; /* the queue creates it */
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && (st.st_uid != run->uid || st.st_gid != run->gid)) {
        rc = fchown(fd, run->uid, run->gid) == 0 && fchmod(fd, 01733) == 0 ? 0 : -errno;
        if (rc == 0)
            log_info("gave %s to the user %s", dir, run->name);
    }
    if (rc < 0)
        log_err("cannot give %s to the user %s: %s", dir, run->name, strerror(-rc));
    close(fd);
    return rc;
}

int privsep_prepare_dirs(const struct config *cfg)
{
    if (geteuid() != 0)
        return 0;
    struct privsep_who run, mail;
    int rc = privsep_who(cfg->run_user, &run);
    if (rc == 0)
        rc = privsep_who(cfg->mail_user, &mail);
    if (rc == 0)
        rc = privsep_reachable(cfg->spool_dir, &run, "spool");
    if (rc == 0)
        rc = privsep_own_pickup(cfg, &run);
    if (rc < 0)
        return rc;
    char root[PATH_MAX];
    privsep_maildir_root(cfg->maildir, root, sizeof root);
    if (root[0] != '\0') {
        struct stat st;
        if (stat(root, &st) < 0) {
            /* Missing: made for the mail user, as an installer would. */
            rc = fsio_mkdirs(root, 0755);
            if (rc == 0 && (chown(root, mail.uid, mail.gid) < 0 || chmod(root, 0700) < 0))
                rc = -errno;
            if (rc < 0) {
                log_err("cannot create the mail root %s: %s", root, strerror(-rc));
                return rc;
            }
            log_info("created the mail root %s for the user %s", root, mail.name);
        } else if (!privsep_may(&st, &mail, 3)) {
            log_err("the mail root %s is not writable by the user %s, who delivers mail "
                    "(chown %s %s)",
                    root, mail.name, mail.name, root);
            return -EACCES;
        }
        rc = privsep_reachable(root, &mail, "mail root");
        if (rc < 0)
            return rc;
    }
    privsep_warn_unreadable(cfg->path, &run);
    privsep_warn_unreadable(cfg->users_file, &run);
    privsep_warn_unreadable(cfg->aliases_file, &run);
    return 0;
}
