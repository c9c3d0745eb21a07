/* redeliver.c: the search for a delivery that a crash interrupted. The
 * candidates are few (only files the dead process made around the time
 * of its attempt), so each is read up to the end of its header block. */
#include "deliver/redeliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/strutil.h"
#include "base/xmalloc.h"

/* How much of a candidate is read: the header block of a message that
 * fits; a longer one cannot be told apart and answers "not found". */
#define REDELIVER_READ_MAX 65536
/* A delivery that started at `since` names its file within this long. */
#define REDELIVER_WINDOW 3600

/* Decimal digits at *p, which it moves past. Returns 0 or -EINVAL. */
static int redeliver_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

/* Parses "<secs>.M<usecs>P<pid>Q<n>.<host>[:2,flags]" (maildir.h).
 * Returns 0 or -EINVAL. */
static int redeliver_parse_name(const char *name, uint64_t *secs, uint64_t *pid)
{
    const char *p = name;
    uint64_t dummy;
    if (redeliver_digits(&p, secs) < 0 || *p++ != '.' || *p++ != 'M' ||
        redeliver_digits(&p, &dummy) < 0 || *p++ != 'P' || redeliver_digits(&p, pid) < 0 ||
        *p != 'Q')
        return -EINVAL;
    return 0;
}

static int redeliver_is_word(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Does the header block hold "Delivered-To: <addr>" as a line and the
 * queue id as a word? */
static int redeliver_headers_match(const char *h, size_t n, const char *qid, const char *addr)
{
    size_t alen = strlen(addr), qlen = strlen(qid);
    int have_to = 0, have_id = 0;
    static const char dt[] = "Delivered-To: ";
    size_t dlen = sizeof dt - 1;
    for (size_t i = 0; i < n;) {
        size_t e = i;
        while (e < n && h[e] != '\n')
            e++;
        if (e == i)
            break; /* the empty line: end of the header block */
        if (e - i == dlen + alen && strutil_ncasecmp(h + i, dt, dlen) == 0 &&
            strutil_ncasecmp(h + i + dlen, addr, alen) == 0)
            have_to = 1;
        for (size_t k = i; !have_id && k + qlen <= e; k++) {
            if (memcmp(h + k, qid, qlen) == 0 && (k == i || !redeliver_is_word(h[k - 1])) &&
                (k + qlen == e || !redeliver_is_word(h[k + qlen])))
                have_id = 1;
        }
        i = e + 1;
    }
    return have_to && have_id;
}

static int redeliver_file_matches(const char *path, const char *qid, const char *addr)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char *b = xmalloc(REDELIVER_READ_MAX);
    size_t got = 0;
    while (got < REDELIVER_READ_MAX) {
        ssize_t r = read(fd, b + got, REDELIVER_READ_MAX - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    int ok = redeliver_headers_match(b, got, qid, addr);
    free(b);
    return ok;
}

int redeliver_find(const char *maildir, const char *qid, const char *addr, int64_t since,
                   uint32_t pid, char *found, size_t foundsize)
{
    static const char *const subs[] = {"new", "cur"};
    struct buf dir = BUF_INIT, path = BUF_INIT;
    int hit = 0;
    for (size_t s = 0; s < 2 && !hit; s++) {
        buf_reset(&dir);
        buf_printf(&dir, "%s/%s", maildir, subs[s]);
        DIR *d = opendir(dir.data);
        if (d == NULL)
            continue;
        struct dirent *de;
        while (!hit && (de = readdir(d)) != NULL) {
            uint64_t secs, fpid;
            if (de->d_name[0] == '.' || redeliver_parse_name(de->d_name, &secs, &fpid) < 0)
                continue;
            /* The clock may have been stepped back a little between the
             * intent and the file name: one second of slack. */
            if (fpid != pid || (int64_t)secs + 1 < since ||
                (int64_t)secs > since + REDELIVER_WINDOW)
                continue;
            buf_reset(&path);
            buf_printf(&path, "%s/%s", dir.data, de->d_name);
            if (redeliver_file_matches(path.data, qid, addr)) {
                hit = 1;
                strutil_lcpy(found, de->d_name, foundsize);
            }
        }
        closedir(d);
    }
    buf_free(&dir);
    buf_free(&path);
    return hit;
}
