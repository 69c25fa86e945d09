/* Skipping over JSON values the scanner (jsonscan) has already validated, for the typed decoder
 * (_native/typed.pyx): no validation, only delimiting. With SSE2 (every x86-64) a string is
 * searched 16 bytes at a time for its closing quote, and a container is read 64 bytes at a time
 * as bit masks (simdjson's idea: the quotes' prefix parity marks what is inside strings, the
 * brackets outside are counted); elsewhere a byte loop. Each returns the index after the value,
 * or -1 when the input ends first. */
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

#if defined(__SSE2__)
/* Bit k set where p[k] == c, for the 64 bytes at p. */
static inline unsigned long long eq64(__m128i a, __m128i b, __m128i c, __m128i d, __m128i x)
{
    return (unsigned long long)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, x)) |
           ((unsigned long long)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(b, x)) << 16) |
           ((unsigned long long)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c, x)) << 32) |
           ((unsigned long long)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(d, x)) << 48);
}

#endif

/* Bit k is the parity of the bits 0..k of x: set inside strings when x marks their quotes. */
static inline unsigned long long prefix_xor(unsigned long long x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* The bytes escaped by a backslash among the 64 whose backslashes are ``backslash``
 * (simdjson's branchless scanner); ``prev`` carries an escape over from the block before. */
static inline unsigned long long escaped64(unsigned long long backslash, unsigned long long *prev)
{
    const unsigned long long even_bits = 0x5555555555555555ULL;
    unsigned long long follows_escape, odd_starts, even_sequences;
    backslash &= ~*prev;
    follows_escape = (backslash << 1) | *prev;
    odd_starts = backslash & ~even_bits & ~follows_escape;
    even_sequences = odd_starts + backslash;
    *prev = even_sequences < odd_starts; /* the carry out of the block */
    return (even_bits ^ (even_sequences << 1)) & follows_escape;
}

/* s[i] is '{' or '[' of a (validated) container: the index after it. Read 64 bytes at a time as
 * bit masks: the escaped bytes, the quotes that are not, whose prefix parity marks the bytes
 * inside strings, then the brackets outside strings, counted; the tail byte by byte. */
static inline ptrdiff_t skip_container(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
    ptrdiff_t depth = 0;
    int in_string = 0;
    unsigned char c;
#if defined(__SSE2__)
    unsigned long long prev_escaped = 0, carry = 0;
    while (i + 64 <= n) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
        const __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
        const __m128i cc = _mm_loadu_si128((const __m128i *)(s + i + 32));
        const __m128i d = _mm_loadu_si128((const __m128i *)(s + i + 48));
        const __m128i bit = _mm_set1_epi8(0x20);
        unsigned long long backslash = eq64(a, b, cc, d, _mm_set1_epi8('\\'));
        unsigned long long escaped = backslash || prev_escaped ? escaped64(backslash, &prev_escaped) : 0;
        unsigned long long quotes = eq64(a, b, cc, d, _mm_set1_epi8('"')) & ~escaped;
        unsigned long long inside = prefix_xor(quotes) ^ carry;
        /* '{' '[' are 0x7B 0x5B, '}' ']' 0x7D 0x5D: one compare each with bit 0x20 set */
        const __m128i a2 = _mm_or_si128(a, bit), b2 = _mm_or_si128(b, bit);
        const __m128i c2 = _mm_or_si128(cc, bit), d2 = _mm_or_si128(d, bit);
        unsigned long long open = eq64(a2, b2, c2, d2, _mm_set1_epi8('{')) & ~inside;
        unsigned long long close = eq64(a2, b2, c2, d2, _mm_set1_epi8('}')) & ~inside;
        unsigned long long brackets = open | close;
        while (brackets) {
            int k = __builtin_ctzll(brackets);
            if ((open >> k) & 1) {
                depth++;
            } else if (--depth == 0) {
                return i + k + 1;
            }
            brackets &= brackets - 1;
        }
        carry = (unsigned long long)((long long)inside >> 63); /* all ones inside a string */
        i += 64;
    }
    in_string = (int)(carry & 1);
    if (in_string && prev_escaped)
        i++; /* the block before ended with an escaping backslash */
#endif
    while (i < n) {
        c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
        i++;
    }
    return -1;
}

/* The index after the (validated) value at s[i] (no leading whitespace). */
static inline ptrdiff_t skip_value(const unsigned char *s, ptrdiff_t i, ptrdiff_t n)
{
    unsigned char c = s[i];
    if (c == '"')
        return skip_string(s, i + 1, n);
    if (c == '{' || c == '[')
        return skip_container(s, i, n);
    while (i < n) {
        c = s[i];
        if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t')
            break;
        i++;
    }
    return i;
}

#endif
