/* maildir: delivery of one message to one Maildir, per the Maildir
 * specification: a uniquely named file written in tmp/, fsync'd, then
 * linked (renamed) into new/ and the directory fsync'd. Blocking: called
 * from the queue process's delivery threads, never from an event loop. */
#ifndef TERN_DELIVER_MAILDIR_H
#define TERN_DELIVER_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mail/result.h"

/* The body is read (and written) this many bytes at a time; exposed so
 * tests can put a CRLF across the boundary. */
#define MAILDIR_READ_CHUNK (128 * 1024)

struct maildir_msg {
    const char *return_path;  /* envelope sender for Return-Path: ("" = null) */
    const char *delivered_to; /* final recipient for Delivered-To: */
    int body_fd;              /* the stored message, CRLF line endings */
    off_t body_off;
    uint64_t body_len;
};

/* Delivers to the Maildir at `path` (created with tmp/ new/ cur/ if
 * missing). The file gets "Return-Path: <...>" and "Delivered-To: ..."
 * first, then the message with LF line endings as Maildir readers
 * expect. Fills *res: OK, or TEMPFAIL for anything that may heal (disk
 * full, permissions, I/O); never loses the message: on failure the file
 * in tmp/ is removed and nothing appears in new/. Returns 0 on success,
 * else the -errno of the step that failed (*res says which). */
int maildir_deliver(const char *path, const struct maildir_msg *msg, struct result *res);

/* Builds a unique file name per the Maildir spec
 * ("<secs>.M<usecs>P<pid>Q<n>.<host>") into out; host has '/' and ':'
 * replaced. Exposed for tests. */
void maildir_unique_name(char *out, size_t outsize, const char *host);

#endif
