# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native twin of ``processor.records.jsonscan``: validate JSON bytes and locate values unparsed.

The pure-Python module ``processor/records/jsonscan.py`` is the specification (same functions,
same results); this file only makes it fast. A document is accepted only when orjson would parse
it to the same values (strict RFC 8259, UTF-8 without surrogates); anything doubtful (a lone
``\\u`` surrogate escape, a number with an exponent or more than 15 digits, nesting deeper than
``MAX_DEPTH``, a top-level value that is not an object) makes :func:`scan_document` return None,
and the caller then takes the full-decode path.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_Next
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.string cimport memcmp, memcpy

DEF MAX_DEPTH = 200
DEF MAX_DIGITS = 15

MAX_DEPTH_ = MAX_DEPTH


cdef inline Py_ssize_t _ws(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    cdef unsigned char c
    while i < n:
        c = s[i]
        if c == 32 or c == 10 or c == 13 or c == 9:
            i += 1
        else:
            break
    return i


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


cdef Py_ssize_t _string(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, bint* escaped) noexcept nogil:
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


cdef Py_ssize_t _number(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
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


cdef Py_ssize_t _check(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth) noexcept nogil:
    """Validate the value at ``s[i]`` (no leading whitespace); the index after it, or -1."""
    cdef unsigned char c
    cdef Py_ssize_t j, k, vs
    cdef bint esc
    if i >= n:
        return -1
    c = s[i]
    if c == 34:
        esc = False
        return _string(s, i + 1, n, &esc)
    if c == 123 or c == 91:
        if depth >= MAX_DEPTH:
            return -1
        i = _ws(s, i + 1, n)
        if i >= n:
            return -1
        if (c == 123 and s[i] == 125) or (c == 91 and s[i] == 93):
            return i + 1
        while True:
            if c == 123:
                if i >= n or s[i] != 34:
                    return -1
                esc = False
                k = _string(s, i + 1, n, &esc)
                if k < 0:
                    return -1
                j = _ws(s, k, n)
                if j >= n or s[j] != 58:  # :
                    return -1
                vs = _ws(s, j + 1, n)
                j = _check(s, vs, n, depth + 1)
                if j < 0:
                    return -1
            else:
                vs = i
                j = _check(s, vs, n, depth + 1)
                if j < 0:
                    return -1
            i = _ws(s, j, n)
            if i >= n:
                return -1
            if s[i] == 44:  # ,
                i = _ws(s, i + 1, n)
                continue
            if (c == 123 and s[i] == 125) or (c == 91 and s[i] == 93):
                return i + 1
            return -1
    if c == 116:
        return i + 4 if _word(s, i, n, b"true", 4) else -1
    if c == 102:
        return i + 5 if _word(s, i, n, b"false", 5) else -1
    if c == 110:
        return i + 4 if _word(s, i, n, b"null", 4) else -1
    if c == 45 or 48 <= c <= 57:
        return _number(s, i, n)
    return -1


cdef Py_ssize_t _value(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int depth, list out) except -2:
    """:func:`_check` of the value at ``s[i]``, collecting its members.

    When ``out`` is not None and the value is an object (array), its members ``(key, start, end)``
    (items ``(start, end)``) are appended to ``out``; ``key`` is None when the key has escapes.
    """
    cdef unsigned char c
    cdef Py_ssize_t j, k, vs
    cdef bint esc
    if i >= n:
        return -1
    c = s[i]
    if c == 34:
        esc = False
        return _string(s, i + 1, n, &esc)
    if c == 123 or c == 91:
        if depth >= MAX_DEPTH:
            return -1
        i = _ws(s, i + 1, n)
        if i >= n:
            return -1
        if (c == 123 and s[i] == 125) or (c == 91 and s[i] == 93):
            return i + 1
        while True:
            if c == 123:
                if i >= n or s[i] != 34:
                    return -1
                esc = False
                k = _string(s, i + 1, n, &esc)
                if k < 0:
                    return -1
                j = _ws(s, k, n)
                if j >= n or s[j] != 58:  # :
                    return -1
                vs = _ws(s, j + 1, n)
                j = _check(s, vs, n, depth + 1)
                if j < 0:
                    return -1
                if out is not None:
                    out.append((None if esc else PyUnicode_DecodeUTF8(<const char*>s + i + 1, k - i - 2, NULL), vs, j, i))
            else:
                vs = i
                j = _check(s, vs, n, depth + 1)
                if j < 0:
                    return -1
                if out is not None:
                    out.append((vs, j))
            i = _ws(s, j, n)
            if i >= n:
                return -1
            if s[i] == 44:  # ,
                i = _ws(s, i + 1, n)
                continue
            if (c == 123 and s[i] == 125) or (c == 91 and s[i] == 93):
                return i + 1
            return -1
    if c == 116:
        return i + 4 if _word(s, i, n, b"true", 4) else -1
    if c == 102:
        return i + 5 if _word(s, i, n, b"false", 5) else -1
    if c == 110:
        return i + 4 if _word(s, i, n, b"null", 4) else -1
    if c == 45 or 48 <= c <= 57:
        return _number(s, i, n)
    return -1


def scan_document(bytes buf):
    """Validate ``buf`` as one JSON document whose value is an object; its members, or None.

    Returns:
        ``[(key, start, end), ...]`` in document order (``key`` None when it has escapes;
        ``buf[start:end]`` is the value's JSON text), or None when ``buf`` is not certainly a
        JSON object that orjson reads the same way.
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t i = _ws(s, 0, n)
    cdef list out = []
    if i >= n or s[i] != 123:
        return None
    i = _value(s, i, n, 0, out)
    if i < 0 or _ws(s, i, n) != n:
        return None
    return [m[:3] for m in out]


def object_members(bytes buf, Py_ssize_t start, Py_ssize_t end):
    """The members ``(key, start, end)`` of the object at ``buf[start:end]``, None if not an object.

    ``buf[start:end]`` must be a value :func:`scan_document` accepted.
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef list out = []
    if start >= end or s[start] != 123:
        return None
    if _value(s, start, end, 0, out) < 0:
        return None
    return [m[:3] for m in out]


DEF MAX_MEMBERS = 64

cdef dict _KEYSETS = {}


cdef list _keyset(object keys):
    """The UTF-8 encodings of a key set, cached per set object."""
    cdef list out = _KEYSETS.get(keys)
    if out is None:
        out = [k.encode() for k in keys]
        if len(_KEYSETS) < 64:
            _KEYSETS[keys] = out
    return out


cdef bint _key_in(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, list keys):
    """Whether the key at ``s[ks:ke]`` (with its quotes, no escapes) is one of ``keys``."""
    cdef Py_ssize_t size = ke - ks - 2
    cdef bytes k
    for k in keys:
        if PyBytes_GET_SIZE(k) == size and memcmp(PyBytes_AS_STRING(k), s + ks + 1, size) == 0:
            return True
    return False


cdef Py_ssize_t _members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* m, int* count,
                         _Router router) except -2:
    """Validate the object at ``s[i]``; its members' ``(ks, ke, vs, ve)`` into ``m``.

    With a ``router``, an ``items`` array is validated and routed by it. The index after the
    object, or -1 (invalid, more than MAX_MEMBERS members, an escaped key, ``items`` twice with
    a router).
    """
    cdef Py_ssize_t j, k, vs
    cdef bint esc, items = False
    count[0] = 0
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        return i + 1
    while True:
        if i >= n or s[i] != 34 or count[0] >= MAX_MEMBERS:
            return -1
        esc = False
        k = _string(s, i + 1, n, &esc)
        if k < 0 or esc:
            return -1
        j = _ws(s, k, n)
        if j >= n or s[j] != 58:
            return -1
        vs = _ws(s, j + 1, n)
        if router is not None and _named(s + i + 1, k - i - 2, b"items", 5):
            if items:
                return -1
            items = True
            j = router.walk(s, vs, n) if vs < n and s[vs] == 91 else _check(s, vs, n, 1)
        else:
            j = _check(s, vs, n, 1)
        if j < 0:
            return -1
        m[4 * count[0]] = i
        m[4 * count[0] + 1] = k
        m[4 * count[0] + 2] = vs
        m[4 * count[0] + 3] = j
        count[0] += 1
        i = _ws(s, j, n)
        if i >= n:
            return -1
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        if s[i] == 125:
            return i + 1
        return -1


cdef object _split_members(bytes buf, Py_ssize_t* m, int count, object bodies, object route):
    """``(text, spans, route_text)`` of the members in ``m`` (see :func:`split_document`)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef list body_keys = _keyset(bodies)
    cdef list route_keys = _keyset(route)
    cdef Py_ssize_t total = 2, rtotal = 2, ks, ke, vs, ve, pos = 1, rpos = 1
    cdef int x, kind
    cdef int kinds[MAX_MEMBERS]
    cdef dict spans = {}
    cdef bytes out, rout
    cdef char* o
    cdef char* r
    for x in range(count):
        ks = m[4 * x]; ke = m[4 * x + 1]; vs = m[4 * x + 2]; ve = m[4 * x + 3]
        kind = 2 if _key_in(s, ks, ke, route_keys) else 0
        if _key_in(s, ks, ke, body_keys):
            kind += 1
            spans[PyUnicode_DecodeUTF8(<const char*>s + ks + 1, ke - ks - 2, NULL)] = (vs, ve)
            total += (vs - ks) + 3
        else:
            total += (ve - ks) + 1
        rtotal += ((ve - ks) if kind >= 2 else (vs - ks) + 4) + 1
        kinds[x] = kind
    out = PyBytes_FromStringAndSize(NULL, total)
    rout = PyBytes_FromStringAndSize(NULL, rtotal)
    o = PyBytes_AS_STRING(out)
    r = PyBytes_AS_STRING(rout)
    o[0] = 123
    r[0] = 123
    for x in range(count):
        ks = m[4 * x]; vs = m[4 * x + 2]; ve = m[4 * x + 3]; kind = kinds[x]
        if x:
            o[pos] = 44
            pos += 1
            r[rpos] = 44
            rpos += 1
        if kind & 1:  # a body: an empty object in its place
            memcpy(o + pos, s + ks, vs - ks)
            pos += vs - ks
            o[pos] = 123
            o[pos + 1] = 125
            pos += 2
        else:
            memcpy(o + pos, s + ks, ve - ks)
            pos += ve - ks
        if kind >= 2:  # a routing field: verbatim
            memcpy(r + rpos, s + ks, ve - ks)
            rpos += ve - ks
        else:  # anything else: null (the key stays, for presence tests)
            memcpy(r + rpos, s + ks, vs - ks)
            rpos += vs - ks
            memcpy(r + rpos, b"null", 4)
            rpos += 4
    o[pos] = 125
    r[rpos] = 125
    return out[:pos + 1], spans, rout[:rpos + 1]


def split_document(bytes buf, bodies, route):
    """:func:`scan_document`, then the object split for lazy decoding (twin: ``jsonscan``)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t i = _ws(s, 0, n)
    cdef Py_ssize_t m[4 * MAX_MEMBERS]
    cdef int count = 0
    if i >= n or s[i] != 123:
        return None
    i = _members(s, i, n, m, &count, None)
    if i < 0 or _ws(s, i, n) != n:
        return None
    return _split_members(buf, m, count, bodies, route)


def split_object(bytes buf, Py_ssize_t start, Py_ssize_t end, bodies, route):
    """:func:`split_document` of the object at ``buf[start:end]`` (already validated)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t m[4 * MAX_MEMBERS]
    cdef int count = 0
    if start >= end or s[start] != 123:
        return None
    if _members(s, start, end, m, &count, None) < 0:
        return None
    return _split_members(buf, m, count, bodies, route)


def array_items(bytes buf, Py_ssize_t start, Py_ssize_t end):
    """The items ``(start, end)`` of the array at ``buf[start:end]``, None if not an array."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef list out = []
    if start >= end or s[start] != 91:
        return None
    if _value(s, start, end, 0, out) < 0:
        return None
    return out


# -- routing the items of an audit EventList --------------------------------------------------
# Route fields by code: 0-2 are members of the event, 3-5 of its objectRef.
DEF STAGE = 0
DEF VERB = 1
DEF OBJECT_REF = 2
DEF API_GROUP = 3
DEF RESOURCE = 4
DEF SUBRESOURCE = 5
DEF KIND = 6
DEF API_VERSION = 7
DEF AUDIT_ID = 8
DEF CODES = 9


cdef inline bint _named(const unsigned char* p, Py_ssize_t size, const char* w, Py_ssize_t k) noexcept nogil:
    return size == k and memcmp(p, w, k) == 0


cdef int _route_code(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, int level) noexcept nogil:
    """The route code of the key at ``s[ks:ke]`` (with its quotes), -1 for any other key."""
    cdef const unsigned char* p = s + ks + 1
    cdef Py_ssize_t size = ke - ks - 2
    if level == 0:
        if _named(p, size, b"stage", 5):
            return STAGE
        if _named(p, size, b"verb", 4):
            return VERB
        if _named(p, size, b"objectRef", 9):
            return OBJECT_REF
        if _named(p, size, b"kind", 4):
            return KIND
        if _named(p, size, b"apiVersion", 10):
            return API_VERSION
        if _named(p, size, b"auditID", 7):
            return AUDIT_ID
    else:
        if _named(p, size, b"apiGroup", 8):
            return API_GROUP
        if _named(p, size, b"resource", 8):
            return RESOURCE
        if _named(p, size, b"subresource", 11):
            return SUBRESOURCE
    return -1


cdef inline bint _note(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, Py_ssize_t a, Py_ssize_t b,
                       list keys, int level, Py_ssize_t* vs, Py_ssize_t* ve):
    """Note the span ``s[a:b]`` of a member with key ``s[ks:ke]`` (with its quotes) if it routes.

    False (doubtful) for a key outside ``keys`` or a route member given twice.
    """
    cdef int code
    if not _key_in(s, ks, ke, keys):
        return False
    code = _route_code(s, ks, ke, level)
    if code >= 0:
        if vs[code] >= 0:
            return False
        vs[code] = a
        ve[code] = b
    return True


cdef Py_ssize_t _route_members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, list keys,
                               int level, int depth, Py_ssize_t* vs, Py_ssize_t* ve):
    """Walk the object at ``s[i]``: the spans of its route members into ``vs``/``ve``.

    Member values are validated at nesting ``depth`` (0: already validated, only delimited). The
    index after the object; -1 when invalid or doubtful (a key outside ``keys``, an escaped key,
    a route member given twice): the caller validates the whole value to tell which.
    """
    cdef Py_ssize_t k, a, b
    cdef bint esc
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        return i + 1
    while True:
        if i >= n or s[i] != 34:
            return -1
        esc = False
        k = _string(s, i + 1, n, &esc)
        if k < 0 or esc:
            return -1
        a = _ws(s, k, n)
        if a >= n or s[a] != 58:
            return -1
        a = _ws(s, a + 1, n)
        b = _check(s, a, n, depth) if depth else _skip(s, a, n)
        if b < 0 or not _note(s, i, k, a, b, keys, level, vs, ve):
            return -1
        i = _ws(s, b, n)
        if i >= n:
            return -1
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return i + 1 if s[i] == 125 else -1


