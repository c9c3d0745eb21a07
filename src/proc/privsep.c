#include "proc/privsep.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/log.h"

/* The uid and gid of an unprivileged user; -1 after logging why not. */
static int privsep_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = user && user[0] ? getpwnam(user) : NULL;
    if (pw == NULL || pw->pw_uid == 0) {
        log_err("privsep: no unprivileged user '%s' (create it, e.g. adduser --system --group "
                "%s, or name another in the configuration)",
                user ? user : "", user ? user : "");
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Becomes uid/gid for good: no supplementary groups, no way back. */
static int privsep_become(const char *user, uid_t uid, gid_t gid)
{
    pid_t parent = getppid();
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        log_err("privsep: cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        log_err("privsep: could regain root after dropping it");
        return -1;
    }
    /* The kernel forgets the parent-death signal when the uid changes;
     * without it a child would outlive a killed supervisor. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
        log_err("privsep: the supervisor is gone");
        return -1;
    }
    return 0;
}

int privsep_check_user(const char *user)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    return privsep_lookup(user, &uid, &gid);
}

int privsep_drop(const char *user)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    if (privsep_lookup(user, &uid, &gid) < 0)
        return -1;
    tzset();
    return privsep_become(user, uid, gid);
}

int privsep_confine(const char *emptydir, const char *user)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    if (privsep_lookup(user, &uid, &gid) < 0)
        return -1;
    int rc = fsio_mkdirs(emptydir, 0555);
    if (rc < 0) {
        log_err("privsep: cannot create %s: %s", emptydir, strerror(-rc));
        return -1;
    }
    struct stat st;
    if (stat(emptydir, &st) < 0 || st.st_uid != 0 || (st.st_mode & 0022)) {
        log_err("privsep: %s must be owned by root and not writable by others", emptydir);
        return -1;
    }
    /* The time zone is read now: /etc/localtime is out of reach afterwards. */
    tzset();
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
#ifndef TERN_SANITIZE
    if (chroot(emptydir) < 0 || chdir("/") < 0) {
        log_err("privsep: chroot %s: %s", emptydir, strerror(errno));
        return -1;
    }
#else
    /* LeakSanitizer reads /proc at exit, which a chroot hides: sanitizer
     * builds (tests only) keep the user switch and skip the chroot. */
    if (chdir("/") < 0)
        return -1;
#endif
    return privsep_become(user, uid, gid);
}

/* nftw has no argument for its callback: the owner being set. */
static uid_t privsep_tree_uid;
static gid_t privsep_tree_gid;
static const char *privsep_tree_skip;

static int privsep_chown_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    if (privsep_tree_skip && strcmp(path, privsep_tree_skip) == 0)
        return FTW_SKIP_SUBTREE;
    if ((st->st_uid != privsep_tree_uid || st->st_gid != privsep_tree_gid) &&
        lchown(path, privsep_tree_uid, privsep_tree_gid) < 0) {
        log_err("privsep: cannot give %s to the daemon's user: %s", path, strerror(errno));
        return FTW_STOP;
    }
    return FTW_CONTINUE;
}

int privsep_own_tree(const char *dir, const char *user, const char *skip)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    if (privsep_lookup(user, &uid, &gid) < 0)
        return -1;
    int rc = fsio_mkdirs(dir, 0700);
    if (rc < 0) {
        log_err("privsep: cannot create %s: %s", dir, strerror(-rc));
        return -1;
    }
    privsep_tree_uid = uid;
    privsep_tree_gid = gid;
    privsep_tree_skip = skip;
    rc = nftw(dir, privsep_chown_one, 16, FTW_PHYS | FTW_ACTIONRETVAL);
    privsep_tree_skip = NULL;
    return rc == 0 ? 0 : -1;
}
