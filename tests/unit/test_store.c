/* test_store: the spool's segments (queue/store) and the group commit
 * (queue/commit): round trips through recovery, torn tails at every byte,
 * damaged records, in-place state, rotation, and batching of syncs. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "queue/commit.h"
#include "queue/store.h"

static char test_root[4096];
static int test_seq;

/* A fresh, empty spool directory for each case. */
static void test_spool(char *out, size_t outsize)
{
    snprintf(out, outsize, "%s/spool%d", test_root, ++test_seq);
    mkdir(out, 0700);
}

static int test_content_fd(const char *data, size_t n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/contentXXXXXX", test_root);
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, data, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

static int test_append(struct store *st, const char *qid, const char *env, uint32_t nrcpt,
                       const char *content, struct store_rec *rec)
{
    int fd = test_content_fd(content, strlen(content));
    if (fd < 0)
        return -1;
    int rc = store_append(st, qid, env, (uint32_t)strlen(env), nrcpt, fd, strlen(content),
                          1700000000123456ull, rec);
    close(fd);
    return rc;
}

/* What recovery reported. */
struct seen {
    size_t n;
    struct store_rec recs[64];
    struct store_slot slots[64][4];
    char env[64][128];
    char content[64][256];
};

static void seen_cb(void *arg, struct store *st, const struct store_rec *rec,
                    const struct store_slot *slots)
{
    struct seen *s = arg;
    if (s->n >= 64)
        return;
    s->recs[s->n] = *rec;
    for (uint32_t i = 0; i < rec->nrcpt && i < 4; i++)
        s->slots[s->n][i] = slots[i];
    int fd = store_seg_fd(st, rec->seg);
    char *env = NULL;
    if (fd >= 0 && store_read_env(fd, rec, &env) == 0) {
        snprintf(s->env[s->n], sizeof s->env[s->n], "%s", env);
        free(env);
    }
    if (fd >= 0 && rec->content_len < sizeof s->content[s->n])
        (void)!pread(fd, s->content[s->n], rec->content_len, (off_t)store_content_off(rec));
    s->n++;
}

static long test_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void test_round_trip(void)
{
    char dir[4200];
    test_spool(dir, sizeof dir);
    struct seen seen = {0};
    struct store *st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    CHECK_EQ_INT(seen.n, 0);
    struct store_rec a, b;
    CHECK_EQ_INT(test_append(st, "0000000000010001", "ENV-A", 1, "Subject: a\r\n\r\nbody a\r\n", &a), 0);
    CHECK_EQ_INT(test_append(st, "0000000000010002", "ENV-B", 3, "Subject: b\r\n\r\nbody b\r\n", &b), 0);
    CHECK_EQ_INT(a.seg, b.seg);
    CHECK_EQ_INT(b.off, store_rec_size(&a));
    CHECK_EQ_INT(store_seg_live(st, a.seg), 2);
    /* A qid that is not 16 hex digits is refused before anything is written. */
    struct store_rec bad;
    CHECK_EQ_INT(test_append(st, "not-a-qid", "E", 1, "x", &bad), -EINVAL);
    CHECK_EQ_INT(test_append(st, "0000000000010003", "E", 0, "x", &bad), -EINVAL);
    store_close(st);

    st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    CHECK_EQ_INT(seen.n, 2);
    CHECK_EQ_STR(seen.recs[0].qid, "0000000000010001");
    CHECK_EQ_STR(seen.recs[1].qid, "0000000000010002");
    CHECK_EQ_STR(seen.env[0], "ENV-A");
    CHECK_EQ_STR(seen.env[1], "ENV-B");
    CHECK_EQ_STR(seen.content[0], "Subject: a\r\n\r\nbody a\r\n");
    CHECK_EQ_STR(seen.content[1], "Subject: b\r\n\r\nbody b\r\n");
    CHECK_EQ_INT(seen.recs[1].nrcpt, 3);
    CHECK_EQ_INT(seen.recs[1].arrival_us, 1700000000123456ull);
    CHECK_EQ_INT(seen.recs[1].off, b.off);
    CHECK_EQ_INT(seen.slots[1][2].status, STORE_PENDING);
    CHECK_EQ_INT(seen.slots[1][2].attempts, 0);
    /* New appends go to a new segment, never after recovered data. */
    struct store_rec c;
    CHECK_EQ_INT(test_append(st, "0000000000010004", "ENV-C", 1, "c", &c), 0);
    CHECK(c.seg > a.seg);
    CHECK_EQ_INT(c.off, 0);
    store_close(st);
}

/* A prefix (the fields tern adds above a message) is part of the content:
 * the crc covers it and recovery reads it back in front of the body. */
static void test_prefixed(void)
{
    char dir[4200];
    test_spool(dir, sizeof dir);
    struct seen seen = {0};
    struct store *st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    const char *pre = "Authentication-Results: mx.test; spf=pass\r\n";
    const char *body = "Received: x\r\nSubject: p\r\n\r\nbody\r\n";
    int fd = test_content_fd(body, strlen(body));
    struct store_rec a;
    CHECK_EQ_INT(store_append_prefixed(st, "0000000000120001", "ENV", 3, 1, pre, strlen(pre), fd,
                                       strlen(body), 1700000000000000ull, &a),
                 0);
    CHECK_EQ_INT(a.content_len, strlen(pre) + strlen(body));
    /* A prefix larger than the write buffer is refused, nothing written. */
    static char huge[300000];
    memset(huge, 'x', sizeof huge);
    struct store_rec bad;
    CHECK_EQ_INT(store_append_prefixed(st, "0000000000120002", "ENV", 3, 1, huge, sizeof huge, fd,
                                       strlen(body), 1, &bad),
                 -EINVAL);
    close(fd);
    store_close(st);
    st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    CHECK_EQ_INT(seen.n, 1);
    char want[256];
    snprintf(want, sizeof want, "%s%s", pre, body);
    CHECK_EQ_STR(seen.content[0], want);
    store_close(st);
}

/* A write that fails in the middle of a record (the file system full;
 * here the file size limit, which fails the same pwrite the same way)
 * leaves nothing of it: the next record starts where the failed one did,
 * and recovery finds the records around it and no torn tail. */
static void test_write_failure(void)
{
    char dir[4200], segpath[4300];
    test_spool(dir, sizeof dir);
    struct seen seen = {0};
    struct store *st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    struct store_rec a, b, c;
    CHECK_EQ_INT(test_append(st, "0000000000110001", "ENV-A", 1, "a", &a), 0);
    /* Larger than one write buffer: the first part reaches the file
     * before the write that fails. */
    size_t big = 600000;
    char *content = malloc(big);
    memset(content, 'x', big);
    int fd = test_content_fd(content, big);
    free(content);
    CHECK(fd >= 0);
    snprintf(segpath, sizeof segpath, "%s/seg/%016llX.seg", dir, (unsigned long long)a.seg);
    long end_a = test_file_size(segpath);
    CHECK_EQ_INT(end_a, (long)store_rec_size(&a));
    struct rlimit rl, low;
    CHECK_EQ_INT(getrlimit(RLIMIT_FSIZE, &rl), 0);
    low = rl;
    low.rlim_cur = (rlim_t)end_a + 300000;
    signal(SIGXFSZ, SIG_IGN); /* EFBIG instead of the signal */
    CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &low), 0);
    CHECK_EQ_INT(store_append(st, "0000000000110002", "ENV-B", 5, 1, fd, big, 1, &b), -EFBIG);
    CHECK_EQ_INT(setrlimit(RLIMIT_FSIZE, &rl), 0);
    close(fd);
    CHECK_EQ_INT(test_file_size(segpath), end_a);
    CHECK_EQ_INT(store_seg_live(st, a.seg), 1);
    CHECK_EQ_INT(test_append(st, "0000000000110003", "ENV-C", 1, "c", &c), 0);
    CHECK_EQ_INT(c.seg, a.seg);
    CHECK_EQ_INT(c.off, (uint64_t)end_a);
    store_close(st);
    st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    CHECK_EQ_INT(seen.n, 2);
    CHECK_EQ_STR(seen.recs[0].qid, "0000000000110001");
    CHECK_EQ_STR(seen.recs[1].qid, "0000000000110003");
    CHECK_EQ_STR(seen.content[1], "c");
    CHECK_EQ_INT(test_file_size(segpath), end_a + (long)store_rec_size(&c));
    store_close(st);
}

