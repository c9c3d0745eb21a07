/* pickup_fmt.c: writer and parser of pickup files (see pickup_fmt.h). */
#include "mail/pickup_fmt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xmalloc.h"

#define PICKUP_MAGIC "tern-pickup "

void pickup_env_init(struct pickup_env *e)
{
    memset(e, 0, sizeof *e);
}

void pickup_env_free(struct pickup_env *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        free(e->rcpts[i]);
    free(e->rcpts);
    pickup_env_init(e);
}

void pickup_env_add_rcpt(struct pickup_env *e, const char *addr)
{
    /* Capacity is implicit: 8, then doubled whenever the count reaches a
     * power of two from 8 on. */
    size_t n = e->nrcpts;
    if (n == 0)
        e->rcpts = xrealloc(e->rcpts, 8 * sizeof *e->rcpts);
    else if (n >= 8 && (n & (n - 1)) == 0)
        e->rcpts = xrealloc(e->rcpts, 2 * n * sizeof *e->rcpts);
    e->rcpts[e->nrcpts++] = xstrdup(addr);
}

void pickup_write(const struct pickup_env *e, struct buf *out)
{
    buf_printf(out, PICKUP_MAGIC "%d\n", PICKUP_VERSION);
    if (e->has_from)
        buf_printf(out, "from %s\n", e->from[0] ? e->from : "<>");
    if (e->name[0])
        buf_printf(out, "name %s\n", e->name);
    for (size_t i = 0; i < e->nrcpts; i++)
        buf_printf(out, "rcpt %s\n", e->rcpts[i]);
    buf_putc(out, '\n');
}

/* Validates a mailbox through mailaddr; writes its normal form to out. */
static int pickup_addr(const char *v, size_t n, struct mailaddr *out)
{
    return mailaddr_parse_mailbox(v, n, MAILADDR_ALLOW_UTF8, out) == MAILADDR_OK &&
                   !(out->flags & (MAILADDR_F_NULL | MAILADDR_F_POSTMASTER))
               ? 0
               : -EINVAL;
}

/* One envelope line (without its LF). Returns 0 or -EINVAL. */
static int pickup_line(const char *l, size_t n, size_t rcpt_max, struct pickup_env *e)
{
    const char *sp = memchr(l, ' ', n);
    if (sp == NULL)
        return -EINVAL;
    size_t kn = (size_t)(sp - l);
    const char *v = sp + 1;
    size_t vn = n - kn - 1;
    struct mailaddr a;
    if (kn == 4 && !memcmp(l, "from", 4)) {
        if (e->has_from)
            return -EINVAL;
        e->has_from = 1;
        if (vn == 2 && !memcmp(v, "<>", 2)) {
            e->from[0] = '\0';
            return 0;
        }
        if (pickup_addr(v, vn, &a) < 0)
            return -EINVAL;
        memcpy(e->from, a.text, sizeof e->from);
        e->utf8 |= (a.flags & MAILADDR_F_UTF8) != 0;
        return 0;
    }
    if (kn == 4 && !memcmp(l, "name", 4)) {
        if (e->name[0] || vn == 0 || vn > PICKUP_NAME_MAX)
            return -EINVAL;
        for (size_t i = 0; i < vn; i++)
            if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
                return -EINVAL; /* no CR/LF/NUL: it ends up in a header */
        memcpy(e->name, v, vn);
        e->name[vn] = '\0';
        return 0;
    }
    if (kn == 4 && !memcmp(l, "rcpt", 4)) {
        if (e->nrcpts >= rcpt_max || pickup_addr(v, vn, &a) < 0)
            return -EINVAL;
        e->utf8 |= (a.flags & MAILADDR_F_UTF8) != 0;
        pickup_env_add_rcpt(e, a.text);
        return 0;
    }
    return -EINVAL;
}

int pickup_parse(const char *in, size_t len, size_t rcpt_max, uint64_t size_max,
                 struct pickup_env *e)
{
    pickup_env_free(e);
    size_t pos = 0;
    int first = 1;
    for (;;) {
        size_t left = len - pos;
        const char *nl = memchr(in + pos, '\n', left < PICKUP_LINE_MAX + 1 ? left : PICKUP_LINE_MAX + 1);
        if (nl == NULL)
            goto bad; /* truncated, or a line too long */
        size_t n = (size_t)(nl - (in + pos));
        const char *l = in + pos;
        pos += n + 1;
        if (first) {
            char want[32];
            size_t wn = (size_t)snprintf(want, sizeof want, PICKUP_MAGIC "%d", PICKUP_VERSION);
            if (n != wn || memcmp(l, want, wn))
                goto bad;
            first = 0;
            continue;
        }
        if (n == 0)
            break;
        if (memchr(l, '\0', n) || pickup_line(l, n, rcpt_max, e) < 0)
            goto bad;
    }
    if (e->nrcpts == 0)
        goto bad;
    if (size_max && len - pos > size_max) {
        pickup_env_free(e);
        return -EMSGSIZE;
    }
    e->content_off = pos;
    return 0;
bad:
    pickup_env_free(e);
    return -EINVAL;
}

void pickup_to_crlf(const char *in, size_t len, struct buf *out, struct pickup_text *info)
{
    memset(info, 0, sizeof *info);
    /* The worst case doubles (all LFs): reserve once. */
    char *w = buf_reserve(out, 2 * len + 2);
    size_t o = 0, line = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < len && in[i + 1] == '\n')
                i++;
            w[o++] = '\r';
            w[o++] = '\n';
            if (line > info->line_max)
                info->line_max = line;
            line = 0;
            continue;
        }
        if (c >= 0x80)
            info->has_8bit = 1;
        else if (c == 0)
            info->has_nul = 1;
        w[o++] = (char)c;
        line++;
    }
    if (line > info->line_max)
        info->line_max = line;
    if (len && line) {
        w[o++] = '\r';
        w[o++] = '\n';
    }
    buf_commit(out, o);
}
