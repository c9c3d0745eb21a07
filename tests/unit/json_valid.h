/* json_valid.h: a tiny strict JSON checker (RFC 8259) for the tests of
 * base/logjson: the unit test and fuzz_logjson include it. It accepts one
 * top-level object followed only by an optional "\n", requires every
 * string to be valid UTF-8 without raw control characters, rejects
 * duplicate top-level keys, and can hand back the decoded value of one
 * top-level string member. Header-only, static functions. */
#ifndef TERN_TEST_JSON_VALID_H
#define TERN_TEST_JSON_VALID_H

#include <stddef.h>
#include <string.h>

#include "base/buf.h"
#include "base/strutil.h"

struct jv {
    const unsigned char *p;
    size_t n, i;
    int depth;
};

static int jv_value(struct jv *v, struct buf *str_out);

static void jv_ws(struct jv *v)
{
    while (v->i < v->n && (v->p[v->i] == ' ' || v->p[v->i] == '\t' || v->p[v->i] == '\n' ||
                           v->p[v->i] == '\r'))
        v->i++;
}

static int jv_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void jv_put_utf8(struct buf *b, unsigned cp)
{
    if (b == NULL)
        return;
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* A string at v->i (on its opening quote); the decoded text into out. */
static int jv_string(struct jv *v, struct buf *out)
{
    if (v->i >= v->n || v->p[v->i] != '"')
        return 0;
    v->i++;
    while (v->i < v->n) {
        unsigned char c = v->p[v->i];
        if (c == '"') {
            v->i++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (v->i + 1 >= v->n)
                return 0;
            unsigned char e = v->p[v->i + 1];
            const char *simple = "\"\\/bfnrt";
            const char *dec = "\"\\/\b\f\n\r\t";
            const char *at = strchr(simple, e);
            if (e != 0 && at) {
                if (out)
                    buf_putc(out, dec[at - simple]);
                v->i += 2;
                continue;
            }
            if (e != 'u' || v->i + 6 > v->n)
                return 0;
            unsigned cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = jv_hex(v->p[v->i + 2 + k]);
                if (h < 0)
                    return 0;
                cp = cp * 16 + (unsigned)h;
            }
            v->i += 6;
            if (cp >= 0xd800 && cp <= 0xdfff)
                return 0; /* our encoder never writes surrogates */
            jv_put_utf8(out, cp);
            continue;
        }
        if (c >= 0x80) {
            size_t len = strutil_utf8_len(v->p + v->i, v->n - v->i);
            if (len == 0)
                return 0;
            if (out)
                buf_append(out, v->p + v->i, len);
            v->i += len;
            continue;
        }
        if (out)
            buf_putc(out, (char)c);
        v->i++;
    }
    return 0;
}

static int jv_number(struct jv *v)
{
    size_t s = v->i;
    if (v->i < v->n && v->p[v->i] == '-')
        v->i++;
    if (v->i >= v->n)
        return 0;
    if (v->p[v->i] == '0') {
        v->i++;
    } else if (v->p[v->i] >= '1' && v->p[v->i] <= '9') {
        while (v->i < v->n && v->p[v->i] >= '0' && v->p[v->i] <= '9')
            v->i++;
    } else {
        return 0;
    }
    if (v->i < v->n && v->p[v->i] == '.') {
        v->i++;
        size_t d = v->i;
        while (v->i < v->n && v->p[v->i] >= '0' && v->p[v->i] <= '9')
            v->i++;
        if (v->i == d)
            return 0;
    }
    if (v->i < v->n && (v->p[v->i] == 'e' || v->p[v->i] == 'E')) {
        v->i++;
        if (v->i < v->n && (v->p[v->i] == '+' || v->p[v->i] == '-'))
            v->i++;
        size_t d = v->i;
        while (v->i < v->n && v->p[v->i] >= '0' && v->p[v->i] <= '9')
            v->i++;
        if (v->i == d)
            return 0;
    }
    return v->i > s;
}

