/* sasl: the client's side of SMTP AUTH (RFC 4954) decoded, for the PLAIN
 * (RFC 4616) and LOGIN mechanisms. Pure parsers, no I/O: fuzzed by
 * tests/fuzz/fuzz_sasl.c.
 *
 * Credentials land in buffers the caller owns (a struct sasl_creds on
 * its stack or in its session); the caller wipes them with sasl_wipe()
 * as soon as the password has been checked, whatever the outcome. No
 * function here keeps a copy: what it decodes into scratch space is
 * wiped before it returns. */
#ifndef TERN_SASL_SASL_H
#define TERN_SASL_SASL_H

#include <stddef.h>

/* RFC 4616 §2: each of authzid, authcid and passwd is at most 255 octets. */
#define SASL_FIELD_MAX 255
/* The longest base64 a PLAIN message of three maximal fields can take:
 * 255 * 3 octets + 2 NULs = 767 -> 1024 characters. */
#define SASL_PLAIN_B64_MAX 1024

enum sasl_status {
    SASL_OK = 0,
    SASL_EBASE64 = -1,    /* not strict base64 (RFC 4648): 501 5.5.2 */
    SASL_EMALFORMED = -2, /* base64, but not a valid message: 501 5.5.2 */
    SASL_EAUTHZID = -3,   /* PLAIN asks to act as someone else: 535 5.7.8 */
};

struct sasl_creds {
    char authzid[SASL_FIELD_MAX + 1];  /* "" or equal to authcid (any case) */
    char authcid[SASL_FIELD_MAX + 1];  /* the login name, never empty */
    char password[SASL_FIELD_MAX + 1]; /* wipe after use */
};

/* Decodes an RFC 4616 PLAIN message, "[authzid] NUL authcid NUL passwd",
 * given as the n base64 characters at b64 (an initial response or the
 * line after "334 "; "=" alone stands for an empty response, RFC 4954
 * §4). Each field must be at most SASL_FIELD_MAX octets without a NUL
 * inside; authcid must not be empty. A non-empty authzid that differs
 * from authcid (ASCII case ignored) is SASL_EAUTHZID: tern does not let
 * one user act for another. Returns a sasl_status; *out is filled only on
 * SASL_OK and left all zeroes otherwise. */
int sasl_plain_decode(const char *b64, size_t n, struct sasl_creds *out);

/* Decodes one LOGIN response (the user name or the password, a base64
 * line; "=" is empty) into out as a NUL-terminated string. outsize must
 * be at least SASL_FIELD_MAX + 1. More than SASL_FIELD_MAX octets, or a
 * NUL inside, is SASL_EMALFORMED. An empty result is SASL_OK (the
 * verifier refuses an empty name like any unknown one). On failure out
 * is "" (when outsize > 0). */
int sasl_login_decode(const char *b64, size_t n, char *out, size_t outsize);

/* Zeroes n octets at p in a way the compiler may not drop
 * (explicit_bzero): for passwords and buffers that held one. */
void sasl_wipe(void *p, size_t n);

/* A short name of a status for log lines ("bad base64", ...). */
const char *sasl_status_str(int status);

#endif
