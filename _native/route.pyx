# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native twin of ``processor.records.route``: the route key of an audit event, read unparsed.

The pure-Python module ``processor/records/route.py`` is the specification (same functions, same
results); this file only makes it fast. The scanner's C primitives come from
``_native/jsonscan.pxd``: :func:`split_routed` validates a payload with the scanner and, as the
scanner meets the ``items`` array of an EventList, routes each item (an :class:`ArrayWalker`):
its route key is packed from the spans of its routing members in C, looked up in the translator's
decisions, and the item is counted or listed without being parsed.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_CheckExact
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, memcmp, memcpy

from processor._native.jsonscan cimport (
    MAX_MEMBERS,
    ArrayWalker,
    _check,
    _key_in,
    _keyset,
    _members,
    _skip,
    _string,
    _ws,
)

cdef extern from "skip_simd.h":
    # a validated value delimited 16 bytes at a time (shared with ``_native/typed.pyx``)
    Py_ssize_t skip_value(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) nogil

from processor.records.audit import _USER_SET, EVENT_KEYS, OBJECT_REF_KEYS
from processor.records.route import ACTORS, DocumentKey, RouteKey

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
DEF USER = 9
DEF CODES = 10
DEF USERNAME = 0  # the code of ``username`` among the user keys
DEF KEY_TEXT = 192  # route keys up to this size are interned (``_interned``)
DEF KEY_SLOTS = 1024

# -- key tables ---------------------------------------------------------------------------------
# A key set (the audit Event's fields, an objectRef's, a user's) as C arrays by key size, each
# key with its route code (-1: not a route field): a key is found with one memcmp or two.
DEF TABLE_SIZES = 32  # keys are shorter
DEF TABLE_WIDTH = 4  # keys of one size in a set, at most

cdef struct KeyTable:
    int count[TABLE_SIZES]
    const char* keys[TABLE_SIZES][TABLE_WIDTH]
    int codes[TABLE_SIZES][TABLE_WIDTH]


cdef list _TABLE_TEXTS = []  # the bytes the tables point into, kept alive


cdef void _fill(KeyTable* table, object keys, dict codes) except *:
    """Fill ``table`` with the UTF-8 keys of the set ``keys`` and their ``codes`` (default -1)."""
    cdef bytes text
    cdef Py_ssize_t size
    cdef int at
    for size in range(TABLE_SIZES):
        table.count[size] = 0
    for key in sorted(keys):
        text = key.encode()
        size = len(text)
        if size >= TABLE_SIZES or table.count[size] >= TABLE_WIDTH:
            raise ValueError(f"key {key!r} does not fit a route key table")
        _TABLE_TEXTS.append(text)
        at = table.count[size]
        table.keys[size][at] = PyBytes_AS_STRING(text)
        table.codes[size][at] = codes.get(key, -1)
        table.count[size] = at + 1


cdef inline int _lookup(const KeyTable* table, const unsigned char* s, Py_ssize_t ks,
                        Py_ssize_t ke) noexcept nogil:
    """The route code of the key at ``s[ks:ke]`` (with its quotes, no escapes): -1 for a key of
    the table that does not route, -2 for a key not in the table."""
    cdef Py_ssize_t size = ke - ks - 2
    cdef int at
    if size < 0 or size >= TABLE_SIZES:
        return -2
    for at in range(table.count[size]):
        if _same(table.keys[size][at], s + ks + 1, size):
            return table.codes[size][at]
    return -2


cdef inline bint _same(const char* a, const unsigned char* b, Py_ssize_t size) noexcept nogil:
    """``memcmp(a, b, size) == 0`` for a short key, inline: 8 bytes at a time, then the tail."""
    cdef unsigned long long x, y
    while size >= 8:
        memcpy(&x, a, 8)
        memcpy(&y, b, 8)
        if x != y:
            return False
        a += 8
        b += 8
        size -= 8
    while size > 0:
        if <unsigned char>a[0] != b[0]:
            return False
        a += 1
        b += 1
        size -= 1
    return True


