/* inetsock: TCP sockets on numeric IPv4 and IPv6 addresses, for every
 * listener tern opens (the SMTP listeners, the metrics endpoint) and the
 * next hops it connects to. */
#ifndef TERN_BASE_INETSOCK_H
#define TERN_BASE_INETSOCK_H

#include <sys/socket.h>

/* Fills *ss and *sl for the numeric address `addr` ("192.0.2.1",
 * "2001:db8::1") and `port`. Returns 0 or -EINVAL. */
int inetsock_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl);

/* A non-blocking, close-on-exec listening socket on addr:port
 * (SO_REUSEADDR; IPv6 sockets take IPv6 only). Returns the fd or -errno
 * (-EINVAL for an address that is not numeric). */
int inetsock_listen(const char *addr, int port, int backlog);

#endif
