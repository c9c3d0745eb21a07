/* mbox_lock: the locks of an mbox file that the readers on a Debian
 * system expect (mutt, Dovecot, Python's mailbox module): a dot-lock,
 * "<file>.lock" made with O_EXCL, and an fcntl write lock on the file.
 * The fcntl lock is an open-file-description lock (F_OFD_SETLK): it
 * conflicts with the classic POSIX locks of the others and, unlike them,
 * between the threads of the delivery process too. Blocking. */
#ifndef TERN_DELIVER_MBOX_LOCK_H
#define TERN_DELIVER_MBOX_LOCK_H

/* A dot-lock this old (by its modification time) is stale: its maker
 * died without removing it. Five minutes, as Debian's liblockfile. */
#define MBOX_DOTLOCK_STALE_S 300

struct mbox_lock {
    char *dotlock; /* owned: the dot-lock's path while we hold it, else NULL */
    int fd;        /* the mbox, fcntl-locked while >= 0 */
};

/* Takes both locks of the mbox at `path`, open as fd (read-write),
 * trying again every little while for up to wait_ms. A dot-lock that is
 * stale (older than MBOX_DOTLOCK_STALE_S, or naming a process that no
 * longer exists) is removed. Returns 0 (release with mbox_lock_drop),
 * -ETIMEDOUT when someone still holds one at the end, or the -errno of a
 * failed step (EACCES: the mail user may not create the dot-lock). */
int mbox_lock_take(struct mbox_lock *l, const char *path, int fd, unsigned wait_ms);

/* Releases what l holds (both or nothing: safe to call twice). */
void mbox_lock_drop(struct mbox_lock *l);

/* Is the dot-lock at `path` stale? 1 or 0 (0 also when it is gone or
 * cannot be read: whoever looks next decides again). Exposed for tests. */
int mbox_lock_stale(const char *path);

#endif
