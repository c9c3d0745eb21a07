/* check.h: the tiny assertion kit of tern's C unit tests. Each test file
 * is a program; a failed CHECK prints file:line and the expression, the
 * program continues, and main returns check_result() so CTest sees the
 * failure. */
#ifndef TERN_TEST_CHECK_H
#define TERN_TEST_CHECK_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                               \
    do {                                                                          \
        check_count++;                                                            \
        if (!(expr)) {                                                            \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
        }                                                                         \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                        \
    do {                                                                          \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);           \
        check_count++;                                                            \
        if (check_a_ != check_b_) {                                               \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",     \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);              \
        }                                                                         \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                        \
    do {                                                                          \
        const char *check_a_ = (a), *check_b_ = (b);                              \
        check_count++;                                                            \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_)) { \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
                    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",   \
                    check_b_ ? check_b_ : "(null)");                              \
        }                                                                         \
    } while (0)

/* Compares n bytes; prints both sides escaped on failure. */
#define CHECK_EQ_MEM(a, alen, b, blen)                                            \
    do {                                                                          \
        size_t check_al_ = (alen), check_bl_ = (blen);                            \
        check_count++;                                                            \
        if (check_al_ != check_bl_ ||                                            \
            (check_al_ && memcmp((a), (b), check_al_))) {                         \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n  got:  ", __FILE__,  \
                    __LINE__, #a, #b);                                            \
            check_dump((const char *)(a), check_al_);                             \
            fprintf(stderr, "\n  want: ");                                        \
            check_dump((const char *)(b), check_bl_);                             \
            fprintf(stderr, "\n");                                                \
        }                                                                         \
    } while (0)

static inline void check_dump(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            fputs("\\r", stderr);
        else if (c == '\n')
            fputs("\\n", stderr);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
}

/* Makes a fresh directory for this run, $TERN_TEST_TMP/<name>.XXXXXX (or
 * under /tmp), and writes its real path to out. Ends the program if it
 * cannot. */
static inline void check_tmpdir(const char *name, char *out, size_t outsize)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    char tmpl[PATH_MAX];
    snprintf(tmpl, sizeof tmpl, "%s/%s.XXXXXX", base, name);
    char real[PATH_MAX];
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, real) == NULL || strlen(real) >= outsize) {
        perror("mkdtemp");
        exit(1);
    }
    memcpy(out, real, strlen(real) + 1);
}

/* Writes content to dir/name, ending the program if it cannot. Returns
 * the path, in a static buffer that the next call reuses. */
static inline const char *check_put(const char *dir, const char *name, const char *content)
{
    static char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f == NULL || fputs(content, f) < 0 || fclose(f) != 0) {
        perror(p);
        exit(1);
    }
    return p;
}

static inline int check_result(const char *name)
{
    if (check_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, check_failures, check_count);
        return 1;
    }
    printf("%s: %d checks passed\n", name, check_count);
    return 0;
}

#endif
