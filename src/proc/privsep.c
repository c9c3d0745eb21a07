#include "proc/privsep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

/* The uid and gid of an unprivileged user; -ENOENT (-EPERM for root)
 * after logging why not. */
static int privsep_lookup(const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd *pw = user && user[0] ? getpwnam(user) : NULL;
    if (pw == NULL || pw->pw_uid == 0) {
        log_err("privsep: no unprivileged user '%s' (create it, e.g. adduser --system --group "
                "%s, or name another in the configuration)",
                user ? user : "", user ? user : "");
        return pw == NULL ? -ENOENT : -EPERM;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* Becomes uid/gid for good: no supplementary groups, no way back.
 * Returns 0, or -errno after logging why (-EPERM: root could be had back,
 * -ESRCH: the supervisor is gone). */
static int privsep_become(const char *user, uid_t uid, gid_t gid)
{
    pid_t parent = getppid();
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        int err = errno;
        log_err("privsep: cannot become %s: %s", user, strerror(err));
        return -err;
    }
    if (setuid(0) == 0) {
        log_err("privsep: could regain root after dropping it");
        return -EPERM;
    }
    /* The kernel forgets the parent-death signal when the uid changes;
     * without it a child would outlive a killed supervisor. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
        log_err("privsep: the supervisor is gone");
        return -ESRCH;
    }
    return 0;
}

/* Started as root: the ids of `user` (1), or 0 when not root (a normal
 * user's tern changes nothing), or privsep_lookup's -errno after logging
 * why. */
static int privsep_target(const char *user, uid_t *uid, gid_t *gid)
{
    if (geteuid() != 0)
        return 0;
    int rc = privsep_lookup(user, uid, gid);
    return rc < 0 ? rc : 1;
}

int privsep_user(const char *user, uid_t *uid, gid_t *gid)
{
    return privsep_lookup(user, uid, gid);
}

int privsep_check_user(const char *user)
{
    uid_t uid;
    gid_t gid;
    int t = privsep_target(user, &uid, &gid);
    return t < 0 ? t : 0;
}

int privsep_drop(const char *user)
{
    uid_t uid;
    gid_t gid;
    int t = privsep_target(user, &uid, &gid);
    if (t <= 0)
        return t;
    tzset();
    return privsep_become(user, uid, gid);
}

int privsep_confine(const char *emptydir, const char *user)
{
    uid_t uid;
    gid_t gid;
    int t = privsep_target(user, &uid, &gid);
    if (t <= 0)
        return t;
    int rc = fsio_mkdirs(emptydir, 0555);
    if (rc < 0) {
        log_err("privsep: cannot create %s: %s", emptydir, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (stat(emptydir, &st) < 0)
        rc = -errno;
    else if (st.st_uid != 0 || (st.st_mode & 0022))
        rc = -EPERM;
    if (rc < 0) {
        log_err("privsep: %s must be owned by root and not writable by others", emptydir);
        return rc;
    }
    /* The time zone is read now: /etc/localtime is out of reach afterwards. */
    tzset();
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
#ifndef TERN_SANITIZE
    if (chroot(emptydir) < 0 || chdir("/") < 0) {
        int err = errno;
        log_err("privsep: chroot %s: %s", emptydir, strerror(err));
        return -err;
    }
#else
    /* LeakSanitizer reads /proc at exit, which a chroot hides: sanitizer
     * builds (tests only) keep the user switch and skip the chroot. */
    if (chdir("/") < 0)
        return -errno;
#endif
    return privsep_become(user, uid, gid);
}

/* Gives the regular file `name` in dirfd to uid/gid, through a descriptor
 * so that what is checked is what is changed. A file with more than one
 * link may be a hard link to something outside: it is left alone. */
static int privsep_chown_file(int dirfd, const char *name, uid_t uid, gid_t gid)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP ? 0 : -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISREG(st.st_mode) && st.st_nlink == 1 && (st.st_uid != uid || st.st_gid != gid) &&
             fchown(fd, uid, gid) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Gives the directory open as dirfd and everything below it to uid/gid.
 * The walk goes by descriptor and never follows a symbolic link, so a
 * directory swapped for a link halfway leads nowhere. At the top level,
 * `skip` (may be NULL) is left alone and only the directory `shallow`
 * (may be NULL) itself changes owner, not what is in it. The directory's
 * own owner changes last: a walk cut short is done again next time. */
static int privsep_chown_dir(int dirfd, uid_t uid, gid_t gid, const char *skip,
                             const char *shallow, int depth)
{
    if (depth > 16)
        return -ELOOP;
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        int err = -errno;
        if (fd >= 0)
            close(fd);
        return err;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (skip && strcmp(name, skip) == 0))
            continue;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = errno == ENOENT ? 0 : -errno;
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            rc = privsep_chown_file(dirfd, name, uid, gid);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 0 : -errno;
                continue;
            }
            if (shallow && strcmp(name, shallow) == 0)
                rc = fchown(sub, uid, gid) < 0 ? -errno : 0;
            else
                rc = privsep_chown_dir(sub, uid, gid, NULL, NULL, depth + 1);
            close(sub);
        } /* links, sockets (the old control socket), fifos: left as they are */
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    if (rc == 0 && fchown(dirfd, uid, gid) < 0)
        rc = -errno;
    return rc;
}

int privsep_own_tree(const char *dir, const char *user, const char *skip, const char *shallow)
{
    uid_t uid;
    gid_t gid;
    int t = privsep_target(user, &uid, &gid);
    if (t <= 0)
        return t;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int err = errno;
        log_err("privsep: cannot open %s: %s", dir, strerror(err));
        if (fd >= 0)
            close(fd);
        return -err;
    }
    /* Already the user's: nothing was written by root since (the daemon's
     * user cannot give a directory to root), so nothing is walked. */
    if (st.st_uid == uid && st.st_gid == gid) {
        close(fd);
        return 0;
    }
    int rc = privsep_chown_dir(fd, uid, gid, skip, shallow, 0);
    close(fd);
    if (rc < 0) {
        log_err("privsep: cannot give %s to %s: %s", dir, user, strerror(-rc));
        return rc;
    }
    log_info("gave %s to the user %s", dir, user);
    return 0;
}
