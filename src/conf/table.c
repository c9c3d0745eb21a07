/* table.c: a small open-addressing hash map for the users and aliases
 * tables. Lookups happen for every RCPT TO, so they must not scan. */
#include "conf/table.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/strutil.h"
#include "base/xmalloc.h"
#include "mail/mailaddr.h"

/* FNV-1a over the lowercased key: keys are case-insensitive. */
static uint64_t conf_table_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

struct conf_table *conf_table_new(const char *file)
{
    struct conf_table *t = xcalloc(1, sizeof *t);
    t->file = xstrdup(file ? file : "");
    return t;
}

void conf_table_free(struct conf_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        struct conf_entry *e = &t->slots[i];
        if (e->key == NULL)
            continue;
        for (size_t j = 0; j < e->nvals; j++)
            free(e->vals[j]);
        free(e->vals);
        free(e->key);
    }
    free(t->slots);
    free(t->file);
    free(t);
}

static struct conf_entry *conf_table_slot(const struct conf_table *t, const char *key)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)conf_table_hash(key) & mask;; i = (i + 1) & mask) {
        struct conf_entry *e = &t->slots[i];
        if (e->key == NULL || strutil_casecmp(e->key, key) == 0)
            return e;
    }
}

/* Keeps the load factor at most 1/2 so probes stay short and an empty
 * slot always ends a probe. */
static void conf_table_grow(struct conf_table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    struct conf_entry *old = t->slots;
    size_t ocap = t->cap;
    t->slots = xcalloc(ncap, sizeof *t->slots);
    t->cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].key)
            *conf_table_slot(t, old[i].key) = old[i];
    free(old);
}

struct conf_entry *conf_table_add(struct conf_table *t, const char *key, unsigned line,
                                  unsigned *prev_line)
{
    if ((t->n + 1) * 2 > t->cap)
        conf_table_grow(t);
    struct conf_entry *e = conf_table_slot(t, key);
    if (e->key) {
        if (prev_line)
            *prev_line = e->line;
        return NULL;
    }
    e->key = xstrdup(key);
    strutil_lower(e->key);
    e->line = line;
    t->n++;
    return e;
}

void conf_entry_add_val(struct conf_entry *e, const char *val)
{
    e->vals = xrealloc(e->vals, (e->nvals + 1) * sizeof *e->vals);
    e->vals[e->nvals++] = xstrdup(val);
}

const struct conf_entry *conf_table_get(const struct conf_table *t, const char *key)
{
    if (t == NULL || t->n == 0)
        return NULL;
    const struct conf_entry *e = conf_table_slot(t, key);
    return e->key ? e : NULL;
}

const struct conf_entry *conf_table_find(const struct conf_table *t, const char *local,
                                         const char *domain)
{
    if (t == NULL || t->n == 0)
        return NULL;
    size_t ll = strlen(local), dl = domain ? strlen(domain) : 0;
    if (ll == 0 || ll > MAILADDR_LOCAL_MAX || dl > MAILADDR_DOMAIN_MAX)
        return NULL;
    char key[MAILADDR_LOCAL_MAX + 1 + MAILADDR_DOMAIN_MAX + 1];
    memcpy(key, local, ll);
    key[ll] = '\0';
    if (dl) {
        key[ll] = '@';
        memcpy(key + ll + 1, domain, dl + 1);
        const struct conf_entry *e = conf_table_get(t, key);
        if (e)
            return e;
        key[ll] = '\0';
    }
    return conf_table_get(t, key);
}

const struct conf_entry *conf_table_next(const struct conf_table *t, size_t *iter)
{
    if (t == NULL)
        return NULL;
    while (*iter < t->cap) {
        const struct conf_entry *e = &t->slots[(*iter)++];
        if (e->key)
            return e;
    }
    return NULL;
}
