/* The first byte at or after s[i] (before n) that ends a run of plain string bytes: a quote, a
 * backslash, a control character (< 0x20) or a non-ASCII byte (>= 0x80); n when there is none.
 * SSE2 (every x86-64) compares 16 bytes at a time; elsewhere a byte loop. */
#ifndef PROCESSOR_SCAN_SIMD_H
#define PROCESSOR_SCAN_SIMD_H

#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline ptrdiff_t scan_plain(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
        /* signed compare: bytes >= 0x80 are negative, so "< 0x20" also catches them */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                                 _mm_cmplt_epi8(x, space));
        int mask = _mm_movemask_epi8(m);
        if (mask)
            return i + __builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
            return i;
        i++;
    }
    return n;
}

#endif
