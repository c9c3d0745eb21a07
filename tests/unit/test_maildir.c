/* test_maildir: delivery into a Maildir: names, content byte for byte
 * (headers, CRLF -> LF across the read chunks), the tmp/ -> new/ move,
 * concurrent deliveries, and failures that must leave nothing behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsio.h"
#include "check.h"
#include "deliver/maildir.h"

static char tmpdir[PATH_MAX];

static void make_tmpdir(void)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_maildir.XXXXXX", base);
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Path of `name` under the run's directory, in one of a few slots. */
static const char *at(const char *name)
{
    static char paths[8][PATH_MAX + 128];
    static int slot;
    char *p = paths[slot++ % 8];
    snprintf(p, PATH_MAX + 128, "%s/%s", tmpdir, name);
    return p;
}

/* A body file: `pre` junk bytes, the body, `post` junk bytes. */
static int body_file(const char *body, size_t len, size_t pre, size_t post)
{
    char tmpl[PATH_MAX + 32];
    snprintf(tmpl, sizeof tmpl, "%s/body.XXXXXX", tmpdir);
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    unlink(tmpl);
    char *junk = malloc(pre + post + 1);
    memset(junk, '\r', pre + post + 1); /* CRs: would show if read */
    if (fsio_write_all(fd, junk, pre) < 0 || fsio_write_all(fd, body, len) < 0 ||
        fsio_write_all(fd, junk, post) < 0) {
        perror("write");
        exit(1);
    }
    free(junk);
    return fd;
}

/* Names of the files in dir (not . and ..), count returned. */
static size_t list_dir(const char *dir, char names[][256], size_t max)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return (size_t)-1;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (names && n < max)
            snprintf(names[n], 256, "%s", de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static size_t count_in(const char *maildir, const char *sub)
{
    char p[PATH_MAX + 256];
    snprintf(p, sizeof p, "%s/%s", maildir, sub);
    return list_dir(p, NULL, 0);
}

/* Reads the single file in maildir/new into a malloc'd buffer. */
static char *read_only_new(const char *maildir, size_t *len)
{
    char names[2][256];
    char p[PATH_MAX + 512];
    snprintf(p, sizeof p, "%s/new", maildir);
    if (list_dir(p, names, 2) != 1)
        return NULL;
    snprintf(p, sizeof p, "%s/new/%s", maildir, names[0]);
    char *data = NULL;
    if (fsio_read_file(p, 1u << 30, &data, len) < 0)
        return NULL;
    return data;
}

/* The reference conversion: every CRLF becomes LF, nothing else changes. */
static size_t crlf_ref(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '\r' && i + 1 < n && in[i + 1] == '\n')
            continue;
        out[o++] = in[i];
    }
    return o;
}

