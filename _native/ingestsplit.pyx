# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native twin of ``processor.ingest.split``: one pass over an ingest body that validates it and
returns each list item's span and partition.

The pure-Python module ``processor/ingest/split.py`` is the specification (same function, same
results); this file only makes it fast. Its string, value and whitespace primitives are the
worker's scanner's (cimported from ``processor/_native/jsonscan.pxd``), with the same rule: a
body is accepted only when orjson reads it to the same values (strict RFC 8259, UTF-8 without
surrogates); anything doubtful (a ``\\u`` surrogate escape, a number with an exponent or more
than 15 digits, nesting deeper than ``MAX_DEPTH``, an escaped top-level key, ``items`` twice,
more than ``MAX_MEMBERS`` top-level members) returns None and the caller decodes the body whole.
The scan itself runs without the GIL.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint32_t
from libc.stdlib cimport free, realloc

from processor._native.jsonscan cimport MAX_DEPTH, MAX_MEMBERS, _check, _named, _string, _ws

# Item codes below 0 (see the twin): -1 an object whose partition is left to the caller, then
# the JSON type of an item that is not an object.
DEF UNDECIDED = -1
DEF T_NULL = -2
DEF T_BOOL = -3
DEF T_NUMBER = -4
DEF T_STRING = -5
DEF T_ARRAY = -6

# Key sets of _fields: the item's members, then its key object's fields.
DEF AUDIT_ITEM = 0
DEF EVENT_ITEM = 1
DEF OBJECT_REF = 2
DEF INVOLVED = 3

MAX_DEPTH_ = MAX_DEPTH

cdef uint32_t _CRC[256]


cdef void _crc_table() noexcept:
    cdef uint32_t c
    cdef int k, x
    for x in range(256):
        c = x
        for k in range(8):
            c = (<uint32_t>0xEDB88320U ^ (c >> 1)) if (c & 1) else (c >> 1)
        _CRC[x] = c


_crc_table()


