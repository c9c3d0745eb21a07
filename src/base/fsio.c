#include "base/fsio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xmalloc.h"

int fsio_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int fsio_pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n) {
        ssize_t w = pwrite(fd, c, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int fsio_pread_all(int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    while (n) {
        ssize_t r = pread(fd, c, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int fsio_datasync(int fd)
{
    return fdatasync(fd) < 0 ? -errno : 0;
}

int fsio_sync(int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

int fsio_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int fsio_rename_durable(const char *from, const char *to, const char *todir)
{
    if (rename(from, to) < 0)
        return -errno;
    return fsio_sync_dir(todir);
}

int fsio_rename_syncfs(const char *from, const char *to, int fd)
{
    if (rename(from, to) < 0)
        return -errno;
    return syncfs(fd) < 0 ? -errno : 0;
}

int fsio_renameat(int fromdir, const char *from, int todir, const char *to)
{
    return renameat(fromdir, from, todir, to) < 0 ? -errno : 0;
}

int fsio_mkdirs(const char *path, mode_t mode)
{
    return fsio_mkpath(path, mode, mode);
}

int fsio_mkpath(const char *path, mode_t parents, mode_t mode)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, parents) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static void fsio_dirname(const char *path, char *out, size_t outsize)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(out, outsize, ".");
    } else if (slash == path) {
        snprintf(out, outsize, "/");
    } else {
        snprintf(out, outsize, "%.*s", (int)(slash - path), path);
    }
}

/* The temp-write-fsync-rename of both atomic writers. With `keep`, the
 * new file gets exactly `mode` (not reduced by the umask) and, when path
 * exists, its owner and group (best effort: only root may give a file
 * away, so EPERM is ignored). */
static int fsio_write_atomic(const char *path, const void *data, size_t n, mode_t mode, int keep)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp)
        return -ENAMETOOLONG;
    fsio_dirname(path, dir, sizeof dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = 0;
    struct stat old;
    if (keep && fchmod(fd, mode) < 0)
        rc = -errno;
    if (rc == 0 && keep && stat(path, &old) == 0 && fchown(fd, old.st_uid, old.st_gid) < 0 &&
        errno != EPERM)
        rc = -errno;
    if (rc == 0)
        rc = fsio_write_all(fd, data, n);
    if (rc == 0)
        rc = fsio_sync(fd);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        rc = fsio_rename_durable(tmp, path, dir);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

int fsio_write_file_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    return fsio_write_atomic(path, data, n, mode, 0);
}

int fsio_replace_file(const char *path, const void *data, size_t n, mode_t mode)
{
    return fsio_write_atomic(path, data, n, mode, 1);
}

int fsio_create_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    int rc = fchmod(fd, mode) < 0 ? -errno : 0;
    if (rc == 0)
        rc = fsio_write_all(fd, data, n);
    if (rc == 0)
        rc = fsio_sync(fd);
    close(fd);
    if (rc == 0) {
        char dir[PATH_MAX];
        fsio_dirname(path, dir, sizeof dir);
        rc = fsio_sync_dir(dir);
    }
    if (rc < 0)
        unlink(path);
    return rc;
}

int fsio_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    char *data = NULL;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if ((size_t)st.st_size > max) {
        rc = -EFBIG;
        goto out;
    }
    data = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    for (;;) {
        if (got == (size_t)st.st_size)
            break;
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    data[got] = '\0';
    *out = data;
    *outlen = got;
    data = NULL;
out:
    free(data);
    close(fd);
    return rc;
}
