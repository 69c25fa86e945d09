/* Validating a JSON container 64 bytes at a time (simdjson's two stages), for the scanner's
 * _check (processor/_native/jsonscan.pxd): the same accept/reject decisions as its byte loop had,
 * whose twin, processor/records/jsonscan.py, is the specification.
 *
 * Stage 1 classifies a block of 64 bytes into bit masks: quotes, the structural characters
 * {}[]:, , whitespace, and the odd bytes (backslashes, control and non-ASCII bytes; only a block
 * that has some classifies them further). The escaped bytes come from the backslashes
 * (escaped64), the bytes inside strings from the prefix parity of the other quotes (prefix_xor),
 * so a string's body is never looked at byte by byte: a control byte inside a string and a bad
 * escape are error bits. Stage 2 walks the structural bits (the brackets, colons and commas
 * outside strings, the opening quotes, the first byte of each run of other bytes) with a state
 * machine and a stack of the open containers; a run of other bytes must be a number or a literal
 * followed by whitespace or ,]} (so a stray byte outside strings is refused there). The value ends
 * at its closing bracket: error bits before it reject it, bits after it are not its business.
 * Strings with non-ASCII bytes get one strict UTF-8 pass over the value once its end is known (no
 * overlongs, no surrogates, nothing above U+10FFFF).
 *
 * Stage 1 has three forms giving identical masks: AVX2 (32 bytes a compare, used when
 * __builtin_cpu_supports says so), SSE2 (every x86-64) and a byte loop (elsewhere, and a
 * reference for the tests). check_container's ``level`` picks one. */
#ifndef PROCESSOR_CHECK_SIMD_H
#define PROCESSOR_CHECK_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CHECK_X86 1
#endif

#include "skip_simd.h" /* escaped64, prefix_xor */

typedef struct {
    uint64_t quote, op, ws;         /* ws: tab, newline and return may wait for the detail */
    uint64_t odd;                   /* backslash | ctrl | high: when 0, the three are 0 */
    uint64_t backslash, ctrl, high; /* only set (by the classifier's detail) when odd is not 0 */
} check_masks;

/* The byte loop: the reference every vector form must equal. */
static inline void classify_bytes(const unsigned char *p, check_masks *m)
{
    int k;
    memset(m, 0, sizeof *m);
    for (k = 0; k < 64; k++) {
        unsigned char c = p[k];
        uint64_t bit = 1ULL << k;
        if (c == '"')
            m->quote |= bit;
        else if (c == '\\')
            m->backslash |= bit;
        else if (c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',')
            m->op |= bit;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            m->ws |= bit;
        if (c < 0x20)
            m->ctrl |= bit;
        if (c >= 0x80)
            m->high |= bit;
    }
    m->odd = m->backslash | m->ctrl | m->high;
}

static inline void classify_bytes_detail(const unsigned char *p, check_masks *m)
{
    (void)p;
    (void)m; /* classify_bytes set them */
}

#if defined(__SSE2__)
static inline uint64_t check_mask16x4(__m128i a, __m128i b, __m128i c, __m128i d)
{
    return (uint64_t)(unsigned)_mm_movemask_epi8(a) | ((uint64_t)(unsigned)_mm_movemask_epi8(b) << 16) |
           ((uint64_t)(unsigned)_mm_movemask_epi8(c) << 32) | ((uint64_t)(unsigned)_mm_movemask_epi8(d) << 48);
}

static inline void classify_sse2(const unsigned char *p, check_masks *m)
{
    __m128i q[4], op[4], ws[4], odd[4];
    int k;
    for (k = 0; k < 4; k++) {
        const __m128i x = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        const __m128i x20 = _mm_or_si128(x, _mm_set1_epi8(0x20)); /* '[' -> '{', ']' -> '}' */
        q[k] = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
        op[k] = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x20, _mm_set1_epi8('{')), _mm_cmpeq_epi8(x20, _mm_set1_epi8('}'))),
            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')), _mm_cmpeq_epi8(x, _mm_set1_epi8(','))));
        ws[k] = _mm_cmpeq_epi8(x, _mm_set1_epi8(' ')); /* tab, newline, return: the detail's */
        /* signed: control bytes and bytes >= 0x80 are below 0x20 */
        odd[k] = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
    }
    m->quote = check_mask16x4(q[0], q[1], q[2], q[3]);
    m->op = check_mask16x4(op[0], op[1], op[2], op[3]);
    m->ws = check_mask16x4(ws[0], ws[1], ws[2], ws[3]);
    m->odd = check_mask16x4(odd[0], odd[1], odd[2], odd[3]);
}

