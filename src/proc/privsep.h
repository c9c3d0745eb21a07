/* privsep: what a child process gives up before it touches input. */
#ifndef TERN_PROC_PRIVSEP_H
#define TERN_PROC_PRIVSEP_H

#include <sys/types.h>

#include "conf/config.h"

/* Confines the network-facing process when tern runs as root: chroot to
 * `emptydir` (created, root-owned, mode 0555), then the uid and gid of
 * `user` with no supplementary groups. It has no business with files:
 * bodies arrive as descriptors from the queue process. A no-op when not
 * root (`make run`). Returns 0 or -errno after logging why; the caller
 * exits. */
int privsep_confine(const char *emptydir, const char *user);
/* Started as root: becomes `user` for good, without a chroot (the queue
 * and the delivery process need their files). Otherwise does nothing.
 * Returns 0 or -errno after logging why. */
int privsep_drop(const char *user);
/* Started as root: gives the existing directory `dir` and everything under
 * it to `user`, so that a spool written by root (an older tern, a restore)
 * works for the daemon's user. At the top level, `skip` is left alone (the
 * smtp process's root-owned chroot) and of `shallow` only the directory
 * itself changes owner (pickup/: who owns a file there says who sent it).
 * A directory already the user's is not walked. Walks by descriptor, never
 * through a symbolic link; multiply-linked files stay as they are. Returns
 * 0 or -errno (logged); a no-op when not root. */
int privsep_own_tree(const char *dir, const char *user, const char *skip, const char *shallow);
/* Started as root: checks that `user` exists and is not root, so that a
 * missing user stops `tern serve` at once instead of failing in every
 * restarted child. 0, or -ENOENT (-EPERM for root) after logging why; a
 * no-op when not root. */
int privsep_check_user(const char *user);
/* The uid and gid of the unprivileged `user` (root is refused). 0, or
 * -ENOENT (-EPERM for root) after logging why. */
int privsep_user(const char *user, uid_t *uid, gid_t *gid);

/* Started as root, before the children: checks that the daemon's user can
 * reach the spool and the mail user the mail root (the directory the
 * maildir setting fixes), which is created for the mail user when missing;
 * warns when the configuration or its tables are unreadable to the
 * daemon's user (it reads them again on a reload). 0, or -errno after
 * logging why and what to do; a no-op when not root. */
int privsep_prepare_dirs(const struct config *cfg);

#endif