cdef KeyTable _EVENT_TABLE
cdef KeyTable _REF_TABLE
cdef KeyTable _USER_TABLE
_fill(&_EVENT_TABLE, EVENT_KEYS, {
    "stage": STAGE, "verb": VERB, "objectRef": OBJECT_REF, "kind": KIND,
    "apiVersion": API_VERSION, "auditID": AUDIT_ID, "user": USER,
})
_fill(&_REF_TABLE, OBJECT_REF_KEYS, {
    "apiGroup": API_GROUP, "resource": RESOURCE, "subresource": SUBRESOURCE,
})
_fill(&_USER_TABLE, _USER_SET, {"username": USERNAME})


cdef inline bint _note(const unsigned char* s, Py_ssize_t ks, Py_ssize_t ke, Py_ssize_t a, Py_ssize_t b,
                       const KeyTable* table, Py_ssize_t* vs, Py_ssize_t* ve) noexcept nogil:
    """Note the span ``s[a:b]`` of a member with key ``s[ks:ke]`` (with its quotes) if it routes.

    False (doubtful) for a key outside ``table`` or a route member given twice.
    """
    cdef int code = _lookup(table, s, ks, ke)
    if code == -2:
        return False
    if code >= 0:
        if vs[code] >= 0:
            return False
        vs[code] = a
        ve[code] = b
    return True