static inline void classify_sse2_detail(const unsigned char *p, check_masks *m)
{
    __m128i bs[4], lt[4], x[4], ws[4];
    int k;
    for (k = 0; k < 4; k++) {
        x[k] = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        bs[k] = _mm_cmpeq_epi8(x[k], _mm_set1_epi8('\\'));
        lt[k] = _mm_cmplt_epi8(x[k], _mm_set1_epi8(0x20));
        ws[k] = _mm_or_si128(_mm_cmpeq_epi8(x[k], _mm_set1_epi8('\t')),
                             _mm_or_si128(_mm_cmpeq_epi8(x[k], _mm_set1_epi8('\n')), _mm_cmpeq_epi8(x[k], _mm_set1_epi8('\r'))));
    }
    m->ws |= check_mask16x4(ws[0], ws[1], ws[2], ws[3]);
    m->backslash = check_mask16x4(bs[0], bs[1], bs[2], bs[3]);
    m->high = check_mask16x4(x[0], x[1], x[2], x[3]);
    m->ctrl = check_mask16x4(lt[0], lt[1], lt[2], lt[3]) & ~m->high;
}
#endif

#if defined(CHECK_X86)
/* The AVX2 form also uses BMI (tzcnt, blsr) and carry-less multiplication (PCLMUL), which every
 * CPU with AVX2 has. */
#define CHECK_AVX2 __attribute__((target("avx2,bmi,bmi2,pclmul")))

/* prefix_xor by one carry-less multiplication by all ones. */
CHECK_AVX2 static inline uint64_t prefix_xor_clmul(uint64_t x)
{
    return (uint64_t)_mm_cvtsi128_si64(_mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), _mm_set1_epi8((char)0xFF), 0));
}

CHECK_AVX2 static inline uint64_t check_mask32x2(__m256i a, __m256i b)
{
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(a) | ((uint64_t)(uint32_t)_mm256_movemask_epi8(b) << 32);
}

/* The class of each byte from two table lookups on its nibbles (simdjson's idea): bit 0 a
 * structural character, bit 1 whitespace; then a compare each for the quote, the backslash and
 * the control bytes. */
CHECK_AVX2 static inline void classify_avx2(const unsigned char *p, check_masks *m)
{
    /* low nibble -> classes: ',' 0x2C ':' 0x3A '[' 0x5B '{' 0x7B ']' 0x5D '}' 0x7D,
     * ' ' 0x20 '\t' 0x09 '\n' 0x0A '\r' 0x0D */
    const __m256i lo = _mm256_setr_epi8(16, 0, 0, 0, 0, 0, 0, 0, 0, 8, 10, 4, 1, 12, 0, 0,
                                        16, 0, 0, 0, 0, 0, 0, 0, 0, 8, 10, 4, 1, 12, 0, 0);
    /* high nibble -> classes: 0x0_ tab/nl/cr (8), 0x2_ space (16) and ',' (1), 0x3_ ':' (2),
     * 0x5_ and 0x7_ brackets (4) */
    const __m256i hi = _mm256_setr_epi8(8, 0, 17, 2, 0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
                                        8, 0, 17, 2, 0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i zero = _mm256_setzero_si256();
    __m256i cls_op[2], cls_ws[2], q[2], odd[2];
    int k;
    for (k = 0; k < 2; k++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
        const __m256i c = _mm256_and_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(v, nib)),
                                           _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), nib)));
        /* bytes >= 0x80: the high-nibble table is 0 from 8 on */
        cls_op[k] = _mm256_cmpgt_epi8(_mm256_and_si256(c, _mm256_set1_epi8(7)), zero);
        cls_ws[k] = _mm256_cmpgt_epi8(_mm256_and_si256(c, _mm256_set1_epi8(24)), zero);
        q[k] = _mm256_cmpeq_epi8(v, _mm256_set1_epi8('"'));
        /* signed: control bytes and bytes >= 0x80 are below 0x20 */
        odd[k] = _mm256_or_si256(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v),
                                 _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\\')));
    }
    m->quote = check_mask32x2(q[0], q[1]);
    m->op = check_mask32x2(cls_op[0], cls_op[1]);
    m->ws = check_mask32x2(cls_ws[0], cls_ws[1]);
    m->odd = check_mask32x2(odd[0], odd[1]);
}

