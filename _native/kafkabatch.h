/* The C core of processor._native.kafkabatch (twin: processor/kafka/batches.py, the
 * specification; the reasons written here are the twin's, character for character).
 *
 * Everything here runs without the GIL: the walk over a record set's v2 batches, CRC-32C (the
 * SSE4.2 crc32 instruction on three streams when the CPU has it, else a slice-by-8 table with
 * the same results),
 * zstd and lz4 decompression (libzstd.so.1 and liblz4.so.1, opened with dlopen at import: no
 * headers are needed to build, and a missing library leaves that codec to aiokafka's Python
 * codec), and the varint parsing of the records into an array of spans. The caller (Cython)
 * turns the spans into bytes and delivery objects with the GIL, in one pass at the end. Every
 * length is checked against its buffer: a hostile record set is corrupt, never read past.
 */
#ifndef KAFKABATCH_H
#define KAFKABATCH_H

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define KB_HEADER 61     /* a batch header, through recordCount */
#define KB_OVERHEAD 12   /* baseOffset + batchLength */
#define KB_ATTRIBUTES 21 /* where the CRC'd part starts */
#define KB_MAGIC_AT 16
#define KB_CONTROL 0x20
#define KB_MAX_OUT ((size_t)1 << 30) /* the twin's MAX_DECOMPRESSED */

/* kb_run results */
#define KB_DONE 0      /* every complete batch walked (st->corrupt_at says if one was bad) */
#define KB_NEED_PY 1   /* the batch at st->pos needs a Python codec (st->codec) */
#define KB_NO_MEMORY 2 /* malloc failed */

static const char *const kb_codec_names[8] = {"none", "gzip", "snappy", "lz4", "zstd", "", "", ""};

/* ---- big-endian reads ------------------------------------------------------------------- */

static inline int64_t kb_i64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return (int64_t)v;
}
static inline int32_t kb_i32(const unsigned char *p) {
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]);
}
static inline int16_t kb_i16(const unsigned char *p) {
    return (int16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t kb_crc_table[8][256];
static int kb_has_sse42 = 0;

/* The hardware form runs three streams at once (the instruction's latency is 3 cycles, its
 * throughput 1) and joins them by shifting a CRC over KB_LONG or KB_SHORT zero bytes: the
 * tables below (zlib's crc32_combine arithmetic, for the Castagnoli polynomial). */
#define KB_POLY 0x82F63B78u
#define KB_LONG 8192
#define KB_SHORT 256
static uint32_t kb_crc_long[4][256], kb_crc_short[4][256];

/* a(x) * b(x) modulo the polynomial, reflected (a not zero) */
static uint32_t kb_multmodp(uint32_t a, uint32_t b) {
    uint32_t m = (uint32_t)1 << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0) break;
        }
        m >>= 1;
        b = (b & 1) ? (b >> 1) ^ KB_POLY : b >> 1;
    }
    return p;
}

/* x^(8 n) modulo the polynomial */
static uint32_t kb_x8nmodp(size_t n) {
    uint32_t x2k = (uint32_t)1 << 30; /* x^1 */
    for (int k = 0; k < 3; k++) x2k = kb_multmodp(x2k, x2k); /* x^8 */
    uint32_t p = (uint32_t)1 << 31; /* x^0 */
    while (n) {
        if (n & 1) p = kb_multmodp(x2k, p);
        n >>= 1;
        x2k = kb_multmodp(x2k, x2k);
    }
    return p;
}

static inline uint32_t kb_shift(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xFF] ^ table[1][(crc >> 8) & 0xFF] ^ table[2][(crc >> 16) & 0xFF] ^
           table[3][crc >> 24];
}

static void kb_crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ KB_POLY : c >> 1;
        kb_crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = kb_crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = kb_crc_table[0][c & 0xFF] ^ (c >> 8);
            kb_crc_table[t][i] = c;
        }
    }
    uint32_t xl = kb_x8nmodp(KB_LONG), xs = kb_x8nmodp(KB_SHORT);
    for (int k = 0; k < 4; k++)
        for (uint32_t i = 0; i < 256; i++) {
            kb_crc_long[k][i] = kb_multmodp(xl, i << (8 * k));
            kb_crc_short[k][i] = kb_multmodp(xs, i << (8 * k));
        }