static void test_torn_tail(void)
{
    char dir[4200], segpath[4300];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    struct store_rec a, b;
    CHECK_EQ_INT(test_append(st, "00000000000A0001", "ENV-A", 1, "first message\r\n", &a), 0);
    CHECK_EQ_INT(test_append(st, "00000000000A0002", "ENV-BB", 2, "second message\r\n", &b), 0);
    CHECK_EQ_INT(store_seg_path(st, a.seg, segpath, sizeof segpath), 0);
    store_close(st);
    size_t full = (size_t)test_file_size(segpath);
    CHECK_EQ_INT(full, b.off + store_rec_size(&b));
    char *orig = malloc(full);
    int fd = open(segpath, O_RDONLY);
    CHECK(fd >= 0 && read(fd, orig, full) == (ssize_t)full);
    close(fd);

    int bad = 0;
    for (size_t cut = b.off; cut < full; cut++) {
        /* The torn file is the only (so the last) segment. */
        fd = open(segpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || write(fd, orig, cut) != (ssize_t)cut)
            bad++;
        close(fd);
        struct seen seen = {0};
        st = store_open(dir, seen_cb, &seen);
        if (st == NULL || seen.n != 1 || strcmp(seen.recs[0].qid, "00000000000A0001") != 0 ||
            strcmp(seen.content[0], "first message\r\n") != 0) {
            fprintf(stderr, "torn tail at %zu: wrong recovery\n", cut);
            bad++;
        }
        /* The torn bytes were cut off. */
        if (test_file_size(segpath) != (long)b.off) {
            fprintf(stderr, "torn tail at %zu: size %ld\n", cut, test_file_size(segpath));
            bad++;
        }
        store_close(st);
        /* Later runs must not see a segment made by this one. */
        char extra[4300];
        snprintf(extra, sizeof extra, "%s/seg/%016llX.seg", dir, (unsigned long long)a.seg + 1);
        unlink(extra);
    }
    CHECK_EQ_INT(bad, 0);
    /* And the whole file again recovers both. */
    fd = open(segpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(write(fd, orig, full) == (ssize_t)full);
    close(fd);
    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 2);
    store_close(st);
    free(orig);
}