CHECK_AVX2 static inline void classify_avx2_detail(const unsigned char *p, check_masks *m)
{
    __m256i v[2], bs[2], lt[2];
    int k;
    for (k = 0; k < 2; k++) {
        v[k] = _mm256_loadu_si256((const __m256i *)(p + 32 * k));
        bs[k] = _mm256_cmpeq_epi8(v[k], _mm256_set1_epi8('\\'));
        lt[k] = _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v[k]);
    }
    m->backslash = check_mask32x2(bs[0], bs[1]);
    m->high = check_mask32x2(v[0], v[1]);
    m->ctrl = check_mask32x2(lt[0], lt[1]) & ~m->high;
}
#endif

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) of s[i:n]. */
static inline int check_utf8(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
    while (i < n) {
        unsigned char c = s[i], c1;
#if defined(__SSE2__)
        if (c < 0x80 && i + 16 <= n) {
            int mask = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i)));
            if (!mask) {
                i += 16;
                continue;
            }
            i += __builtin_ctz((unsigned)mask);
            c = s[i];
        }
#endif
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F))
                return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n)
                return 0;
            c1 = s[i + 1];
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static inline int check_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Whether the escape whose second byte is s[k] (k < n) is valid and not a surrogate. */
static inline int check_escape(const unsigned char *s, ptrdiff_t k, ptrdiff_t n)
{
    int h0, h1, h2, h3, code;
    switch (s[k]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return 1;
    case 'u':
        if (k + 4 >= n)
            return 0;
        h0 = check_hex(s[k + 1]); h1 = check_hex(s[k + 2]); h2 = check_hex(s[k + 3]); h3 = check_hex(s[k + 4]);
        if ((h0 | h1 | h2 | h3) < 0)
            return 0;
        code = (h0 << 12) | (h1 << 8) | (h2 << 4) | h3;
        return code < 0xD800 || code > 0xDFFF; /* a surrogate escape is doubtful */
    default:
        return 0;
    }
}

/* The number at s[i] ('-' or a digit): the index after it, or -1 (not a number of the JSON
 * grammar, an exponent, more than max_digits digits). Same rules as the scanner's _number. */