cdef bint _text(const unsigned char* s, Py_ssize_t* vs, Py_ssize_t* ve, int code) noexcept nogil:
    """Narrow the span of route member ``code`` to its text: absent and null read as empty.

    False (doubtful) for a value that is not a string without escapes or null.
    """
    cdef Py_ssize_t a = vs[code], j
    if a < 0 or s[a] == 110:
        vs[code] = ve[code] = 0
        return True
    if s[a] != 34:
        return False
    for j in range(a + 1, ve[code] - 1):
        if s[j] == 92:
            return False
    vs[code] = a + 1
    ve[code] = ve[code] - 1
    return True


cdef object _key(const unsigned char* s, Py_ssize_t n, list ref_keys, Py_ssize_t* vs, Py_ssize_t* ve,
                 bint document):
    """The route key from the spans of an audit event's route members, None if doubtful.

    A ``document`` key starts with ``kind``, ``apiVersion`` and a flags byte (see
    :func:`split_routed`). The ``objectRef`` object is walked here.
    """
    cdef int codes[8]
    cdef int k = 0, x, c
    cdef Py_ssize_t size = 0, pos = 0
    cdef unsigned char flags = 48 + (vs[AUDIT_ID] >= 0) + 2 * (vs[STAGE] >= 0)
    cdef bint has_ref = False
    cdef bytes out
    cdef char* o
    if vs[OBJECT_REF] >= 0 and s[vs[OBJECT_REF]] != 110:
        if s[vs[OBJECT_REF]] != 123:
            return None
        if _route_members(s, vs[OBJECT_REF], n, ref_keys, 1, 0, vs, ve) < 0:
            return None
        has_ref = True
    if document:
        codes[0] = KIND; codes[1] = API_VERSION; codes[2] = -1
        k = 3
    codes[k] = STAGE; codes[k + 1] = VERB
    k += 2
    if has_ref:
        codes[k] = API_GROUP; codes[k + 1] = RESOURCE; codes[k + 2] = SUBRESOURCE
        k += 3
    for x in range(k):
        c = codes[x]
        if c < 0:
            size += 1
        elif not _text(s, vs, ve, c):
            return None
        else:
            size += ve[c] - vs[c]
    out = PyBytes_FromStringAndSize(NULL, size + k - 1)
    o = PyBytes_AS_STRING(out)
    for x in range(k):
        c = codes[x]
        if x:
            o[pos] = 0
            pos += 1
        if c < 0:
            o[pos] = flags
            pos += 1
        else:
            memcpy(o + pos, s + vs[c], ve[c] - vs[c])
            pos += ve[c] - vs[c]
    return out


