# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native twin of ``processor.records.typed``: an audit event decoded from its bytes, typed.

The pure-Python module ``processor/records/typed.py`` is the specification (same function, same
results); this file only makes it fast. The event's members are walked from the bytes (the
scanner's C primitives, ``_native/jsonscan.pxd``) and each field becomes its normalised value
directly: strings (escapes decoded here), numbers as floats, the two timestamps in the 6-digit
layout, defaults and omitted empties as upstream's Go round trip gives them; the bodies are
materialised only as far as ``needs`` says, in the walk that meets them. No JSON text is handed
to a parser and no intermediate dict is normalised. Anything unusual returns None.

The input was validated by the scanner, so values are only delimited here: ``skip_simd.h`` skips
a container 64 bytes at a time (SSE2 bit masks). Short ASCII strings come from a small cache
(``_key``), as orjson's keys do.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport floor
from libc.string cimport memchr, memcmp, memcpy

from processor._native.jsonscan cimport _string, _ws

cdef extern from "skip_simd.h":
    Py_ssize_t skip_value(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) nogil
    Py_ssize_t skip_string(const unsigned char* s, Py_ssize_t i, Py_ssize_t n) nogil

from processor.cel.needs import PRESENT
from processor.records.timefmt import micro as _micro

cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr, object overflow_exception) except? -1.0


class _Doubt(Exception):
    """Raised inside the decoder for anything unusual; the caller gets None."""


cdef object DOUBT = _Doubt

# Event fields by code (the order of decode_audit's output).
DEF KIND = 0
DEF API_VERSION = 1
DEF LEVEL = 2
DEF AUDIT_ID = 3
DEF STAGE = 4
DEF REQUEST_URI = 5
DEF VERB = 6
DEF USER = 7
DEF IMPERSONATED_USER = 8
DEF SOURCE_IPS = 9
DEF USER_AGENT = 10
DEF OBJECT_REF = 11
DEF RESPONSE_STATUS = 12
DEF REQUEST_OBJECT = 13
DEF RESPONSE_OBJECT = 14
DEF REQUEST_RECEIVED_TIMESTAMP = 15
DEF STAGE_TIMESTAMP = 16
DEF ANNOTATIONS = 17
DEF AUTHENTICATION_METADATA = 18
DEF EVENT_FIELDS = 19

cdef tuple _EVENT = (
    "kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user",
    "impersonatedUser", "sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject",
    "responseObject", "requestReceivedTimestamp", "stageTimestamp", "annotations",
    "authenticationMetadata",
)
cdef tuple _USER = ("username", "uid", "groups", "extra")
cdef tuple _OBJECT_REF = (
    "resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion",
    "subresource",
)
cdef tuple _STATUS = ("kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code")
cdef tuple _LIST_META = ("selfLink", "resourceVersion", "continue", "remainingItemCount")
cdef tuple _DETAILS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
cdef tuple _CAUSE = ("reason", "message", "field")

# The field names of every struct in C arrays: a table is its offset and its size.
cdef const char* _NAME[64]
cdef Py_ssize_t _SIZE[64]
cdef list _KEEP = []  # the bytes the pointers point into
cdef int _TABLES = 0


cdef int _table(tuple names) except -1:
    global _TABLES
    cdef int first = _TABLES
    cdef bytes b
    for name in names:
        b = name.encode()
        _KEEP.append(b)
        _NAME[_TABLES] = PyBytes_AS_STRING(b)
        _SIZE[_TABLES] = PyBytes_GET_SIZE(b)
        _TABLES += 1
    return first


cdef int _EVENT_T = _table(_EVENT)
cdef int _USER_T = _table(_USER)
cdef int _OBJECT_REF_T = _table(_OBJECT_REF)
cdef int _STATUS_T = _table(_STATUS)
cdef int _LIST_META_T = _table(_LIST_META)
cdef int _DETAILS_T = _table(_DETAILS)
cdef int _CAUSE_T = _table(_CAUSE)

