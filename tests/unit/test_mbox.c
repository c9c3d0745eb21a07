/* test_mbox: delivery into an mbox file (deliver/mbox, mbox_lock and the
 * mbox search of deliver/redeliver): the entries written, the locks
 * waited for and given up on, stale dot-locks, files refused, and after
 * a crash: a complete entry found, one cut short removed, a near miss not
 * taken for the delivery. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "deliver/local.h"
#include "deliver/mbox.h"
#include "deliver/mbox_lock.h"
#include "deliver/redeliver.h"

static char dir[4096], box[4200];

static const char body[] = "Received: from x (unknown [127.0.0.1])\r\n"
                           "\tby mx (tern) with ESMTP id 60E8ABCDEF010203\r\n"
                           "Subject: hi\r\n"
                           "\r\n"
                           "From the start\r\n"
                           ">From quoted\r\n"
                           "end\r\n";

static int body_fd(const char *text)
{
    int fd = memfd_create("msg", MFD_CLOEXEC);
    size_t n = strlen(text);
    CHECK(write(fd, text, n) == (ssize_t)n);
    return fd;
}

static char *slurp(const char *path, size_t *len)
{
    static char data[1 << 16];
    int fd = open(path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, data, sizeof data - 1) : -1;
    if (fd >= 0)
        close(fd);
    *len = n > 0 ? (size_t)n : 0;
    data[*len] = '\0';
    return data;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static struct mbox_msg msg_for(int fd, const char *to)
{
    struct mbox_msg m = {"s@example.org", to, fd, 0, strlen(body)};
    return m;
}

/* What the entry of `body` for lena looks like after its separator. */
static const char entry_rest[] = "Return-Path: <s@example.org>\n"
                                 "Delivered-To: lena@localhost\n"
                                 "Received: from x (unknown [127.0.0.1])\n"
                                 "\tby mx (tern) with ESMTP id 60E8ABCDEF010203\n"
                                 "Subject: hi\n"
                                 "\n"
                                 ">From the start\n"
                                 ">>From quoted\n"
                                 "end\n"
                                 "\n";

static void test_append(void)
{
    int fd = body_fd(body);
    struct mbox_msg m = msg_for(fd, "lena@localhost");
    struct result res;
    snprintf(box, sizeof box, "%s/sub/dir/lena", dir);
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    CHECK_EQ_INT(res.kind, RESULT_OK);
    CHECK_EQ_STR(res.text, "delivered to mbox at offset 0");
    size_t len;
    char *data = slurp(box, &len);
    CHECK(strncmp(data, "From s@example.org ", 19) == 0);
    const char *nl = strchr(data, '\n');
    CHECK(nl && !strcmp(nl + 1, entry_rest));
    size_t first = len;
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    char want[64];
    snprintf(want, sizeof want, "delivered to mbox at offset %zu", first);
    CHECK_EQ_STR(res.text, want);
    data = slurp(box, &len);
    CHECK_EQ_INT(len, 2 * first);
    struct stat st;
    CHECK(stat(box, &st) == 0 && (st.st_mode & 0777) == 0600);
    /* No lock left behind. */
    char dot[4300];
    snprintf(dot, sizeof dot, "%s.lock", box);
    CHECK(access(dot, F_OK) < 0 && errno == ENOENT);

    /* A file another writer left without its last line end. */
    snprintf(box, sizeof box, "%s/noeol", dir);
    put(box, "From x Thu Jan  1 00:00:00 2026\nSubject: x\n\nno eol");
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    data = slurp(box, &len);
    CHECK(strstr(data, "no eol\nFrom s@example.org ") != NULL);
    close(fd);
}

