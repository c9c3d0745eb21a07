/* unixsock: addresses of UNIX-domain sockets whose path may be longer than
 * sun_path holds (a spool deep in a test directory): such a path is
 * reached through /proc/self/fd/N of its directory. */
#ifndef TERN_BASE_UNIXSOCK_H
#define TERN_BASE_UNIXSOCK_H

#include <sys/socket.h>
#include <sys/un.h>

struct unixsock_addr {
    struct sockaddr_un sun;
    socklen_t len;
    int dirfd; /* owned, -1 when the path fits as it is; keep it open while the address is used */
};

/* Fills *a for `path`. Returns 0 or -errno (then nothing to release). */
int unixsock_addr_init(struct unixsock_addr *a, const char *path);
void unixsock_addr_release(struct unixsock_addr *a);

/* Connects a blocking stream socket to `path`. Returns the fd or -errno. */
int unixsock_connect(const char *path);

#endif