#if defined(__x86_64__)
    __builtin_cpu_init();
    kb_has_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static uint32_t kb_crc_sw(const unsigned char *p, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                       ((uint32_t)p[3] << 24)) ^ crc;
        crc = kb_crc_table[7][lo & 0xFF] ^ kb_crc_table[6][(lo >> 8) & 0xFF] ^
              kb_crc_table[5][(lo >> 16) & 0xFF] ^ kb_crc_table[4][lo >> 24] ^
              kb_crc_table[3][p[4]] ^ kb_crc_table[2][p[5]] ^ kb_crc_table[1][p[6]] ^
              kb_crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = kb_crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static inline uint64_t kb_crc_word(uint64_t crc,
                                                                     const unsigned char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return _mm_crc32_u64(crc, w);
}

/* Whole runs of 3 * len bytes at *p: three streams of len bytes each, joined by shifting over
 * len zero bytes (table); *p and *n advance past them. */
__attribute__((target("sse4.2"))) static inline uint64_t kb_crc_streams(
    uint64_t crc, const unsigned char **pp, size_t *nn, size_t len, uint32_t table[4][256]) {
    const unsigned char *p = *pp;
    size_t n = *nn;
    while (n >= 3 * len) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < len; i += 8) {
            crc = kb_crc_word(crc, p + i);
            c1 = kb_crc_word(c1, p + len + i);
            c2 = kb_crc_word(c2, p + 2 * len + i);
        }
        crc = kb_shift(table, (uint32_t)crc) ^ (uint32_t)c1;
        crc = kb_shift(table, (uint32_t)crc) ^ (uint32_t)c2;
        p += 3 * len;
        n -= 3 * len;
    }
    *pp = p;
    *nn = n;
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t kb_crc_hw(const unsigned char *p, size_t n) {
    uint64_t crc = 0xFFFFFFFFu;
    while (n && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8((uint32_t)crc, *p++);
        n--;
    }
    crc = kb_crc_streams(crc, &p, &n, KB_LONG, kb_crc_long);
    crc = kb_crc_streams(crc, &p, &n, KB_SHORT, kb_crc_short);
    while (n >= 8) {
        crc = kb_crc_word(crc, p);
        p += 8;
        n -= 8;
    }
    while (n--) crc = _mm_crc32_u8((uint32_t)crc, *p++);
    return ~(uint32_t)crc;
}
#endif

static inline uint32_t kb_crc32c(const unsigned char *p, size_t n, int hw) {
#if defined(__x86_64__)
    if (hw && kb_has_sse42) return kb_crc_hw(p, n);
#endif
    (void)hw;
    return kb_crc_sw(p, n);
}

/* ---- zstd and lz4 through dlopen ---------------------------------------------------------- */

typedef struct { const void *src; size_t size; size_t pos; } kb_zin;
typedef struct { void *dst; size_t size; size_t pos; } kb_zout;

static struct {
    int ok;
    void *(*create)(void);
    size_t (*free_)(void *);
    size_t (*stream)(void *, kb_zout *, kb_zin *);
    unsigned (*is_error)(size_t);
    unsigned long long (*content_size)(const void *, size_t);
    size_t (*frame_size)(const void *, size_t);
    size_t (*one_shot)(void *, void *, size_t, const void *, size_t);
    size_t (*reset)(void *, int);
} kb_zstd;

static struct {
    int ok;
    size_t (*create)(void **, unsigned);
    size_t (*free_)(void *);
    size_t (*decompress)(void *, void *, size_t *, const void *, size_t *, const void *);
    unsigned (*is_error)(size_t);
    void (*reset)(void *);
} kb_lz4;

/* Set by tests (_force_python_codecs): zstd and lz4 through aiokafka's Python codecs too. */
static int kb_force_python = 0;
static pthread_key_t kb_zstd_key, kb_lz4_key;

static void kb_zstd_drop(void *ctx) { if (ctx) kb_zstd.free_(ctx); }
static void kb_lz4_drop(void *ctx) { if (ctx) kb_lz4.free_(ctx); }

#define KB_SYM(lib, field, name) (*(void **)(&lib.field) = dlsym(handle, name))

