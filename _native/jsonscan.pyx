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
from libc.string cimport memcpy

MAX_DEPTH_ = MAX_DEPTH  # MAX_DEPTH, MAX_DIGITS and the primitives: jsonscan.pxd


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


def check_value(bytes buf, Py_ssize_t start=0, int depth=0, int level=2):
    """The index after the JSON value at ``buf[start]`` (no leading whitespace), -1 if invalid
    or doubtful: the scanner's ``_check``. A container is validated by stage 1 in form ``level``
    (2 AVX2, 1 SSE2, 0 the byte loop; capped at what the CPU has), for the tests comparing them."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    if start < 0 or start >= n:
        return -1
    if s[start] == 123 or s[start] == 91:
        return check_container(s, start, n, depth, MAX_DEPTH, MAX_DIGITS, level)
    return _check(s, start, n, depth)


def check_levels():
    """The forms of stage 1 this build and CPU have (0 the byte loop, 1 SSE2, 2 AVX2)."""
    return list(range(check_container_best() + 1))


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


cdef class ArrayWalker:
    """Validates the top-level ``items`` array as :func:`_members` meets it; a subclass also
    reads it on the way (the route: ``_native/route.pyx``)."""

    cdef Py_ssize_t walk(self, const unsigned char* s, Py_ssize_t i, Py_ssize_t n) except -2:
        """Validate the array at ``s[i]`` (a member of the top-level object); the index after
        it, or -1 when invalid."""
        return _check(s, i, n, 1)


cdef Py_ssize_t _members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* m, int* count,
                         ArrayWalker walker) except -2:
    """Validate the object at ``s[i]``; its members' ``(ks, ke, vs, ve)`` into ``m``.

    With a ``walker``, an ``items`` array is validated by it. The index after the object, or -1
    (invalid, more than MAX_MEMBERS members, an escaped key, ``items`` twice with a walker).
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
        if walker is not None and _named(s + i + 1, k - i - 2, b"items", 5):
            if items:
                return -1
            items = True
            j = walker.walk(s, vs, n) if vs < n and s[vs] == 91 else _check(s, vs, n, 1)
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
