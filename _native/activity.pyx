# cython: boundscheck=False, wraparound=False, cdivision=True
"""Native twin of ``processor.activity``: the Activity's JSON written straight into one buffer.

The pure-Python module ``processor/activity.py`` is the specification: :func:`build_audit` and
:func:`build_event` give the same :class:`~processor.activity.Built` as its builders, byte for
byte (its dict builders encoded by orjson). Here no dict is made on the way: the fields are read
from the decoded record, the link conversion (A), the actor, the tenant and the labels are
written in Go's field order, each string escaped as orjson escapes it (``"``, ``\\`` and control
characters; ``\\n \\r \\t \\b \\f`` short, the others ``\\u00XX``; non-ASCII kept as UTF-8). A
string orjson refuses (a lone surrogate) raises the ``orjson.JSONEncodeError`` orjson raises.
The name hash (``act-`` + sha256) is ``_native/sha256.h`` (the CPU's SHA extensions where it
has them) on bytes written here. Anything past the common timestamp layouts is left to the
twin's functions, so the results cannot differ. The Built is filled as ``Built.__init__`` would
fill it, without its Python frame.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_Clear, PyErr_ExceptionMatches
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.unicode cimport PyUnicode_FromStringAndSize
from libc.stdint cimport uint64_t
from libc.string cimport memcpy, strlen

from orjson import JSONEncodeError

from processor.activity import (
    _TENANT_TYPES,
    ACTIVITY_API_VERSION,
    Built,
    _audit_timestamp,
    _event_timestamp,
    activity_name,
)
from processor.errors import KindResolveError

cdef extern from "sha256.h":
    int sha256_portable
    void activity_sha256(const unsigned char *p, size_t n, unsigned char *out)

cdef extern from "Python.h":
    const char *PyUnicode_AsUTF8AndSize(object, Py_ssize_t *)  # NULL + exception: not checked
    bint PyUnicode_IS_ASCII(object)

__all__ = ["Built", "build_audit", "build_event"]

cdef dict _TENANTS = _TENANT_TYPES
cdef const char *HEX = b"0123456789abcdef"
# per byte: 0 copied as is, else the character after the backslash ('u': \u00XX)
cdef unsigned char ESCAPE[256]
for _c in range(256):
    ESCAPE[_c] = 0
for _c in range(0x20):
    ESCAPE[_c] = ord("u")
ESCAPE[0x08] = ord("b")
ESCAPE[0x09] = ord("t")
ESCAPE[0x0A] = ord("n")
ESCAPE[0x0C] = ord("f")
ESCAPE[0x0D] = ord("r")
ESCAPE[0x22] = 0x22
ESCAPE[0x5C] = 0x5C

DEF STACK = 2048

cdef struct Buf:
    char *p
    Py_ssize_t n
    Py_ssize_t cap
    bint heap


# -- the buffer --------------------------------------------------------------------------------
cdef int _grow(Buf *b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = b.cap * 2
    cdef char *p
    while cap < b.n + need:
        cap *= 2
    if b.heap:
        p = <char *>PyMem_Realloc(b.p, cap)
    else:
        p = <char *>PyMem_Malloc(cap)
        if p != NULL:
            memcpy(p, b.p, b.n)
    if p == NULL:
        raise MemoryError()
    b.p, b.cap, b.heap = p, cap, True
    return 0


cdef inline int _raw(Buf *b, const char *s, Py_ssize_t n) except -1:
    if b.n + n > b.cap:
        _grow(b, n)
    memcpy(b.p + b.n, s, n)
    b.n += n
    return 0


cdef inline int _lit(Buf *b, const char *s) except -1:
    return _raw(b, s, strlen(s))


cdef int _refused() except -1:
    """The str could not be encoded: orjson's error for a lone surrogate."""
    if PyErr_ExceptionMatches(UnicodeEncodeError):
        PyErr_Clear()
        raise JSONEncodeError("str is not valid UTF-8: surrogates not allowed")
    return -1  # the error set (MemoryError, TypeError for a value that is not a str)


