/* unixsock.c: see unixsock.h. */
#include "base/sizes.h"
#include "base/unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int unixsock_addr_init(struct unixsock_addr *a, const char *path)
{
    memset(a, 0, sizeof *a);
    a->dirfd = -1;
    a->sun.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0)
        return -EINVAL;
    if (n < sizeof a->sun.sun_path) {
        memcpy(a->sun.sun_path, path, n + 1);
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
    }
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return -ENAMETOOLONG;
    char dir[PATH_MAX];
    size_t dl = (size_t)(slash - path);
    if (dl >= sizeof dir)
        return -ENAMETOOLONG;
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    a->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0)
        return -errno;
    int w = snprintf(a->sun.sun_path, sizeof a->sun.sun_path, "/proc/self/fd/%d/%s", a->dirfd,
                     slash + 1);
    if (w < 0 || (size_t)w >= sizeof a->sun.sun_path) {
        unixsock_addr_release(a);
        return -ENAMETOOLONG;
    }
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)w + 1);
    return 0;
}

void unixsock_addr_release(struct unixsock_addr *a)
{
    if (a->dirfd >= 0)
        close(a->dirfd);
    a->dirfd = -1;
}

int unixsock_connect(const char *path)
{
    struct unixsock_addr a;
    int rc = unixsock_addr_init(&a, path);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
    } else if (connect(fd, (struct sockaddr *)&a.sun, a.len) < 0) {
        rc = -errno;
        close(fd);
        fd = -1;
    }
    unixsock_addr_release(&a);
    return fd >= 0 ? fd : rc;
}
