/* store.c: append-only segments of self-contained records (see store.h for
 * the layout): appends, in-place rewrites of recipient states and finished
 * marks, segment rotation and removal. Recovery is in store_recover.c. */
#include "queue/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/fsio.h"
#include "base/log.h"
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "queue/store_priv.h"

/* crc32 over any length (zlib takes an unsigned int). */
uint32_t store_crc(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        crc = (uint32_t)crc32(crc, c, chunk);
        c += chunk;
        n -= chunk;
    }
    return crc;
}

uint32_t store_hdr_crc(const unsigned char *hdr)
{
    unsigned char h[STORE_HDR_SIZE];
    memcpy(h, hdr, sizeof h);
    h[H_FINISHED] = 0;
    return store_crc((uint32_t)crc32(0, Z_NULL, 0), h, H_CRC);
}

uint64_t store_env_off(const struct store_rec *rec)
{
    return rec->off + STORE_HDR_SIZE;
}

uint64_t store_slots_off(const struct store_rec *rec)
{
    return store_env_off(rec) + rec->env_len;
}

uint64_t store_content_off(const struct store_rec *rec)
{
    return store_slots_off(rec) + (uint64_t)rec->nrcpt * STORE_SLOT_SIZE;
}

uint64_t store_rec_size(const struct store_rec *rec)
{
    return STORE_HDR_SIZE + (uint64_t)rec->env_len + (uint64_t)rec->nrcpt * STORE_SLOT_SIZE +
           rec->content_len + STORE_TRAILER_SIZE;
}

static void store_slot_encode(unsigned char *p, const struct store_slot *s)
{
    memset(p, 0, STORE_SLOT_SIZE);
    p[S_STATUS] = (unsigned char)s->status;
    p[S_FLAGS] = (unsigned char)s->flags;
    store_put_u32(p + S_PID, s->attempt_pid);
    store_put_u16(p + S_ATTEMPTS, (uint16_t)(s->attempts > 0xffff ? 0xffff : s->attempts));
    store_put_u64(p + S_NEXT, (uint64_t)s->next_attempt);
    store_put_u64(p + S_LAST, (uint64_t)s->last_attempt);
    size_t n = strnlen(s->error, STORE_ERR_MAX);
    store_put_u16(p + S_ERRLEN, (uint16_t)n);
    memcpy(p + S_ERR, s->error, n);
    store_put_u32(p + S_CRC, store_crc((uint32_t)crc32(0, Z_NULL, 0), p, STORE_SLOT_SIZE));
}

/* Returns 0, or -EBADMSG for a slot that fails its crc (then *s is pending). */
static int store_slot_decode(const unsigned char *p, struct store_slot *s)
{
    unsigned char tmp[STORE_SLOT_SIZE];
    memcpy(tmp, p, sizeof tmp);
    store_put_u32(tmp + S_CRC, 0);
    uint32_t want = store_get_u32(p + S_CRC);
    memset(s, 0, sizeof *s);
    s->status = STORE_PENDING;
    if (store_crc((uint32_t)crc32(0, Z_NULL, 0), tmp, sizeof tmp) != want ||
        p[S_STATUS] > STORE_FAILED || store_get_u16(p + S_ERRLEN) > STORE_ERR_MAX)
        return -EBADMSG;
    s->status = (enum store_status)p[S_STATUS];
    s->flags = p[S_FLAGS];
    s->attempt_pid = store_get_u32(p + S_PID);
    s->attempts = store_get_u16(p + S_ATTEMPTS);
    s->next_attempt = (int64_t)store_get_u64(p + S_NEXT);
    s->last_attempt = (int64_t)store_get_u64(p + S_LAST);
    size_t n = store_get_u16(p + S_ERRLEN);
    memcpy(s->error, p + S_ERR, n);
    s->error[n] = '\0';
    return 0;
}

int store_seg_path(const struct store *st, uint64_t seq, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, "%s/%016llX.seg", st->segdir, (unsigned long long)seq);
    return n < 0 || (size_t)n >= outsize ? -ENAMETOOLONG : 0;
}

