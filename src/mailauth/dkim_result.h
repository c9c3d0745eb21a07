/* dkim_result: a DKIM signature's result in RFC 8601 §2.7.1's terms, as
 * the verifier (dkim_verify.h) gives it and DMARC (dmarc.h) and
 * Authentication-Results (authres.h) take it. */
#ifndef TERN_MAILAUTH_DKIM_RESULT_H
#define TERN_MAILAUTH_DKIM_RESULT_H

enum dkim_result {
    DKIM_NONE,
    DKIM_PASS,
    DKIM_FAIL,
    DKIM_POLICY,
    DKIM_NEUTRAL,
    DKIM_TEMPERROR,
    DKIM_PERMERROR,
};

/* "none", "pass", ...: RFC 8601's names. */
const char *dkim_result_name(enum dkim_result r);

#endif
