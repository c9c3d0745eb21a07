/* addrlist.c: a single pass over an address-list (RFC 5322 §3.4). */
#include "mail/addrlist.h"

#include <errno.h>
#include <string.h>

#include "base/buf.h"

/* The element being read: its plain text and, when it has an angle
 * address, what was between the brackets (which then wins). */
struct addrlist_el {
    struct buf plain, angle;
    int has_angle, in_angle;
};

static int addrlist_emit(struct addrlist_el *el, addrlist_cb cb, void *arg)
{
    struct buf *b = el->has_angle ? &el->angle : &el->plain;
    int rc = 0;
    if (b->len > ADDRLIST_ADDR_MAX) {
        rc = -ENAMETOOLONG;
    } else if (b->len) {
        buf_putc(b, '\0');
        rc = cb(arg, b->data, b->len - 1);
    }
    buf_reset(&el->plain);
    buf_reset(&el->angle);
    el->has_angle = el->in_angle = 0;
    return rc;
}

static void addrlist_put(struct addrlist_el *el, char c)
{
    struct buf *b = el->in_angle ? &el->angle : &el->plain;
    /* Past the cap the element is refused at its end; stop growing. */
    if (b->len <= ADDRLIST_ADDR_MAX)
        buf_putc(b, c);
}

int addrlist_parse(const char *v, size_t n, addrlist_cb cb, void *arg)
{
    struct addrlist_el el = {BUF_INIT, BUF_INIT, 0, 0};
    int comment = 0, quoted = 0, literal = 0, rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char c = v[i];
        if (comment) {
            if (c == '\\')
                i++;
            else if (c == '(')
                comment++;
            else if (c == ')')
                comment--;
            continue;
        }
        if (quoted) {
            addrlist_put(&el, c);
            if (c == '\\' && i + 1 < n)
                addrlist_put(&el, v[++i]);
            else if (c == '"')
                quoted = 0;
            continue;
        }
        if (literal) {
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
                addrlist_put(&el, c);
            if (c == ']')
                literal = 0;
            continue;
        }
        switch (c) {
        case ' ': case '\t': case '\r': case '\n':
            break;
        case '(':
            comment = 1;
            break;
        case '"':
            quoted = 1;
            addrlist_put(&el, c);
            break;
        case '[':
            literal = 1;
            addrlist_put(&el, c);
            break;
        case '<':
            if (el.in_angle) {
                rc = -EINVAL;
                break;
            }
            /* What came before was a display name. */
            el.in_angle = el.has_angle = 1;
            buf_reset(&el.angle);
            break;
        case '>':
            if (!el.in_angle)
                rc = -EINVAL;
            el.in_angle = 0;
            break;
        case ':':
            if (el.in_angle) {
                /* An obsolete route (RFC 5322 §4.4, "<@a,@b:u@c>"): dropped. */
                buf_reset(&el.angle);
                break;
            }
            /* A group's display name: not an address. */
            buf_reset(&el.plain);
            el.has_angle = 0;
            break;
        case ',':
            if (el.in_angle) {
                buf_reset(&el.angle); /* inside a route list */
                break;
            }
            /* fall through */
        case ';':
            if (el.in_angle) {
                rc = -EINVAL;
                break;
            }
            rc = addrlist_emit(&el, cb, arg);
            break;
        default:
            addrlist_put(&el, c);
            break;
        }
    }
    if (rc == 0 && (comment || quoted || literal || el.in_angle))
        rc = -EINVAL;
    if (rc == 0)
        rc = addrlist_emit(&el, cb, arg);
    buf_free(&el.plain);
    buf_free(&el.angle);
    return rc;
}
