"""The route of an audit event: its key, read from the bytes unparsed, and what it decides.

The one home of the route (twin of ``_native/route.pyx``):

- the **route key** (:func:`pack`, :func:`unpack`, :class:`RouteKey`): the routing fields of an
  audit event -- ``stage``, ``verb`` and its ``objectRef``'s ``apiGroup``, ``resource`` and
  ``subresource`` -- packed into bytes, so records with the same route share one decision;
- :func:`split_routed`: the scanner's :func:`~processor.records.jsonscan.split_document` that also
  reads the route key of every item of an EventList as it validates it, and counts the items whose
  route has a known outcome without parsing them;
- :func:`peek_route` and :func:`peek_selector`: the same fields read from a parsed record;
- :class:`Routes`: the decisions, from the engine's policy facts
  (:meth:`processor.engine.Engine.audit_skip_reason`,
  :meth:`~processor.engine.Engine.audit_selects_nothing`), remembered per route key.

The byte-level functions (:func:`pack`, :func:`pack_document`, :func:`unpack`,
:func:`unpack_document`, :func:`split_routed`) have a native twin with the same results; the rest
work on Python values and serve both implementations.
"""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

from processor.records.audit import (
    _USER_SET,
    EVENT_KEYS,
    OBJECT_REF_KEYS,
    audit_actor_type,
)
from processor.records.event import classify_record
from processor.records.jsonscan import MAX_MEMBERS, _Invalid, _Raw, _value, _ws

if TYPE_CHECKING:
    from processor.engine import AuditDispatch, Engine

__all__ = [
    "ACTORS",
    "Decision",
    "DocumentKey",
    "Outcome",
    "Route",
    "RouteKey",
    "Routes",
    "pack",
    "pack_document",
    "peek_route",
    "peek_selector",
    "split_routed",
    "unpack",
    "unpack_document",
]

_EVENT_ROUTE = ("stage", "verb", "objectRef", "kind", "apiVersion", "auditID", "user")
#: ``actorRef.type`` values (:func:`processor.records.audit.audit_actor_type`), by their code in a
#: document key's flags byte
ACTORS = ("unknown", "serviceaccount", "system", "user")
_REF_ROUTE = ("apiGroup", "resource", "subresource")

#: split_routed: (spans, route_text, rest, key, counted)
Routed = tuple[
    dict[str, tuple[int, int]] | None,
    bytes | None,
    list[tuple[int, int, bytes | None]] | None,
    bytes | None,
    dict[bytes, int],
]
#: A record counted from its route: (routing key, skip reason or "" for no match).
Outcome = tuple[str | None, str]
#: What routing fields tell (:meth:`Routes.outcome`): an :data:`Outcome`; None: read the record.
Decision = Outcome | None
#: What a route key tells (:meth:`Routes.decide`): an :data:`Outcome`, or how to evaluate the
#: event the policies want.
Route: TypeAlias = "Outcome | AuditDispatch"
Hint = Literal["audit", "event"] | None


class RouteKey(NamedTuple):
    """An unpacked route key (:func:`unpack`)."""

    stage: str
    verb: str
    #: the audit index key ``"<apiGroup>/<resource>"``; None: no objectRef
    index_key: str | None
    #: None when absent or empty (as it reads once decoded)
    subresource: str | None
    #: ``actorRef.type`` from ``user.username``; None when only a full decode can tell
    actor: str | None


class DocumentKey(NamedTuple):
    """An unpacked document route key (:func:`unpack_document`)."""

    kind: str
    api_version: str
    has_audit_id: bool
    has_stage: bool
    #: the packed route key of the document as an audit event
    route: bytes


# -- packing ------------------------------------------------------------------------------------


