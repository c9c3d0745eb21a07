#include "proc/privsep.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsio.h"
#include "base/log.h"

int privsep_confine(const char *emptydir, const char *user)
{
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL || pw->pw_uid == 0) {
        log_err("privsep: no unprivileged user '%s'", user);
        return -1;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
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
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
        log_err("privsep: cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        log_err("privsep: could regain root after dropping it");
        return -1;
    }
    return 0;
}
