/* table: the users and aliases tables of conf/, a hash map from a
 * lowercased key ("local" for every local domain, or "local@domain") to a
 * short list of strings (an alias's targets; a user's password hash). */
#ifndef TERN_CONF_TABLE_H
#define TERN_CONF_TABLE_H

#include <stddef.h>

struct conf_entry {
    char *key;     /* owned, lowercased; NULL marks an empty slot */
    char **vals;   /* owned array of owned strings */
    size_t nvals;
    unsigned line; /* where the entry was defined, for messages */
};

struct conf_table {
    char *file;               /* owned: the file it was read from */
    struct conf_entry *slots; /* open addressing, linear probing */
    size_t cap;               /* power of two, or 0 before the first add */
    size_t n;
};

/* Returns a new empty table (owned; conf_table_free() releases it). */
struct conf_table *conf_table_new(const char *file);
void conf_table_free(struct conf_table *t);

/* Adds `key` (copied, lowercased). Returns the new entry, or NULL if the
 * key is already present (then *prev_line tells where). The pointer is
 * valid until the next add. */
struct conf_entry *conf_table_add(struct conf_table *t, const char *key, unsigned line,
                                  unsigned *prev_line);
/* Appends a copy of val to e's list. */
void conf_entry_add_val(struct conf_entry *e, const char *val);

/* Exact lookup of a key (compared case-insensitively). */
const struct conf_entry *conf_table_get(const struct conf_table *t, const char *key);
/* Looks up "local@domain", then "local" alone. t may be NULL. */
const struct conf_entry *conf_table_find(const struct conf_table *t, const char *local,
                                         const char *domain);
/* Iterates: start with *iter = 0; returns NULL at the end. */
const struct conf_entry *conf_table_next(const struct conf_table *t, size_t *iter);

#endif