static void test_refused(void)
{
    int fd = body_fd(body);
    struct mbox_msg m = msg_for(fd, "lena@localhost");
    struct result res;
    char target[4300], link_[4300];
    snprintf(target, sizeof target, "%s/victim", dir);
    put(target, "precious\n");
    /* A symlink is not followed. */
    snprintf(link_, sizeof link_, "%s/symlinked", dir);
    CHECK(symlink(target, link_) == 0);
    CHECK_EQ_INT(mbox_deliver(link_, &m, NULL, 1, &res), -ELOOP);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    /* Nor a hard link. */
    snprintf(link_, sizeof link_, "%s/hardlinked", dir);
    CHECK(link(target, link_) == 0);
    CHECK_EQ_INT(mbox_deliver(link_, &m, NULL, 1, &res), -EPERM);
    CHECK(strstr(res.text, "not a regular file of one link") != NULL);
    /* Nor a directory. */
    snprintf(link_, sizeof link_, "%s/adir", dir);
    mkdir(link_, 0700);
    CHECK(mbox_deliver(link_, &m, NULL, 1, &res) < 0);
    CHECK_EQ_INT(res.kind, RESULT_TEMPFAIL);
    size_t len;
    CHECK_EQ_STR(slurp(target, &len), "precious\n");
    close(fd);
}

static void test_locks(void)
{
    int fd = body_fd(body);
    struct mbox_msg m = msg_for(fd, "lena@localhost");
    struct result res;
    char dot[4300];
    snprintf(box, sizeof box, "%s/locked", dir);
    snprintf(dot, sizeof dot, "%s.lock", box);
    put(box, "");
    /* A live dot-lock (ours: this process exists) is waited for, then
     * the delivery is deferred. */
    char pid[32];
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    put(dot, pid);
    CHECK_EQ_INT(mbox_lock_stale(dot), 0);
    uint64_t t0 = clock_wall_us();
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), -ETIMEDOUT);
    CHECK(clock_wall_us() - t0 >= 990000); /* 1 s, counted in whole ms */
    CHECK_EQ_INT(res.code, 451);
    CHECK_EQ_STR(res.enh, "4.2.0");
    size_t len;
    slurp(box, &len);
    CHECK_EQ_INT(len, 0);
    /* An empty one (Python's) is live until it is old. */
    put(dot, "");
    CHECK_EQ_INT(mbox_lock_stale(dot), 0);
    struct timeval old[2] = {{time(NULL) - MBOX_DOTLOCK_STALE_S - 10, 0},
                             {time(NULL) - MBOX_DOTLOCK_STALE_S - 10, 0}};
    CHECK(utimes(dot, old) == 0);
    CHECK_EQ_INT(mbox_lock_stale(dot), 1);
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    CHECK(access(dot, F_OK) < 0);
    /* One naming a process that is gone is stale at once. */
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    snprintf(pid, sizeof pid, "%ld\n", (long)child);
    put(dot, pid);
    CHECK_EQ_INT(mbox_lock_stale(dot), 1);
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);

    /* An fcntl lock of another process (mutt's kind: POSIX, F_SETLK). */
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    child = fork();
    if (child == 0) {
        int bfd = open(box, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        char c = fcntl(bfd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(1);
        _exit(0);
    }
    char c = 0;
    CHECK(read(ready[0], &c, 1) == 1 && c == 'y');
    slurp(box, &len);
    size_t before = len;
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), -ETIMEDOUT);
    CHECK(access(dot, F_OK) < 0); /* the dot-lock given back meanwhile */
    slurp(box, &len);
    CHECK_EQ_INT(len, before);
    CHECK(write(go[1], "x", 1) == 1);
    waitpid(child, NULL, 0);
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    close(fd);
}

