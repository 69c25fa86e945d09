/* Skipping over JSON values the scanner (jsonscan) has already validated, for the typed decoder
 * (_native/typed.pyx): no validation, only delimiting. SSE2 (every x86-64) looks at 16 bytes at a
 * time for the bytes that matter -- a quote or backslash inside a string; a quote or a bracket
 * inside a container -- elsewhere a byte loop. Each returns the index after the value, or -1 when
 * the input ends first. */
#ifndef PROCESSOR_SKIP_SIMD_H
#define PROCESSOR_SKIP_SIMD_H

#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* s[i] follows a string's opening quote: the index after its closing quote. */
static inline ptrdiff_t skip_string(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
    for (;;) {
#if defined(__SSE2__)
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i backslash = _mm_set1_epi8('\\');
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
            int mask = _mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)));
            if (mask) {
                i += __builtin_ctz((unsigned)mask);
                goto found;
            }
            i += 16;
        }
#endif
        while (i < n && s[i] != '"' && s[i] != '\\')
            i++;
#if defined(__SSE2__)
    found:
#endif
        if (i >= n)
            return -1;
        if (s[i] == '"')
            return i + 1;
        i += 2; /* an escape: its second byte is never a quote that ends the string */
    }
}

/* The index after the (validated) value at s[i] (no leading whitespace). */
static inline ptrdiff_t skip_value(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
    unsigned char c = s[i];
    ptrdiff_t depth = 0;
    if (c == '"')
        return skip_string(s, i + 1, n);
    if (c != '{' && c != '[') {
        while (i < n) {
            c = s[i];
            if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
                break;
            i++;
        }
        return i;
    }
    while (i < n) {
#if defined(__SSE2__)
        /* '{' and '[' are 0x7B and 0x5B, '}' and ']' 0x7D and 0x5D: with bit 0x20 set, one
         * compare each */
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i open = _mm_set1_epi8('{');
        const __m128i close = _mm_set1_epi8('}');
        const __m128i bit = _mm_set1_epi8(0x20);
        while (i + 16 <= n) {
            __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i y = _mm_or_si128(x, bit);
            int mask = _mm_movemask_epi8(_mm_or_si128(
                _mm_cmpeq_epi8(x, quote),
                _mm_or_si128(_mm_cmpeq_epi8(y, open), _mm_cmpeq_epi8(y, close))));
            if (mask) {
                i += __builtin_ctz((unsigned)mask);
                break;
            }
            i += 16;
        }
#endif
        while (i < n) {
            c = s[i];
            if (c == '"' || c == '{' || c == '}' || c == '[' || c == ']')
                break;
            i++;
        }
        if (i >= n)
            return -1;
        c = s[i];
        if (c == '"') {
            i = skip_string(s, i + 1, n);
            if (i < 0)
                return -1;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (--depth == 0) {
            return i + 1;
        }
        i++;
    }
    return -1;
}

#endif
