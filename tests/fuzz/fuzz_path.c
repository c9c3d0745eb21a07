/* libFuzzer target: mail/mailaddr. The first octet selects the parse
 * flags; the rest is a path (and, separately, a bare mailbox). Checks
 * that what a parse writes out reads back as the same address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mailaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const struct mailaddr *a)
{
    if (!memchr(a->local, 0, sizeof a->local) || !memchr(a->domain, 0, sizeof a->domain) ||
        !memchr(a->text, 0, sizeof a->text))
        abort();
    if (strlen(a->local) > MAILADDR_LOCAL_MAX || strlen(a->domain) > MAILADDR_DOMAIN_MAX ||
        strlen(a->text) > MAILADDR_PATH_MAX - 2)
        abort();
}

/* a parsed fine with `flags`: its text must parse to the same thing. */
static void check_roundtrip(const struct mailaddr *a, unsigned flags)
{
    check_terminated(a);
    if ((a->flags & MAILADDR_F_UTF8) && !(flags & MAILADDR_ALLOW_UTF8))
        abort();
    if (a->flags & MAILADDR_F_NULL) {
        if (a->text[0] || a->domain[0] || !(flags & MAILADDR_ALLOW_NULL))
            abort();
        return;
    }
    if (a->flags & MAILADDR_F_POSTMASTER) {
        if (strcmp(a->text, "postmaster") || !(flags & MAILADDR_ALLOW_POSTMASTER))
            abort();
        return;
    }
    if (!mailaddr_domain_eq(a->domain, a->domain) || a->domain[0] == '\0')
        abort();
    struct mailaddr b;
    size_t n = strlen(a->text);
    if (mailaddr_parse_mailbox(a->text, n, flags, &b) != MAILADDR_OK)
        abort();
    if (strcmp(a->local, b.local) || strcmp(a->domain, b.domain) || strcmp(a->text, b.text) ||
        (a->flags & ~(unsigned)MAILADDR_F_QUOTED) != (b.flags & ~(unsigned)MAILADDR_F_QUOTED))
        abort();
    /* And bracketed again, as a path. */
    char *p = malloc(n + 2);
    p[0] = '<';
    memcpy(p + 1, a->text, n);
    p[n + 1] = '>';
    size_t used = 0;
    if (mailaddr_parse_path(p, n + 2, flags, &b, &used) != MAILADDR_OK || used != n + 2 ||
        strcmp(a->text, b.text))
        abort();
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & (MAILADDR_ALLOW_NULL | MAILADDR_ALLOW_POSTMASTER |
                                MAILADDR_ALLOW_UTF8);
    size_t n = size - 1;
    /* An exact-size copy: any read past n is an ASan report. */
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 1, n);

    struct mailaddr a;
    size_t used = 0;
    int rc = mailaddr_parse_path(in, n, flags, &a, &used);
    if (rc > 0 || rc < MAILADDR_EUTF8)
        abort();
    if (rc == MAILADDR_OK) {
        if (used < 2 || used > n || used > MAILADDR_PATH_MAX || in[0] != '<' || in[used - 1] != '>')
            abort();
        check_roundtrip(&a, flags);
    } else if (a.text[0] != '\0') {
        abort();
    }
    rc = mailaddr_parse_mailbox(in, n, flags, &a);
    if (rc > 0 || rc < MAILADDR_EUTF8)
        abort();
    if (rc == MAILADDR_OK) {
        if (a.flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER))
            abort();
        check_roundtrip(&a, flags);
    }
    free(in);
    return 0;
}
