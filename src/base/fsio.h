/* fsio: the only place in tern that fsyncs and renames. Every durability
 * decision goes through here, so "is this on disk?" has one answer. All
 * functions return 0 or -errno. */
#ifndef TERN_BASE_FSIO_H
#define TERN_BASE_FSIO_H

#include <stddef.h>
#include <sys/types.h>

/* write() until done, retrying on EINTR. */
int fsio_write_all(int fd, const void *p, size_t n);
/* pwrite() until done. */
int fsio_pwrite_all(int fd, const void *p, size_t n, off_t off);
/* pread() exactly n bytes; -EIO on a short file. */
int fsio_pread_all(int fd, void *p, size_t n, off_t off);
/* Flushes file data and the metadata needed to read it back. */
int fsio_datasync(int fd);
/* Flushes file data and all metadata. */
int fsio_sync(int fd);
/* Makes the directory entries of `dir` durable. */
int fsio_sync_dir(const char *dir);
/* rename() then fsync of the target's directory. */
int fsio_rename_durable(const char *from, const char *to, const char *todir);
/* rename() then syncfs() of fd's filesystem (fd: a file on it, e.g. the
 * renamed one): for a directory the caller may write but cannot open to
 * fsync (the pickup directory, mode 1733). */
int fsio_rename_syncfs(const char *from, const char *to, int fd);
/* renameat() with no durability promise: setting a file aside. */
int fsio_renameat(int fromdir, const char *from, int todir, const char *to);
/* Creates `path` and its missing parents with `mode` (like mkdir -p). */
int fsio_mkdirs(const char *path, mode_t mode);
/* The same, but missing parents get `parents` (e.g. 0755: a directory that
 * only holds others, which protect themselves) and `path` gets `mode`. */
int fsio_mkpath(const char *path, mode_t parents, mode_t mode);
/* Writes `data` to `path` atomically and durably: a temp file beside it,
 * written, fsync'd, renamed over `path`, directory fsync'd. */
int fsio_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* The same for a file people edit too (the users file): the new file
 * has exactly `mode`, whatever the umask, and keeps the owner and group
 * of the file it replaces where the caller may keep them. */
int fsio_replace_file(const char *path, const void *data, size_t n, mode_t mode);
/* Reads a whole file into a new NUL-terminated buffer (owned by caller,
 * free()). Refuses files over `max` bytes with -EFBIG. */
/* Creates `path` with exactly `mode` (whatever the umask), never over an
 * existing file or through a symlink (-EEXIST), writes data and fsyncs
 * it and its directory. A failed write removes what it created. */
int fsio_create_file(const char *path, const void *data, size_t n, mode_t mode);
int fsio_read_file(const char *path, size_t max, char **out, size_t *outlen);

#endif
