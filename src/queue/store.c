/* store.c: append-only segments of self-contained records (see store.h for
 * the layout). Recovery trusts nothing it reads: every length is checked
 * against the file before it is used, and a record counts only when its
 * header crc, its trailer and (for a live record) its whole-record crc
 * agree. */
#include "queue/store.h"

#include <dirent.h>
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
#include "base/xmalloc.h"

#define STORE_MAGIC 0x52524e54u  /* "TNRR" little-endian: record header */
#define STORE_TMAGIC 0x45524e54u /* "TNRE": record trailer */
#define STORE_VERSION 1

/* Header field offsets. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_FINISHED 5 /* mutable; read as 0 by both crcs */
#define H_QID 8
#define H_QIDLEN 24
#define H_ENVLEN 32
#define H_NRCPT 36
#define H_CONTENTLEN 40
#define H_ARRIVAL 48
#define H_SLOTSIZE 56
#define H_CRC 60

/* Slot field offsets. */
#define S_STATUS 0
#define S_ATTEMPTS 2
#define S_CRC 4
#define S_NEXT 8
#define S_LAST 16
#define S_ERRLEN 24
#define S_ERR 26

/* Records up to this size are assembled in memory and written at once;
 * larger content is streamed in chunks of the same size. */
#define STORE_WBUF 262144

struct store_seg {
    uint64_t seq;
    int fd;
    uint64_t size; /* append offset */
    size_t live;   /* records not finished */
    int retired;   /* no more appends (rotated away or after a failed sync) */
};

struct store {
    char *segdir;     /* owned: <spool>/seg */
    char *corruptdir; /* owned: <spool>/corrupt */
    struct store_seg **segs; /* owned, sorted by seq */
    size_t nsegs, capsegs;
    struct store_seg *cur; /* appends go here; NULL until the first */
    uint64_t next_seq;
    uint64_t seg_max;
    store_dirty_cb dirty;
    void *dirty_arg;
    struct buf wbuf;
};

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* crc32 over any length (zlib takes an unsigned int). */
static uint32_t store_crc(uint32_t crc, const void *p, size_t n)
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

static uint32_t store_hdr_crc(const unsigned char *hdr)
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
    put_u16(p + S_ATTEMPTS, (uint16_t)(s->attempts > 0xffff ? 0xffff : s->attempts));
    put_u64(p + S_NEXT, (uint64_t)s->next_attempt);
    put_u64(p + S_LAST, (uint64_t)s->last_attempt);
    size_t n = strnlen(s->error, STORE_ERR_MAX);
    put_u16(p + S_ERRLEN, (uint16_t)n);
    memcpy(p + S_ERR, s->error, n);
    put_u32(p + S_CRC, store_crc((uint32_t)crc32(0, Z_NULL, 0), p, STORE_SLOT_SIZE));
}

/* Returns 0, or -1 for a slot that fails its crc (then *s is pending). */
static int store_slot_decode(const unsigned char *p, struct store_slot *s)
{
    unsigned char tmp[STORE_SLOT_SIZE];
    memcpy(tmp, p, sizeof tmp);
    put_u32(tmp + S_CRC, 0);
    uint32_t want = get_u32(p + S_CRC);
    memset(s, 0, sizeof *s);
    s->status = STORE_PENDING;
    if (store_crc((uint32_t)crc32(0, Z_NULL, 0), tmp, sizeof tmp) != want ||
        p[S_STATUS] > STORE_FAILED || get_u16(p + S_ERRLEN) > STORE_ERR_MAX)
        return -1;
    s->status = (enum store_status)p[S_STATUS];
    s->attempts = get_u16(p + S_ATTEMPTS);
    s->next_attempt = (int64_t)get_u64(p + S_NEXT);
    s->last_attempt = (int64_t)get_u64(p + S_LAST);
    size_t n = get_u16(p + S_ERRLEN);
    memcpy(s->error, p + S_ERR, n);
    s->error[n] = '\0';
    return 0;
}

