/* spf_record: parsing one SPF record (RFC 7208 §4.5, §4.6.1, §5, §6 and
 * the ABNF of §12) into its mechanisms and its redirect and exp
 * modifiers. The whole record is checked before anything is evaluated
 * (§4.6: "any syntax errors anywhere in the record" make it permerror),
 * every domain-spec and unknown modifier included. Pure; unit-tested in
 * tests/unit/test_spf_record.c, fuzzed by tests/fuzz/fuzz_spf_record.c. */
#ifndef TERN_MAILAUTH_SPF_RECORD_H
#define TERN_MAILAUTH_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The seven results of check_host() (§2.6), in RFC 8601's spelling. */
enum spf_result {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR,
};

/* "none", "neutral", "pass", ...: for logs and Authentication-Results. */
const char *spf_result_name(enum spf_result r);

enum spf_mech {
    SPF_MECH_ALL,
    SPF_MECH_INCLUDE,
    SPF_MECH_A,
    SPF_MECH_MX,
    SPF_MECH_PTR,
    SPF_MECH_IP4,
    SPF_MECH_IP6,
    SPF_MECH_EXISTS,
};

/* A span of the record's text: text + off, len octets. len 0 = absent. */
struct spf_span {
    uint32_t off, len;
};

/* One mechanism with its qualifier. */
struct spf_term {
    uint8_t mech;          /* enum spf_mech */
    uint8_t result;        /* enum spf_result of a match: + pass, - fail,
                            * ~ softfail, ? neutral */
    uint8_t cidr4, cidr6;  /* a, mx, ip4, ip6: prefix lengths (32 and 128
                            * when not given) */
    uint32_t letters;      /* macro letters of the domain-spec */
    struct spf_span text;  /* the whole term, for reasons in logs */
    struct spf_span spec;  /* include a mx ptr exists: the domain-spec,
                            * len 0 when not given (<domain> is meant) */
    unsigned char addr[16]; /* ip4: addr[0..4), ip6: addr[0..16) */
};

/* A parsed record. It owns its storage (text and terms), which a new
 * spf_record_parse() into the same struct reuses: an evaluator keeps one
 * per include level and allocates only when a record is larger than any
 * before. Zero-initialise before the first parse; spf_record_free()
 * releases. */
struct spf_record {
    char *text;             /* owned copy of the record, NUL-terminated */
    size_t len;
    struct spf_term *terms; /* owned; the mechanisms in order */
    size_t nterms;
    struct spf_span redirect, exp; /* domain-specs; len 0 = absent */
    uint32_t redirect_letters, exp_letters;
    bool has_all;           /* an "all" anywhere: redirect is ignored (§6.1) */
    size_t text_cap, terms_cap;
};

/* Where parsing stopped, for the reason of a permerror. */
struct spf_record_error {
    const char *what;      /* static text: "unknown mechanism", ... */
    struct spf_span term;  /* the offending term in the input */
};

/* Whether the n octets at p start an SPF version 1 record: "v=spf1"
 * (case-insensitive) followed by a space or the end (§4.5). */
bool spf_record_is_spf(const char *p, size_t n);

/* Parses text[0..n), which spf_record_is_spf() accepted, into *rec,
 * copying it. Returns 0, or -EINVAL with *err set (err may be NULL). */
int spf_record_parse(struct spf_record *rec, const char *text, size_t n,
                     struct spf_record_error *err);

void spf_record_free(struct spf_record *rec);

/* The text of a span of rec, not NUL-terminated. */
static inline const char *spf_record_at(const struct spf_record *rec, struct spf_span s)
{
    return rec->text + s.off;
}

#endif