static int is_digits(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static void test_unique_name(void)
{
    char a[256], b[256];
    maildir_unique_name(a, sizeof a, "mx.example.org");
    maildir_unique_name(b, sizeof b, "mx.example.org");
    CHECK(strcmp(a, b) != 0);
    /* "<secs>.M<usecs>P<pid>Q<n>.<host>" */
    const char *dot = strchr(a, '.');
    CHECK(dot && is_digits(a, (size_t)(dot - a)));
    if (dot) {
        CHECK(dot[1] == 'M');
        const char *p = strchr(dot, 'P'), *q = strchr(dot, 'Q');
        CHECK(p && q && p < q);
        if (p && q) {
            CHECK(is_digits(dot + 2, (size_t)(p - dot - 2)));
            char pid[32];
            snprintf(pid, sizeof pid, "P%ldQ", (long)getpid());
            CHECK(strncmp(p, pid, strlen(pid)) == 0);
            const char *hdot = strchr(q, '.');
            CHECK(hdot && is_digits(q + 1, (size_t)(hdot - q - 1)));
            if (hdot)
                CHECK_EQ_STR(hdot + 1, "mx.example.org");
        }
    }
    /* '/' and ':' are replaced in the host part, per the spec. */
    maildir_unique_name(a, sizeof a, "odd/host:name");
    size_t l = strlen(a);
    const char *want = "odd\\057host\\072name";
    CHECK(l > strlen(want) && !strcmp(a + l - strlen(want), want));
    CHECK(strchr(a, '/') == NULL && strchr(a, ':') == NULL);
    /* A small buffer is never overrun and stays a C string. */
    memset(b, 'Z', sizeof b);
    maildir_unique_name(b, 12, "host");
    CHECK(strlen(b) < 12);
    CHECK(b[12] == 'Z');
    memset(b, 'Z', sizeof b);
    maildir_unique_name(b, 40, "a/very/long/host/name/that/does/not/fit");
    CHECK(strlen(b) < 40 && b[40] == 'Z');
    CHECK(strchr(b, '/') == NULL);
}

static void test_deliver_basic(void)
{
    const char *md = at("deep/er/alice/Maildir");
    const char *body = "Subject: hi\r\n\r\nline one\r\nbare\rCR stays\r\n\r\r\nend\r";
    size_t blen = strlen(body);
    int fd = body_file(body, blen, 17, 9);
    struct maildir_msg m = {"sender@example.net", "alice@example.org", fd, 17, blen};
    struct result res;
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md, &m, &res), 0);
    CHECK_EQ_INT(res.kind, RESULT_OK);
    CHECK_EQ_INT(res.code, 250);
    CHECK_EQ_INT(count_in(md, "new"), 1);
    CHECK_EQ_INT(count_in(md, "tmp"), 0);
    CHECK_EQ_INT(count_in(md, "cur"), 0);
    struct stat st;
    CHECK(stat(md, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(stat(at("deep/er/alice/Maildir/new"), &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(stat(at("deep/er"), &st) == 0 && (st.st_mode & 0777) == 0700);
    size_t len = 0;
    char *got = read_only_new(md, &len);
    const char *want = "Return-Path: <sender@example.net>\n"
                       "Delivered-To: alice@example.org\n"
                       "Subject: hi\n\nline one\nbare\rCR stays\n\r\nend\r";
    CHECK(got != NULL);
    if (got)
        CHECK_EQ_MEM(got, len, want, strlen(want));
    free(got);

    /* A second delivery: a second file, the first untouched. */
    struct maildir_msg m2 = {"", "alice@example.org", fd, 17, 0};
    CHECK_EQ_INT(maildir_deliver(md, &m2, &res), 0);
    CHECK_EQ_INT(count_in(md, "new"), 2);
    CHECK_EQ_INT(count_in(md, "tmp"), 0);
    close(fd);

    /* The null sender and an empty body. */
    const char *md2 = at("null/Maildir");
    fd = body_file("", 0, 0, 0);
    struct maildir_msg m3 = {"", "bob@example.org", fd, 0, 0};
    CHECK_EQ_INT(maildir_deliver(md2, &m3, &res), 0);
    got = read_only_new(md2, &len);
    want = "Return-Path: <>\nDelivered-To: bob@example.org\n";
    CHECK(got != NULL);
    if (got)
        CHECK_EQ_MEM(got, len, want, strlen(want));
    free(got);
    close(fd);

    /* Addresses cannot inject header lines. */
    const char *md3 = at("inject/Maildir");
    fd = body_file("x\r\n", 3, 0, 0);
    struct maildir_msg m4 = {"a@b\r\nX-Evil: 1", "c@d\nX-Evil: 2", fd, 0, 3};
    CHECK_EQ_INT(maildir_deliver(md3, &m4, &res), 0);
    got = read_only_new(md3, &len);
    want = "Return-Path: <a@b??X-Evil: 1>\nDelivered-To: c@d?X-Evil: 2\nx\n";
    CHECK(got != NULL);
    if (got)
        CHECK_EQ_MEM(got, len, want, strlen(want));
    free(got);
    close(fd);
}

/* CRLF pairs across the internal read chunks must still become LF, and a
 * CR that ends a chunk without an LF after it must survive. */
static void test_deliver_chunks(void)
{
    const size_t C = MAILDIR_READ_CHUNK;
    size_t blen = 3 * C + 1000;
    char *body = malloc(blen);
    for (size_t i = 0; i < blen; i++)
        body[i] = (i % 77 == 75) ? '\r' : (i % 77 == 76) ? '\n' : (char)('a' + i % 26);
    body[C - 1] = '\r'; /* CRLF straddling the first boundary */
    body[C] = '\n';
    body[2 * C - 1] = '\r'; /* a lone CR ending the second chunk */
    body[2 * C] = 'x';
    body[3 * C - 2] = '\r'; /* CR CR LF across the third */
    body[3 * C - 1] = '\r';
    body[3 * C] = '\n';
    body[blen - 1] = '\r'; /* a CR at the very end */
    size_t pre = 5;
    int fd = body_file(body, blen, pre, 100);
    const char *md = at("chunks/Maildir");
    struct maildir_msg m = {"s@x", "r@y", fd, (off_t)pre, blen};
    struct result res;
    CHECK_EQ_INT(maildir_deliver(md, &m, &res), 0);
    size_t len = 0;
    char *got = read_only_new(md, &len);
    const char *head = "Return-Path: <s@x>\nDelivered-To: r@y\n";
    size_t hl = strlen(head);
    char *want = malloc(hl + blen);
    memcpy(want, head, hl);
    size_t wl = hl + crlf_ref(body, blen, want + hl);
    CHECK(got != NULL);
    if (got) {
        CHECK_EQ_INT(len, wl);
        CHECK(len == wl && memcmp(got, want, wl) == 0);
        /* Where the pair straddled the first boundary there is one LF. */
        char *scratch = malloc(C);
        size_t spot = hl + crlf_ref(body, C - 1, scratch);
        free(scratch);
        CHECK(len > spot + 1 && got[spot] == '\n' && got[spot - 1] != '\r');
    }
    free(got);
    free(want);
    free(body);
    close(fd);
}

struct worker {
    const char *md;
    int fd;
    size_t blen;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 500; i++) {
        struct maildir_msg m = {"s@x", "r@y", w->fd, 0, w->blen};
        struct result res;
        if (maildir_deliver(w->md, &m, &res) < 0 || res.kind != RESULT_OK)
            w->failures++;
    }
    return NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_threads(void)
{
    const char *md = at("threads/Maildir");
    const char *body = "Subject: t\r\n\r\nbody\r\n";
    int fd = body_file(body, strlen(body), 0, 0);
    struct worker w[2] = {{md, fd, strlen(body), 0}, {md, fd, strlen(body), 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(w[0].failures + w[1].failures, 0);
    char(*names)[256] = calloc(1100, 256);
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/new", md);
    size_t n = list_dir(p, names, 1100);
    CHECK_EQ_INT(n, 1000);
    CHECK_EQ_INT(count_in(md, "tmp"), 0);
    if (n == 1000) {
        qsort(names, n, 256, cmp_names);
        size_t dups = 0;
        for (size_t i = 1; i < n; i++)
            dups += !strcmp(names[i], names[i - 1]);
        CHECK_EQ_INT(dups, 0);
    }
    free(names);
    close(fd);
}

struct namer {
    char (*names)[128];
    int n;
};

static void *namer_run(void *arg)
{
    struct namer *nm = arg;
    for (int i = 0; i < nm->n; i++)
        maildir_unique_name(nm->names[i], 128, "h");
    return NULL;
}

/* The names alone, many more, from two threads at once. */
static void test_names_threads(void)
{
    enum { N = 20000 };
    char(*names)[128] = calloc(2 * N, 128);
    struct namer nm[2] = {{names, N}, {names + N, N}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, namer_run, &nm[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    qsort(names, 2 * N, 128, cmp_names);
    size_t dups = 0;
    for (size_t i = 1; i < 2 * N; i++)
        dups += !strcmp(names[i], names[i - 1]);
    CHECK_EQ_INT(dups, 0);
    free(names);
}

static void test_failures(void)
{
    const char *body = "Subject: f\r\n\r\nbody\r\n";
    int fd = body_file(body, strlen(body), 0, 0);
    struct result res;

    /* The parent of the Maildir is a plain file: nothing can be made. */
    const char *plain = at("plainfile");
    int pf = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    close(pf);
    const char *md = at("plainfile/Maildir");
    struct maildir_msg m = {"s@x", "r@y", fd, 0, strlen(body)};
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md, &m, &res), -ENOTDIR);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(res.code, 451);
    CHECK_EQ_STR(res.enh, "4.3.0");
    struct stat st;
    CHECK(stat(plain, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0);

    /* The body is shorter than the envelope says: a read error, and the
     * half-written file is gone from tmp/. */
    const char *md2 = at("short/Maildir");
    struct maildir_msg m2 = {"s@x", "r@y", fd, 0, strlen(body) + 10};
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md2, &m2, &res), -EIO);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(res.code, 451);
    CHECK_EQ_STR(res.enh, "4.3.0");
    CHECK_EQ_INT(count_in(md2, "tmp"), 0);
    CHECK_EQ_INT(count_in(md2, "new"), 0);

    /* A Maildir whose creation stopped half way (a full disk after tmp/
     * was made): the delivery completes it rather than failing forever
     * on the move into new/. */
    const char *md6 = at("half/Maildir");
    CHECK_EQ_INT(mkdir(at("half"), 0700), 0);
    CHECK_EQ_INT(mkdir(md6, 0700), 0);
    CHECK_EQ_INT(mkdir(at("half/Maildir/tmp"), 0700), 0);
    struct maildir_msg m6 = {"s@x", "r@y", fd, 0, strlen(body)};
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md6, &m6, &res), 0);
    CHECK_EQ_INT(res.kind, RESULT_OK);
    CHECK_EQ_INT(count_in(md6, "new"), 1);
    CHECK_EQ_INT(count_in(md6, "tmp"), 0);
    CHECK(stat(at("half/Maildir/cur"), &st) == 0 && S_ISDIR(st.st_mode));

    /* A bad descriptor: the same. */
    struct maildir_msg m3 = {"s@x", "r@y", -1, 0, 5};
    CHECK_EQ_INT(maildir_deliver(md2, &m3, &res), -EBADF);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(count_in(md2, "tmp"), 0);
    CHECK_EQ_INT(count_in(md2, "new"), 0);

    if (geteuid() == 0) {
        fprintf(stderr, "test_maildir: running as root, permission checks skipped\n");
        close(fd);
        return;
    }
    /* tmp/ read-only: the file cannot even be created. */
    const char *md4 = at("rotmp/Maildir");
    struct maildir_msg ok = {"s@x", "r@y", fd, 0, strlen(body)};
    CHECK_EQ_INT(maildir_deliver(md4, &ok, &res), 0); /* creates it */
    CHECK_EQ_INT(chmod(at("rotmp/Maildir/tmp"), 0500), 0);
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md4, &ok, &res), -EACCES);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_INT(res.code, 451);
    CHECK_EQ_STR(res.enh, "4.3.0");
    CHECK(strstr(res.text, "permission denied") != NULL);
    CHECK_EQ_INT(count_in(md4, "new"), 1); /* only the first */
    CHECK_EQ_INT(count_in(md4, "tmp"), 0);
    chmod(at("rotmp/Maildir/tmp"), 0700);

    /* new/ read-only: written in tmp/, the move fails, tmp/ is cleaned. */
    const char *md5 = at("ronew/Maildir");
    CHECK_EQ_INT(maildir_deliver(md5, &ok, &res), 0);
    CHECK_EQ_INT(chmod(at("ronew/Maildir/new"), 0500), 0);
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(md5, &ok, &res), -EACCES);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK_EQ_STR(res.enh, "4.3.0");
    CHECK(strstr(res.text, "permission denied") != NULL);
    CHECK_EQ_INT(count_in(md5, "tmp"), 0);
    CHECK_EQ_INT(count_in(md5, "new"), 1);
    chmod(at("ronew/Maildir/new"), 0700);

    /* The whole Maildir's parent read-only: it cannot be created. */
    const char *ro = at("roparent");
    mkdir(ro, 0500);
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(maildir_deliver(at("roparent/u/Maildir"), &ok, &res), -EACCES);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    CHECK(strstr(res.text, "permission denied") != NULL);
    CHECK(stat(at("roparent/u"), &st) < 0 && errno == ENOENT);
    chmod(ro, 0700);
    close(fd);
}

int main(void)
{
    make_tmpdir();
    test_unique_name();
    test_deliver_basic();
    test_deliver_chunks();
    test_threads();
    test_names_threads();
    test_failures();
    return check_result("test_maildir");
}