int store_seg_path(const struct store *st, uint64_t seq, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, "%s/%016llX.seg", st->segdir, (unsigned long long)seq);
    return n < 0 || (size_t)n >= outsize ? -ENAMETOOLONG : 0;
}

static struct store_seg *store_find_seg(const struct store *st, uint64_t seq)
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
static void store_add_seg(struct store *st, struct store_seg *s)
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
static void store_remove_seg(struct store *st, struct store_seg *s)
{
    char path[4096];
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
    char path[4096];
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

static int store_valid_qid(const char *qid, size_t n)
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
    if (!store_valid_qid(qid, strlen(qid)) || env_len > STORE_ENV_MAX || nrcpt == 0 ||
        nrcpt > STORE_RCPT_MAX)
        return -EINVAL;
    struct store_rec rec = {0};
    memcpy(rec.qid, qid, STORE_QID_LEN + 1);
    rec.env_len = env_len;
    rec.nrcpt = nrcpt;
    rec.content_len = content_len;
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
    put_u32(hdr + H_MAGIC, STORE_MAGIC);
    hdr[H_VERSION] = STORE_VERSION;
    memcpy(hdr + H_QID, qid, STORE_QID_LEN);
    put_u32(hdr + H_ENVLEN, env_len);
    put_u32(hdr + H_NRCPT, nrcpt);
    put_u64(hdr + H_CONTENTLEN, content_len);
    put_u64(hdr + H_ARRIVAL, arrival_us);
    put_u32(hdr + H_SLOTSIZE, STORE_SLOT_SIZE);
    put_u32(hdr + H_CRC, store_hdr_crc(hdr));
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
    put_u32(tr, STORE_TMAGIC);
    put_u32(tr + 4, crc);
    put_u64(tr + 8, total);
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

int store_slot_write(struct store *st, const struct store_rec *rec, uint32_t i,
                     const struct store_slot *slot)
{
    struct store_seg *s = store_find_seg(st, rec->seg);
    if (s == NULL || i >= rec->nrcpt)
        return -EINVAL;
    unsigned char p[STORE_SLOT_SIZE];
    store_slot_encode(p, slot);
    int rc = fsio_pwrite_all(s->fd, p, sizeof p,
                             (off_t)(store_slots_off(rec) + (uint64_t)i * STORE_SLOT_SIZE));
    if (rc == 0)
        store_dirty(st, s->seq, s->fd);
    return rc;
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
    return s ? s->fd : -1;
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

/* ---- recovery ---- */

/* One live record found by the scan, reported once its segment has been
 * read without an I/O error. */
struct store_found {
    struct store_rec rec;
    struct store_slot *slots; /* owned */
};

struct store_scan {
    struct store_found *found; /* owned array */
    size_t nfound, capfound;
    uint64_t valid_end;  /* end of the last record whose framing held */
    int torn;            /* framing broke before the end of the file */
    int io_error;        /* the file could not be read: move it aside */
    unsigned long skipped_crc, finished;
};

enum store_check { REC_OK, REC_BAD_FRAMING, REC_IO };

/* Reads and checks the framing of the record at off: header (magic,
 * version, crc, lengths within the file) and trailer. */
static enum store_check store_check_framing(int fd, uint64_t off, uint64_t fsize,
                                            struct store_rec *rec, int *finished)
{
    unsigned char hdr[STORE_HDR_SIZE];
    if (fsize - off < STORE_HDR_SIZE)
        return REC_BAD_FRAMING;
    if (fsio_pread_all(fd, hdr, sizeof hdr, (off_t)off) < 0)
        return REC_IO;
    if (get_u32(hdr + H_MAGIC) != STORE_MAGIC || hdr[H_VERSION] != STORE_VERSION ||
        get_u32(hdr + H_CRC) != store_hdr_crc(hdr) ||
        get_u32(hdr + H_SLOTSIZE) != STORE_SLOT_SIZE || hdr[H_FINISHED] > 1)
        return REC_BAD_FRAMING;
    /* The qid is 16 hex digits padded with NULs to the field's end. */
    if (!store_valid_qid((const char *)hdr + H_QID, STORE_QID_LEN))
        return REC_BAD_FRAMING;
    for (size_t i = H_QID + STORE_QID_LEN; i < H_QID + H_QIDLEN; i++)
        if (hdr[i] != 0)
            return REC_BAD_FRAMING;
    memset(rec, 0, sizeof *rec);
    memcpy(rec->qid, hdr + H_QID, STORE_QID_LEN);
    rec->off = off;
    rec->env_len = get_u32(hdr + H_ENVLEN);
    rec->nrcpt = get_u32(hdr + H_NRCPT);
    rec->content_len = get_u64(hdr + H_CONTENTLEN);
    rec->arrival_us = get_u64(hdr + H_ARRIVAL);
    if (rec->env_len > STORE_ENV_MAX || rec->nrcpt == 0 || rec->nrcpt > STORE_RCPT_MAX ||
        rec->content_len > fsize)
        return REC_BAD_FRAMING;
    uint64_t total = store_rec_size(rec);
    if (total > fsize - off)
        return REC_BAD_FRAMING;
    unsigned char tr[STORE_TRAILER_SIZE];
    if (fsio_pread_all(fd, tr, sizeof tr, (off_t)(off + total - STORE_TRAILER_SIZE)) < 0)
        return REC_IO;
    if (get_u32(tr) != STORE_TMAGIC || get_u64(tr + 8) != total)
        return REC_BAD_FRAMING;
    *finished = hdr[H_FINISHED];
    return REC_OK;
}

/* Recomputes the record crc over header, envelope and content. Returns
 * 1 if it matches, 0 if not, -errno on a read error. */
static int store_check_crc(int fd, const struct store_rec *rec)
{
    unsigned char hdr[STORE_HDR_SIZE], tr[STORE_TRAILER_SIZE];
    uint64_t total = store_rec_size(rec);
    int rc = fsio_pread_all(fd, hdr, sizeof hdr, (off_t)rec->off);
    if (rc == 0)
        rc = fsio_pread_all(fd, tr, sizeof tr, (off_t)(rec->off + total - STORE_TRAILER_SIZE));
    if (rc < 0)
        return rc;
    hdr[H_FINISHED] = 0;
    uint32_t crc = store_crc((uint32_t)crc32(0, Z_NULL, 0), hdr, sizeof hdr);
    size_t bufsize = 65536;
    char *b = xmalloc(bufsize);
    /* Envelope, then (skipping the slots) content. */
    uint64_t ranges[2][2] = {{store_env_off(rec), rec->env_len},
                             {store_content_off(rec), rec->content_len}};
    for (int r = 0; r < 2 && rc == 0; r++) {
        uint64_t pos = ranges[r][0], left = ranges[r][1];
        while (left > 0) {
            size_t n = left > bufsize ? bufsize : (size_t)left;
            rc = fsio_pread_all(fd, b, n, (off_t)pos);
            if (rc < 0)
                break;
            crc = store_crc(crc, b, n);
            pos += n;
            left -= n;
        }
    }
    free(b);
    if (rc < 0)
        return rc;
    return crc == get_u32(tr + 4);
}

static void store_scan_seg(struct store *st, struct store_seg *s, uint64_t fsize,
                           struct store_scan *sc)
{
    uint64_t off = 0;
    while (off < fsize) {
        struct store_rec rec;
        int finished = 0;
        enum store_check ck = store_check_framing(s->fd, off, fsize, &rec, &finished);
        if (ck == REC_IO) {
            sc->io_error = 1;
            return;
        }
        if (ck == REC_BAD_FRAMING) {
            sc->torn = 1;
            return;
        }
        rec.seg = s->seq;
        uint64_t total = store_rec_size(&rec);
        off += total;
        sc->valid_end = off;
        if (finished) {
            sc->finished++;
            continue;
        }
        struct store_slot *slots = xcalloc(rec.nrcpt, sizeof *slots);
        int rc = store_read_slots(s->fd, &rec, slots);
        int crcok = rc == 0 ? store_check_crc(s->fd, &rec) : rc;
        if (crcok < 0) {
            free(slots);
            sc->io_error = 1;
            return;
        }
        if (crcok == 0) {
            /* The framing held but the bytes did not: this record never
             * was durable (its batch's sync did not complete) or the disk
             * damaged it. Either way it cannot be delivered as is. */
            log_warn("%s: spool record in segment %016llX at %llu fails its checksum; skipped",
                     rec.qid, (unsigned long long)s->seq, (unsigned long long)rec.off);
            sc->skipped_crc++;
            free(slots);
            continue;
        }
        uint32_t pending = 0;
        for (uint32_t i = 0; i < rec.nrcpt; i++)
            pending += slots[i].status == STORE_PENDING;
        if (pending == 0) {
            /* Every recipient was handled but the finished mark was lost
             * (a crash between the two writes): set it now. */
            unsigned char one = 1;
            (void)fsio_pwrite_all(s->fd, &one, 1, (off_t)(rec.off + H_FINISHED));
            sc->finished++;
            free(slots);
            continue;
        }
        if (sc->nfound == sc->capfound) {
            sc->capfound = sc->capfound ? sc->capfound * 2 : 64;
            sc->found = xrealloc(sc->found, sc->capfound * sizeof *sc->found);
        }
        sc->found[sc->nfound].rec = rec;
        sc->found[sc->nfound].slots = slots;
        sc->nfound++;
    }
}

static int store_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment numbers in segdir, sorted. Other names are left
 * alone (and logged). */
static int store_list(const char *segdir, uint64_t **out, size_t *n)
{
    DIR *d = opendir(segdir);
    if (d == NULL)
        return -errno;
    uint64_t *v = NULL;
    size_t nv = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue;
        if (strlen(name) != STORE_QID_LEN + 4 || strcmp(name + STORE_QID_LEN, ".seg") != 0 ||
            !store_valid_qid(name, STORE_QID_LEN)) {
            log_warn("spool: ignoring unexpected file %s/%s", segdir, name);
            continue;
        }
        uint64_t seq = strtoull(name, NULL, 16);
        if (seq == 0) {
            log_warn("spool: ignoring unexpected file %s/%s", segdir, name);
            continue;
        }
        if (nv == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[nv++] = seq;
    }
    closedir(d);
    if (nv > 1)
        qsort(v, nv, sizeof *v, store_cmp_u64);
    *out = v;
    *n = nv;
    return 0;
}

static void store_move_corrupt(struct store *st, uint64_t seq, const char *why)
{
    char from[4096], to[4096];
    if (store_seg_path(st, seq, from, sizeof from) < 0)
        return;
    snprintf(to, sizeof to, "%s/%016llX.seg", st->corruptdir, (unsigned long long)seq);
    int rc = fsio_rename_durable(from, to, st->corruptdir);
    if (rc == 0)
        rc = fsio_sync_dir(st->segdir);
    log_err("spool: segment %s is unreadable (%s); %s", from, why,
            rc == 0 ? "moved to corrupt/" : "could not move it aside");
}

/* Scans one segment file and reports its live records. Returns 1 if the
 * segment holds live records (kept open), 0 if it was removed or moved. */
static int store_recover_seg(struct store *st, uint64_t seq, int is_last, store_recover_cb cb,
                             void *arg, unsigned long *nrec, unsigned long *nbad)
{
    char path[4096];
    if (store_seg_path(st, seq, path, sizeof path) < 0)
        return 0;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        store_move_corrupt(st, seq, strerror(errno));
        return 0;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        store_move_corrupt(st, seq, "not a regular file");
        return 0;
    }
    struct store_seg *s = xcalloc(1, sizeof *s);
    s->seq = seq;
    s->fd = fd;
    s->retired = 1; /* appends always go to a new segment */
    struct store_scan sc = {0};
    store_scan_seg(st, s, (uint64_t)sb.st_size, &sc);
    if (sc.io_error) {
        for (size_t i = 0; i < sc.nfound; i++)
            free(sc.found[i].slots);
        free(sc.found);
        close(fd);
        free(s);
        store_move_corrupt(st, seq, "read error");
        return 0;
    }
    if (sc.torn) {
        uint64_t lost = (uint64_t)sb.st_size - sc.valid_end;
        if (is_last) {
            /* The tail of the newest segment was being written when the
             * process or machine stopped; nothing there was acknowledged
             * (its batch never synced), so it goes. */
            log_warn("spool: segment %016llX: discarding a torn tail of %llu bytes at %llu",
                     (unsigned long long)seq, (unsigned long long)lost,
                     (unsigned long long)sc.valid_end);
            if (ftruncate(fd, (off_t)sc.valid_end) < 0 || fsio_sync(fd) < 0)
                log_warn("spool: segment %016llX: cannot truncate: %s", (unsigned long long)seq,
                         strerror(errno));
        } else {
            log_err("spool: segment %016llX: damaged at offset %llu; %llu bytes after it "
                    "ignored",
                    (unsigned long long)seq, (unsigned long long)sc.valid_end,
                    (unsigned long long)lost);
        }
        (*nbad)++;
    }
    *nbad += sc.skipped_crc;
    s->size = sc.valid_end;
    s->live = sc.nfound;
    store_add_seg(st, s);
    for (size_t i = 0; i < sc.nfound; i++) {
        cb(arg, st, &sc.found[i].rec, sc.found[i].slots);
        free(sc.found[i].slots);
    }
    *nrec += sc.nfound;
    free(sc.found);
    /* The callback may have finished records of this or earlier segments. */
    s = store_find_seg(st, seq);
    if (s && s->live == 0) {
        store_remove_seg(st, s);
        return 0;
    }
    return s != NULL;
}

struct store *store_open(const char *spool_dir, store_recover_cb cb, void *arg)
{
    struct store *st = xcalloc(1, sizeof *st);
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s/seg", spool_dir);
    st->segdir = buf_steal(&b);
    buf_printf(&b, "%s/corrupt", spool_dir);
    st->corruptdir = buf_steal(&b);
    st->seg_max = STORE_SEGMENT_MAX;
    buf_init(&st->wbuf);
    int rc = fsio_mkdirs(st->segdir, 0700);
    if (rc == 0)
        rc = fsio_mkdirs(st->corruptdir, 0700);
    if (rc < 0) {
        log_err("spool: cannot create %s: %s", st->segdir, strerror(-rc));
        goto fail;
    }
    uint64_t *seqs = NULL;
    size_t nseqs = 0;
    rc = store_list(st->segdir, &seqs, &nseqs);
    if (rc < 0) {
        log_err("spool: cannot read %s: %s", st->segdir, strerror(-rc));
        goto fail;
    }
    unsigned long nrec = 0, nbad = 0;
    for (size_t i = 0; i < nseqs; i++)
        store_recover_seg(st, seqs[i], i + 1 == nseqs, cb, arg, &nrec, &nbad);
    st->next_seq = nseqs ? seqs[nseqs - 1] + 1 : 1;
    free(seqs);
    /* Removals during recovery are made durable before anything else. */
    (void)fsio_sync_dir(st->segdir);
    if (nseqs)
        log_info("spool: recovered %lu messages from %zu of %zu segments%s", nrec, st->nsegs,
                 nseqs, nbad ? " (damaged records skipped, see above)" : "");
    return st;
fail:
    store_close(st);
    return NULL;
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