cdef inline bint _clean8(uint64_t v):
    """None of the 8 bytes of ``v`` is escaped: below 0x20, ``"`` or ``\\`` (the classic
    "has a byte less than n / equal to 0" tests, exact as a yes/no; UTF-8 bytes never match)."""
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t quote = v ^ (0x22 * ones), slash = v ^ (0x5C * ones)
    cdef uint64_t hit = (
        ((v - 0x20 * ones) & ~v) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash)
    )
    return (hit & 0x8080808080808080ULL) == 0


cdef int _escaped(Buf *b, const char *u, Py_ssize_t n) except -1:
    """``u[:n]`` escaped as a JSON string's content (orjson's escapes)."""
    cdef Py_ssize_t i = 0, start = 0
    cdef unsigned char c, e
    cdef char *p
    cdef uint64_t v
    if b.n + 6 * n > b.cap:
        _grow(b, 6 * n)
    p = b.p + b.n
    while i < n:
        if i + 8 <= n:
            memcpy(&v, u + i, 8)
            if _clean8(v):
                i += 8
                continue
        c = <unsigned char>u[i]
        e = ESCAPE[c]
        if e == 0:
            i += 1
            continue
        memcpy(p, u + start, i - start)
        p += i - start
        p[0] = 0x5C
        if e == 0x75:  # u
            p[1] = 0x75
            p[2] = 0x30
            p[3] = 0x30
            p[4] = HEX[c >> 4]
            p[5] = HEX[c & 15]
            p += 6
        else:
            p[1] = e
            p += 2
        i += 1
        start = i
    memcpy(p, u + start, n - start)
    b.n = (p - b.p) + (n - start)
    return 0


cdef int _str(Buf *b, object s) except -1:
    """``s`` as a JSON string."""
    cdef Py_ssize_t n
    cdef const char *u = PyUnicode_AsUTF8AndSize(s, &n)
    if u == NULL:
        return _refused()
    _raw(b, b'"', 1)
    _escaped(b, u, n)
    return _raw(b, b'"', 1)


cdef inline int _kv(Buf *b, const char *key, object value) except -1:
    """``key`` (the literal text up to the value, e.g. ``,"name":``) then ``value``."""
    _lit(b, key)
    return _str(b, value)


# -- fields ------------------------------------------------------------------------------------
cdef inline str _string(object value):
    return <str>value if type(value) is str else ""


cdef str _name(str origin_type, str origin_id, str api_group, str kind):
    """``activity_name``: ``act-`` + 12 hex digits of sha256(type NUL id NUL apiGroup NUL kind)."""
    cdef char stack[256]
    cdef Buf b
    cdef Py_ssize_t n
    cdef const char *u
    cdef object part
    cdef unsigned char digest[32]
    cdef char out[16]
    cdef int i
    b.p, b.n, b.cap, b.heap = stack, 0, 256, False
    try:
        for i, part in enumerate((origin_type, origin_id, api_group, kind)):
            u = PyUnicode_AsUTF8AndSize(part, &n)
            if u == NULL:  # a lone surrogate: the twin raises its error
                PyErr_Clear()
                return activity_name(origin_type, origin_id, api_group, kind)
            if i:
                _raw(&b, b"\0", 1)
            _raw(&b, u, n)
        activity_sha256(<const unsigned char *>b.p, b.n, digest)
    finally:
        if b.heap:
            PyMem_Free(b.p)
    memcpy(out, b"act-", 4)
    for i in range(6):
        out[4 + 2 * i] = HEX[digest[i] >> 4]
        out[5 + 2 * i] = HEX[digest[i] & 15]
    return PyUnicode_FromStringAndSize(out, 16)