static void kb_codecs_init(void) {
    void *handle = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle) {
        int ok = KB_SYM(kb_zstd, create, "ZSTD_createDCtx") && KB_SYM(kb_zstd, free_, "ZSTD_freeDCtx") &&
                 KB_SYM(kb_zstd, stream, "ZSTD_decompressStream") &&
                 KB_SYM(kb_zstd, is_error, "ZSTD_isError") &&
                 KB_SYM(kb_zstd, content_size, "ZSTD_getFrameContentSize") &&
                 KB_SYM(kb_zstd, frame_size, "ZSTD_findFrameCompressedSize") &&
                 KB_SYM(kb_zstd, one_shot, "ZSTD_decompressDCtx") &&
                 KB_SYM(kb_zstd, reset, "ZSTD_DCtx_reset");
        kb_zstd.ok = ok && pthread_key_create(&kb_zstd_key, kb_zstd_drop) == 0;
    }
    handle = dlopen("liblz4.so.1", RTLD_NOW | RTLD_LOCAL);
    if (handle) {
        int ok = KB_SYM(kb_lz4, create, "LZ4F_createDecompressionContext") &&
                 KB_SYM(kb_lz4, free_, "LZ4F_freeDecompressionContext") &&
                 KB_SYM(kb_lz4, decompress, "LZ4F_decompress") &&
                 KB_SYM(kb_lz4, is_error, "LZ4F_isError") &&
                 KB_SYM(kb_lz4, reset, "LZ4F_resetDecompressionContext");
        kb_lz4.ok = ok && pthread_key_create(&kb_lz4_key, kb_lz4_drop) == 0;
    }
}

/* The library decompresses this codec here (not forced to Python). */
static inline int kb_native_codec(int codec) {
    if (kb_force_python) return 0;
    return (codec == 4 && kb_zstd.ok) || (codec == 3 && kb_lz4.ok);
}

/* Decompression results */
#define KB_Z_OK 0
#define KB_Z_FAILED 1
#define KB_Z_OVER 2
#define KB_Z_NO_MEMORY 3

/* Grow *out (capacity *cap) to hold more, up to KB_MAX_OUT + 1 bytes: over that, KB_Z_OVER. */
static int kb_grow(unsigned char **out, size_t *cap) {
    if (*cap > KB_MAX_OUT) return KB_Z_OVER;
    size_t want = *cap * 2;
    if (want > KB_MAX_OUT + 1) want = KB_MAX_OUT + 1;
    unsigned char *p = (unsigned char *)realloc(*out, want);
    if (!p) return KB_Z_NO_MEMORY;
    *out = p;
    *cap = want;
    return KB_Z_OK;
}

static size_t kb_first_capacity(size_t n) {
    size_t cap = n * 4;
    if (cap < 65536) cap = 65536;
    if (cap > KB_MAX_OUT + 1) cap = KB_MAX_OUT + 1;
    return cap;
}

/* zstd: one frame of known size at once, else streaming (Java producers stream: no content
 * size; frames may follow each other). The context is the thread's, reset before each use. */
static int kb_unzstd(const unsigned char *src, size_t n, unsigned char **res, size_t *res_len) {
    void *dctx = pthread_getspecific(kb_zstd_key);
    if (!dctx) {
        dctx = kb_zstd.create();
        if (!dctx) return KB_Z_NO_MEMORY;
        pthread_setspecific(kb_zstd_key, dctx);
    }
    kb_zstd.reset(dctx, 1); /* ZSTD_reset_session_only */
    unsigned long long fcs = kb_zstd.content_size(src, n);
    if (fcs < (0ULL - 2) && kb_zstd.frame_size(src, n) == n) {
        if (fcs > KB_MAX_OUT) return KB_Z_OVER;
        unsigned char *out = (unsigned char *)malloc(fcs ? (size_t)fcs : 1);
        if (!out) return KB_Z_NO_MEMORY;
        size_t r = kb_zstd.one_shot(dctx, out, (size_t)fcs, src, n);
        if (kb_zstd.is_error(r) || r != fcs) {
            free(out);
            return KB_Z_FAILED;
        }
        *res = out;
        *res_len = (size_t)fcs;
        return KB_Z_OK;
    }
    size_t cap = kb_first_capacity(n);
    unsigned char *out = (unsigned char *)malloc(cap);
    if (!out) return KB_Z_NO_MEMORY;
    kb_zin in = {src, n, 0};
    kb_zout o = {out, cap, 0};
    int rc = KB_Z_OK;
    for (;;) {
        if (o.pos == cap) {
            rc = kb_grow(&out, &cap);
            if (rc != KB_Z_OK) break;
            o.dst = out;
            o.size = cap;
        }
        size_t before_in = in.pos, before_out = o.pos;
        size_t r = kb_zstd.stream(dctx, &o, &in);
        if (kb_zstd.is_error(r)) { rc = KB_Z_FAILED; break; }
        if (r == 0 && in.pos == in.size) break; /* the last frame is complete */
        if (in.pos == in.size && o.pos < o.size) { rc = KB_Z_FAILED; break; } /* truncated */
        if (in.pos == before_in && o.pos == before_out && o.pos < o.size) { rc = KB_Z_FAILED; break; }
    }
    if (rc == KB_Z_OK && o.pos > KB_MAX_OUT) rc = KB_Z_OVER;
    if (rc != KB_Z_OK) {
        free(out);
        return rc;
    }
    *res = out;
    *res_len = o.pos;
    return KB_Z_OK;
}