def pack(
    stage: bytes, verb: bytes, ref: tuple[bytes, bytes, bytes] | None = None, actor: int = -1
) -> bytes:
    """The route key: the actor type (one byte, ``0x31`` plus its index in :data:`ACTORS`,
    ``0x30`` when not known), ``stage`` and ``verb``, then, when the event has an ``objectRef``
    object, its ``apiGroup``, ``resource`` and ``subresource``, joined by NUL bytes (absent and
    null read as empty; a raw JSON string cannot hold a NUL)."""
    head = (bytes((49 + actor,)), stage, verb)
    return b"\0".join(head if ref is None else (*head, *ref))


def pack_document(kind: bytes, api_version: bytes, flags: int, key: bytes) -> bytes:
    """A document's route key: its ``kind``, ``apiVersion``, a flags byte (``0x30``, plus 1 when
    an ``auditID`` member is present, plus 2 when a ``stage`` member is) and its route ``key``."""
    return b"\0".join((kind, api_version, bytes((flags,)), key))


def unpack(key: bytes) -> RouteKey:
    """The :class:`RouteKey` of a key :func:`pack` made."""
    parts = key.decode("utf-8").split("\0")
    if len(parts) not in (3, 6) or parts[0] not in ("0", "1", "2", "3", "4"):
        raise ValueError(f"not a route key: {key!r}")
    actor = ACTORS[int(parts[0]) - 1] if parts[0] != "0" else None
    if len(parts) == 3:
        return RouteKey(parts[1], parts[2], None, None, actor)
    return RouteKey(parts[1], parts[2], f"{parts[3]}/{parts[4]}", parts[5] or None, actor)


def unpack_document(key: bytes) -> DocumentKey:
    """The :class:`DocumentKey` of a key :func:`pack_document` made."""
    parts = key.split(b"\0", 3)
    if len(parts) != 4 or len(parts[2]) != 1:
        raise ValueError(f"not a document route key: {key!r}")
    flags = parts[2][0]
    return DocumentKey(
        parts[0].decode("utf-8"),
        parts[1].decode("utf-8"),
        bool(flags & 1),
        bool(flags & 2),
        parts[3],
    )


# -- reading the route from the bytes -------------------------------------------------------------


def _route_spans(
    members: _Raw, keys: Container[str], route: tuple[str, ...]
) -> dict[str, tuple[int, int]] | None:
    """The spans of the ``route`` members among ``members``, or None (doubtful)."""
    spans: dict[str, tuple[int, int]] = {}
    for key, vs, ve, _ks in members:
        if key is None or key not in keys or key in spans:
            return None
        if key in route:
            spans[key] = (vs, ve)
    return spans


def _text(buf: bytes, span: tuple[int, int] | None) -> bytes | None:
    """A string value without escapes as its bytes; absent and null as b""; None otherwise."""
    if span is None or buf[span[0]] == ord("n"):
        return b""
    text = buf[span[0] : span[1]]
    if text[:1] != b'"' or b"\\" in text:
        return None
    return text[1:-1]


def _actor(buf: bytes, span: tuple[int, int] | None) -> int:
    """The ``actorRef.type`` of a ``user`` value (its ``span``; None: absent) as its index in
    :data:`ACTORS`; -1 when only a full decode can tell (a key that is not a user field or has
    escapes, ``username`` twice, a username that is not a string without escapes)."""
    if span is None or buf[span[0]] == ord("n"):
        return 0
    if buf[span[0]] != ord("{"):
        return -1
    members: _Raw = []
    _value(buf, span[0], span[1], 0, members)
    username: tuple[int, int] | None = None
    for key, vs, ve, _ks in members:
        if key is None or key not in _USER_SET:
            return -1
        if key == "username":
            if username is not None:
                return -1
            username = (vs, ve)
    text = _text(buf, username)
    if text is None:
        return -1
    return ACTORS.index(audit_actor_type(text.decode("utf-8")))