def _sha256(bytes data, bint portable=False):
    """The digest ``_name`` computes (for the tests): with the SHA extensions where the CPU has
    them, or (``portable``) with the portable C."""
    cdef unsigned char digest[32]
    global sha256_portable
    sha256_portable = portable
    try:
        activity_sha256(<const unsigned char *>PyBytes_AS_STRING(data), len(data), digest)
    finally:
        sha256_portable = False
    return PyBytes_FromStringAndSize(<char *>digest, 32)


cdef str _tenant_type(str value):
    """``normalize_tenant_type``."""
    normal = _TENANTS.get(value)
    if normal is not None:
        return <str>normal
    return _TENANTS.get(value.lower(), value)


cdef str _first_extra(dict extra, str key):
    values = extra.get(key)
    if type(values) is list and values:
        first = (<list>values)[0]
        if type(first) is str:
            return <str>first
    return ""


cdef tuple _audit_tenant(dict user):
    """``audit_tenant``: ``(type, name)``."""
    extra = user.get("extra")
    if type(extra) is not dict or not extra:
        return ("platform", "")
    cdef dict x = <dict>extra
    cdef str tenant_type = "platform", name = ""
    cdef str value = _first_extra(x, "iam.miloapis.com/parent-type")
    if value:
        tenant_type = _tenant_type(value)
    value = _first_extra(x, "iam.miloapis.com/parent-name")
    if value:
        name = value
    if tenant_type == "platform":
        value = _first_extra(x, "organization")
        if value:
            tenant_type, name = "Organization", value
    value = _first_extra(x, "project")
    if value:
        tenant_type, name = "Project", value
    return (tenant_type, name)


cdef tuple _event_tenant(dict event):
    """``event_tenant``: ``(type, name)``."""
    meta = event.get("metadata")
    annotations = (<dict>meta).get("annotations") if type(meta) is dict else None
    if type(annotations) is dict:
        scope_type = (<dict>annotations).get("platform.miloapis.com/scope.type")
        if type(scope_type) is str and scope_type:
            name = (<dict>annotations).get("platform.miloapis.com/scope.name")
            return (_tenant_type(<str>scope_type), name if type(name) is str else "")
    return ("platform", "")


cdef str _event_actor(dict event):
    """``processor.records.event.event_actor``."""
    actor = event.get("reportingController")
    if type(actor) is str and actor:
        return <str>actor
    source = event.get("source")
    if type(source) is dict:
        component = (<dict>source).get("component")
        if type(component) is str:
            return <str>component
    return ""


# -- timestamps --------------------------------------------------------------------------------
cdef inline bint _digits(const char *u, int at, int n):
    cdef int i
    for i in range(at, at + n):
        if u[i] < 48 or u[i] > 57:
            return False
    return True


cdef inline int _number(const char *u, int at, int n):
    cdef int i, v = 0
    for i in range(at, at + n):
        v = v * 10 + (u[i] - 48)
    return v


cdef int _plain_time(object value, const char **text):
    """``YYYY-MM-DDTHH:MM:SSZ`` (20) or ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (27) with valid fields:
    its length and ``*text`` its characters; 0 for anything else (the twin decides those)."""
    cdef Py_ssize_t n
    cdef const char *u
    cdef int year, month, day, last
    if not PyUnicode_IS_ASCII(value):
        return 0
    u = PyUnicode_AsUTF8AndSize(value, &n)
    if u == NULL:
        PyErr_Clear()
        return 0
    if n == 20:
        if u[19] != 90:  # Z
            return 0
    elif n == 27:
        if u[26] != 90 or u[19] != 46 or not _digits(u, 20, 6):
            return 0
    else:
        return 0
    if u[4] != 45 or u[7] != 45 or u[10] != 84 or u[13] != 58 or u[16] != 58:
        return 0
    if not (
        _digits(u, 0, 4) and _digits(u, 5, 2) and _digits(u, 8, 2) and _digits(u, 11, 2)
        and _digits(u, 14, 2) and _digits(u, 17, 2)
    ):
        return 0
    year, month, day = _number(u, 0, 4), _number(u, 5, 2), _number(u, 8, 2)
    if year < 1 or month < 1 or month > 12 or day < 1:
        return 0
    if month == 2:
        last = 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    elif month in (4, 6, 9, 11):
        last = 30
    else:
        last = 31
    if day > last or _number(u, 11, 2) > 23 or _number(u, 14, 2) > 59 or _number(u, 17, 2) > 59:
        return 0
    text[0] = u
    return <int>n