/* lz4 frame format (one frame or several in a row). */
static int kb_unlz4(const unsigned char *src, size_t n, unsigned char **res, size_t *res_len) {
    void *dctx = pthread_getspecific(kb_lz4_key);
    if (!dctx) {
        if (kb_lz4.is_error(kb_lz4.create(&dctx, 100)) || !dctx) return KB_Z_NO_MEMORY;
        pthread_setspecific(kb_lz4_key, dctx);
    }
    kb_lz4.reset(dctx);
    size_t cap = kb_first_capacity(n);
    unsigned char *out = (unsigned char *)malloc(cap);
    if (!out) return KB_Z_NO_MEMORY;
    size_t ipos = 0, opos = 0;
    int rc = KB_Z_OK;
    for (;;) {
        if (opos == cap) {
            rc = kb_grow(&out, &cap);
            if (rc != KB_Z_OK) break;
        }
        size_t dst_size = cap - opos, src_size = n - ipos;
        size_t r = kb_lz4.decompress(dctx, out + opos, &dst_size, src + ipos, &src_size, NULL);
        if (kb_lz4.is_error(r)) { rc = KB_Z_FAILED; break; }
        opos += dst_size;
        ipos += src_size;
        if (r == 0 && ipos == n) break; /* the last frame is complete */
        if (ipos == n && opos < cap) { rc = KB_Z_FAILED; break; } /* truncated */
        if (dst_size == 0 && src_size == 0 && opos < cap) { rc = KB_Z_FAILED; break; }
    }
    if (rc == KB_Z_OK && opos > KB_MAX_OUT) rc = KB_Z_OVER;
    if (rc != KB_Z_OK) {
        free(out);
        return rc;
    }
    *res = out;
    *res_len = opos;
    return KB_Z_OK;
}

/* ---- the walk ----------------------------------------------------------------------------- */

typedef struct {
    int64_t offset;
    const unsigned char *key; /* NULL: None */
    const unsigned char *value;
    int64_t key_len;
    int64_t value_len;
} kb_span;

typedef struct {
    /* input */
    const unsigned char *data;
    size_t size;
    int check_crcs;
    int hw_crc;
    /* position: the next batch */
    size_t pos;
    __int128 expected; /* the next offset to deliver (the twin's ``expected``) */
    /* output */
    kb_span *spans;
    size_t n, cap;
    unsigned char **bufs; /* decompressed buffers the spans point into (freed by kb_free) */
    size_t nbufs, bufcap;
    int64_t corrupt_at;
    int corrupt;
    char reason[192];
    /* KB_NEED_PY: the batch at pos, its codec and payload [payload, batch_end) */
    int codec;
    size_t payload, batch_end;
    /* set by the caller after KB_NEED_PY: the batch's decompressed records */
    const unsigned char *given;
    size_t given_len;
    int has_given;
} kb_state;

static void kb_set_expected(kb_state *st, int64_t value) { st->expected = value; }
static void kb_set_force_python(int flag) { kb_force_python = flag; }
static const char *kb_codec_name(int codec) { return kb_codec_names[codec & 7]; }

