/* sizes: the buffer sizes of names and paths that cross modules, so
 * that every side of an interface agrees on them. */
#ifndef TERN_BASE_SIZES_H
#define TERN_BASE_SIZES_H

#include <limits.h> /* PATH_MAX: a file system path, with its NUL */

/* A domain or host name in text form: at most 253 octets (RFC 1035
 * §2.3.4: 255 on the wire), a trailing dot, a NUL. */
#define DNS_NAME_MAX 256

/* An IPv6 address in text form with its NUL (INET6_ADDRSTRLEN). */
#define IP_TEXT_MAX 46

/* A login name of SMTP AUTH (RFC 4954 authcid/authzid as tern keeps it),
 * with its NUL: the session and the queue's check agree on it. */
#define AUTH_USER_MAX 256

/* A Maildir file name ("time.MusecPpid_seq.host,S=size"), with its NUL. */
#define MAILDIR_NAME_MAX 512

/* A next hop as logs and results name it, "host[addr]:port": a host
 * name, an address, a port, with room to spare. */
#define RELAY_NAME_MAX (DNS_NAME_MAX + IP_TEXT_MAX + 16)

#endif
