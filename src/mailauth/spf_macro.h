/* spf_macro: SPF macro strings (RFC 7208 §7): the syntax check of a
 * domain-spec, an explain-string or an unknown modifier's macro-string,
 * and their expansion, with the transformers (a count of right-hand
 * parts, reversal), the delimiters, URL escaping for upper-case letters
 * and, for a name to be looked up, the final dot dropped and the 253-octet
 * truncation from the left (§7.3). Pure: the values of the letters come
 * in a struct; %{p}, which needs DNS, is found by the evaluator (spf.c)
 * before it expands a string that uses it. Unit-tested in
 * tests/unit/test_spf_macro.c, fuzzed by tests/fuzz/fuzz_spf_macro.c. */
#ifndef TERN_MAILAUTH_SPF_MACRO_H
#define TERN_MAILAUTH_SPF_MACRO_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/sizes.h"

/* What kind of string is checked or expanded. */
enum spf_macro_kind {
    SPF_MACRO_DOMAIN,  /* domain-spec: letters s l o d i p h v only, and
                        * it must end in a macro or "." toplabel ["."] */
    SPF_MACRO_EXP,     /* explain-string (§6.2): also c r t, and spaces */
    SPF_MACRO_UNKNOWN, /* an unknown modifier's macro-string: any letter */
};

/* A set of macro letters, bit (letter - 'a'); SPF_MACRO_BIT('p') tells a
 * string that needs the validated name of the client. */
#define SPF_MACRO_BIT(c) (UINT32_C(1) << ((c) - 'a'))

/* The values of the letters, each NUL-terminated and owned by the caller.
 * p may be NULL: it then expands to "unknown" (§7.3). */
struct spf_macro_vars {
    const char *s; /* <sender> */
    const char *l; /* its local-part */
    const char *o; /* its domain */
    const char *d; /* <domain> */
    const char *i; /* <ip>: dotted quad, or 32 dotted nibbles for IPv6 */
    const char *p; /* the validated domain name of <ip>, or NULL */
    const char *v; /* "in-addr" or "ip6" */
    const char *h; /* HELO/EHLO domain */
    const char *c; /* <ip> for humans: dotted quad or RFC 5952 text */
    const char *r; /* the receiving host's name, "unknown" if none */
    const char *t; /* the current time, decimal seconds since the epoch */
};

/* An expansion larger than this is refused: a 64 KB record of "%{S}"
 * could otherwise ask for megabytes. */
#define SPF_MACRO_OUT_MAX 8192

/* Checks that s[0..n) is a well-formed string of `kind`. Returns 0 and
 * sets *letters (may be NULL) to the letters used, or -EINVAL. */
int spf_macro_check(const char *s, size_t n, enum spf_macro_kind kind, uint32_t *letters);

/* Appends the expansion of s[0..n) to out. Returns 0, -EINVAL for a
 * string that does not pass spf_macro_check(), or -E2BIG when the
 * expansion would pass SPF_MACRO_OUT_MAX (out is then as it was). */
int spf_macro_expand(const char *s, size_t n, enum spf_macro_kind kind,
                     const struct spf_macro_vars *v, struct buf *out);

/* Expands the domain-spec s[0..n) into the name to look up (§7.3, §4.8):
 * the expansion without its final dot, cut from the left label by label
 * to 253 octets, checked with dnsq_name_ok(). `scratch` is the caller's
 * reusable buffer. Returns 0 with out[] set, -EINVAL for bad syntax, or
 * -EDOM when the result is no name DNS can be asked (an empty label, a
 * label over 63 octets, too long even after cutting). */
int spf_macro_domain(const char *s, size_t n, const struct spf_macro_vars *v,
                     struct buf *scratch, char out[DNS_NAME_MAX]);

#endif