struct store_seg *store_find_seg(const struct store *st, uint64_t seq)
{
    size_t lo = 0, hi = st->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->segs[mid]->seq == seq)
            return st->segs[mid];
        if (st->segs[mid]->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Segments are added in increasing seq order, so appending keeps the
 * array sorted. */
void store_add_seg(struct store *st, struct store_seg *s)
{
    if (st->nsegs == st->capsegs) {
        st->capsegs = st->capsegs ? st->capsegs * 2 : 8;
        st->segs = xrealloc(st->segs, st->capsegs * sizeof *st->segs);
    }
    st->segs[st->nsegs++] = s;
}

static void store_dirty(struct store *st, uint64_t seq, int fd)
{
    if (st->dirty)
        st->dirty(st->dirty_arg, seq, fd);
    else if (fd < 0)
        (void)fsio_sync_dir(st->segdir);
}

/* Removes a segment with nothing live: closes, unlinks, forgets it. */
void store_remove_seg(struct store *st, struct store_seg *s)
{
    char path[PATH_MAX];
    if (store_seg_path(st, s->seq, path, sizeof path) == 0 && unlink(path) < 0 &&
        errno != ENOENT)
        log_warn("spool: cannot remove segment %s: %s", path, strerror(errno));
    else
        log_debug("spool: removed segment %016llX", (unsigned long long)s->seq);
    if (s->fd >= 0)
        close(s->fd);
    for (size_t i = 0; i < st->nsegs; i++) {
        if (st->segs[i] == s) {
            memmove(&st->segs[i], &st->segs[i + 1], (st->nsegs - i - 1) * sizeof *st->segs);
            st->nsegs--;
            break;
        }
    }
    if (st->cur == s)
        st->cur = NULL;
    free(s);
    store_dirty(st, 0, -1);
}

static int store_new_seg(struct store *st)
{
    char path[PATH_MAX];
    int rc = store_seg_path(st, st->next_seq, path, sizeof path);
    if (rc < 0)
        return rc;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct store_seg *s = xcalloc(1, sizeof *s);
    s->seq = st->next_seq++;
    s->fd = fd;
    store_add_seg(st, s);
    if (st->cur)
        store_retire_current(st);
    st->cur = s;
    /* The new name must be durable with the first batch that uses it. */
    store_dirty(st, 0, -1);
    return 0;
}

void store_retire_current(struct store *st)
{
    struct store_seg *s = st->cur;
    if (s == NULL)
        return;
    s->retired = 1;
    st->cur = NULL;
    if (s->live == 0)
        store_remove_seg(st, s);
}

static int store_flush_wbuf(struct store *st, int fd, uint64_t *off)
{
    int rc = fsio_pwrite_all(fd, st->wbuf.data, st->wbuf.len, (off_t)*off);
    if (rc < 0)
        return rc;
    *off += st->wbuf.len;
    buf_reset(&st->wbuf);
    return 0;
}

int store_valid_qid(const char *qid, size_t n)
{
    if (n != STORE_QID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = qid[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

int store_append(struct store *st, const char *qid, const void *env, uint32_t env_len,
                 uint32_t nrcpt, int content_fd, uint64_t content_len, uint64_t arrival_us,
                 struct store_rec *out)
{
    return store_append_prefixed(st, qid, env, env_len, nrcpt, NULL, 0, content_fd, content_len,
                                 arrival_us, out);
}

int store_append_prefixed(struct store *st, const char *qid, const void *env, uint32_t env_len,
                          uint32_t nrcpt, const void *prefix, size_t prefix_len, int content_fd,
                          uint64_t content_len, uint64_t arrival_us, struct store_rec *out)
{
    if (!store_valid_qid(qid, strlen(qid)) || env_len > STORE_ENV_MAX || nrcpt == 0 ||
        nrcpt > STORE_RCPT_MAX || prefix_len > STORE_PREFIX_MAX)
        return -EINVAL;
    struct store_rec rec = {0};
    memcpy(rec.qid, qid, STORE_QID_LEN + 1);
    rec.env_len = env_len;
    rec.nrcpt = nrcpt;
    rec.content_len = prefix_len + content_len;
    rec.arrival_us = arrival_us;
    uint64_t total = store_rec_size(&rec);
    int rc;
    if (st->cur == NULL || st->cur->retired ||
        (st->cur->size > 0 && st->cur->size + total > st->seg_max)) {
        rc = store_new_seg(st);
        if (rc < 0)
            return rc;
    }
    struct store_seg *s = st->cur;
    rec.seg = s->seq;
    rec.off = s->size;
    uint64_t woff = rec.off;

    unsigned char hdr[STORE_HDR_SIZE] = {0};
    store_put_u32(hdr + H_MAGIC, STORE_MAGIC);
    hdr[H_VERSION] = STORE_VERSION;
    memcpy(hdr + H_QID, qid, STORE_QID_LEN);
    store_put_u32(hdr + H_ENVLEN, env_len);
    store_put_u32(hdr + H_NRCPT, nrcpt);
    store_put_u64(hdr + H_CONTENTLEN, rec.content_len);
    store_put_u64(hdr + H_ARRIVAL, arrival_us);
    store_put_u32(hdr + H_SLOTSIZE, STORE_SLOT_SIZE);
    store_put_u32(hdr + H_CRC, store_hdr_crc(hdr));
    uint32_t crc = store_crc((uint32_t)crc32(0, Z_NULL, 0), hdr, sizeof hdr);
    crc = store_crc(crc, env, env_len);

    buf_reset(&st->wbuf);
    buf_append(&st->wbuf, hdr, sizeof hdr);
    buf_append(&st->wbuf, env, env_len);
    unsigned char slot[STORE_SLOT_SIZE];
    struct store_slot pending = {0};
    store_slot_encode(slot, &pending);
    for (uint32_t i = 0; i < nrcpt; i++) {
        if (st->wbuf.len >= STORE_WBUF && (rc = store_flush_wbuf(st, s->fd, &woff)) < 0)
            goto fail;
        buf_append(&st->wbuf, slot, sizeof slot);
    }
    if (prefix_len) {
        buf_append(&st->wbuf, prefix, prefix_len);
        crc = store_crc(crc, prefix, prefix_len);
    }
    uint64_t got = 0;
    while (got < content_len) {
        if (st->wbuf.len >= STORE_WBUF && (rc = store_flush_wbuf(st, s->fd, &woff)) < 0)
            goto fail;
        size_t want = content_len - got > STORE_WBUF ? STORE_WBUF : (size_t)(content_len - got);
        char *p = buf_reserve(&st->wbuf, want);
        rc = fsio_pread_all(content_fd, p, want, (off_t)got);
        if (rc < 0)
            goto fail;
        crc = store_crc(crc, p, want);
        buf_commit(&st->wbuf, want);
        got += want;
    }
    unsigned char tr[STORE_TRAILER_SIZE];
    store_put_u32(tr, STORE_TMAGIC);
    store_put_u32(tr + 4, crc);
    store_put_u64(tr + 8, total);
    buf_append(&st->wbuf, tr, sizeof tr);
    rc = store_flush_wbuf(st, s->fd, &woff);
    if (rc < 0)
        goto fail;
    s->size += total;
    s->live++;
    *out = rec;
    store_dirty(st, s->seq, s->fd);
    return 0;
fail:
    buf_reset(&st->wbuf);
    /* Leave no half record behind; if even that fails, stop appending
     * here so no later record sits after garbage. */
    if (ftruncate(s->fd, (off_t)rec.off) < 0)
        store_retire_current(st);
    return rc;
}

int store_slot_pwrite(int fd, const struct store_rec *rec, uint32_t i,
                      const struct store_slot *slot)
{
    if (i >= rec->nrcpt)
        return -EINVAL;
    unsigned char p[STORE_SLOT_SIZE];
    store_slot_encode(p, slot);
    return fsio_pwrite_all(fd, p, sizeof p,
                           (off_t)(store_slots_off(rec) + (uint64_t)i * STORE_SLOT_SIZE));
}

int store_slot_write(struct store *st, const struct store_rec *rec, uint32_t i,
                     const struct store_slot *slot)
{
    struct store_seg *s = store_find_seg(st, rec->seg);
    if (s == NULL)
        return -EINVAL;
    int rc = store_slot_pwrite(s->fd, rec, i, slot);
    if (rc == 0)
        store_dirty(st, s->seq, s->fd);
    return rc;
}

int store_slots_set_held(struct store *st, const struct store_rec *rec, struct store_slot *slots,
                         int held)
{
    int first = 0;
    for (uint32_t i = 0; i < rec->nrcpt; i++) {
        if (slots[i].status != STORE_PENDING)
            continue;
        if (held)
            slots[i].flags |= STORE_SLOT_HELD;
        else
            slots[i].flags &= ~(unsigned)STORE_SLOT_HELD;
        int rc = store_slot_write(st, rec, i, &slots[i]);
        if (rc < 0 && first == 0)
            first = rc;
    }
    return first;
}

int store_mark_finished(struct store *st, const struct store_rec *rec)
{
    struct store_seg *s = store_find_seg(st, rec->seg);
    if (s == NULL)
        return -EINVAL;
    unsigned char one = 1;
    int rc = fsio_pwrite_all(s->fd, &one, 1, (off_t)(rec->off + H_FINISHED));
    if (s->live > 0)
        s->live--;
    if (s->live == 0 && s != st->cur && s->retired)
        store_remove_seg(st, s);
    else if (rc == 0)
        store_dirty(st, s->seq, s->fd);
    return rc;
}

int store_seg_fd(const struct store *st, uint64_t seq)
{
    const struct store_seg *s = store_find_seg(st, seq);
    return s ? s->fd : -EBADF;
}

size_t store_nsegments(const struct store *st)
{
    return st->nsegs;
}

size_t store_seg_live(const struct store *st, uint64_t seq)
{
    const struct store_seg *s = store_find_seg(st, seq);
    return s ? s->live : 0;
}

void store_set_dirty_cb(struct store *st, store_dirty_cb cb, void *arg)
{
    st->dirty = cb;
    st->dirty_arg = arg;
}

void store_set_segment_max(struct store *st, uint64_t bytes)
{
    st->seg_max = bytes;
}

int store_read_env(int fd, const struct store_rec *rec, char **out)
{
    char *p = xmalloc((size_t)rec->env_len + 1);
    int rc = fsio_pread_all(fd, p, rec->env_len, (off_t)store_env_off(rec));
    if (rc < 0) {
        free(p);
        return rc;
    }
    p[rec->env_len] = '\0';
    *out = p;
    return 0;
}

int store_read_slots(int fd, const struct store_rec *rec, struct store_slot *slots)
{
    size_t n = (size_t)rec->nrcpt * STORE_SLOT_SIZE;
    unsigned char *p = xmalloc(n ? n : 1);
    int rc = fsio_pread_all(fd, p, n, (off_t)store_slots_off(rec));
    if (rc == 0) {
        for (uint32_t i = 0; i < rec->nrcpt; i++) {
            if (store_slot_decode(p + (size_t)i * STORE_SLOT_SIZE, &slots[i]) < 0)
                log_warn("%s: recipient state %u damaged; will try it again", rec->qid, i);
        }
    }
    free(p);
    return rc;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nsegs; i++) {
        if (st->segs[i]->fd >= 0)
            close(st->segs[i]->fd);
        free(st->segs[i]);
    }
    free(st->segs);
    free(st->segdir);
    free(st->corruptdir);
    buf_free(&st->wbuf);
    free(st);
}
