/* SHA-256 (FIPS 180-4) of one buffer, for the Activity name (_native/activity.pyx).
 *
 * On x86-64 CPUs with the SHA extensions the blocks are compressed with them (checked once with
 * CPUID); elsewhere by the portable C below. Both give hashlib's digest (tests/unit/
 * test_native_build.py compares them over every length that crosses a block boundary).
 */
#ifndef ACTIVITY_SHA256_H
#define ACTIVITY_SHA256_H

#include <stdint.h>
#include <string.h>

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* Set (by the tests) to use the portable C even where the SHA extensions are there. */
static int sha256_portable = 0;

#define SHA256_ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_blocks_c(uint32_t s[8], const unsigned char *p, size_t blocks) {
    uint32_t w[64];
    for (; blocks; blocks--, p += 64) {
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = SHA256_ROR(w[i - 15], 7) ^ SHA256_ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = SHA256_ROR(w[i - 2], 17) ^ SHA256_ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (SHA256_ROR(e, 6) ^ SHA256_ROR(e, 11) ^ SHA256_ROR(e, 25)) +
                          ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i];
            uint32_t t2 = (SHA256_ROR(a, 2) ^ SHA256_ROR(a, 13) ^ SHA256_ROR(a, 22)) +
                          ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define SHA256_NI __attribute__((target("sha,ssse3,sse4.1")))

/* The SHA extensions' round and message-schedule instructions, four rounds per step. */
SHA256_NI static void sha256_blocks_ni(uint32_t s[8], const unsigned char *p, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&s[0]);
    __m128i state1 = _mm_loadu_si128((const __m128i *)&s[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B);          /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);  /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);       /* CDGH */
    for (; blocks; blocks--, p += 64) {
        __m128i abef = state0, cdgh = state1, w[4], msg;
        for (int g = 0; g < 16; g++) {
            if (g < 4)
                w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            msg = _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&SHA256_K[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (g >= 3 && g <= 14) {
                tmp = _mm_alignr_epi8(w[g & 3], w[(g - 1) & 3], 4);
                w[(g + 1) & 3] = _mm_add_epi32(w[(g + 1) & 3], tmp);
                w[(g + 1) & 3] = _mm_sha256msg2_epu32(w[(g + 1) & 3], w[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
            if (g >= 1 && g <= 12)
                w[(g - 1) & 3] = _mm_sha256msg1_epu32(w[(g - 1) & 3], w[g & 3]);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);             /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);          /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);       /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);          /* ABEF */
    _mm_storeu_si128((__m128i *)&s[0], state0);
    _mm_storeu_si128((__m128i *)&s[4], state1);
}

static int sha256_has_ni(void) {
    static int known = -1;
    if (known < 0) {
        unsigned a, b, c, d;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) && (c & (1u << 19));
        ok = ok && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
        known = ok;
    }
    return known;
}
#define SHA256_BLOCKS(s, p, n) \
    (!sha256_portable && sha256_has_ni() ? sha256_blocks_ni(s, p, n) : sha256_blocks_c(s, p, n))
#else
#define SHA256_BLOCKS(s, p, n) sha256_blocks_c(s, p, n)
#endif

/* out = SHA-256(p[:n]) */
static void activity_sha256(const unsigned char *p, size_t n, unsigned char out[32]) {
    uint32_t s[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char last[128];
    size_t full = n / 64, rest = n % 64, tail = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    if (full)
        SHA256_BLOCKS(s, p, full);
    memset(last, 0, sizeof last);
    memcpy(last, p + full * 64, rest);
    last[rest] = 0x80;
    for (int i = 0; i < 8; i++)
        last[tail - 1 - i] = (unsigned char)(bits >> (8 * i));
    SHA256_BLOCKS(s, last, tail / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s[i] >> 8);
        out[4 * i + 3] = (unsigned char)s[i];
    }
}

#endif