cdef int _event_time(Buf *b, dict event) except -1:
    """``"creationTimestamp":`` of an event (``_event_timestamp``): the first time field when
    it has a plain layout, else what the twin says."""
    cdef const char *u = NULL
    cdef int n
    for field in ("eventTime", "lastTimestamp", "firstTimestamp"):
        value = event.get(field)
        if type(value) is str and value:
            n = _plain_time(value, &u)
            if n == 0:
                break
            _raw(b, b'"', 1)
            _raw(b, u, 19)
            if n == 20:
                return _lit(b, b'.000Z"')
            _raw(b, u + 19, 4)
            return _lit(b, b'Z"')
    return _str(b, _event_timestamp(event))


cdef int _audit_time(Buf *b, object value) except -1:
    """``"creationTimestamp":`` of an audit event (``_audit_timestamp``)."""
    cdef Py_ssize_t n
    cdef const char *u
    if type(value) is str and PyUnicode_IS_ASCII(value):
        u = PyUnicode_AsUTF8AndSize(value, &n)
        if u != NULL and n == 27 and u[19] == 46 and u[26] == 90:
            _raw(b, b'"', 1)
            _escaped(b, u, 23)
            return _lit(b, b'Z"')
    return _str(b, _audit_timestamp(value))


# -- resources and links -----------------------------------------------------------------------
cdef int _resource(
    Buf *b, str api_group, str api_version, str kind, str name, str namespace, str uid
) except -1:
    """An ActivityResource: apiGroup/namespace/uid omitted when empty (Go ``omitempty``)."""
    if api_group:
        _kv(b, b'{"apiGroup":', api_group)
        _kv(b, b',"apiVersion":', api_version)
    else:
        _kv(b, b'{"apiVersion":', api_version)
    _kv(b, b',"kind":', kind)
    _kv(b, b',"name":', name)
    if namespace:
        _kv(b, b',"namespace":', namespace)
    if uid:
        _kv(b, b',"uid":', uid)
    return _raw(b, b"}", 1)


cdef int _link(Buf *b, object marker, dict resource, object resolver, list resolve) except -1:
    """One converted link (``convert_links``); ``resolve`` holds the resolver's method once
    looked up."""
    get = resource.get
    cdef str kind = _string(get("kind"))
    cdef str api_group = _string(get("apiGroup"))
    cdef str api_version, name, namespace, uid
    if not kind and resolver is not None:
        plural = get("resource")
        if type(plural) is str and plural:
            if not resolve:
                resolve.append(getattr(resolver, "resolve", resolver))
            try:
                kind = resolve[0](api_group, plural)
            except KindResolveError as exc:
                reason = getattr(exc, "reason", None) or str(exc)
                raise KindResolveError(
                    "activity build failed: kind resolution failed: "
                    f'resource "{plural}" in apiGroup "{api_group}": {reason}'
                ) from exc
    if not kind:
        kind = _string(get("type"))
    api_version = _string(get("apiVersion"))
    if api_version and not api_group and "/" in api_version:
        api_group, _, api_version = api_version.partition("/")
    meta = get("metadata")
    name, namespace, uid = _string(get("name")), _string(get("namespace")), _string(get("uid"))
    if type(meta) is dict:
        if not name:
            name = _string((<dict>meta).get("name"))
        if not namespace:
            namespace = _string((<dict>meta).get("namespace"))
        if not uid:
            uid = _string((<dict>meta).get("uid"))
    _kv(b, b'{"marker":', marker if type(marker) is str else str(marker))
    _lit(b, b',"resource":')
    _resource(b, api_group, api_version, kind, name, namespace, uid)
    return _raw(b, b"}", 1)