def _key(buf: bytes, spans: dict[str, tuple[int, int]], document: bool) -> bytes | None:
    """The route key from an audit event's route ``spans`` (see :func:`split_routed`)."""
    stage, verb = _text(buf, spans.get("stage")), _text(buf, spans.get("verb"))
    ref: tuple[bytes, bytes, bytes] | None = None
    span = spans.get("objectRef")
    if span is not None and buf[span[0]] != ord("n"):
        if buf[span[0]] != ord("{"):
            return None
        members: _Raw = []
        _value(buf, span[0], span[1], 0, members)
        ref_spans = _route_spans(members, OBJECT_REF_KEYS, _REF_ROUTE)
        if ref_spans is None:
            return None
        group, resource, sub = (_text(buf, ref_spans.get(k)) for k in _REF_ROUTE)
        if group is None or resource is None or sub is None:
            return None
        ref = (group, resource, sub)
    if stage is None or verb is None:
        return None
    key = pack(stage, verb, ref, _actor(buf, spans.get("user")))
    if not document:
        return key
    kind, api_version = _text(buf, spans.get("kind")), _text(buf, spans.get("apiVersion"))
    if kind is None or api_version is None:
        return None
    flags = 48 + ("auditID" in spans) + 2 * ("stage" in spans)
    return pack_document(kind, api_version, flags, key)


def _item_key(buf: bytes, start: int, end: int) -> bytes | None:
    if buf[start] != ord("{"):
        return None
    members: _Raw = []
    _value(buf, start, end, 0, members)
    spans = _route_spans(members, EVENT_KEYS, _EVENT_ROUTE)
    return None if spans is None else _key(buf, spans, False)


def _route_split(
    buf: bytes, members: _Raw, bodies: Container[str], route: Container[str]
) -> tuple[dict[str, tuple[int, int]], bytes] | None:
    """``(spans, route_text)`` of the top-level ``members``: the spans of the ``bodies``
    members (of their last value) and the route text, the top-level object with only the
    values of the ``route`` members, every other key with a ``null`` value (for presence
    tests). None when the scanner doubts the object (more than ``MAX_MEMBERS`` members, an
    escaped key)."""
    spans = _body_spans(members, bodies)
    if spans is None:
        return None
    parts = [buf[ks:ve] if key in route else buf[ks:vs] + b"null" for key, vs, ve, ks in members]
    return spans, b"{" + b",".join(parts) + b"}"


def _body_spans(members: _Raw, bodies: Container[str]) -> dict[str, tuple[int, int]] | None:
    """The spans of the ``bodies`` members (of their last value), None when the scanner doubts
    the object (see :func:`_route_split`)."""
    if len(members) > MAX_MEMBERS:
        return None
    spans: dict[str, tuple[int, int]] = {}
    for key, vs, ve, _ks in members:
        if key is None:
            return None
        if key in bodies:
            spans[key] = (vs, ve)
    return spans