static void test_bad_crc(void)
{
    char dir[4200], segpath[4300];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    struct store_rec a, b, c;
    CHECK_EQ_INT(test_append(st, "00000000000B0001", "E1", 1, "one\r\n", &a), 0);
    CHECK_EQ_INT(test_append(st, "00000000000B0002", "E2", 1, "two\r\n", &b), 0);
    CHECK_EQ_INT(test_append(st, "00000000000B0003", "E3", 1, "three\r\n", &c), 0);
    store_seg_path(st, a.seg, segpath, sizeof segpath);
    store_close(st);
    /* Damage one content byte of the middle record: its framing holds, its
     * crc does not. */
    int fd = open(segpath, O_RDWR);
    CHECK(pwrite(fd, "X", 1, (off_t)store_content_off(&b) + 1) == 1);
    close(fd);
    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 2);
    CHECK_EQ_STR(seen.recs[0].qid, "00000000000B0001");
    CHECK_EQ_STR(seen.recs[1].qid, "00000000000B0003");
    CHECK_EQ_STR(seen.content[1], "three\r\n");
    store_close(st);

    /* A damaged header in the middle of an earlier segment ends that
     * segment's valid part without touching later segments. */
    test_spool(dir, sizeof dir);
    st = store_open(dir, seen_cb, &(struct seen){0});
    store_set_segment_max(st, 1);
    CHECK_EQ_INT(test_append(st, "00000000000B0011", "E1", 1, "one\r\n", &a), 0);
    store_set_segment_max(st, STORE_SEGMENT_MAX);
    CHECK_EQ_INT(test_append(st, "00000000000B0012", "E2", 1, "two\r\n", &b), 0);
    /* rotate */
    store_set_segment_max(st, 1);
    CHECK_EQ_INT(test_append(st, "00000000000B0013", "E3", 1, "three\r\n", &c), 0);
    CHECK(a.seg == b.seg && c.seg == a.seg + 1);
    store_seg_path(st, a.seg, segpath, sizeof segpath);
    store_close(st);
    fd = open(segpath, O_RDWR);
    CHECK(pwrite(fd, "\xff", 1, (off_t)b.off + 12) == 1); /* inside the qid */
    close(fd);
    memset(&seen, 0, sizeof seen);
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 2);
    CHECK_EQ_STR(seen.recs[0].qid, "00000000000B0011");
    CHECK_EQ_STR(seen.recs[1].qid, "00000000000B0013");
    /* Not the last segment: not truncated. */
    CHECK_EQ_INT(test_file_size(segpath), b.off + store_rec_size(&b));
    store_close(st);
}