cdef str K_USER = "user"
cdef str K_METADATA = "metadata"
cdef str K_DETAILS = "details"
cdef str K_CAUSES = "causes"
cdef str K_CODE = "code"
cdef str K_RETRY = "retryAfterSeconds"
cdef str K_REMAINING = "remainingItemCount"
cdef str K_GROUPS = "groups"
cdef str K_EXTRA = "extra"
cdef str EMPTY = ""
cdef double INT32_MIN = -2147483648.0
cdef double INT32_MAX = 2147483647.0
cdef double INT64_MIN = -9223372036854775808.0
cdef double INT64_MAX = 9223372036854775807.0


# -- keys -----------------------------------------------------------------------------------------
DEF KEY_CACHE = 2048
DEF KEY_MAX = 32

cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object o)
    void* _data "PyUnicode_DATA"(PyObject* o)
    Py_ssize_t _length "PyUnicode_GET_LENGTH"(PyObject* o)
    void _decref "Py_DECREF"(PyObject* o)

cdef PyObject* _keys[KEY_CACHE]


cdef object _key(const unsigned char* s, Py_ssize_t a, Py_ssize_t size):
    """The string whose text (no escapes) is ``s[a:a + size]``; short ASCII ones (keys, and values
    that repeat: verbs, stages, groups, names) come from a cache, as orjson keeps its keys: the
    same object, its hash computed once."""
    cdef unsigned long long head = 0, tail = 0, x
    cdef unsigned int h
    cdef PyObject* hit
    cdef object key
    if size > KEY_MAX:
        return PyUnicode_DecodeUTF8(<const char*>s + a, size, NULL)
    # the first and the last (up to) 8 bytes and the size pick the slot; memcmp confirms it
    memcpy(&head, s + a, 8 if size >= 8 else size)
    if size > 8:
        memcpy(&tail, s + a + size - 8, 8)
    x = (head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL) ^ <unsigned long long>size
    h = <unsigned int>((x ^ (x >> 29)) * 0xBF58476D1CE4E5B9ULL >> 40) & (KEY_CACHE - 1)
    hit = _keys[h]
    if hit != NULL and _length(hit) == size and memcmp(_data(hit), s + a, size) == 0:
        return <object>hit
    key = PyUnicode_DecodeUTF8(<const char*>s + a, size, NULL)
    if PyUnicode_IS_COMPACT_ASCII(key):
        hash(key)
        Py_INCREF(key)
        if hit != NULL:
            _decref(hit)
        _keys[h] = <PyObject*>key
    return key


# -- members --------------------------------------------------------------------------------------
cdef int _fields(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int table, int m,
                 Py_ssize_t* vs, Py_ssize_t* ve, int* order, const Py_ssize_t* known=NULL,
                 dict needs=None, list bodies=None) except -1:
    """Walk the (validated) object at ``s[i]``: the span of the last value of each member whose
    key is field ``code`` of the ``m`` names at ``table`` into ``vs[code]``/``ve[code]``, the
    codes in first-seen order into ``order``; their count. A key that is not one of the names
    (or has escapes) is doubtful.

    ``known`` holds two spans ``(start, end)`` (-1: none) of values the scanner has delimited
    already: the walk jumps over them. With ``needs`` (the event's table), a body that is needed
    is pruned as it is met, into ``bodies`` (no second walk over it)."""
    cdef Py_ssize_t k, a, b, size
    cdef int code, count = 0, c
    cdef bint esc
    cdef PyObject* need
    for c in range(m):
        vs[c] = -1
    i = _ws(s, i + 1, n)
    if i < n and s[i] == 125:
        return 0
    while True:
        esc = False
        k = _string(s, i + 1, n, &esc)
        if k < 0 or esc:
            raise DOUBT
        size = k - i - 2
        code = -1
        for c in range(m):
            if _SIZE[table + c] == size and _NAME[table + c][0] == s[i + 1] \
                    and memcmp(_NAME[table + c], s + i + 1, size) == 0:
                code = c
                break
        if code < 0:
            raise DOUBT
        a = _ws(s, _ws(s, k, n) + 1, n)
        if needs is not None and (code == REQUEST_OBJECT or code == RESPONSE_OBJECT) \
                and s[a] != 110:
            need = PyDict_GetItem(needs, _EVENT[code])
            if need != NULL and <object>need is not None:
                bodies[code - REQUEST_OBJECT] = _prune(s, a, n, <object>need, &b)
            elif known != NULL and a == known[0]:
                b = known[1]
            elif known != NULL and a == known[2]:
                b = known[3]
            else:
                b = skip_value(s, a, n)
        elif known != NULL and a == known[0]:
            b = known[1]
        elif known != NULL and a == known[2]:
            b = known[3]
        else:
            b = skip_value(s, a, n)
        if b < 0:
            raise DOUBT
        if vs[code] < 0:
            order[count] = code
            count += 1
        vs[code] = a
        ve[code] = b
        i = _ws(s, b, n)
        if i < n and s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return count