static inline ptrdiff_t check_number(const unsigned char *s, ptrdiff_t i, ptrdiff_t n, int max_digits)
{
    ptrdiff_t digits = 0, start;
    if (s[i] == '-')
        i++;
    if (i >= n)
        return -1;
    if (s[i] == '0') {
        i++;
        digits = 1;
    } else if ((unsigned)(s[i] - '1') < 9) {
        start = i;
        while (i < n && (unsigned)(s[i] - '0') < 10)
            i++;
        digits = i - start;
    } else {
        return -1;
    }
    if (i < n && s[i] == '.') {
        i++;
        start = i;
        while (i < n && (unsigned)(s[i] - '0') < 10)
            i++;
        if (i == start)
            return -1;
        digits += i - start;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E'))
        return -1;
    return digits > max_digits ? -1 : i;
}

/* The number or literal at s[i] followed by whitespace or ,]} : the index after it, or -1. */
static inline ptrdiff_t check_scalar(const unsigned char *s, ptrdiff_t i, ptrdiff_t n, int max_digits)
{
    ptrdiff_t j;
    unsigned char c = s[i];
    if (c == 't')
        j = i + 4 <= n && memcmp(s + i, "true", 4) == 0 ? i + 4 : -1;
    else if (c == 'f')
        j = i + 5 <= n && memcmp(s + i, "false", 5) == 0 ? i + 5 : -1;
    else if (c == 'n')
        j = i + 4 <= n && memcmp(s + i, "null", 4) == 0 ? i + 4 : -1;
    else if (c == '-' || (unsigned)(c - '0') < 10)
        j = check_number(s, i, n, max_digits);
    else
        return -1;
    if (j < 0 || j >= n)
        return -1; /* inside a container: its closing bracket must follow */
    c = s[j];
    if (c == ',' || c == ']' || c == '}' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
        return j;
    return -1;
}

/* The masks of the block at s[base] (padded with spaces past n): the structural bits and the
 * error bits; the carries go on to the next block. */
typedef struct {
    unsigned long long prev_escaped;
    uint64_t inside, scalar; /* all ones when the block before ended inside a string; its last byte a scalar's */
    int utf8;                /* a non-ASCII byte inside a string was seen */
} check_carry;

#define CHECK_STAGE1(CLASSIFY, PREFIX, s, base, n, tail, carry, p, structural, err)                          \
    do {                                                                                             \
        check_masks m_;                                                                              \
        uint64_t escaped_ = 0, quote_, inside_, scalar_, bits_;                                      \
        p = s + base;                                                                                \
        if (base + 64 > n) { /* the last bytes, padded with spaces */                                \
            memset(tail, ' ', 64);                                                                   \
            memcpy(tail, s + base, (size_t)(n - base));                                              \
            p = tail;                                                                                \
        }                                                                                            \
        CLASSIFY(p, &m_);                                                                            \
        if (!(m_.odd | carry.prev_escaped)) { /* no backslash, control or non-ASCII byte */          \
            quote_ = m_.quote;                                                                       \
            inside_ = PREFIX(quote_) ^ carry.inside;                                             \
            err = 0;                                                                                 \
        } else {                                                                                     \
            CLASSIFY##_detail(p, &m_);                                                               \
            if (m_.backslash | carry.prev_escaped)                                                   \
                escaped_ = escaped64(m_.backslash, &carry.prev_escaped);                             \
            quote_ = m_.quote & ~escaped_;                                                           \
            inside_ = PREFIX(quote_) ^ carry.inside; /* from an opening quote to its closing one */ \
            err = m_.ctrl & inside_; /* outside strings: not a token, refused by stage 2 */ \
            if (m_.high & inside_)                                                                   \
                carry.utf8 = 1;                                                                      \
            for (bits_ = escaped_; bits_; bits_ &= bits_ - 1) {                                      \
                int k_ = __builtin_ctzll(bits_);                                                     \
                if (base + k_ >= n || !check_escape(s, base + k_, n))                                \
                    err |= 1ULL << k_;                                                               \
            }                                                                                        \
        }                                                                                            \
        carry.inside = (uint64_t)((int64_t)inside_ >> 63);                                           \
        scalar_ = ~(inside_ | quote_ | m_.op | m_.ws);                                               \
        structural = (m_.op & ~inside_) | (quote_ & inside_) | (scalar_ & ~((scalar_ << 1) | carry.scalar)); \
        carry.scalar = scalar_ >> 63;                                                                \
    } while (0)

/* The validator, one body for each form of stage 1 (a macro: the AVX2 one must be compiled with
 * the target attribute, the others without). s[i] is '{' or '[' at nesting ``depth``; nested
 * containers at depth max_depth or more are refused, as are numbers of more than max_digits
 * digits. The index after the container, or -1. Stage 2 is a state machine whose states are
 * places in the code (a value, a key, after a value), as in simdjson; the next block's stage 1
 * has one place too (refill), which returns to the caller's label (GNU C labels as values). */
#define CHECK_DEFINE(NAME, ATTR, CLASSIFY, PREFIX)                                                             \
    ATTR static ptrdiff_t NAME(const unsigned char *s, ptrdiff_t i, ptrdiff_t n, int depth,          \
                               int max_depth, int max_digits)                                        \
    {                                                                                                \
        unsigned char closer[256]; /* per open container but the innermost: its closing byte */      \
        unsigned char tail[64];                                                                      \
        const unsigned char *p;                                                                      \
        check_carry carry = {0, 0, 0, 0};                                                            \
        uint64_t structural, err;                                                                    \
        ptrdiff_t base = i;                                                                          \
        ptrdiff_t k;                                                                                 \
        ptrdiff_t level = 0, room;                                                                   \
        unsigned char c, top = 0; /* the byte closing the innermost open container */                \
        void *resume;                                                                                \
        if (max_depth - depth > 255)                                                                 \
            max_depth = depth + 255;                                                                 \
        room = max_depth - depth; /* how many containers may be open */                               \
        CHECK_STAGE1(CLASSIFY, PREFIX, s, base, n, tail, carry, p, structural, err);                         \
        CHECK_NEXT(first);                                                                           \
    value:                                                                                           \
        if (c == '"')                                                                                \
            goto after;                                                                              \
        if (c == '{' || c == '[') {                                                                  \
            if (level >= room)                                                                       \
                return -1;                                                                           \
            closer[level++] = top;                                                                   \
            top = c + 2; /* '{' + 2 is '}', '[' + 2 is ']' */                                        \
            CHECK_NEXT(opened);                                                                      \
            if (c == top)                                                                            \
                goto close;                                                                          \
            if (top == '}')                                                                          \
                goto key;                                                                            \
            goto value;                                                                              \
        }                                                                                            \
        if (c == ']' || c == '}' || c == ':' || c == ',' || check_scalar(s, base + k, n, max_digits) < 0) \
            return -1;                                                                               \
    after:                                                                                           \
        CHECK_NEXT(next);                                                                            \
        if (c == ',') {                                                                              \
            CHECK_NEXT(comma);                                                                       \
            if (top == '}')                                                                          \
                goto key;                                                                            \
            goto value;                                                                              \
        }                                                                                            \
        if (c != top)                                                                                \
            return -1;                                                                               \
    close:                                                                                           \
        top = closer[--level];                                                                       \
        if (level)                                                                                   \
            goto after;                                                                              \
        /* the end: error bits up to the closing bracket count, later ones do not */                 \
        if (err & ((2ULL << k) - 1)) /* bits 0..k (all of them when k is 63) */                      \
            return -1;                                                                               \
        if (carry.utf8 && !check_utf8(s, i, base + k + 1))                                           \
            return -1;                                                                               \
        return base + k + 1;                                                                         \
    key:                                                                                             \
        if (c != '"')                                                                                \
            return -1;                                                                               \
        CHECK_NEXT(colon);                                                                           \
        if (c != ':')                                                                                \
            return -1;                                                                               \
        CHECK_NEXT(member);                                                                          \
        goto value;                                                                                  \
    refill: /* the next block with a structural byte (error bits before it all belong to the value) */ \
        do {                                                                                         \
            if (err)                                                                                 \
                return -1;                                                                           \
            base += 64;                                                                              \
            if (base >= n)                                                                           \
                return -1;                                                                           \
            CHECK_STAGE1(CLASSIFY, PREFIX, s, base, n, tail, carry, p, structural, err);                     \
        } while (!structural);                                                                       \
        goto *resume;                                                                                \
    }

/* The next structural byte into c (its bit k of the block at base), by way of refill when this
 * block has none left. */
#define CHECK_NEXT(LABEL)                                                                            \
    do {                                                                                             \
        if (!structural) {                                                                           \
            resume = &&LABEL;                                                                        \
            goto refill;                                                                             \
        }                                                                                            \
    LABEL:                                                                                           \
        k = (ptrdiff_t)(unsigned)__builtin_ctzll(structural);                                                      \
        structural &= structural - 1;                                                                \
        c = p[k];                                                                                    \
    } while (0)

CHECK_DEFINE(check_container_bytes, , classify_bytes, prefix_xor)
#if defined(__SSE2__)
CHECK_DEFINE(check_container_sse2, , classify_sse2, prefix_xor)
#endif
#if defined(CHECK_X86)
CHECK_DEFINE(check_container_avx2, CHECK_AVX2, classify_avx2, prefix_xor_clmul)
#endif

/* The best form of stage 1 this CPU has: 2 AVX2, 1 SSE2, 0 the byte loop. */
static int check_level_best(void)
{
    static int level = -1;
    if (level < 0) {
        level = 0;
#if defined(__SSE2__)
        level = 1;
#endif
#if defined(CHECK_X86)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
            __builtin_cpu_supports("pclmul"))
            level = 2;
#endif
    }
    return level;
}

/* check_container with stage 1 in form ``level`` (capped at what this build and CPU have). */
static inline ptrdiff_t check_container(const unsigned char *s, ptrdiff_t i, ptrdiff_t n, int depth, int max_depth,
                                        int max_digits, int level)
{
    int best = check_level_best();
    if (level > best)
        level = best;
#if defined(CHECK_X86)
    if (level >= 2)
        return check_container_avx2(s, i, n, depth, max_depth, max_digits);
#endif
#if defined(__SSE2__)
    if (level >= 1)
        return check_container_sse2(s, i, n, depth, max_depth, max_digits);
#endif
    return check_container_bytes(s, i, n, depth, max_depth, max_digits);
}

#endif