static void test_slots(void)
{
    char dir[4200];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    struct store_rec a;
    CHECK_EQ_INT(test_append(st, "00000000000C0001", "E", 3, "content\r\n", &a), 0);
    struct store_slot s = {0};
    s.status = STORE_DONE;
    s.attempts = 1;
    s.last_attempt = 1700000100;
    CHECK_EQ_INT(store_slot_write(st, &a, 0, &s), 0);
    memset(&s, 0, sizeof s);
    s.status = STORE_PENDING;
    s.attempts = 2;
    s.next_attempt = 1700000900;
    s.last_attempt = 1700000300;
    snprintf(s.error, sizeof s.error, "451 4.2.0 mailbox busy");
    CHECK_EQ_INT(store_slot_write(st, &a, 2, &s), 0);
    CHECK(store_slot_write(st, &a, 3, &s) < 0); /* beyond nrcpt */
    /* An over-long error is cut, never overflows into the next slot. */
    struct store_slot longerr = {0};
    memset(longerr.error, 'e', STORE_ERR_MAX);
    CHECK_EQ_INT(store_slot_write(st, &a, 1, &longerr), 0);
    store_close(st);

    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 1);
    CHECK_EQ_INT(seen.slots[0][0].status, STORE_DONE);
    CHECK_EQ_INT(seen.slots[0][0].attempts, 1);
    CHECK_EQ_INT(seen.slots[0][0].last_attempt, 1700000100);
    CHECK_EQ_INT(seen.slots[0][1].status, STORE_PENDING);
    CHECK_EQ_INT(strlen(seen.slots[0][1].error), STORE_ERR_MAX);
    CHECK_EQ_INT(seen.slots[0][2].status, STORE_PENDING);
    CHECK_EQ_INT(seen.slots[0][2].attempts, 2);
    CHECK_EQ_INT(seen.slots[0][2].next_attempt, 1700000900);
    CHECK_EQ_INT(seen.slots[0][2].last_attempt, 1700000300);
    CHECK_EQ_STR(seen.slots[0][2].error, "451 4.2.0 mailbox busy");
    /* The record crc does not cover slots: the content is still intact. */
    CHECK_EQ_STR(seen.content[0], "content\r\n");

    /* A torn slot write reads back as pending with no attempts (a possible
     * duplicate delivery, never a lost message). */
    char segpath[4300];
    store_seg_path(st, a.seg, segpath, sizeof segpath);
    store_close(st);
    int fd = open(segpath, O_RDWR);
    CHECK(pwrite(fd, "\x07", 1, (off_t)store_slots_off(&a) + 10) == 1);
    close(fd);
    memset(&seen, 0, sizeof seen);
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 1);
    CHECK_EQ_INT(seen.slots[0][0].status, STORE_PENDING);
    CHECK_EQ_INT(seen.slots[0][0].attempts, 0);
    CHECK_EQ_INT(seen.slots[0][2].attempts, 2);
    store_close(st);
}