def split_routed(
    buf: bytes,
    bodies: Container[str],
    route: Container[str],
    decisions: dict[bytes, Any],
    documents: dict[bytes, Any] | None = None,
) -> Routed | None:
    """Validate a payload with the scanner, reading the route keys of the document and of the
    audit events of its ``items`` array on the way.

    Returns ``(spans, route_text, rest, key, counted)``, or None when the scanner's
    ``split_document`` would be None or ``items`` is given twice. ``spans`` and ``route_text``
    are those of :func:`_route_split` (the bodies' spans and the route text); ``rest`` is None
    unless the top-level ``items`` is an array.

    An item's route key is :func:`pack` of its routing fields; it is None (doubtful) unless the
    item is an object whose keys are all audit Event fields (``objectRef``'s all ObjectReference
    fields), with no escaped key, no route member twice, and every route member a string without
    escapes or null (``objectRef``: an object or null; ``user`` is read for its actor type, not
    known when odd). Items whose key has an :data:`Outcome` (a tuple) in ``decisions`` are
    counted in ``counted`` (key -> count); the others are listed in ``rest``, in order, as
    ``(start, end, key)``.

    ``key`` is the document's own route key (:func:`pack_document`), for a single audit event;
    None on the same conditions as an item's key, and when ``kind`` or ``apiVersion`` is not a
    string without escapes or null. With ``documents`` (what :meth:`Routes.document` gave per
    document key) a keyed document is only split as far as it is read: not at all when its
    entry is an :data:`Outcome` (``spans`` None: it is counted), its full ``spans`` and
    ``route_text`` when its entry is None (it is not an audit event: classified from the route
    text), and its ``spans`` alone otherwise (``route_text`` None: a wanted audit event, or a
    key not decided yet).
    """
    n = len(buf)
    i = _ws(buf, 0, n)
    if i >= n or buf[i] != ord("{"):
        return None
    members: _Raw = []
    try:
        i = _value(buf, i, n, 0, members)
    except (_Invalid, RecursionError):
        return None
    if _ws(buf, i, n) != n or [m[0] for m in members].count("items") > 1:
        return None
    spans = _route_spans(members, EVENT_KEYS, _EVENT_ROUTE)
    document_key = None if spans is None else _key(buf, spans, True)
    split: tuple[dict[str, tuple[int, int]] | None, bytes | None] | None
    entry = None
    if document_key is not None and documents is not None:
        entry = documents.get(document_key, _UNKNOWN)
    if entry is None:
        split = _route_split(buf, members, bodies, route)
    elif type(entry) is tuple:
        split = (None, None) if len(members) <= MAX_MEMBERS else None
    else:
        body_spans = _body_spans(members, bodies)
        split = None if body_spans is None else (body_spans, None)
    if split is None:
        return None
    rest = None
    counted: dict[bytes, int] = {}
    for key, vs, ve, _ks in members:
        if key == "items" and buf[vs] == ord("["):
            rest = []
            items: list[tuple[int, int]] = []
            _value(buf, vs, ve, 0, items)
            for s, e in items:
                item_key = _item_key(buf, s, e)
                if item_key is not None and type(decisions.get(item_key)) is tuple:
                    counted[item_key] = counted.get(item_key, 0) + 1
                else:
                    rest.append((s, e, item_key))
    return (*split, rest, document_key, counted)


# -- reading the route from a parsed record -------------------------------------------------------


def peek_route(obj: Any) -> tuple[str, str | None] | None:
    """Read the routing fields of a parsed, not yet normalised audit event, if that is exact.

    Returns ``(stage, key)`` where ``key`` is :func:`processor.records.audit.audit_key` of the
    normalised record (None: no objectRef), or None when only a full decode can tell (keys in
    another case, unknown keys, values of the wrong type). Records no policy wants are skipped
    from this alone, without decoding the rest: the skip path is the hot path.
    """
    if type(obj) is not dict or not obj.keys() <= EVENT_KEYS:
        return None
    stage = obj.get("stage")
    if stage is None:
        stage = ""
    elif type(stage) is not str:
        return None
    ref = obj.get("objectRef")
    if ref is None:
        return stage, None
    if type(ref) is not dict or not ref.keys() <= OBJECT_REF_KEYS:
        return None
    group = ref.get("apiGroup")
    resource = ref.get("resource")
    if group is None:
        group = ""
    if resource is None:
        resource = ""
    if type(group) is not str or type(resource) is not str:
        return None
    return stage, f"{group}/{resource}"


def peek_selector(obj: dict[str, Any]) -> tuple[str, str | None, str | None] | None:
    """``(verb, subresource, actor)`` of a record :func:`peek_route` accepted, as they read once
    decoded; ``actor`` is the ``actorRef.type`` of its rules
    (:func:`processor.records.audit.audit_actor_ref`).

    A null or absent verb reads ``""`` and an empty subresource is absent (Go's round trip, see
    :func:`processor.records.audit.decode_audit`); None when only a full decode can tell (a value
    of the wrong type). ``actor`` is None when only a full decode can tell the username (``user``
    keys in another case, a username that is not a string), which selects as if unknown.
    """
    verb = obj.get("verb")
    if verb is None:
        verb = ""
    elif type(verb) is not str:
        return None
    ref = obj.get("objectRef")
    sub = ref.get("subresource") if type(ref) is dict else None
    if sub is None or sub == "":
        sub = None
    elif type(sub) is not str:
        return None
    return verb, sub, _peek_actor(obj.get("user"))