static int jv_lit(struct jv *v, const char *w)
{
    size_t l = strlen(w);
    if (v->n - v->i < l || memcmp(v->p + v->i, w, l) != 0)
        return 0;
    v->i += l;
    return 1;
}

/* An object; at depth 1 (the top level) also checks for duplicate keys and
 * decodes the string value of member `want` (if any) into `got`. */
static int jv_object(struct jv *v, const char *want, struct buf *got, int *found)
{
    char keys[64][32];
    size_t nkeys = 0;
    v->i++; /* '{' */
    jv_ws(v);
    if (v->i < v->n && v->p[v->i] == '}') {
        v->i++;
        return 1;
    }
    for (;;) {
        jv_ws(v);
        struct buf k = BUF_INIT;
        if (!jv_string(v, &k)) {
            buf_free(&k);
            return 0;
        }
        const char *kname = k.data ? k.data : "";
        if (v->depth == 1) {
            for (size_t x = 0; x < nkeys; x++)
                if (strncmp(keys[x], kname, sizeof keys[x]) == 0) {
                    buf_free(&k);
                    return 0;
                }
            if (nkeys < 64)
                strutil_lcpy(keys[nkeys++], kname, sizeof keys[0]);
        }
        int is_want = v->depth == 1 && want && strcmp(kname, want) == 0;
        buf_free(&k);
        jv_ws(v);
        if (v->i >= v->n || v->p[v->i] != ':')
            return 0;
        v->i++;
        jv_ws(v);
        if (is_want && v->i < v->n && v->p[v->i] == '"') {
            if (!jv_string(v, got))
                return 0;
            *found = 1;
        } else if (!jv_value(v, NULL)) {
            return 0;
        }
        jv_ws(v);
        if (v->i < v->n && v->p[v->i] == ',') {
            v->i++;
            continue;
        }
        if (v->i < v->n && v->p[v->i] == '}') {
            v->i++;
            return 1;
        }
        return 0;
    }
}

static int jv_value(struct jv *v, struct buf *str_out)
{
    jv_ws(v);
    if (v->i >= v->n)
        return 0;
    unsigned char c = v->p[v->i];
    if (c == '"')
        return jv_string(v, str_out);
    if (c == '{' || c == '[') {
        if (++v->depth > 32)
            return 0;
        int ok;
        if (c == '{') {
            int found = 0;
            ok = jv_object(v, NULL, NULL, &found);
        } else {
            v->i++;
            jv_ws(v);
            ok = 1;
            if (v->i < v->n && v->p[v->i] == ']') {
                v->i++;
            } else {
                for (;;) {
                    if (!jv_value(v, NULL)) {
                        ok = 0;
                        break;
                    }
                    jv_ws(v);
                    if (v->i < v->n && v->p[v->i] == ',') {
                        v->i++;
                        continue;
                    }
                    if (v->i < v->n && v->p[v->i] == ']')
                        v->i++;
                    else
                        ok = 0;
                    break;
                }
            }
        }
        v->depth--;
        return ok;
    }
    if (c == 't')
        return jv_lit(v, "true");
    if (c == 'f')
        return jv_lit(v, "false");
    if (c == 'n')
        return jv_lit(v, "null");
    return jv_number(v);
}

/* 1 when p[0..n) is one JSON object and at most a final "\n"; when `want`
 * names a top-level string member, its decoded value goes into `got` and
 * *found is set. */
static int json_valid_object(const char *p, size_t n, const char *want, struct buf *got,
                             int *found)
{
    struct jv v = {(const unsigned char *)p, n, 0, 1};
    int dummy = 0;
    if (found == NULL)
        found = &dummy;
    *found = 0;
    if (n == 0 || p[0] != '{')
        return 0;
    if (!jv_object(&v, want, got, found))
        return 0;
    if (v.i < n && p[v.i] == '\n')
        v.i++;
    return v.i == n;
}

#endif