static void test_finished(void)
{
    char dir[4200];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    struct store_rec a, b, c;
    CHECK_EQ_INT(test_append(st, "00000000000D0001", "E", 1, "a", &a), 0);
    CHECK_EQ_INT(test_append(st, "00000000000D0002", "E", 2, "b", &b), 0);
    CHECK_EQ_INT(test_append(st, "00000000000D0003", "E", 1, "c", &c), 0);
    CHECK_EQ_INT(store_mark_finished(st, &a), 0);
    CHECK_EQ_INT(store_seg_live(st, a.seg), 2);
    /* All recipients handled but the finished mark lost: not recovered. */
    struct store_slot s = {0};
    s.status = STORE_DONE;
    CHECK_EQ_INT(store_slot_write(st, &b, 0, &s), 0);
    s.status = STORE_FAILED;
    CHECK_EQ_INT(store_slot_write(st, &b, 1, &s), 0);
    store_close(st);
    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 1);
    CHECK_EQ_STR(seen.recs[0].qid, "00000000000D0003");
    CHECK_EQ_INT(store_seg_live(st, a.seg), 1);
    /* Finishing the last live record of a recovered segment removes it. */
    char segpath[4300];
    store_seg_path(st, a.seg, segpath, sizeof segpath);
    CHECK_EQ_INT(store_mark_finished(st, &seen.recs[0]), 0);
    CHECK(access(segpath, F_OK) < 0);
    CHECK_EQ_INT(store_nsegments(st), 0);
    store_close(st);
    memset(&seen, 0, sizeof seen);
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 0);
    store_close(st);
}

static void test_rotation(void)
{
    char dir[4200];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    store_set_segment_max(st, 1000);
    struct store_rec r[6];
    char qid[17];
    for (int i = 0; i < 6; i++) {
        snprintf(qid, sizeof qid, "00000000000E%04X", i);
        CHECK_EQ_INT(test_append(st, qid, "ENVELOPE", 1, "content content content\r\n", &r[i]),
                     0);
    }
    /* About 300 bytes a record: three per 1000-byte segment. */
    size_t per = 1000 / store_rec_size(&r[0]);
    CHECK_EQ_INT(per, 3);
    CHECK_EQ_INT(r[2].seg, r[0].seg);
    CHECK_EQ_INT(r[3].seg, r[0].seg + 1);
    CHECK_EQ_INT(r[3].off, 0);
    CHECK_EQ_INT(store_nsegments(st), 2);
    char p0[4300], p1[4300];
    store_seg_path(st, r[0].seg, p0, sizeof p0);
    store_seg_path(st, r[3].seg, p1, sizeof p1);
    /* The first segment dies with its last live record. */
    CHECK_EQ_INT(store_mark_finished(st, &r[0]), 0);
    CHECK_EQ_INT(store_mark_finished(st, &r[2]), 0);
    CHECK(access(p0, F_OK) == 0);
    CHECK_EQ_INT(store_mark_finished(st, &r[1]), 0);
    CHECK(access(p0, F_OK) < 0);
    CHECK_EQ_INT(store_nsegments(st), 1);
    /* The current segment stays even when nothing in it is live. */
    for (int i = 3; i < 6; i++)
        CHECK_EQ_INT(store_mark_finished(st, &r[i]), 0);
    CHECK(access(p1, F_OK) == 0);
    /* ...until the next append rotates away from it. */
    struct store_rec big;
    char content[900];
    memset(content, 'x', sizeof content - 1);
    content[sizeof content - 1] = '\0';
    CHECK_EQ_INT(test_append(st, "00000000000E0100", "E", 1, content, &big), 0);
    CHECK(big.seg > r[3].seg);
    CHECK(access(p1, F_OK) < 0);
    /* A record larger than the rotation size still fits: alone. */
    CHECK(store_rec_size(&big) > 1000 || big.off == 0);
    store_close(st);

    /* Recovery removes segments with nothing live. */
    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK_EQ_INT(seen.n, 1);
    CHECK_EQ_INT(store_nsegments(st), 1);
    store_close(st);
}