def _peek_actor(user: Any) -> str | None:
    """``actorRef.type`` for the raw ``user`` value, None when only a full decode can tell."""
    if user is None:
        return "unknown"
    if type(user) is not dict or not user.keys() <= _USER_SET:
        return None
    username = user.get("username")
    if username is None:
        return "unknown"
    return audit_actor_type(username) if type(username) is str else None


# -- deciding -------------------------------------------------------------------------------------

#: Route keys remembered per table (distinct stage/verb/resource combinations).
DECISION_LIMIT = 65536
_UNKNOWN: Any = object()


class Routes:
    """The decisions of one translator: what a route tells, remembered per route key.

    ``items`` (route key -> :data:`Route`) is what :func:`split_routed` counts EventList items
    by, :meth:`documents` what it splits single documents by; ``unpack`` and
    ``unpack_document`` are the implementation's.
    """

    def __init__(
        self, engine: Engine, unpack: Any = unpack, unpack_document: Any = unpack_document
    ) -> None:
        self.engine = engine
        self._unpack = unpack
        self._unpack_document = unpack_document
        self.items: dict[bytes, Route] = {}
        self._documents: dict[Hint, dict[bytes, Route | None]] = {None: {}, "audit": {}}

    def outcome(
        self, stage: str, key: str | None, selector: tuple[str, str | None, str | None] | None
    ) -> Decision:
        """What a record's routing fields alone tell (:func:`peek_route`, :func:`peek_selector`).

        ``(routing key, skip reason)`` for a skipped record, ``(routing key, "")`` when no rule
        can match its verb, subresource and actor type (``selector``; None: unknown; an actor of
        None: not known), None when it must be read.
        """
        reason = self.engine.audit_skip_reason(stage, key)
        if reason:
            return key, reason
        assert key is not None
        if selector is not None and self.engine.audit_selects_nothing(key, *selector):
            return key, ""
        return None

    def decide(self, key: bytes) -> Route:
        """What an audit event with route ``key`` tells, remembered in :attr:`items`: its
        :meth:`outcome`, or (policies want it) the engine's
        :meth:`~processor.engine.Engine.audit_dispatch` for it."""
        found = self.items.get(key)
        if found is None:
            route = self._unpack(key)
            selector = (route.verb, route.subresource, route.actor)
            found = self.outcome(route.stage, route.index_key, selector)
            if found is None:  # wanted: it has an objectRef (else it is skipped)
                assert route.index_key is not None
                found = self.engine.audit_dispatch(route.index_key, *selector)
            if len(self.items) < DECISION_LIMIT:
                self.items[key] = found
        return found

    def documents(self, hint: Hint) -> dict[bytes, Route | None]:
        """The remembered :meth:`document` entries of document keys for ``hint``."""
        return self._documents[hint]

    def document(self, key: bytes, hint: Hint) -> Route | None:
        """What a single document with document route ``key`` tells: its :meth:`decide` when it
        classifies as an audit event (or as nothing, with the audit hint; ``hint`` is not
        ``event``); None when it does not (it is read). Remembered per hint.

        The one place a document is classified from its key: the key's ``kind``,
        ``apiVersion`` and the presence of ``auditID`` and ``stage`` are all
        :func:`~processor.records.event.classify_record` reads of a document whose keys are
        audit Event fields.
        """
        known = self._documents[hint]
        found = known.get(key, _UNKNOWN)
        if found is _UNKNOWN:
            doc = self._unpack_document(key)
            probe: dict[str, Any] = {"kind": doc.kind, "apiVersion": doc.api_version}
            if doc.has_audit_id:
                probe["auditID"] = None
            if doc.has_stage:
                probe["stage"] = None
            kind = classify_record(probe)
            found = None
            if kind == "audit" or (kind is None and hint == "audit"):
                found = self.decide(doc.route)
            if len(known) < DECISION_LIMIT:
                known[key] = found
        return found  # type: ignore[no-any-return]