/* After a crash: the attempt's entry is found only if it is whole. */
static void test_look(void)
{
    int fd = body_fd(body);
    struct mbox_msg m = msg_for(fd, "lena@localhost");
    struct result res;
    snprintf(box, sizeof box, "%s/crash", dir);
    int64_t since = clock_wall();
    struct mbox_look look = {"60E8ABCDEF010203", since};
    /* Nothing there: delivered. */
    CHECK_EQ_INT(mbox_deliver(box, &m, &look, 1, &res), 0);
    CHECK(strstr(res.text, "at offset 0") != NULL);
    size_t len;
    slurp(box, &len);
    size_t one = len;
    /* Another message after it (a later delivery of someone else's). */
    int fd2 = body_fd("Subject: other\r\n\r\nFrom x\r\n");
    struct mbox_msg m2 = {"o@example.org", "lena@localhost", fd2, 0, 26};
    CHECK_EQ_INT(mbox_deliver(box, &m2, NULL, 1, &res), 0);
    slurp(box, &len);
    size_t two = len;
    /* Looked for again: found, not written twice. */
    CHECK_EQ_INT(mbox_deliver(box, &m, &look, 1, &res), 0);
    CHECK_EQ_STR(res.text, "delivered to mbox before a restart");
    slurp(box, &len);
    CHECK_EQ_INT(len, two);
    /* Another recipient, another queue id, too early: not it. */
    struct mbox_msg other = msg_for(fd, "max@localhost");
    CHECK_EQ_INT(mbox_deliver(box, &other, &look, 1, &res), 0);
    CHECK(strstr(res.text, "at offset") != NULL);
    struct mbox_look qid2 = {"60E8ABCDEF010204", since};
    slurp(box, &len);
    size_t three = len;
    CHECK_EQ_INT(mbox_deliver(box, &m, &qid2, 1, &res), 0);
    CHECK(strstr(res.text, "at offset") != NULL);
    struct mbox_look later = {"60E8ABCDEF010203", since + 10};
    slurp(box, &len);
    size_t four = len;
    CHECK_EQ_INT(mbox_deliver(box, &m, &later, 1, &res), 0);
    CHECK(strstr(res.text, "at offset") != NULL);
    CHECK(three > two && four > three);

    /* A crash in the middle of the write: the tail is cut away, the
     * message written whole, once. */
    snprintf(box, sizeof box, "%s/cut", dir);
    CHECK_EQ_INT(mbox_deliver(box, &m2, NULL, 1, &res), 0);
    slurp(box, &len);
    size_t base = len;
    CHECK_EQ_INT(mbox_deliver(box, &m, NULL, 1, &res), 0);
    CHECK(truncate(box, (off_t)(base + one - 20)) == 0); /* in the body */
    CHECK_EQ_INT(mbox_deliver(box, &m, &look, 1, &res), 0);
    char want[64];
    snprintf(want, sizeof want, "delivered to mbox at offset %zu", base);
    CHECK_EQ_STR(res.text, want);
    slurp(box, &len);
    CHECK_EQ_INT(len, base + one);
    /* Cut before the queue id: not recognisably ours, so it stays (a
     * duplicate beats a loss) and the message follows it. */
    CHECK(truncate(box, (off_t)(base + 40)) == 0);
    CHECK_EQ_INT(mbox_deliver(box, &m, &look, 1, &res), 0);
    slurp(box, &len);
    CHECK_EQ_INT(len, base + 40 + 1 + one);
    close(fd);
    close(fd2);
}

/* local_deliver's mbox path: a request marked "check" (a crash left the
 * slot in flight) finds the entry that attempt made. */
static void test_local_check(void)
{
    int fd = body_fd(body);
    snprintf(box, sizeof box, "%s/local", dir);
    struct local_req req = {
        .kind = LOCAL_MBOX,
        .path = box,
        .return_path = "s@example.org",
        .delivered_to = "lena@localhost",
        .fd = fd,
        .len = strlen(body),
        .qid = "60E8ABCDEF010203",
        .since = clock_wall(),
        .lock_wait = 1,
    };
    struct result res;
    local_deliver(&req, &res);
    CHECK_EQ_STR(res.text, "delivered to mbox at offset 0");
    req.check = 1;
    local_deliver(&req, &res);
    CHECK_EQ_STR(res.text, "delivered to mbox before a restart");
    size_t len;
    const char *data = slurp(box, &len);
    const char *nl = strchr(data, '\n');
    CHECK(len > 0 && nl && !strcmp(nl + 1, entry_rest)); /* one entry, once */
    close(fd);
}

int main(void)
{
    const char *tmp = getenv("TERN_TEST_TMP");
    if (tmp == NULL || !*tmp)
        tmp = "/tmp";
    mkdir(tmp, 0700);
    snprintf(dir, sizeof dir, "%s/test_mbox.XXXXXX", tmp);
    if (mkdtemp(dir) == NULL)
        return 1;
    test_append();
    test_refused();
    test_locks();
    test_look();
    test_local_check();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_result("test_mbox");
}