cdef inline uint32_t _crc(uint32_t state, const unsigned char* p, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(k):
        state = _CRC[(state ^ p[j]) & 0xFF] ^ (state >> 8)
    return state


cdef int _field(const unsigned char* p, Py_ssize_t k, int which) noexcept nogil:
    """The slot of key ``p[:k]`` in key set ``which``, -1 for any other key."""
    if which == AUDIT_ITEM:
        return 0 if _named(p, k, b"objectRef", 9) else -1
    if which == EVENT_ITEM:
        if _named(p, k, b"regarding", 9):
            return 0
        return 1 if _named(p, k, b"involvedObject", 14) else -1
    if _named(p, k, b"namespace", 9):
        return 2
    if _named(p, k, b"name", 4):
        return 3
    if which == OBJECT_REF:
        if _named(p, k, b"apiGroup", 8):
            return 0
        return 1 if _named(p, k, b"resource", 8) else -1
    if _named(p, k, b"apiVersion", 10):
        return 0
    return 1 if _named(p, k, b"kind", 4) else -1


cdef Py_ssize_t _fields(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth, int which,
                        Py_ssize_t* vs, Py_ssize_t* ve, bint* doubt) noexcept nogil:
    """Validate the object at ``s[i]`` (nesting ``depth``); the spans of its members of key set
    ``which`` into ``vs``/``ve`` (the last of a repeated key wins); ``doubt`` set by an escaped
    key. The index after the object, or -1."""
    cdef Py_ssize_t k, j, a
    cdef bint esc
    cdef int x
    if depth >= MAX_DEPTH:
        return -1
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        return i + 1
    while True:
        if i >= n or s[i] != 34:
            return -1
        esc = False
        k = _string(s, i + 1, n, &esc)
        if k < 0:
            return -1
        j = _ws(s, k, n)
        if j >= n or s[j] != 58:
            return -1
        a = _ws(s, j + 1, n)
        j = _check(s, a, n, depth + 1)
        if j < 0:
            return -1
        if esc:
            doubt[0] = True
        else:
            x = _field(s + i + 1, k - i - 2, which)
            if x >= 0:
                vs[x] = a
                ve[x] = j
        i = _ws(s, j, n)
        if i >= n:
            return -1
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return i + 1 if s[i] == 125 else -1


cdef int _truth(const unsigned char* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Python's truth of the value at ``s[a:b]`` (absent: ``a`` < 0): 1, 0, or -1 for a number."""
    cdef unsigned char c
    if a < 0:
        return 0
    c = s[a]
    if c == 110 or c == 102:
        return 0
    if c == 116:
        return 1
    if c == 34:
        return 1 if b - a > 2 else 0
    if c == 123 or c == 91:
        return 1 if _ws(s, a + 1, b) != b - 1 else 0
    return -1


cdef long _partition(const unsigned char* s, Py_ssize_t n, Py_ssize_t at, int which, long count) noexcept nogil:
    """The partition of the key object at ``s[at]`` (``at`` < 0: not an object, the empty key),
    member of an item; -1 when a field's text needs unescaping."""
    cdef Py_ssize_t vs[4]
    cdef Py_ssize_t ve[4]
    cdef Py_ssize_t a, j
    cdef bint doubt = False
    cdef uint32_t state = <uint32_t>0xFFFFFFFFU
    cdef int x
    for x in range(4):
        vs[x] = -1
    if at >= 0:
        _fields(s, at, n, 3, which, vs, ve, &doubt)  # validated with the item already
        if doubt:
            return UNDECIDED
    for x in range(4):
        a = vs[x]
        if x:
            state = _crc(state, <const unsigned char*>b"/", 1)
        if a < 0 or s[a] != 34:
            continue  # missing or not a string: empty
        for j in range(a + 1, ve[x] - 1):
            if s[j] == 92:
                return UNDECIDED
        state = _crc(state, s + a + 1, ve[x] - a - 2)
    if count == 1:
        return 0
    return <long>((~state) % <uint32_t>count)


cdef Py_ssize_t _item(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, bint audit, long count,
                      long* code) noexcept nogil:
    """Validate the list item at ``s[i]`` and set its ``code``; the index after it, or -1."""
    cdef Py_ssize_t vs[2]
    cdef Py_ssize_t ve[2]
    cdef Py_ssize_t e, at = -1
    cdef bint doubt = False
    cdef int truth
    cdef unsigned char c = s[i]
    if c != 123:
        code[0] = (T_NULL if c == 110 else T_BOOL if c == 116 or c == 102 else T_STRING if c == 34
                   else T_ARRAY if c == 91 else T_NUMBER)
        return _check(s, i, n, 2)
    vs[0] = vs[1] = -1
    e = _fields(s, i, n, 2, AUDIT_ITEM if audit else EVENT_ITEM, vs, ve, &doubt)
    if e < 0 or doubt:
        code[0] = UNDECIDED
        return e
    if audit:
        if vs[0] >= 0 and s[vs[0]] == 123:
            at = vs[0]
        code[0] = _partition(s, n, at, OBJECT_REF, count)
        return e
    truth = _truth(s, vs[0], ve[0])
    if truth < 0:
        code[0] = UNDECIDED
        return e
    if not truth:
        vs[0] = vs[1]
    if vs[0] >= 0 and s[vs[0]] == 123:
        at = vs[0]
    code[0] = _partition(s, n, at, INVOLVED, count)
    return e


cdef struct _Out:
    Py_ssize_t* items  # (start, end, code) of each item
    Py_ssize_t count
    Py_ssize_t room
    bint has_items
    Py_ssize_t members[4 * MAX_MEMBERS]  # (key start, key end, value start, value end)
    int n_members


cdef int _add(_Out* out, Py_ssize_t start, Py_ssize_t end, long code) noexcept nogil:
    """Append an item to ``out``; -1 when out of memory."""
    cdef Py_ssize_t* grown
    if out.count == out.room:
        out.room = out.room * 2 if out.room else 256
        grown = <Py_ssize_t*>realloc(out.items, 3 * out.room * sizeof(Py_ssize_t))
        if grown == NULL:
            return -1
        out.items = grown
    out.items[3 * out.count] = start
    out.items[3 * out.count + 1] = end
    out.items[3 * out.count + 2] = code
    out.count += 1
    return 0


cdef Py_ssize_t _items(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, bint audit, long count,
                       _Out* out) noexcept nogil:
    """Validate the array at ``s[i]`` (a member of the body); each item into ``out``. The index
    after the array, -1 when invalid, -2 when out of memory."""
    cdef Py_ssize_t e
    cdef long code
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 93:
        return i + 1
    while True:
        if i >= n:
            return -1
        e = _item(s, i, n, audit, count, &code)
        if e < 0:
            return -1
        if _add(out, i, e, code) < 0:
            return -2
        i = _ws(s, e, n)
        if i >= n:
            return -1
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return i + 1 if s[i] == 93 else -1


cdef int _scan(const unsigned char* s, Py_ssize_t n, bint audit, long count, _Out* out) noexcept nogil:
    """The body's members and items into ``out``: 1, 0 when doubtful, -1 when out of memory."""
    cdef Py_ssize_t i = _ws(s, 0, n), k, a, j
    cdef bint esc
    cdef int m
    if i >= n or s[i] != 123:
        return 0
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        i += 1
    else:
        while True:
            if i >= n or s[i] != 34 or out.n_members >= MAX_MEMBERS:
                return 0
            esc = False
            k = _string(s, i + 1, n, &esc)
            if k < 0 or esc:
                return 0
            j = _ws(s, k, n)
            if j >= n or s[j] != 58:
                return 0
            a = _ws(s, j + 1, n)
            if a < n and s[a] == 91 and _named(s + i + 1, k - i - 2, b"items", 5):
                if out.has_items:
                    return 0
                out.has_items = True
                j = _items(s, a, n, audit, count, out)
                if j == -2:
                    return -1
            else:
                j = _check(s, a, n, 1)
            if j < 0:
                return 0
            m = 4 * out.n_members
            out.members[m] = i + 1
            out.members[m + 1] = k - 1
            out.members[m + 2] = a
            out.members[m + 3] = j
            out.n_members += 1
            i = _ws(s, j, n)
            if i >= n:
                return 0
            if s[i] == 44:
                i = _ws(s, i + 1, n)
                continue
            if s[i] != 125:
                return 0
            i += 1
            break
    return 1 if _ws(s, i, n) == n else 0


def split_list(bytes body, bint audit, long partitions):
    """The members of the body and the items of its ``items`` array (twin:
    ``processor.ingest.split.split_list``). The scan runs without the GIL.

    Returns:
        ``(members, items)``: ``members`` ``[(key, start, end)]`` of the top-level object in
        order, ``items`` ``[(start, end, code)]`` of its ``items`` array (None when ``items`` is
        missing or not an array); None when the body is not certainly a JSON object that orjson
        reads the same way.

    Raises:
        ValueError: ``partitions`` is less than 1.
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(body)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body), x
    cdef _Out out
    cdef int found
    cdef list members, items
    cdef Py_ssize_t* it
    if partitions < 1:
        raise ValueError(f"partition count must be >= 1, got {partitions}")
    out.items = NULL
    out.count = out.room = 0
    out.has_items = False
    out.n_members = 0
    try:
        with nogil:
            found = _scan(s, n, audit, partitions, &out)
        if found < 0:
            raise MemoryError()
        if found == 0:
            return None
        members = []
        for x in range(out.n_members):
            members.append((
                PyUnicode_DecodeUTF8(<const char*>s + out.members[4 * x], out.members[4 * x + 1] - out.members[4 * x], NULL),
                out.members[4 * x + 2],
                out.members[4 * x + 3],
            ))
        if not out.has_items:
            return members, None
        items = [None] * out.count
        it = out.items
        for x in range(out.count):
            items[x] = (it[3 * x], it[3 * x + 1], it[3 * x + 2])
        return members, items
    finally:
        free(out.items)
