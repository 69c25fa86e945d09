# Declarations of the scanner's C primitives (``_native/jsonscan.pyx``), cimported by the route
# (``_native/route.pyx``) and the ingest split (``_native/ingestsplit.pyx``). The twin of all of
# them is ``processor/records/jsonscan.py``. The validating primitives (_ws to _check) are defined
# here, inline: each unit compiles its own copy, so a cimporting unit calls them directly (no
# call through jsonscan's function table, which costs the ingest split about 6%).

from libc.string cimport memcmp

cdef enum:
    MAX_MEMBERS = 64  # split_document/split_object: more top-level members is doubtful
    MAX_DEPTH = 200  # deeper nesting is doubtful
    MAX_DIGITS = 15  # a number with more digits is doubtful


cdef inline Py_ssize_t _ws(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The index of the first non-whitespace byte at or after ``s[i]``."""
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c == 32 or c == 10 or c == 13 or c == 9:
            i += 1
        else:
            break
    return i


cdef inline bint _named(const unsigned char* p, Py_ssize_t size, const char* w, Py_ssize_t k) noexcept nogil:
    """Whether the ``size`` bytes at ``p`` are the ``k`` bytes of ``w``."""
    return size == k and memcmp(p, w, k) == 0


cdef inline int _hex(unsigned char c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef extern from "scan_simd.h":
    Py_ssize_t scan_plain(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) nogil


cdef inline Py_ssize_t _string(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, bint* escaped) noexcept nogil:
    """``s[i]`` is just after the opening quote; the index after the closing quote, or -1."""
    cdef unsigned char c, c1, c2, c3
    cdef int h0, h1, h2, h3, code
    while True:
        i = scan_plain(s, i, n)  # skip plain ASCII (SIMD): stop at what needs a look
        if i >= n:
            break
        c = s[i]
        if c == 34:  # "
            return i + 1
        if c == 92:  # backslash
            escaped[0] = True
            if i + 1 >= n:
                return -1
            c = s[i + 1]
            if c == 117:  # u
                if i + 5 >= n:
                    return -1
                h0 = _hex(s[i + 2]); h1 = _hex(s[i + 3]); h2 = _hex(s[i + 4]); h3 = _hex(s[i + 5])
                if h0 < 0 or h1 < 0 or h2 < 0 or h3 < 0:
                    return -1
                code = (h0 << 12) | (h1 << 8) | (h2 << 4) | h3
                if 0xD800 <= code <= 0xDFFF:
                    return -1  # surrogate escapes: doubtful, full decode decides
                i += 6
                continue
            if c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110 or c == 114 or c == 116:
                i += 2
                continue
            return -1
        if c < 32:
            return -1
        if c < 128:
            i += 1
            continue
        # UTF-8 multi-byte sequence, strictly validated (no overlongs, no surrogates)
        if 0xC2 <= c <= 0xDF:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return -1
            i += 2
        elif 0xE0 <= c <= 0xEF:
            if i + 2 >= n:
                return -1
            c1 = s[i + 1]; c2 = s[i + 2]
            if (c1 & 0xC0) != 0x80 or (c2 & 0xC0) != 0x80:
                return -1
            if c == 0xE0 and c1 < 0xA0:
                return -1
            if c == 0xED and c1 > 0x9F:
                return -1
            i += 3
        elif 0xF0 <= c <= 0xF4:
            if i + 3 >= n:
                return -1
            c1 = s[i + 1]; c2 = s[i + 2]; c3 = s[i + 3]
            if (c1 & 0xC0) != 0x80 or (c2 & 0xC0) != 0x80 or (c3 & 0xC0) != 0x80:
                return -1
            if c == 0xF0 and c1 < 0x90:
                return -1
            if c == 0xF4 and c1 > 0x8F:
                return -1
            i += 4
        else:
            return -1
    return -1


cdef inline Py_ssize_t _number(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t digits = 0
    if s[i] == 45:  # -
        i += 1
    if i >= n:
        return -1
    if s[i] == 48:  # 0
        i += 1
        digits = 1
    elif 49 <= s[i] <= 57:
        while i < n and 48 <= s[i] <= 57:
            i += 1
            digits += 1
    else:
        return -1
    if i < n and s[i] == 46:  # .
        i += 1
        if i >= n or not (48 <= s[i] <= 57):
            return -1
        while i < n and 48 <= s[i] <= 57:
            i += 1
            digits += 1
    if i < n and (s[i] == 101 or s[i] == 69):  # exponent: doubtful (infinity), full decode
        return -1
    if digits > MAX_DIGITS:
        return -1
    return i


cdef inline bint _word(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, const char* w, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    if i + k > n:
        return False
    for j in range(k):
        if s[i + j] != <unsigned char>w[j]:
            return False
    return True


cdef extern from "check_simd.h":
    Py_ssize_t check_container(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth, int max_depth,
                               int max_digits, int level) nogil
    int check_container_best "check_level_best"() nogil


cdef inline Py_ssize_t _check(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth) noexcept nogil:
    """Validate the value at ``s[i]`` (no leading whitespace); the index after it, or -1.

    A container is validated 64 bytes at a time (``_native/check_simd.h``: bit masks, then its
    structural characters), with the best form of stage 1 the CPU has (level 2: AVX2).
    """
    cdef unsigned char c
    cdef bint esc
    if i >= n:
        return -1
    c = s[i]
    if c == 34:
        esc = False
        return _string(s, i + 1, n, &esc)
    if c == 123 or c == 91:
        return check_container(s, i, n, depth, MAX_DEPTH, MAX_DIGITS, 2)
    if c == 116:
        return i + 4 if _word(s, i, n, b"true", 4) else -1
    if c == 102:
        return i + 5 if _word(s, i, n, b"false", 5) else -1
    if c == 110:
        return i + 4 if _word(s, i, n, b"null", 4) else -1
    if c == 45 or 48 <= c <= 57:
        return _number(s, i, n)
    return -1


cdef Py_ssize_t _skip(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil
cdef list _keyset(object keys)
cdef bint _key_in(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, list keys)


cdef class ArrayWalker:
    """Validates (and reads) the top-level ``items`` array as :func:`_members` meets it."""

    cdef Py_ssize_t walk(self, const unsigned char* s, Py_ssize_t i, Py_ssize_t n) except -2


cdef Py_ssize_t _members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* m, int* count,
                         ArrayWalker walker) except -2
cdef object _split_members(bytes buf, Py_ssize_t* m, int count, object bodies, object route)