static void kb_free(kb_state *st) {
    for (size_t i = 0; i < st->nbufs; i++) free(st->bufs[i]);
    free(st->bufs);
    free(st->spans);
    st->bufs = NULL;
    st->spans = NULL;
}

/* The header walk (the twin's _headers): 0, or 1 when a complete batch has magic != 2 (its
 * base offset and magic in legacy_base and legacy_magic). found, last_base, last_delta: the
 * last complete batch (found 0 when none); short_pos: where a batchLength below 49 stopped the
 * walk (-1 if none). */
static int kb_headers(const unsigned char *data, size_t size, int *found, int64_t *last_base,
                      int32_t *last_delta, int64_t *legacy_base, int *legacy_magic,
                      int64_t *short_pos, int32_t *short_len) {
    size_t pos = 0;
    *found = 0;
    *short_pos = -1;
    while (size - pos >= KB_OVERHEAD) {
        int64_t base = kb_i64(data + pos);
        int32_t length = kb_i32(data + pos + 8);
        if ((int64_t)KB_OVERHEAD + length > (int64_t)(size - pos)) break;
        if (length >= KB_MAGIC_AT + 1 - KB_OVERHEAD && data[pos + KB_MAGIC_AT] != 2) {
            *legacy_base = base;
            *legacy_magic = data[pos + KB_MAGIC_AT];
            return 1;
        }
        if (length < KB_HEADER - KB_OVERHEAD) {
            *short_pos = (int64_t)pos;
            *short_len = length;
            return 0;
        }
        *found = 1;
        *last_base = base;
        *last_delta = kb_i32(data + pos + 23);
        pos += KB_OVERHEAD + (size_t)length;
    }
    return 0;
}

/* Varint reading (the twin's _varint): */
#define KB_V_OK 0
#define KB_V_SHORT 1 /* runs past its end */
#define KB_V_LONG 2  /* over 10 bytes */
#define KB_V_OVER 3  /* over 64 bits */

static inline int kb_varint(const unsigned char *buf, size_t *pos, size_t end, int64_t *value) {
    size_t p = *pos;
    if (p < end && !(buf[p] & 0x80)) { /* one byte: most fields */
        uint64_t acc = buf[p];
        *value = (int64_t)(acc >> 1) ^ -(int64_t)(acc & 1);
        *pos = p + 1;
        return KB_V_OK;
    }
    uint64_t acc = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return KB_V_SHORT;
        unsigned b = buf[p++];
        if (i == 9) {
            if (b & 0x80) return KB_V_LONG;
            if ((b & 0x7F) > 1) return KB_V_OVER;
        }
        acc |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *value = (int64_t)(acc >> 1) ^ -(int64_t)(acc & 1);
            *pos = p;
            return KB_V_OK;
        }
    }
    return KB_V_LONG; /* not reached */
}

/* Record errors (the twin's _record): a kind and its number */
#define KB_R_OK 0
#define KB_R_SHORT 1
#define KB_R_LONG 2
#define KB_R_OVER 3
#define KB_R_OFFSET 4
#define KB_R_KEY 5
#define KB_R_VALUE 6
#define KB_R_HEADERS 7
#define KB_R_HKEY 8
#define KB_R_HVALUE 9
#define KB_R_UNUSED 10

#define KB_V(call)                 \
    do {                           \
        int v_ = (call);           \
        if (v_) return v_;         \
    } while (0) /* KB_V_* and KB_R_* share their first numbers */

static int kb_record(const unsigned char *buf, size_t pos, size_t stop, int64_t base, kb_span *span,
                     int64_t *number) {
    size_t start = pos;
    int64_t v, n;
    if (pos + 1 > stop) return KB_R_SHORT;
    pos += 1; /* attributes */
    KB_V(kb_varint(buf, &pos, stop, &v)); /* timestampDelta */
    KB_V(kb_varint(buf, &pos, stop, &v));
    if (__builtin_add_overflow(base, v, &span->offset)) return KB_R_OFFSET;
    for (int f = 0; f < 2; f++) {
        KB_V(kb_varint(buf, &pos, stop, &n));
        if (n < -1) {
            *number = n;
            return f ? KB_R_VALUE : KB_R_KEY;
        }
        if (n > (int64_t)(stop - pos)) return KB_R_SHORT;
        const unsigned char *at = n < 0 ? NULL : buf + pos;
        if (f) {
            span->value = at;
            span->value_len = n;
        } else {
            span->key = at;
            span->key_len = n;
        }
        if (n > 0) pos += (size_t)n;
    }
    int64_t headers;
    KB_V(kb_varint(buf, &pos, stop, &headers));
    if (headers < 0) {
        *number = headers;
        return KB_R_HEADERS;
    }
    for (int64_t h = 0; h < headers; h++) {
        for (int f = 0; f < 2; f++) {
            KB_V(kb_varint(buf, &pos, stop, &n));
            if (n < (f ? -1 : 0)) {
                *number = n;
                return f ? KB_R_HVALUE : KB_R_HKEY;
            }
            if (n > (int64_t)(stop - pos)) return KB_R_SHORT;
            if (n > 0) pos += (size_t)n;
        }
    }
    if (pos != stop) {
        *number = (int64_t)(pos - start);
        return KB_R_UNUSED;
    }
    return KB_R_OK;
}