static void test_corrupt_file(void)
{
    char dir[4200], path[4400];
    test_spool(dir, sizeof dir);
    struct store *st = store_open(dir, seen_cb, &(struct seen){0});
    struct store_rec a;
    CHECK_EQ_INT(test_append(st, "00000000000F0001", "E", 1, "a", &a), 0);
    store_close(st);
    /* A "segment" that cannot be opened as a file (a directory). */
    snprintf(path, sizeof path, "%s/seg/%016llX.seg", dir, (unsigned long long)a.seg + 5);
    CHECK_EQ_INT(mkdir(path, 0700), 0);
    struct seen seen = {0};
    st = store_open(dir, seen_cb, &seen);
    CHECK(st != NULL);
    CHECK_EQ_INT(seen.n, 1);
    CHECK(access(path, F_OK) < 0);
    snprintf(path, sizeof path, "%s/corrupt/%016llX.seg", dir, (unsigned long long)a.seg + 5);
    CHECK(access(path, F_OK) == 0);
    /* The next segment number is past the moved one. */
    struct store_rec b;
    CHECK_EQ_INT(test_append(st, "00000000000F0002", "E", 1, "b", &b), 0);
    CHECK(b.seg > a.seg + 5);
    store_close(st);
}

/* ---- commit ---- */

struct cbrec {
    int called;
    int status;
    int order;
};
static int cb_counter;

static void test_commit_cb(void *arg, int status)
{
    struct cbrec *r = arg;
    r->called++;
    r->status = status;
    r->order = ++cb_counter;
}

static int test_wait_commit(struct commit *c)
{
    struct pollfd p = {commit_fd(c), POLLIN, 0};
    int rc = poll(&p, 1, 10000);
    if (rc == 1)
        commit_process(c);
    return rc;
}