cdef object _route(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, list event_keys, list ref_keys,
                   Py_ssize_t* end):
    """The route key of the audit event at ``s[i]`` (see :func:`split_routed`), None if doubtful.

    ``end`` receives the index after the item, -1 when it is not valid JSON.
    """
    cdef Py_ssize_t vs[CODES]
    cdef Py_ssize_t ve[CODES]
    cdef int c
    for c in range(CODES):
        vs[c] = -1
    # items are at nesting depth 2 (the array is a member of the top-level object)
    end[0] = _route_members(s, i, n, event_keys, 0, 3, vs, ve) if s[i] == 123 else -1
    if end[0] < 0:
        end[0] = _check(s, i, n, 2)
        return None
    return _key(s, n, ref_keys, vs, ve, False)


cdef object _document_key(const unsigned char* s, Py_ssize_t n, Py_ssize_t* m, int count,
                          list event_keys, list ref_keys):
    """The document route key of the validated top-level object with members ``m``."""
    cdef Py_ssize_t vs[CODES]
    cdef Py_ssize_t ve[CODES]
    cdef int c, x
    for c in range(CODES):
        vs[c] = -1
    for x in range(count):
        if not _note(s, m[4 * x], m[4 * x + 1], m[4 * x + 2], m[4 * x + 3], event_keys, 0, vs, ve):
            return None
    return _key(s, n, ref_keys, vs, ve, True)


