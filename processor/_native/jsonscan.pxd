# Declarations of the scanner's C primitives (``_native/jsonscan.pyx``), cimported by the route
# (``_native/route.pyx``). The twin of all of them is ``processor/records/jsonscan.py``.

from libc.string cimport memcmp

cdef enum:
    MAX_MEMBERS = 64  # split_document/split_object: more top-level members is doubtful


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


cdef Py_ssize_t _string(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, bint* escaped) noexcept nogil
cdef Py_ssize_t _check(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth) noexcept nogil
cdef Py_ssize_t _skip(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil
cdef list _keyset(object keys)
cdef bint _key_in(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, list keys)


cdef class ArrayWalker:
    """Validates (and reads) the top-level ``items`` array as :func:`_members` meets it."""

    cdef Py_ssize_t walk(self, const unsigned char* s, Py_ssize_t i, Py_ssize_t n) except -2


cdef Py_ssize_t _members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* m, int* count,
                         ArrayWalker walker) except -2
cdef object _split_members(bytes buf, Py_ssize_t* m, int count, object bodies, object route)