static const char *kb_varint_reason(int v) {
    return v == KB_V_LONG ? "varint longer than 10 bytes" : "varint over 64 bits";
}

/* Records of one batch into st->spans (the twin's _records); 0, -1 corrupt (reason set),
 * -2 no memory. */
static int kb_records(kb_state *st, const unsigned char *buf, size_t end, int32_t count,
                      int64_t base) {
    size_t pos = 0;
    for (int32_t i = 0; i < count; i++) {
        int64_t length;
        int v = kb_varint(buf, &pos, end, &length);
        if (v == KB_V_SHORT) {
            snprintf(st->reason, sizeof st->reason, "record %d of %d runs past the batch", i, count);
            return -1;
        }
        if (v) {
            snprintf(st->reason, sizeof st->reason, "record %d of %d: %s", i, count,
                     kb_varint_reason(v));
            return -1;
        }
        if (length < 0 || length > (int64_t)(end - pos)) {
            snprintf(st->reason, sizeof st->reason, "record %d of %d: length %lld runs past the batch",
                     i, count, (long long)length);
            return -1;
        }
        if (st->n == st->cap) {
            size_t cap = st->cap ? st->cap * 2 : 256;
            kb_span *p = (kb_span *)realloc(st->spans, cap * sizeof(kb_span));
            if (!p) return -2;
            st->spans = p;
            st->cap = cap;
        }
        kb_span *span = &st->spans[st->n];
        int64_t number = 0;
        int r = kb_record(buf, pos, pos + (size_t)length, base, span, &number);
        if (r) {
            int w = snprintf(st->reason, sizeof st->reason, "record %d of %d", i, count);
            char *at = st->reason + w;
            size_t room = sizeof st->reason - (size_t)w;
            switch (r) {
            case KB_R_SHORT:
                snprintf(at, room, ": fields run past its length %lld", (long long)length);
                break;
            case KB_R_LONG:
            case KB_R_OVER: snprintf(at, room, ": %s", kb_varint_reason(r)); break;
            case KB_R_OFFSET: snprintf(at, room, ": offset out of range"); break;
            case KB_R_KEY: snprintf(at, room, ": key length %lld", (long long)number); break;
            case KB_R_VALUE: snprintf(at, room, ": value length %lld", (long long)number); break;
            case KB_R_HEADERS: snprintf(at, room, ": header count %lld", (long long)number); break;
            case KB_R_HKEY: snprintf(at, room, ": header key length %lld", (long long)number); break;
            case KB_R_HVALUE:
                snprintf(at, room, ": header value length %lld", (long long)number);
                break;
            default:
                snprintf(at, room, ": length %lld but its fields use %lld bytes", (long long)length,
                         (long long)number);
            }
            return -1;
        }
        if ((__int128)span->offset >= st->expected) {
            st->expected = (__int128)span->offset + 1;
            st->n++;
        }
        pos += (size_t)length;
    }
    if (pos != end) {
        snprintf(st->reason, sizeof st->reason, "%lld bytes left after %d records",
                 (long long)(end - pos), count > 0 ? count : 0);
        return -1;
    }
    return 0;
}

static int kb_keep(kb_state *st, unsigned char *buf) {
    if (st->nbufs == st->bufcap) {
        size_t cap = st->bufcap ? st->bufcap * 2 : 8;
        unsigned char **p = (unsigned char **)realloc(st->bufs, cap * sizeof(unsigned char *));
        if (!p) return -1;
        st->bufs = p;
        st->bufcap = cap;
    }
    st->bufs[st->nbufs++] = buf;
    return 0;
}

