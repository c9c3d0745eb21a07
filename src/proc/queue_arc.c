/* queue_arc.c: see queue_arc.h. */
#include "proc/queue_arc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/strutil.h"
#include "mailauth/authres.h"

#define QARC_AR "Authentication-Results:"

/* The body of the first Authentication-Results field in the field lines
 * p[0..n) that carries tern's authserv-id, without its final CRLF: its
 * start into *body, its length returned; 0 when there is none. */
static size_t qarc_find_authres(const char *p, size_t n, const char *ours, const char **body)
{
    const size_t nl = sizeof QARC_AR - 1;
    size_t i = 0;
    while (i < n) {
        size_t end = i; /* the field: up to a line end not followed by WSP */
        for (;;) {
            const char *lf = memchr(p + end, '\n', n - end);
            end = lf ? (size_t)(lf - p) + 1 : n;
            if (end >= n || (p[end] != ' ' && p[end] != '\t'))
                break;
        }
        if (end - i > nl && strutil_ncasecmp(p + i, QARC_AR, nl) == 0) {
            size_t b = i + nl, e = end;
            while (e > b && (p[e - 1] == '\n' || p[e - 1] == '\r'))
                e--;
            if (authres_claims_id(p + b, e - b, false, ours) == 1) {
                char id[AUTHRES_ID_MAX];
                if (authres_parse_id(p + b, e - b, id) == 0) {
                    *body = p + b;
                    return e - b;
                }
            }
        }
        i = end;
    }
    return 0;
}

/* The domain of the address a[...] (after its last '@'), lowercased into
 * out; false for none. */
static bool qarc_domain(const char *a, char out[DNS_NAME_MAX])
{
    const char *at = a ? strrchr(a, '@') : NULL;
    if (at == NULL || at[1] == '\0' || strlen(at + 1) >= DNS_NAME_MAX)
        return false;
    strutil_lcpy(out, at + 1, DNS_NAME_MAX);
    strutil_lower(out);
    return true;
}

/* The key to seal with for a forwarding domain: its first RSA key, else
 * its first key. */
static bool qarc_key(const struct dkim_keyring *ring, const char *domain,
                     struct dkim_sign_key *key)
{
    struct dkim_sign_key keys[DKIM_SIGN_KEYS_MAX];
    size_t nk = dkim_keyring_find(ring, domain, keys, DKIM_SIGN_KEYS_MAX);
    if (nk == 0)
        return false;
    *key = keys[0];
    for (size_t i = 0; i < nk; i++) {
        if (EVP_PKEY_get_base_id(keys[i].key) == EVP_PKEY_RSA) {
            *key = keys[i];
            break;
        }
    }
    return true;
}

bool queue_arc_wanted(const struct config *cfg, const struct dkim_keyring *ring,
                      const struct envelope *env, const char *prefix, size_t n,
                      struct queue_arc_in *in)
{
    buf_reset(&in->aar);
    if (ring->n == 0 || prefix == NULL || n == 0)
        return false;
    bool found = false;
    for (size_t i = 0; i < env->nrcpts && !found; i++) {
        const struct envelope_rcpt *r = &env->rcpts[i];
        char to[DNS_NAME_MAX], from[DNS_NAME_MAX];
        if (r->orcpt == NULL || !qarc_domain(r->addr, to) || !qarc_domain(r->orcpt, from) ||
            config_is_local_domain(cfg, to) || !config_is_local_domain(cfg, from))
            continue; /* not an alias of ours that points elsewhere */
        found = qarc_key(ring, from, &in->key);
    }
    if (!found)
        return false;
    const char *body;
    size_t len = qarc_find_authres(prefix, n, config_authserv_id(cfg), &body);
    if (len == 0)
        return false; /* not judged here: nothing to attest */
    char res[16];
    int rc = authres_parse_result(body, len, "arc", res, sizeof res);
    if (rc == 0 && strcmp(res, "pass") == 0)
        in->cv = ARC_PASS;
    else if (rc == 0 && strcmp(res, "fail") == 0)
        in->cv = ARC_FAIL;
    else if (rc == 0 || rc == -ENOENT)
        in->cv = ARC_NONE;
    else
        return false;
    buf_append(&in->aar, body, len);
    return true;
}