cdef int _links(Buf *b, object links, object resolver) except -1:
    """``,"links":[...]`` when a link converts (``convert_links``), else nothing."""
    cdef Py_ssize_t mark = b.n
    cdef int count = 0
    cdef list resolve = []
    _lit(b, b',"links":[')
    for item in links:
        if type(item) is dict:
            marker, res = (<dict>item).get("marker", ""), (<dict>item).get("resource")
        else:
            marker, res = item
        if type(res) is not dict:
            continue
        if count:
            _raw(b, b",", 1)
        _link(b, marker, <dict>res, resolver, resolve)
        count += 1
    if count:
        return _raw(b, b"]", 1)
    b.n = mark
    return 0


# -- builders ----------------------------------------------------------------------------------
cdef int _head(Buf *b, str name, str namespace) except -1:
    _lit(b, b'{"kind":"Activity","apiVersion":')
    _str(b, ACTIVITY_API_VERSION)
    _kv(b, b',"metadata":{"name":', name)
    if namespace:
        _kv(b, b',"namespace":', namespace)
    return _lit(b, b',"creationTimestamp":')


cdef int _labels(Buf *b, str api_group, str change, str reason, bint event, str kind) except -1:
    _kv(b, b',"labels":{"activity.miloapis.com/api-group":', api_group)
    _kv(b, b',"activity.miloapis.com/change-source":', change)
    if event:
        _kv(b, b',"activity.miloapis.com/event-reason":', reason)
        _lit(b, b',"activity.miloapis.com/origin-type":"event"')
    else:
        _lit(b, b',"activity.miloapis.com/origin-type":"audit"')
    _kv(b, b',"activity.miloapis.com/resource-kind":', kind)
    return _lit(b, b"}}")


# A Built is made as Built.__init__ would make it, without the Python frame: allocated by its
# type, its slots filled at the offsets of their member descriptors.
cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset

cdef extern from "Python.h":
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    ctypedef struct AllocType "PyTypeObject":
        PyObject *(*tp_alloc)(AllocType *, Py_ssize_t)

SLOTS = ("data", "name", "tenant_type", "tenant_name", "api_group", "origin_type", "kind",
         "namespace", "_decoded")
cdef Py_ssize_t OFFSET[9]
for _i, _slot in enumerate(SLOTS):
    _descr = Built.__dict__[_slot]
    assert type(_descr).__name__ == "member_descriptor", _descr
    OFFSET[_i] = (<PyMemberDescrObject *>_descr).d_member.offset
assert sorted(SLOTS) == sorted(Built.__slots__), Built.__slots__


cdef inline void _set(object obj, int at, object value):
    Py_INCREF(value)
    (<PyObject **>((<char *><PyObject *>obj) + OFFSET[at]))[0] = <PyObject *>value


cdef object _finish(
    Buf *b, str name, tuple tenant, str api_group, str origin_type, str kind, str namespace
):
    cdef AllocType *t = <AllocType *><PyObject *>Built
    cdef PyObject *p = t.tp_alloc(t, 0)
    if p == NULL:
        raise MemoryError()
    cdef object built = <object>p
    Py_DECREF(built)  # the new reference tp_alloc gave; ``built`` holds its own
    _set(built, 0, PyBytes_FromStringAndSize(b.p, b.n))
    _set(built, 1, name)
    _set(built, 2, tenant[0])
    _set(built, 3, tenant[1])
    _set(built, 4, api_group)
    _set(built, 5, origin_type)
    _set(built, 6, kind)
    _set(built, 7, namespace)
    _set(built, 8, None)
    return built


cdef dict _EMPTY = {}