static void test_commit(void)
{
    char dir[4200], path[4300];
    test_spool(dir, sizeof dir);
    struct commit *c = commit_new(dir);
    CHECK(c != NULL);
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    CHECK(fd >= 0);
    struct cbrec r[10] = {{0}};
    CHECK(write(fd, "x", 1) == 1);
    CHECK_EQ_INT(commit_note_fd(c, 1, fd), 0);
    CHECK_EQ_INT(commit_note_fd(c, 1, fd), 0); /* same key: once */
    commit_add(c, test_commit_cb, &r[0]);
    commit_start(c, 0);
    CHECK(commit_busy(c));
    /* While the first batch syncs, others gather in the next. */
    for (int i = 1; i < 10; i++) {
        CHECK_EQ_INT(commit_note_fd(c, 1, fd), 0);
        commit_add(c, test_commit_cb, &r[i]);
        commit_start(c, 0); /* no effect while one runs */
    }
    CHECK_EQ_INT(r[0].called, 0);
    CHECK_EQ_INT(test_wait_commit(c), 1);
    CHECK_EQ_INT(r[0].called, 1);
    CHECK_EQ_INT(r[0].status, 0);
    CHECK_EQ_INT(r[1].called, 0);
    /* The next batch was started by commit_process itself. */
    CHECK(commit_busy(c));
    CHECK_EQ_INT(test_wait_commit(c), 1);
    for (int i = 1; i < 10; i++) {
        CHECK_EQ_INT(r[i].called, 1);
        CHECK_EQ_INT(r[i].status, 0);
    }
    CHECK(r[9].order > r[1].order);
    CHECK_EQ_INT(commit_nbatches(c), 2);
    CHECK(!commit_busy(c));
    /* Nothing with a callback: no batch unless forced. */
    CHECK_EQ_INT(commit_note_fd(c, 1, fd), 0);
    commit_start(c, 0);
    CHECK(!commit_busy(c));
    CHECK(commit_has_pending(c));
    commit_start(c, 1);
    CHECK(commit_busy(c));
    CHECK_EQ_INT(test_wait_commit(c), 1);
    CHECK(!commit_has_pending(c));
    CHECK_EQ_INT(commit_nbatches(c), 2);

    /* A failed sync fails every message of its batch, and also those
     * added while it ran (their data is in the same files, whose next
     * sync would not report the lost writeback again); what is added
     * after the failure was reaped is a new batch. */
    int pfd[2];
    CHECK_EQ_INT(pipe(pfd), 0);
    struct cbrec f[4] = {{0}};
    CHECK_EQ_INT(commit_note_fd(c, 2, pfd[0]), 0); /* fdatasync on a pipe: EINVAL */
    commit_add(c, test_commit_cb, &f[0]);
    commit_add(c, test_commit_cb, &f[1]);
    commit_start(c, 0);
    CHECK_EQ_INT(commit_note_fd(c, 1, fd), 0);
    commit_add(c, test_commit_cb, &f[2]);
    CHECK_EQ_INT(test_wait_commit(c), 1);
    CHECK_EQ_INT(f[0].called, 1);
    CHECK(f[0].status < 0);
    CHECK(f[1].status < 0);
    CHECK_EQ_INT(f[2].called, 1);
    CHECK(f[2].status < 0);
    CHECK(!commit_busy(c));
    /* The pending file is still noted (rewrites are synced again). */
    CHECK(commit_has_pending(c));
    commit_add(c, test_commit_cb, &f[3]);
    commit_start(c, 0);
    CHECK_EQ_INT(test_wait_commit(c), 1);
    CHECK_EQ_INT(f[3].called, 1);
    CHECK_EQ_INT(f[3].status, 0);
    close(pfd[0]);
    close(pfd[1]);

    /* A file that cannot be noted (no descriptor left to dup) fails the
     * batch it should have been synced with: never a false "durable". */
    struct rlimit rl, low;
    CHECK_EQ_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    int probe = dup(0);
    close(probe);
    low = rl;
    low.rlim_cur = (rlim_t)probe; /* every descriptor below is in use */
    struct cbrec h = {0};
    commit_add(c, test_commit_cb, &h);
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    CHECK(commit_note_fd(c, 3, fd) < 0);
    CHECK_EQ_INT(setrlimit(RLIMIT_NOFILE, &rl), 0);
    commit_start(c, 0);
    CHECK_EQ_INT(test_wait_commit(c), 1);
    CHECK_EQ_INT(h.called, 1);
    CHECK(h.status < 0);

    /* commit_free finishes what is pending and running, with real status. */
    struct cbrec g[2] = {{0}};
    commit_add(c, test_commit_cb, &g[0]);
    commit_start(c, 0);
    commit_add(c, test_commit_cb, &g[1]);
    commit_note_dir(c);
    commit_free(c);
    CHECK_EQ_INT(g[0].called, 1);
    CHECK_EQ_INT(g[1].called, 1);
    CHECK_EQ_INT(g[1].status, 0);
    close(fd);
}

int main(void)
{
    const char *base = getenv("TERN_TEST_TMP");
    if (base == NULL || !*base)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(test_root, sizeof test_root, "%s/test_store.XXXXXX", base);
    if (mkdtemp(test_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_prefixed();
    test_write_failure();
    test_torn_tail();
    test_bad_crc();
    test_slots();
    test_finished();
    test_rotation();
    test_corrupt_file();
    test_commit();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_root);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", test_root);
    return check_result("test_store");
}
