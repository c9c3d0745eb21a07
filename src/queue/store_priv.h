/* store_priv.h: the record layout and the state shared by store.c
 * (appends, in-place rewrites) and store_recover.c (the scan at start).
 * Not for use outside src/queue/store*.c. */
#ifndef TERN_QUEUE_STORE_PRIV_H
#define TERN_QUEUE_STORE_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "queue/store.h"

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
#define S_FLAGS 1
#define S_ATTEMPTS 2
#define S_CRC 4
#define S_NEXT 8
#define S_LAST 16
#define S_PID 24
#define S_ERRLEN 28
#define S_ERR 30
_Static_assert(S_ERR + STORE_ERR_MAX <= STORE_SLOT_SIZE, "slot fields fit the slot");

/* Records up to this size are assembled in memory and written at once;
 * larger content is streamed in chunks of the same size. */
#define STORE_WBUF 262144
_Static_assert(STORE_PREFIX_MAX <= STORE_WBUF, "a prefix goes into one write buffer");

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

static inline void store_put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void store_put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void store_put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t store_get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t store_get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t store_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* crc32 (zlib) over any length. */
uint32_t store_crc(uint32_t crc, const void *p, size_t n);
/* The header crc: bytes before H_CRC, with the mutable byte read as 0. */
uint32_t store_hdr_crc(const unsigned char *hdr);
/* Is qid[0..n) 16 uppercase hex digits? */
int store_valid_qid(const char *qid, size_t n);
struct store_seg *store_find_seg(const struct store *st, uint64_t seq);
/* Adds a segment (seq above every other). */
void store_add_seg(struct store *st, struct store_seg *s);
/* Closes, unlinks and forgets a segment with nothing live. */
void store_remove_seg(struct store *st, struct store_seg *s);

#endif