def build_audit(
    dict audit, str api_group, str kind, str summary, links=(), resolver=None
):
    """``processor.activity.build_audit``: the Activity of a matched audit rule as a Built."""
    cdef char stack[STACK]
    cdef Buf b
    b.p, b.n, b.cap, b.heap = stack, 0, STACK, False
    ref_obj = audit.get("objectRef") or _EMPTY
    user_obj = audit.get("user") or _EMPTY
    cdef dict ref = ref_obj, user = user_obj
    cdef str username = user.get("username", "")
    cdef str audit_id = audit.get("auditID", "")
    cdef str namespace = ref.get("namespace", "")
    cdef str change = "system" if username.startswith("system:") else "human"
    cdef str uid = ""
    obj = audit.get("responseObject")
    if type(obj) is dict:
        meta = (<dict>obj).get("metadata")
        if type(meta) is dict:
            uid = _string((<dict>meta).get("uid", ""))
    cdef str name = _name("audit", audit_id, api_group, kind)
    cdef str user_uid = user.get("uid", "")
    cdef tuple tenant
    try:
        _head(&b, name, namespace)
        _audit_time(&b, audit.get("requestReceivedTimestamp"))
        _labels(&b, api_group, change, "", False, kind)
        _kv(&b, b',"spec":{"summary":', summary)
        _lit(&b, b',"changeSource":"')
        _lit(&b, b'system"' if change == "system" else b'human"')
        if change == "system":
            _lit(&b, b',"actor":{"type":"system","name":')
            _str(&b, username[7:] or "unknown")
        else:
            _lit(&b, b',"actor":{"type":"user","name":')
            _str(&b, username or "unknown")
        if user_uid:
            _kv(&b, b',"uid":', user_uid)
        if "@" in username:
            _kv(&b, b',"email":', username)
        _lit(&b, b'},"resource":')
        _resource(
            &b, api_group, ref.get("apiVersion", ""), kind, ref.get("name", ""), namespace, uid
        )
        if links:
            _links(&b, links, resolver)
        tenant = _audit_tenant(user) if "extra" in user else ("platform", "")
        _kv(&b, b',"tenant":{"type":', tenant[0])
        _kv(&b, b',"name":', tenant[1])
        _kv(&b, b'},"origin":{"type":"audit","id":', audit_id)
        _lit(&b, b"}}}")
        return _finish(&b, name, tenant, api_group, "audit", kind, namespace)
    finally:
        if b.heap:
            PyMem_Free(b.p)


def build_event(
    dict event, dict involved, str api_group, str kind, str summary, links=(), resolver=None
):
    """``processor.activity.build_event``: the Activity of a matched event rule as a Built."""
    cdef char stack[STACK]
    cdef Buf b
    b.p, b.n, b.cap, b.heap = stack, 0, STACK, False
    meta = event.get("metadata")
    cdef str uid = _string((<dict>meta).get("uid")) if type(meta) is dict else ""
    get = involved.get
    cdef str namespace = _string(get("namespace"))
    cdef str reason = _string(event.get("reason"))
    cdef str api_version = _string(get("apiVersion"))
    cdef str res_name = _string(get("name"))
    cdef str res_uid = _string(get("uid"))
    cdef str name = _name("event", uid, api_group, kind)
    cdef str actor
    cdef tuple tenant
    try:
        _head(&b, name, namespace)
        _event_time(&b, event)
        _labels(&b, api_group, "system", reason, True, kind)
        _kv(&b, b',"spec":{"summary":', summary)
        _lit(&b, b',"changeSource":"system","actor":{"type":"controller","name":')
        actor = _event_actor(event)
        _str(&b, actor or "unknown")
        _lit(&b, b'},"resource":')
        _resource(&b, api_group, api_version, kind, res_name, namespace, res_uid)
        if links:
            _links(&b, links, resolver)
        tenant = _event_tenant(event)
        _kv(&b, b',"tenant":{"type":', tenant[0])
        _kv(&b, b',"name":', tenant[1])
        _kv(&b, b'},"origin":{"type":"event","id":', uid)
        _lit(&b, b"}}}")
        return _finish(&b, name, tenant, api_group, "event", kind, namespace)
    finally:
        if b.heap:
            PyMem_Free(b.p)