cdef Py_ssize_t _route_members(const unsigned char* s, Py_ssize_t i, Py_ssize_t n,
                               const KeyTable* table, int depth, Py_ssize_t* vs,
                               Py_ssize_t* ve) noexcept nogil:
    """Walk the object at ``s[i]``: the spans of its route members into ``vs``/``ve``.

    Member values are validated at nesting ``depth`` (0: already validated, only delimited). The
    index after the object; -1 when invalid or doubtful (a key outside ``table``, an escaped key,
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
        b = _check(s, a, n, depth) if depth else skip_value(s, a, n)
        if b < 0 or not _note(s, i, k, a, b, table, vs, ve):
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
    cdef Py_ssize_t a = vs[code]
    if a < 0 or s[a] == 110:
        vs[code] = ve[code] = 0
        return True
    if s[a] != 34:
        return False
    if memchr(s + a + 1, 92, ve[code] - 1 - (a + 1)) != NULL:
        return False
    vs[code] = a + 1
    ve[code] = ve[code] - 1
    return True


cdef int _actor(const unsigned char* s, Py_ssize_t a, Py_ssize_t b) except -2:
    """The ``actorRef.type`` of the (validated) ``user`` value at ``s[a:b]`` (``a`` < 0: absent) as
    its index in ``ACTORS``; -1 when only a full decode can tell (a key that is not a user field
    or has escapes, ``username`` twice, a username that is not a string without escapes)."""
    cdef Py_ssize_t i, k, vs, ve, us = -1, ue = -1, size
    cdef int code
    cdef bint esc
    if a < 0 or s[a] == 110:
        return 0
    if s[a] != 123:
        return -1
    i = _ws(s, a + 1, b)
    if s[i] != 125:
        while True:
            esc = False
            k = _string(s, i + 1, b, &esc)
            if k < 0 or esc:
                return -1
            code = _lookup(&_USER_TABLE, s, i, k)
            if code == -2:
                return -1
            vs = _ws(s, _ws(s, k, b) + 1, b)
            ve = _skip(s, vs, b)
            if ve < 0:
                return -1
            if code == USERNAME:
                if us >= 0:
                    return -1
                us = vs
                ue = ve
            i = _ws(s, ve, b)
            if i < b and s[i] == 44:
                i = _ws(s, i + 1, b)
                continue
            break
    if us < 0 or s[us] == 110:
        return 0
    if s[us] != 34:
        return -1
    if memchr(s + us + 1, 92, ue - 1 - (us + 1)) != NULL:
        return -1
    size = ue - us - 2
    if size == 0:
        return 0
    if size >= 22 and memcmp(s + us + 1, b"system:serviceaccount:", 22) == 0:
        return 1
    if size >= 7 and memcmp(s + us + 1, b"system:", 7) == 0:
        return 2
    return 3


cdef object _key(const unsigned char* s, Py_ssize_t n, Py_ssize_t* vs, Py_ssize_t* ve, bint document):
    """The route key from the spans of an audit event's route members, None if doubtful.

    A ``document`` key starts with ``kind``, ``apiVersion`` and a flags byte (see
    :func:`split_routed`). The ``objectRef`` object is walked here.
    """
    cdef int codes[9]
    cdef int k = 0, x, c
    cdef Py_ssize_t size = 0, pos = 0
    cdef unsigned char flags = 48 + (vs[AUDIT_ID] >= 0) + 2 * (vs[STAGE] >= 0)
    cdef unsigned char actor = 49 + _actor(s, vs[USER], ve[USER])
    cdef bint has_ref = False
    cdef bytes out
    cdef char* o
    cdef char text[KEY_TEXT]
    if vs[OBJECT_REF] >= 0 and s[vs[OBJECT_REF]] != 110:
        if s[vs[OBJECT_REF]] != 123:
            return None
        if _route_members(s, vs[OBJECT_REF], n, &_REF_TABLE, 0, vs, ve) < 0:
            return None
        has_ref = True
    if document:
        codes[0] = KIND; codes[1] = API_VERSION; codes[2] = -1
        k = 3
    codes[k] = -2; codes[k + 1] = STAGE; codes[k + 2] = VERB
    k += 3
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
    size += k - 1
    if size > KEY_TEXT:
        out = PyBytes_FromStringAndSize(NULL, size)
        o = PyBytes_AS_STRING(out)
    else:
        o = text
    for x in range(k):
        c = codes[x]
        if x:
            o[pos] = 0
            pos += 1
        if c < 0:
            o[pos] = flags if c == -1 else actor
            pos += 1
        else:
            memcpy(o + pos, s + vs[c], ve[c] - vs[c])
            pos += ve[c] - vs[c]
    if size > KEY_TEXT:
        return out
    return _interned(text, size)


# -- interned keys --------------------------------------------------------------------------------
# Route keys repeat (one per stage, verb, resource and actor type): the same key text gives the
# same bytes object from a small table, as the typed decoder's key cache does for strings. The
# decisions' dict lookups then reuse its hash (computed once) and find it by identity, and no
# bytes object is made and freed per record.
cdef PyObject* _slots[KEY_SLOTS]


cdef object _interned(const char* text, Py_ssize_t size):
    """The bytes ``text[:size]``: from the table when the same text was made recently."""
    cdef unsigned long long h = <unsigned long long>size, w
    cdef Py_ssize_t j = 0
    cdef PyObject* hit
    cdef object key
    while j + 8 <= size:  # 8 bytes at a time, then the tail (the slot only: memcmp confirms)
        memcpy(&w, text + j, 8)
        h = (h ^ w) * 0x9E3779B97F4A7C15ULL
        h ^= h >> 29
        j += 8
    w = 0
    memcpy(&w, text + j, size - j)
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL
    j = <Py_ssize_t>((h ^ (h >> 32)) & (KEY_SLOTS - 1))
    hit = _slots[j]
    if hit != NULL and PyBytes_GET_SIZE(<object>hit) == size \
            and memcmp(PyBytes_AS_STRING(<object>hit), text, size) == 0:
        return <object>hit
    key = PyBytes_FromStringAndSize(text, size)
    hash(key)
    Py_INCREF(key)
    if hit != NULL:
        Py_DECREF(<object>hit)
    _slots[j] = <PyObject*>key
    return key


cdef object _route(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t* end):
    """The route key of the audit event at ``s[i]`` (see :func:`split_routed`), None if doubtful.

    ``end`` receives the index after the item, -1 when it is not valid JSON.
    """
    cdef Py_ssize_t vs[CODES]
    cdef Py_ssize_t ve[CODES]
    cdef int c
    for c in range(CODES):
        vs[c] = -1
    # items are at nesting depth 2 (the array is a member of the top-level object)
    end[0] = _route_members(s, i, n, &_EVENT_TABLE, 3, vs, ve) if s[i] == 123 else -1
    if end[0] < 0:
        end[0] = _check(s, i, n, 2)
        return None
    return _key(s, n, vs, ve, False)


cdef object _document_key(const unsigned char* s, Py_ssize_t n, Py_ssize_t* m, int count):
    """The document route key of the validated top-level object with members ``m``."""
    cdef Py_ssize_t vs[CODES]
    cdef Py_ssize_t ve[CODES]
    cdef int c, x
    for c in range(CODES):
        vs[c] = -1
    for x in range(count):
        if not _note(s, m[4 * x], m[4 * x + 1], m[4 * x + 2], m[4 * x + 3], &_EVENT_TABLE, vs, ve):
            return None
    return _key(s, n, vs, ve, True)


cdef class _Router(ArrayWalker):
    """Validates and routes the ``items`` array of :func:`split_routed`."""

    cdef dict decisions
    cdef dict counted
    cdef list rest

    cdef void start(self, dict decisions):
        """Route a new array (one router serves every call: the GIL is held throughout)."""
        self.decisions = decisions
        self.counted = {}
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
            key = _route(s, i, n, &e)
            if e < 0:
                return -1
            hit = PyDict_GetItem(self.decisions, key) if key is not None else NULL
            if hit != NULL and PyTuple_CheckExact(<object>hit):
                count = PyDict_GetItem(self.counted, key)
                self.counted[key] = 1 if count == NULL else <object>count + 1
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




cdef _Router _ROUTER = _Router()


cdef unsigned long long _sizes(list keys):
    """The sizes of ``keys`` (UTF-8) as a bit set (bit 63: any size from 63 up): a key of
    another size is not one of them, without a compare."""
    cdef unsigned long long bits = 0
    cdef Py_ssize_t size
    for k in keys:
        size = PyBytes_GET_SIZE(k)
        bits |= 1ULL << (size if size < 63 else 63)
    return bits


cdef inline bint _sized(unsigned long long bits, Py_ssize_t ks, Py_ssize_t ke) noexcept nogil:
    """Whether the key at ``[ks:ke]`` (with its quotes) may be one of the keys of ``bits``."""
    cdef Py_ssize_t size = ke - ks - 2
    return (bits >> (size if size < 63 else 63)) & 1


cdef dict _body_spans(bytes buf, Py_ssize_t* m, int count, list body_keys):
    """The spans of the members in ``m`` whose key is one of ``body_keys`` (of their last
    value), by key."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef dict spans = {}
    cdef Py_ssize_t ks, ke
    cdef int x
    cdef unsigned long long sizes = _sizes(body_keys)
    for x in range(count):
        ks = m[4 * x]; ke = m[4 * x + 1]
        if _sized(sizes, ks, ke) and _key_in(s, ks, ke, body_keys):
            spans[PyUnicode_DecodeUTF8(<const char*>s + ks + 1, ke - ks - 2, NULL)] = (
                m[4 * x + 2], m[4 * x + 3]
            )
    return spans


