/* privsep: what a child process gives up before it touches input. */
#ifndef TERN_PROC_PRIVSEP_H
#define TERN_PROC_PRIVSEP_H

/* Confines the network-facing process when tern runs as root: chroot to
 * `emptydir` (created, root-owned, mode 0555), then the uid and gid of
 * `user` with no supplementary groups. It has no business with files:
 * bodies arrive as descriptors from the queue process. A no-op when not
 * root (`make run`). Returns 0 or -1 after logging why; the caller exits. */
int privsep_confine(const char *emptydir, const char *user);

#endif
