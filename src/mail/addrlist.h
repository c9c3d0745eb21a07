/* addrlist: the addresses of an RFC 5322 §3.4 address-list, as found in
 * To:, Cc: and Bcc: (what `sendmail -t` sends to). Display names,
 * comments, groups ("team: a@x, b@y;") and folding are understood; what
 * comes out is each addr-spec with comments and white space outside
 * quoted strings removed, for mailaddr to judge. Pure; fuzzed by
 * tests/fuzz/fuzz_addrlist.c. */
#ifndef TERN_MAIL_ADDRLIST_H
#define TERN_MAIL_ADDRLIST_H

#include <stddef.h>

/* Longest addr-spec passed on; longer ones are a syntax error. */
#define ADDRLIST_ADDR_MAX 1024

/* Called for each address; a non-zero return stops the walk and is
 * returned by addrlist_parse (a positive one cannot be mistaken for the
 * parser's own errors). addr is NUL-terminated, valid during the call. */
typedef int (*addrlist_cb)(void *arg, const char *addr, size_t n);

/* Walks the header field body v[0..n) (without the field name; line
 * folds allowed). Returns 0, the callback's non-zero value, -EINVAL for
 * an unterminated quoted string, comment or angle address, or
 * -ENAMETOOLONG for an address over ADDRLIST_ADDR_MAX. */
int addrlist_parse(const char *v, size_t n, addrlist_cb cb, void *arg);

#endif