cdef inline bint _null(const unsigned char* s, Py_ssize_t* vs, int code) noexcept nogil:
    """Whether member ``code`` is absent or null."""
    return vs[code] < 0 or s[vs[code]] == 110


# -- leaves ---------------------------------------------------------------------------------------
cdef object _unescape(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """The string whose (validated) text between the quotes is ``s[a:b]``, escapes decoded."""
    cdef char small[256]
    cdef char* out = small
    cdef Py_ssize_t j = 0
    cdef unsigned char c
    cdef unsigned int code
    cdef int h, q
    if b - a > 256:
        out = <char*>PyMem_Malloc(b - a)
        if out == NULL:
            raise MemoryError()
    try:
        while a < b:
            c = s[a]
            if c != 92:
                out[j] = <char>c
                j += 1
                a += 1
                continue
            c = s[a + 1]
            a += 2
            if c == 117:  # \uXXXX (the scanner refused surrogates)
                code = 0
                for q in range(4):
                    c = s[a + q]
                    h = c - 48 if c <= 57 else (c - 87 if c >= 97 else c - 55)
                    code = (code << 4) | h
                a += 4
                if 0xD800 <= code <= 0xDFFF:
                    raise DOUBT
                if code < 0x80:
                    out[j] = <char>code
                    j += 1
                elif code < 0x800:
                    out[j] = <char>(0xC0 | (code >> 6))
                    out[j + 1] = <char>(0x80 | (code & 0x3F))
                    j += 2
                else:
                    out[j] = <char>(0xE0 | (code >> 12))
                    out[j + 1] = <char>(0x80 | ((code >> 6) & 0x3F))
                    out[j + 2] = <char>(0x80 | (code & 0x3F))
                    j += 3
            else:
                if c == 98:
                    c = 8
                elif c == 102:
                    c = 12
                elif c == 110:
                    c = 10
                elif c == 114:
                    c = 13
                elif c == 116:
                    c = 9
                out[j] = <char>c  # " \ /
                j += 1
        return PyUnicode_DecodeUTF8(out, j, NULL)
    finally:
        if out != small:
            PyMem_Free(out)


cdef inline object _text(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """The string value at ``s[a:b]`` (with its quotes); short ones from the key cache (verbs,
    stages, groups, resource names repeat)."""
    if memchr(s + a + 1, 92, b - a - 2) == NULL:
        return _key(s, a + 1, b - a - 2)
    return _unescape(s, a + 1, b - 1)


cdef inline object _str(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A Go ``string`` field: the string at ``s[a:b]``, ``""`` for null; else doubtful."""
    cdef unsigned char c = s[a]
    if c == 34:
        return _text(s, a, b)
    if c == 110:
        return EMPTY
    raise DOUBT


cdef double _number(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, bint* integral) except? -1.0:
    """The (validated) number at ``s[a:b]`` as the float the full decode gives; ``integral``
    tells whether it has no fraction (orjson reads an int)."""
    cdef char text[40]
    cdef long long v = 0
    cdef Py_ssize_t j = a
    cdef bint negative = s[a] == 45
    if memchr(s + a, 46, b - a) == NULL:
        integral[0] = True
        if negative:
            j += 1
        while j < b:
            v = v * 10 + (s[j] - 48)
            j += 1
        return <double>(-v if negative else v)  # -0 is the int 0: 0.0
    integral[0] = False
    if b - a >= 40:
        raise DOUBT
    for j in range(b - a):
        text[j] = <char>s[a + j]
    text[b - a] = 0
    return PyOS_string_to_double(text, NULL, None)


cdef object _int(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, double lo, double hi):
    """A Go integer field (the value at ``s[a:b]``, not null) as a float; doubtful unless a
    whole number within ``lo``..``hi``."""
    cdef bint integral
    cdef double v
    cdef unsigned char c = s[a]
    if not (c == 45 or 48 <= c <= 57):
        raise DOUBT
    v = _number(s, a, b, &integral)
    if v != v or v < lo or v > hi or floor(v) != v:
        raise DOUBT
    return v


cdef object _load(const unsigned char* s, Py_ssize_t a, Py_ssize_t n, Py_ssize_t* end):
    """The (validated) value at ``s[a]`` as the full decode gives it, numbers as floats; the
    index after it into ``end``."""
    cdef unsigned char c = s[a]
    cdef Py_ssize_t b, k, i
    cdef bint esc, integral
    cdef dict d
    cdef list items
    cdef object v
    if c == 34:
        esc = False
        b = _string(s, a + 1, n, &esc)
        end[0] = b
        if esc:
            return _unescape(s, a + 1, b - 1)
        return _key(s, a + 1, b - a - 2)
    if c == 123:
        d = {}
        i = _ws(s, a + 1, n)
        if s[i] != 125:
            while True:
                esc = False
                k = _string(s, i + 1, n, &esc)
                key = _unescape(s, i + 1, k - 1) if esc else _key(s, i + 1, k - i - 2)
                i = _ws(s, _ws(s, k, n) + 1, n)
                d[key] = _load(s, i, n, &b)
                i = _ws(s, b, n)
                if s[i] == 44:
                    i = _ws(s, i + 1, n)
                    continue
                break
        end[0] = i + 1
        return d
    if c == 91:
        items = []
        i = _ws(s, a + 1, n)
        if s[i] != 93:
            while True:
                items.append(_load(s, i, n, &b))
                i = _ws(s, b, n)
                if s[i] == 44:
                    i = _ws(s, i + 1, n)
                    continue
                break
        end[0] = i + 1
        return items
    if c == 116:
        end[0] = a + 4
        return True
    if c == 102:
        end[0] = a + 5
        return False
    if c == 110:
        end[0] = a + 4
        return None
    b = a + 1
    while b < n and (48 <= s[b] <= 57 or s[b] == 46):
        b += 1
    end[0] = b
    return _number(s, a, b, &integral)


cdef object _timestamp(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.MicroTime`` (the value at ``s[a:b]``, not null) in the 6-digit UTC layout (None:
    the zero time); doubtful unless a string RFC3339 date-time."""
    cdef const unsigned char* p = s + a + 1
    cdef int j, year, month, day, dim
    if s[a] != 34:
        raise DOUBT
    if b - a == 29 and p[4] == 45 and p[7] == 45 and p[10] == 84 and p[13] == 58 and p[16] == 58 \
            and p[19] == 46 and p[26] == 90:
        for j in range(26):
            if j != 4 and j != 7 and j != 10 and j != 13 and j != 16 and j != 19:
                if not (48 <= p[j] <= 57):
                    break
        else:
            year = (p[0] - 48) * 1000 + (p[1] - 48) * 100 + (p[2] - 48) * 10 + (p[3] - 48)
            month = (p[5] - 48) * 10 + (p[6] - 48)
            day = (p[8] - 48) * 10 + (p[9] - 48)
            if month == 2:
                dim = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
            elif month == 4 or month == 6 or month == 9 or month == 11:
                dim = 30
            else:
                dim = 31
            if (year < 1 or month < 1 or month > 12 or day < 1 or day > dim
                    or (p[11] - 48) * 10 + (p[12] - 48) > 23 or p[14] > 53 or p[17] > 53):
                raise DOUBT
            if memcmp(p, b"0001-01-01T00:00:00.000000Z", 27) == 0:
                return None
            return PyUnicode_DecodeUTF8(<const char*>p, 27, NULL)
    try:
        return _micro(_text(s, a, b))
    except ValueError:
        raise DOUBT from None


cdef object _string_list(const unsigned char* s, Py_ssize_t a, Py_ssize_t n):
    """A Go ``[]string`` (the value at ``s[a]``, not null): null items read ``""``."""
    cdef list items = []
    cdef Py_ssize_t i, b
    if s[a] != 91:
        raise DOUBT
    i = _ws(s, a + 1, n)
    if s[i] == 93:
        return items
    while True:
        b = skip_value(s, i, n)
        items.append(_str(s, i, b))
        i = _ws(s, b, n)
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return items


cdef void _strings(const unsigned char* s, Py_ssize_t* vs, Py_ssize_t* ve, int code, tuple names,
                   dict out) except *:
    """Copy member ``code``, a Go ``string`` with ``omitempty``, into ``out`` when not empty."""
    cdef object v
    if vs[code] >= 0:
        v = _str(s, vs[code], ve[code])
        if v:
            out[names[code]] = v


# -- structs --------------------------------------------------------------------------------------
cdef dict _user(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.UserInfo`` (the value at ``s[a:b]``, not null)."""
    cdef Py_ssize_t vs[4]
    cdef Py_ssize_t ve[4]
    cdef int order[4]
    cdef dict out = {}
    cdef dict extra
    cdef list groups
    cdef Py_ssize_t i, k, c
    cdef bint esc
    if s[a] != 123:
        raise DOUBT
    _fields(s, a, b, _USER_T, 4, vs, ve, order)
    _strings(s, vs, ve, 0, _USER, out)
    _strings(s, vs, ve, 1, _USER, out)
    if not _null(s, vs, 2):
        groups = _string_list(s, vs[2], ve[2])
        if groups:
            out[K_GROUPS] = groups
    if not _null(s, vs, 3):
        if s[vs[3]] != 123:
            raise DOUBT
        extra = {}
        i = _ws(s, vs[3] + 1, b)
        if s[i] != 125:
            while True:
                esc = False
                k = _string(s, i + 1, b, &esc)
                key = _unescape(s, i + 1, k - 1) if esc else _key(s, i + 1, k - i - 2)
                i = _ws(s, _ws(s, k, b) + 1, b)
                c = skip_value(s, i, b)
                extra[key] = None if s[i] == 110 else _string_list(s, i, c)
                i = _ws(s, c, b)
                if s[i] == 44:
                    i = _ws(s, i + 1, b)
                    continue
                break
        if extra:
            out[K_EXTRA] = extra
    return out


cdef dict _object_ref(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.ObjectReference`` (not null): its non-empty strings, in the input's order."""
    cdef Py_ssize_t vs[8]
    cdef Py_ssize_t ve[8]
    cdef int order[8]
    cdef int count, j
    cdef dict out = {}
    if s[a] != 123:
        raise DOUBT
    count = _fields(s, a, b, _OBJECT_REF_T, 8, vs, ve, order)
    for j in range(count):
        _strings(s, vs, ve, order[j], _OBJECT_REF, out)
    return out


cdef dict _list_meta(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.ListMeta`` (not null)."""
    cdef Py_ssize_t vs[4]
    cdef Py_ssize_t ve[4]
    cdef int order[4]
    cdef dict out = {}
    if s[a] != 123:
        raise DOUBT
    _fields(s, a, b, _LIST_META_T, 4, vs, ve, order)
    _strings(s, vs, ve, 0, _LIST_META, out)
    _strings(s, vs, ve, 1, _LIST_META, out)
    _strings(s, vs, ve, 2, _LIST_META, out)
    if not _null(s, vs, 3):
        out[K_REMAINING] = _int(s, vs[3], ve[3], INT64_MIN, INT64_MAX)
    return out


cdef dict _cause(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.StatusCause`` (null reads ``{}``)."""
    cdef Py_ssize_t vs[3]
    cdef Py_ssize_t ve[3]
    cdef int order[3]
    cdef dict out = {}
    if s[a] == 110:
        return out
    if s[a] != 123:
        raise DOUBT
    _fields(s, a, b, _CAUSE_T, 3, vs, ve, order)
    _strings(s, vs, ve, 0, _CAUSE, out)
    _strings(s, vs, ve, 1, _CAUSE, out)
    _strings(s, vs, ve, 2, _CAUSE, out)
    return out


cdef dict _details(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.StatusDetails`` (not null)."""
    cdef Py_ssize_t vs[6]
    cdef Py_ssize_t ve[6]
    cdef int order[6]
    cdef dict out = {}
    cdef list causes
    cdef Py_ssize_t i, c
    cdef object r
    if s[a] != 123:
        raise DOUBT
    _fields(s, a, b, _DETAILS_T, 6, vs, ve, order)
    _strings(s, vs, ve, 0, _DETAILS, out)
    _strings(s, vs, ve, 1, _DETAILS, out)
    _strings(s, vs, ve, 2, _DETAILS, out)
    _strings(s, vs, ve, 3, _DETAILS, out)
    if not _null(s, vs, 4):
        if s[vs[4]] != 91:
            raise DOUBT
        causes = []
        i = _ws(s, vs[4] + 1, b)
        if s[i] != 93:
            while True:
                c = skip_value(s, i, b)
                causes.append(_cause(s, i, c))
                i = _ws(s, c, b)
                if s[i] == 44:
                    i = _ws(s, i + 1, b)
                    continue
                break
        if causes:
            out[K_CAUSES] = causes
    if not _null(s, vs, 5):
        r = _int(s, vs[5], ve[5], INT32_MIN, INT32_MAX)
        if r:
            out[K_RETRY] = r
    return out


cdef dict _status(const unsigned char* s, Py_ssize_t a, Py_ssize_t b):
    """A ``v1.Status`` (not null); ``metadata`` is always there."""
    cdef Py_ssize_t vs[8]
    cdef Py_ssize_t ve[8]
    cdef int order[8]
    cdef dict out = {}
    cdef object code
    if s[a] != 123:
        raise DOUBT
    _fields(s, a, b, _STATUS_T, 8, vs, ve, order)
    _strings(s, vs, ve, 0, _STATUS, out)
    _strings(s, vs, ve, 1, _STATUS, out)
    out[K_METADATA] = {} if _null(s, vs, 2) else _list_meta(s, vs[2], ve[2])
    _strings(s, vs, ve, 3, _STATUS, out)
    _strings(s, vs, ve, 4, _STATUS, out)
    _strings(s, vs, ve, 5, _STATUS, out)
    if not _null(s, vs, 6):
        out[K_DETAILS] = _details(s, vs[6], ve[6])
    if not _null(s, vs, 7):
        code = _int(s, vs[7], ve[7], INT32_MIN, INT32_MAX)
        if code:
            out[K_CODE] = code
    return out


cdef dict _annotations(const unsigned char* s, Py_ssize_t a, Py_ssize_t n):
    """A ``map[string]string`` (not null): null values read ``""``."""
    cdef dict out = {}
    cdef Py_ssize_t i, k, b
    cdef bint esc
    if s[a] != 123:
        raise DOUBT
    i = _ws(s, a + 1, n)
    if s[i] == 125:
        return out
    while True:
        esc = False
        k = _string(s, i + 1, n, &esc)
        key = _unescape(s, i + 1, k - 1) if esc else _key(s, i + 1, k - i - 2)
        i = _ws(s, _ws(s, k, n) + 1, n)
        b = skip_value(s, i, n)
        out[key] = _str(s, i, b)
        i = _ws(s, b, n)
        if s[i] == 44:
            i = _ws(s, i + 1, n)
            continue
        return out


# -- bodies ---------------------------------------------------------------------------------------
cdef unsigned long long _sizes(dict need):
    """The UTF-8 sizes of ``need``'s keys as a bit set (bit 63: any size from 63 up; every bit
    when a key is not ASCII): a member key of another size is not needed, without a lookup."""
    cdef unsigned long long bits = 0
    cdef Py_ssize_t size
    for key in need:
        if type(key) is not str or not PyUnicode_IS_COMPACT_ASCII(key):
            return ~0ULL
        size = _length(<PyObject*>key)
        bits |= 1ULL << (size if size < 63 else 63)
    return bits


cdef object _prune(const unsigned char* s, Py_ssize_t a, Py_ssize_t n, object need, Py_ssize_t* end):
    """The (validated) value at ``s[a]`` reduced to ``need`` (``jsonscan.prune``'s result): an
    object keeps the needed keys only (``"present"`` ones as None), in the need's order, unless a
    key has escapes; anything else is decoded whole. The index after the value into ``end``."""
    cdef Py_ssize_t i, k, b, size
    cdef bint esc
    cdef dict found, out
    cdef PyObject* sub
    cdef unsigned long long sizes
    if type(need) is not dict or s[a] != 123:
        return _load(s, a, n, end)
    sizes = _sizes(<dict>need)
    found = {}
    i = _ws(s, a + 1, n)
    if s[i] != 125:
        while True:
            esc = False
            k = _string(s, i + 1, n, &esc)
            if esc:
                return _load(s, a, n, end)
            size = k - i - 2
            if not (sizes >> (size if size < 63 else 63)) & 1:  # not a needed key: skipped
                i = _ws(s, _ws(s, k, n) + 1, n)
                b = skip_value(s, i, n)
                i = _ws(s, b, n)
                if s[i] == 44:
                    i = _ws(s, i + 1, n)
                    continue
                break
            key = _key(s, i + 1, size)
            i = _ws(s, _ws(s, k, n) + 1, n)
            sub = PyDict_GetItem(<dict>need, key)
            if sub == NULL:
                b = skip_value(s, i, n)
            elif <object>sub == PRESENT:
                found[key] = None
                b = skip_value(s, i, n)
            else:
                found[key] = _prune(s, i, n, <object>sub, &b)
            i = _ws(s, b, n)
            if s[i] == 44:
                i = _ws(s, i + 1, n)
                continue
            break
    end[0] = i + 1
    out = {}
    for key in <dict>need:
        sub = PyDict_GetItem(found, key)
        if sub != NULL:
            out[key] = <object>sub
    return out


# -- the event ------------------------------------------------------------------------------------
cdef dict _event(const unsigned char* s, Py_ssize_t start, Py_ssize_t end, object needs,
                 const Py_ssize_t* known):
    cdef Py_ssize_t vs[EVENT_FIELDS]
    cdef Py_ssize_t ve[EVENT_FIELDS]
    cdef int order[EVENT_FIELDS]
    cdef dict out = {}
    cdef dict ref = None
    cdef list bodies = None
    cdef object v
    cdef int code
    cdef Py_ssize_t b
    if s[start] != 123:
        raise DOUBT
    if type(needs) is dict:
        bodies = [None, None]
        _fields(s, start, end, _EVENT_T, EVENT_FIELDS, vs, ve, order, known, needs, bodies)
    else:
        _fields(s, start, end, _EVENT_T, EVENT_FIELDS, vs, ve, order, known)
    _strings(s, vs, ve, KIND, _EVENT, out)
    _strings(s, vs, ve, API_VERSION, _EVENT, out)
    for code in range(LEVEL, USER):
        out[_EVENT[code]] = EMPTY if vs[code] < 0 else _str(s, vs[code], ve[code])
    out[K_USER] = {} if _null(s, vs, USER) else _user(s, vs[USER], ve[USER])
    if not _null(s, vs, IMPERSONATED_USER):
        out[_EVENT[IMPERSONATED_USER]] = _user(s, vs[IMPERSONATED_USER], ve[IMPERSONATED_USER])
    if not _null(s, vs, SOURCE_IPS):
        v = _string_list(s, vs[SOURCE_IPS], ve[SOURCE_IPS])
        if v:
            out[_EVENT[SOURCE_IPS]] = v
    _strings(s, vs, ve, USER_AGENT, _EVENT, out)
    if not _null(s, vs, OBJECT_REF):
        ref = _object_ref(s, vs[OBJECT_REF], ve[OBJECT_REF])
        out[_EVENT[OBJECT_REF]] = ref
    if not _null(s, vs, RESPONSE_STATUS):
        out[_EVENT[RESPONSE_STATUS]] = _status(s, vs[RESPONSE_STATUS], ve[RESPONSE_STATUS])
    if not (_null(s, vs, REQUEST_OBJECT) and _null(s, vs, RESPONSE_OBJECT)):
        if type(needs) is not dict:
            needs = {} if ref is None else needs(f"{ref.get('apiGroup', '')}/{ref.get('resource', '')}")
        for code in range(REQUEST_OBJECT, RESPONSE_OBJECT + 1):
            if not _null(s, vs, code):
                v = (<dict>needs).get(_EVENT[code])
                if v is not None:
                    out[_EVENT[code]] = (
                        bodies[code - REQUEST_OBJECT] if bodies is not None
                        else _prune(s, vs[code], ve[code], v, &b)
                    )
    for code in range(REQUEST_RECEIVED_TIMESTAMP, ANNOTATIONS):
        out[_EVENT[code]] = None if _null(s, vs, code) else _timestamp(s, vs[code], ve[code])
    if not _null(s, vs, ANNOTATIONS):
        v = _annotations(s, vs[ANNOTATIONS], ve[ANNOTATIONS])
        if v:
            out[_EVENT[ANNOTATIONS]] = v
    if not _null(s, vs, AUTHENTICATION_METADATA):
        if s[vs[AUTHENTICATION_METADATA]] != 123:
            raise DOUBT
        out[_EVENT[AUTHENTICATION_METADATA]] = _load(
            s, vs[AUTHENTICATION_METADATA], ve[AUTHENTICATION_METADATA], &b
        )
    return out


def decode_audit_typed(bytes buf, Py_ssize_t start, Py_ssize_t end, needs, dict spans=None):
    """The audit event at ``buf[start:end]`` decoded and normalised, bodies pruned to ``needs``
    (twin: :func:`processor.records.typed.decode_audit_typed`); None when anything is unusual.
    ``spans``: the bodies' spans the scanner found (``split_document``), if at hand."""
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(buf)
    cdef Py_ssize_t known[4]
    cdef int j = 0
    if start < 0 or end > PyBytes_GET_SIZE(buf) or start >= end:
        return None
    known[0] = known[2] = -1
    if spans:
        for span in spans.values():
            if j < 4:
                known[j] = span[0]
                known[j + 1] = span[1]
                j += 2
    try:
        return _event(s, start, end, needs, known)
    except _Doubt:
        return None