cdef bytes _route_text(bytes buf, Py_ssize_t* m, int count, list route_keys):
    """The route text of the members in ``m`` (twin: ``route._route_split``)."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t total = 2, ks, ke, vs, ve, pos = 1
    cdef int x
    cdef bint kinds[MAX_MEMBERS]
    cdef bytes out
    cdef char* r
    cdef unsigned long long sizes = _sizes(route_keys)
    for x in range(count):
        ks = m[4 * x]; ke = m[4 * x + 1]; vs = m[4 * x + 2]; ve = m[4 * x + 3]
        kinds[x] = _sized(sizes, ks, ke) and _key_in(s, ks, ke, route_keys)
        total += ((ve - ks) if kinds[x] else (vs - ks) + 4) + 1
    out = PyBytes_FromStringAndSize(NULL, total)
    r = PyBytes_AS_STRING(out)
    r[0] = 123
    for x in range(count):
        ks = m[4 * x]; vs = m[4 * x + 2]; ve = m[4 * x + 3]
        if x:
            r[pos] = 44
            pos += 1
        if kinds[x]:  # a routing field: verbatim
            memcpy(r + pos, s + ks, ve - ks)
            pos += ve - ks
        else:  # anything else: null (the key stays, for presence tests)
            memcpy(r + pos, s + ks, vs - ks)
            pos += vs - ks
            memcpy(r + pos, b"null", 4)
            pos += 4
    r[pos] = 125
    return out[:pos + 1]


def split_routed(bytes buf, bodies, route, dict decisions, dict documents=None):
    """Validate a payload with the scanner, reading the route keys of the document and of the
    audit events of its ``items`` array on the way.

    Returns ``(spans, route_text, rest, key, counted)`` (twin:
    ``processor.records.route.split_routed``) or None. With ``documents``, a keyed document is
    not split when its entry is a tuple (an outcome), split in full when it is None, and only
    its bodies' spans are given otherwise (``route_text`` None).
    """
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t i = _ws(s, 0, n)
    cdef Py_ssize_t m[4 * MAX_MEMBERS]
    cdef int count = 0
    cdef _Router router = _ROUTER
    cdef PyObject* hit = NULL
    if i >= n or s[i] != 123:
        return None
    router.start(decisions)
    i = _members(s, i, n, m, &count, router)
    router.decisions = None  # not kept past the call
    if i < 0 or _ws(s, i, n) != n:
        return None
    key = _document_key(s, n, m, count)
    if key is not None and documents is not None:
        hit = PyDict_GetItem(documents, key)
        if hit == NULL or <object>hit is not None:
            if hit != NULL and PyTuple_CheckExact(<object>hit):
                return (None, None, router.rest, key, router.counted)
            return (_body_spans(buf, m, count, _keyset(bodies)), None, router.rest, key,
                    router.counted)
    return (_body_spans(buf, m, count, _keyset(bodies)), _route_text(buf, m, count, _keyset(route)),
            router.rest, key, router.counted)


def pack(bytes stage, bytes verb, ref=None, int actor=-1):
    """The route key of these routing texts (twin: ``processor.records.route.pack``)."""
    cdef bytes a, b, c
    cdef bytes head = bytes((49 + actor,)) + b"\0" + stage + b"\0" + verb
    if ref is None:
        return head
    a, b, c = ref
    return head + b"\0" + a + b"\0" + b + b"\0" + c


def pack_document(bytes kind, bytes api_version, int flags, bytes key):
    """A document route key (twin: ``processor.records.route.pack_document``)."""
    return kind + b"\0" + api_version + b"\0" + bytes((flags,)) + b"\0" + key


cdef object _tuple_new = tuple.__new__  # a named tuple made without its Python __new__


cdef inline str _part(const char* p, Py_ssize_t a, Py_ssize_t b):
    return PyUnicode_DecodeUTF8(p + a, b - a, NULL)


def unpack(bytes key):
    """The :class:`RouteKey` of a packed key (twin: ``processor.records.route.unpack``)."""
    cdef const char* p = PyBytes_AS_STRING(key)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key), i
    cdef Py_ssize_t ends[6]
    cdef int parts = 0
    for i in range(n):
        if p[i] == 0:
            if parts == 5:
                raise ValueError(f"not a route key: {key!r}")
            ends[parts] = i
            parts += 1
    ends[parts] = n
    parts += 1
    if (parts != 3 and parts != 6) or ends[0] != 1 or not 48 <= p[0] <= 52:
        raise ValueError(f"not a route key: {key!r}")
    actor = ACTORS[p[0] - 49] if p[0] != 48 else None
    stage = _part(p, 2, ends[1])
    verb = _part(p, ends[1] + 1, ends[2])
    if parts == 3:
        return _tuple_new(RouteKey, (stage, verb, None, None, actor))
    index_key = _part(p, ends[2] + 1, ends[3]) + "/" + _part(p, ends[3] + 1, ends[4])
    sub = _part(p, ends[4] + 1, n) if ends[4] + 1 < n else None
    return _tuple_new(RouteKey, (stage, verb, index_key, sub, actor))


def unpack_document(bytes key):
    """The :class:`DocumentKey` of a packed document key (twin: ``route.unpack_document``)."""
    cdef const char* p = PyBytes_AS_STRING(key)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(key), i
    cdef Py_ssize_t ends[3]
    cdef int parts = 0
    cdef unsigned char flags
    for i in range(n):
        if p[i] == 0:
            ends[parts] = i
            parts += 1
            if parts == 3:
                break
    if parts != 3 or ends[2] - ends[1] != 2:
        raise ValueError(f"not a document route key: {key!r}")
    flags = p[ends[1] + 1]
    return _tuple_new(DocumentKey, (
        _part(p, 0, ends[0]), _part(p, ends[0] + 1, ends[1]), bool(flags & 1), bool(flags & 2),
        key[ends[2] + 1:],
    ))
