/* store_recover.c: the scan at start. Every segment is read in order,
 * record by record; nothing read is trusted: each length is checked
 * against the file before it is used, and a record counts only when its
 * header crc, its trailer and (for a live record) its whole-record crc
 * agree. A torn tail of the newest segment is cut off; damage elsewhere
 * is logged and skipped; a file that cannot be read goes to corrupt/. */
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
#include "base/sizes.h"
#include "base/xmalloc.h"
#include "queue/store_priv.h"

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
    if (store_get_u32(hdr + H_MAGIC) != STORE_MAGIC || hdr[H_VERSION] != STORE_VERSION ||
        store_get_u32(hdr + H_CRC) != store_hdr_crc(hdr) ||
        store_get_u32(hdr + H_SLOTSIZE) != STORE_SLOT_SIZE || hdr[H_FINISHED] > 1)
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
    rec->env_len = store_get_u32(hdr + H_ENVLEN);
    rec->nrcpt = store_get_u32(hdr + H_NRCPT);
    rec->content_len = store_get_u64(hdr + H_CONTENTLEN);
    rec->arrival_us = store_get_u64(hdr + H_ARRIVAL);
    if (rec->env_len > STORE_ENV_MAX || rec->nrcpt == 0 || rec->nrcpt > STORE_RCPT_MAX ||
        rec->content_len > fsize)
        return REC_BAD_FRAMING;
    uint64_t total = store_rec_size(rec);
    if (total > fsize - off)
        return REC_BAD_FRAMING;
    unsigned char tr[STORE_TRAILER_SIZE];
    if (fsio_pread_all(fd, tr, sizeof tr, (off_t)(off + total - STORE_TRAILER_SIZE)) < 0)
        return REC_IO;
    if (store_get_u32(tr) != STORE_TMAGIC || store_get_u64(tr + 8) != total)
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
    return crc == store_get_u32(tr + 4);
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
    char from[PATH_MAX], to[PATH_MAX];
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
    char path[PATH_MAX];
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