cdef class _Router:
    """Validates and routes the ``items`` array of :func:`split_routed`."""

    cdef list event_keys
    cdef list ref_keys
    cdef dict decisions
    cdef dict tally
    cdef list rest

    def __cinit__(self, event_keys, ref_keys, dict decisions, dict tally):
        self.event_keys = _keyset(event_keys)
        self.ref_keys = _keyset(ref_keys)
        self.decisions = decisions
        self.tally = tally
        self.rest = None

    cdef Py_ssize_t walk(self, const unsigned char* s, Py_ssize_t i, Py_ssize_t n) except -2:
        """Validate and route the array at ``s[i]`` (a member of the top-level object); the
        index after it, or -1 when invalid."""
        cdef list rest = []
        cdef Py_ssize_t e
        cdef PyObject* hit
        cdef PyObject* count
        i = _ws(s, i + 1, n)
        if i < n and s[i] == 93:
            self.rest = rest
            return i + 1
        while True:
            if i >= n:
                return -1
            key = _route(s, i, n, self.event_keys, self.ref_keys, &e)
            if e < 0:
                return -1
            hit = PyDict_GetItem(self.decisions, key) if key is not None else NULL
            if hit != NULL and <object>hit is not None:
                count = PyDict_GetItem(self.tally, key)
                self.tally[key] = 1 if count == NULL else <object>count + 1
            else:
                rest.append((i, e, key))
            i = _ws(s, e, n)
            if i >= n:
                return -1
            if s[i] == 44:
                i = _ws(s, i + 1, n)
                continue
            if s[i] != 93:
                return -1
            self.rest = rest
            return i + 1