/* Walk the complete batches from st->pos (the twin's decode loop, after _headers said there is
 * no legacy batch). Stops at the end (KB_DONE, st->corrupt set when a batch was bad) or at a
 * batch whose codec is Python's (KB_NEED_PY: the caller sets st->given and calls again). */
static int kb_run(kb_state *st) {
    const unsigned char *data = st->data;
    size_t size = st->size;
    while (size - st->pos >= KB_OVERHEAD) {
        size_t pos = st->pos;
        const unsigned char *h = data + pos;
        int64_t base = kb_i64(h);
        int32_t length = kb_i32(h + 8);
        if ((int64_t)KB_OVERHEAD + length > (int64_t)(size - pos)) break;
        if (length < KB_HEADER - KB_OVERHEAD) {
            st->corrupt = 1;
            st->corrupt_at = base;
            snprintf(st->reason, sizeof st->reason, "batch length %d below the header's 49 bytes",
                     length);
            return KB_DONE;
        }
        size_t end = pos + KB_OVERHEAD + (size_t)length;
        int given = st->has_given;
        st->has_given = 0;
        uint32_t crc = ((uint32_t)h[17] << 24) | ((uint32_t)h[18] << 16) | ((uint32_t)h[19] << 8) | h[20];
        int attributes = kb_i16(h + 21);
        int32_t last_delta = kb_i32(h + 23);
        int32_t count = kb_i32(h + 57);
        if (st->check_crcs && !given) {
            uint32_t computed = kb_crc32c(h + KB_ATTRIBUTES, end - pos - KB_ATTRIBUTES, st->hw_crc);
            if (computed != crc) {
                st->corrupt = 1;
                st->corrupt_at = base;
                snprintf(st->reason, sizeof st->reason,
                         "CRC mismatch: header 0x%08x, computed 0x%08x", crc, computed);
                return KB_DONE;
            }
        }
        if (!(attributes & KB_CONTROL)) {
            int codec = attributes & 7;
            size_t mark = st->n;
            int r;
            if (codec == 0) {
                r = kb_records(st, h + KB_HEADER, end - pos - KB_HEADER, count, base);
            } else if (given) {
                r = kb_records(st, st->given, st->given_len, count, base);
            } else if (codec > 4) {
                st->corrupt = 1;
                st->corrupt_at = base;
                snprintf(st->reason, sizeof st->reason, "unknown compression codec %d", codec);
                return KB_DONE;
            } else if (!kb_native_codec(codec)) {
                st->codec = codec;
                st->payload = pos + KB_HEADER;
                st->batch_end = end;
                return KB_NEED_PY;
            } else {
                unsigned char *out = NULL;
                size_t out_len = 0;
                const unsigned char *src = h + KB_HEADER;
                size_t n = end - pos - KB_HEADER;
                int z = codec == 4 ? kb_unzstd(src, n, &out, &out_len) : kb_unlz4(src, n, &out, &out_len);
                if (z == KB_Z_NO_MEMORY) return KB_NO_MEMORY;
                if (z != KB_Z_OK) {
                    st->corrupt = 1;
                    st->corrupt_at = base;
                    if (z == KB_Z_OVER)
                        snprintf(st->reason, sizeof st->reason, "%s output over %zu bytes",
                                 kb_codec_names[codec], KB_MAX_OUT);
                    else
                        snprintf(st->reason, sizeof st->reason, "%s decompression failed",
                                 kb_codec_names[codec]);
                    return KB_DONE;
                }
                if (kb_keep(st, out)) {
                    free(out);
                    return KB_NO_MEMORY;
                }
                r = kb_records(st, out, out_len, count, base);
            }
            if (r == -2) return KB_NO_MEMORY;
            if (r) {
                st->n = mark; /* none of a corrupt batch's records */
                st->corrupt = 1;
                st->corrupt_at = base;
                return KB_DONE;
            }
        }
        __int128 next = (__int128)base + last_delta + 1;
        if (next > st->expected) st->expected = next;
        st->pos = end;
    }
    return KB_DONE;
}

#endif /* KAFKABATCH_H */