def split_routed(bytes buf, bodies, route, event_keys, ref_keys, dict decisions, dict tally):
    """:func:`split_document` that also routes the audit events of an ``items`` array.

    Returns ``(text, spans, route_text, rest, key)`` (twin: ``jsonscan.split_routed``) or None;
    with None, ``tally`` may hold counts and must be dropped.
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t i = _ws(s, 0, n)
    cdef Py_ssize_t m[4 * MAX_MEMBERS]
    cdef int count = 0
    cdef _Router router = _Router(event_keys, ref_keys, decisions, tally)
    if i >= n or s[i] != 123:
        return None
    i = _members(s, i, n, m, &count, router)
    if i < 0 or _ws(s, i, n) != n:
        return None
    return (
        *_split_members(buf, m, count, bodies, route),
        router.rest,
        _document_key(s, n, m, count, router.event_keys, router.ref_keys),
    )


cdef void _floatify_list(list items) except *:
    cdef Py_ssize_t i, n = PyList_GET_SIZE(items)
    cdef object v
    for i in range(n):
        v = <object>PyList_GET_ITEM(items, i)
        if type(v) is int:
            items[i] = float(v)
        elif type(v) is dict:
            _floatify_dict(<dict>v)
        elif type(v) is list:
            _floatify_list(<list>v)


cdef void _floatify_dict(dict d) except *:
    # Replacing the value of an existing key while iterating is allowed (no resize).
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* val
    cdef object v
    while PyDict_Next(d, &pos, &key, &val):
        v = <object>val
        if type(v) is int:
            d[<object>key] = float(v)
        elif type(v) is dict:
            _floatify_dict(<dict>v)
        elif type(v) is list:
            _floatify_list(<list>v)


def floatify(value):
    """Turn every integer into a float, in place for containers; the (possibly new) value."""
    if type(value) is int:
        return float(value)
    if type(value) is dict:
        _floatify_dict(<dict>value)
    elif type(value) is list:
        _floatify_list(<list>value)
    return value


cdef Py_ssize_t _skip(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """The index after the (already validated) value at ``s[i]``."""
    cdef unsigned char c = s[i]
    cdef Py_ssize_t depth = 0
    cdef bint esc
    if c == 34:
        esc = False
        return _string(s, i + 1, n, &esc)
    if c != 123 and c != 91:
        while i < n:
            c = s[i]
            if c == 44 or c == 125 or c == 93 or c == 32 or c == 10 or c == 13 or c == 9:
                break
            i += 1
        return i
    while i < n:
        c = s[i]
        if c == 34:
            esc = False
            i = _string(s, i + 1, n, &esc)
            if i < 0:
                return -1
            continue
        if c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


cdef object _leaf(bytes buf, const unsigned char* s, Py_ssize_t vs, Py_ssize_t ve, object loads):
    """The value at ``buf[vs:ve]`` as the full decode gives it (numbers as floats)."""
    cdef Py_ssize_t j
    cdef unsigned char c = s[vs]
    if c == 34:
        for j in range(vs + 1, ve - 1):
            if s[j] == 92:
                return loads(buf[vs:ve])
        return PyUnicode_DecodeUTF8(<const char*>s + vs + 1, ve - vs - 2, NULL)
    if c == 116:
        return True
    if c == 102:
        return False
    if c == 110:
        return None
    return floatify(loads(buf[vs:ve]))


def prune(bytes buf, Py_ssize_t start, Py_ssize_t end, need, loads):
    """The value at ``buf[start:end]`` reduced to ``need`` (twin: ``jsonscan.prune``).

    ``need`` is ``"whole"``, ``"present"`` (only under a map) or a map of key -> need; an object
    keeps only the needed keys (``"present"`` ones with a None value); anything else, and an
    object with an escaped key, is decoded whole (``loads``, numbers as floats).
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t i, k, j, vs
    cdef bint esc
    cdef dict spans
    cdef dict out
    if type(need) is not dict or s[start] != 123:
        if s[start] == 123 or s[start] == 91:
            return floatify(loads(buf[start:end]))
        return _leaf(buf, s, start, end, loads)
    spans = {}
    i = _ws(s, start + 1, end)
    if s[i] != 125:
        while True:
            esc = False
            k = _string(s, i + 1, end, &esc)
            if esc:
                return floatify(loads(buf[start:end]))
            j = _ws(s, k, end)
            vs = _ws(s, j + 1, end)
            j = _skip(s, vs, end)
            if j < 0:
                return floatify(loads(buf[start:end]))
            key = PyUnicode_DecodeUTF8(<const char*>s + i + 1, k - i - 2, NULL)
            if key in need:
                spans[key] = (vs, j)
            i = _ws(s, j, end)
            if s[i] == 44:
                i = _ws(s, i + 1, end)
                continue
            break
    out = {}
    for key, sub in (<dict>need).items():
        span = spans.get(key)
        if span is not None:
            if sub == "present":
                out[key] = None
            else:
                out[key] = prune(buf, span[0], span[1], sub, loads)
    return out
