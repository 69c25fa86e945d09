"""One input payload -> activities and dead letters: the step shared by replay and streaming.

A payload is one JSON document: an audit Event, an audit EventList (docs/design.md#d12), a
Kubernetes Event or, on the EVENTS stream (the ``event`` hint), a list of Kubernetes Events
(:func:`processor.records.event.is_event_list`). Nothing here raises, for bad input or for a
bug: a malformed or oversize payload, a record that decodes to the wrong shape, and every
failing policy become dead-letter records (upstream DLQ format, docs/design.md#d7); an
unexpected exception dead-letters its record or EventList item alone (``internal``). Each dead
letter keeps its record's bytes (an item's span in the list), and each output remembers where its
text is (:data:`Origin`), so the pipeline can dead-letter an Activity too large to publish. The
contract: ``docs/reliability.md``.

Two paths give identical results:

- the reference path (the specification): ``orjson.loads`` of the payload, :func:`decode_audit`,
  every rule evaluated in order;
- the fast path, taken by default on both implementations (:class:`processor.native.Implementation`:
  the Cython units or their pure-Python twins): the scanner validates the payload and locates its
  members without building them, and the route (:mod:`processor.records.route`) reads the routing
  fields of each EventList item (and of a single audit event) into a route key; records no policy
  wants, or no rule can match, are counted from the remembered decision of their key, never
  parsed; wanted ones are decoded from their bytes straight into their normalised values, bodies
  pruned to what the policies read (:mod:`processor.records.typed`, no JSON parser on the way),
  and only rules whose guards pass are evaluated
  (:class:`processor.engine.RuleTable`); Kubernetes Events (small) are decoded whole, each item
  of a list of Events alone. Anything
  unusual -- input the scanner doubts, keys in another case, a record that fails to decode, any
  failing policy (dead letters) -- is handed to the reference path, so dead letters and errors
  are the reference's by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from processor.activity import Built, audit_tenant
from processor.cel.needs import BODIES
from processor.deadletter import (
    INTERNAL,
    UNMARSHAL,
    audit_dlq_resource,
    dead_letter_record,
    event_dlq_resource,
)
from processor.engine import AuditDispatch, Engine, Translation
from processor.errors import RecordError
from processor.native import Implementation
from processor.records import classify_record, decode_audit, decode_event, involved_object
from processor.records._json import a_json_type, json_type
from processor.records.audit import audit_key
from processor.records.event import is_event_list
from processor.records.route import Outcome, Routes, peek_route, peek_selector
from processor.records.spans import ListSpans
from processor.records.typed import Needs

log = logging.getLogger(__name__)

Hint = Literal["audit", "event"] | None
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024  # AUDIT_EVENTS maxMsgSize upstream

# Members the fast path leaves unparsed: the audit bodies, and an EventList's items.
_SPLIT = frozenset((*BODIES, "items"))
# Members classification and routing read (every other key is kept, as null, for presence tests);
# ``user`` gives the actor type that rules guard on (``peek_selector``).
_ROUTE = frozenset(
    ("kind", "apiVersion", "stage", "verb", "objectRef", "user", "regarding", "involvedObject")
)
_UNDECIDED: Any = object()
#: Where a record's text is: ``payload[start:end]`` (the whole payload, or one EventList item).
Origin = tuple[bytes, int, int]


@dataclass
class Output:
    """What one or more payloads produced, with counters for the summary line and metrics."""

    activities: list[Built] = field(default_factory=list)
    #: the name of the policy behind each of ``activities``, in the same order
    policies: list[str] = field(default_factory=list)
    #: the input text behind each of ``activities`` (for a dead letter if it cannot be published)
    origins: list[Origin] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    #: the input text behind each of ``dead_letters``, in the same order
    dead_origins: list[Origin] = field(default_factory=list)
    records: int = 0
    no_match: int = 0
    skipped: int = 0
    errors: int = 0
    #: skipped records by reason (``no_object_ref``, ``stage``, ``no_matching_policy``, ...)
    skip_reasons: dict[str, int] = field(default_factory=dict)
    #: audit events read, by routing key ``"<apiGroup>/<resource>"`` (``"/"``: no objectRef)
    received: dict[str, int] = field(default_factory=dict)

    def clear(self) -> None:
        self.activities.clear()
        self.policies.clear()
        self.origins.clear()
        self.dead_letters.clear()
        self.dead_origins.clear()

    def dead(self, record: dict[str, Any], origin: Origin) -> None:
        """Add the dead letter ``record`` of the input text at ``origin``."""
        self.dead_letters.append(record)
        self.dead_origins.append(origin)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` records skipped for ``reason``."""
        self.skipped += n
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + n

    def receive(self, key: str | None, n: int = 1) -> None:
        """Count ``n`` audit events with routing key ``key`` (None: no objectRef)."""
        key = "/" if key is None else key
        self.received[key] = self.received.get(key, 0) + n

    def count(self, outcome: Outcome, n: int = 1) -> None:
        """Count ``n`` audit events with a known outcome (:meth:`Routes.outcome`): received,
        and skipped for its reason or not matched (:meth:`receive` and :meth:`skip` in one)."""
        key, reason = outcome
        key = "/" if key is None else key
        self.records += n
        self.received[key] = self.received.get(key, 0) + n
        if reason:
            self.skipped += n
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + n
        else:
            self.no_match += n


class Translator:
    """Turns payloads into activities with an :class:`Engine`.

    Args:
        engine: the compiled policies; its :attr:`~processor.engine.Engine.impl` runs the
            scanner, the route and the decoder too.
        max_record_bytes: larger payloads are dead-lettered unread (``unmarshal``).
        fast: the fast path (True), or the reference path alone (False: the specification the
            fast path is tested against).
    """

    def __init__(
        self,
        engine: Engine,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        *,
        fast: bool = True,
    ) -> None:
        self.engine = engine
        self.max_record_bytes = max_record_bytes
        impl: Implementation = engine.impl
        self.impl = impl
        self.fast = fast
        self._scan = impl.jsonscan
        self._split_routed = impl.route.split_routed
        self._typed = impl.typed.decode_audit_typed
        #: route key -> what it tells, of EventList items and (per hint) of single documents
        self.routes = Routes(engine, impl.route.unpack, impl.route.unpack_document)
        #: payloads or items the fast path raised on (the reference took them): a bug if not 0
        self.fast_path_errors = 0

    @property
    def implementation(self) -> str:
        """``native`` or ``python``: the implementation this translator runs."""
        return self.impl.name

    def translate_many(self, payloads: Iterable[bytes], out: Output, hint: Hint = None) -> None:
        """Translate every payload of ``payloads`` into ``out`` (see :meth:`translate`)."""
        translate = self.translate
        for payload in payloads:
            translate(payload, out, hint)

    def translate(self, payload: bytes, out: Output, hint: Hint = None) -> None:
        """Translate one payload into ``out``.

        Args:
            payload: the raw JSON bytes.
            out: accumulates activities, dead letters and counters.
            hint: the stream the payload came from (``audit`` or ``event``); None detects it.
        """
        if type(payload) is not bytes:
            payload = bytes(payload) if isinstance(payload, bytearray | memoryview) else payload
            if isinstance(payload, str):
                payload = payload.encode("utf-8", "surrogatepass")
        if self.fast and type(payload) is bytes and len(payload) <= self.max_record_bytes:
            try:
                if self._fast(payload, out, hint):
                    return
            except Exception:  # out is untouched when the fast path raises: the reference decides
                self.fast_path_errors += 1
                log.debug(
                    "fast path failed on a payload; the reference path takes it", exc_info=True
                )
        records = out.records
        try:
            self._reference(payload, out, hint)
        except Exception as exc:  # a bug, not bad input: the payload is kept, the stream goes on
            log.error("translating a payload failed: %r", exc, exc_info=True)
            if out.records == records:
                out.records += 1
            self._internal(out, "k8s-event" if hint == "event" else "audit", _whole(payload), exc)

    def _reference(self, payload: bytes, out: Output, hint: Hint) -> None:
        dlq_type = "k8s-event" if hint == "event" else "audit"
        origin = _whole(payload)
        if len(payload) > self.max_record_bytes:
            out.records += 1
            self._unmarshal(
                out,
                dlq_type,
                origin,
                f"record of {len(payload)} bytes exceeds the limit of "
                f"{self.max_record_bytes} bytes",
            )
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            out.records += 1
            self._unmarshal(out, dlq_type, origin, f"invalid JSON: {_json_error(exc, payload)}")
            return
        if hint == "event" and is_event_list(obj):
            items = obj.get("items")
            if type(items) is not list:
                out.records += 1
                what = json_type(items) if "items" in obj else "missing"
                self._unmarshal(
                    out, "k8s-event", origin, f"EventList items must be a list, not {what}"
                )
                return
            spans = ListSpans(payload, items)
            for i, item in enumerate(items):
                self._guarded_event(item, out, spans, i)
            return
        kind = classify_record(obj) if hint != "event" else "event"
        if kind == "audit_list":
            items = obj.get("items")
            if type(items) is not list:
                out.records += 1
                what = json_type(items) if "items" in obj else "missing"
                self._unmarshal(out, "audit", origin, f"EventList items must be a list, not {what}")
                return
            spans = ListSpans(payload, items)
            for i, item in enumerate(items):
                self._guarded(item, out, spans, i)
        elif type(obj) is not dict and hint != "event":
            out.records += 1
            self._unmarshal(out, dlq_type, origin, f"record is {a_json_type(obj)}, not an object")
        elif kind == "audit" or (kind is None and hint == "audit"):
            self._audit(obj, out, origin, "record")
        elif kind == "event":
            self._event(obj, out, origin)
        else:
            out.records += 1
            self._unmarshal(
                out,
                dlq_type,
                origin,
                "record is neither an audit event, an audit EventList nor a Kubernetes Event",
            )

    def _guarded(self, item: Any, out: Output, spans: ListSpans, i: int) -> None:
        """One EventList item through the reference path; an exception costs this item alone."""
        records = out.records
        try:
            self._audit(item, out, spans, i)
        except Exception as exc:
            log.error("translating EventList item %d failed: %r", i, exc, exc_info=True)
            if out.records == records:
                out.records += 1
            self._internal(out, "audit", spans.origin(i), exc, f"EventList item {i}: ")

    def _guarded_event(self, item: Any, out: Output, spans: ListSpans, i: int) -> None:
        """Item ``i`` of a list of Events through the reference path, as a single Event would go
        (``null`` is skipped); an item that is not an object, or an exception, costs it alone."""
        records = out.records
        try:
            if item is not None and type(item) is not dict:
                out.records += 1
                self._unmarshal(
                    out,
                    "k8s-event",
                    spans.origin(i),
                    f"EventList item {i} is {a_json_type(item)}, not an object",
                )
                return
            self._event(item, out, spans.origin(i))
        except Exception as exc:
            log.error("translating EventList item %d failed: %r", i, exc, exc_info=True)
            if out.records == records:
                out.records += 1
            self._internal(out, "k8s-event", spans.origin(i), exc, f"EventList item {i}: ")

    def _record(self, obj: Any, out: Output, origin: Origin) -> None:
        """A single audit event through the reference path; an exception dead-letters it
        (``internal``) once, whatever ``out`` holds by then (the caller must not retry it)."""
        records = out.records
        try:
            self._audit(obj, out, origin, "record")
        except Exception as exc:
            log.error("translating a record failed: %r", exc, exc_info=True)
            if out.records == records:
                out.records += 1
            self._internal(out, "audit", origin, exc)

    def _internal(
        self, out: Output, dlq_type: str, origin: Origin, exc: BaseException, where: str = ""
    ) -> None:
        out.errors += 1
        error = f"{where}internal error: {type(exc).__name__}: {exc}"
        out.dead(dead_letter_record(dlq_type, _text(origin), error, INTERNAL), origin)

    # -- fast path ---------------------------------------------------------------------------
    def _fast(self, payload: bytes, out: Output, hint: Hint) -> bool:
        """The fast path for ``payload``; False (``out`` untouched) hands it to the reference."""
        # the items of an EventList are routed as they are validated (see _fast_list); a single
        # document with a route key is split only as far as its remembered route reads it
        routes = self.routes
        documents = None if hint == "event" else routes.documents(hint)
        routed = self._split_routed(payload, _SPLIT, _ROUTE, routes.items, documents)
        if routed is None:
            return False
        spans, route_text, rest, key, counted = routed
        if route_text is None:  # a single document with a route key (documents given)
            found = documents.get(key, _UNDECIDED)  # type: ignore[union-attr, arg-type]
            if found is _UNDECIDED:
                found = routes.document(key, hint)  # type: ignore[arg-type]
            if isinstance(found, tuple):
                out.count(found)
                return True
            if found is not None:  # a wanted audit event: decoded from the bytes
                origin = _whole(payload)
                if not self._fast_dispatched(payload, 0, len(payload), found, out, origin, spans):
                    self._record(orjson.loads(payload), out, origin)
                return True
            # the first document of its key, and not an audit event: split to classify it
            split = self._scan.split_document(payload, _SPLIT, _ROUTE)
            if split is None:
                return False
            _, spans, route_text = split
        if rest is None and (hint == "event" or key is None):
            # a single document its route key does not classify (a Kubernetes Event, mostly):
            # decoded whole, once, and classified from that
            obj = orjson.loads(payload)
            if hint == "event" and is_event_list(obj):  # items not a list
                return False
            whole = classify_record(obj) if hint != "event" else "event"
            if whole == "event":
                return self._fast_event(payload, out, obj, _whole(payload), whole=True)
            if whole == "audit" or (whole is None and hint == "audit"):
                return self._fast_single_audit(payload, out, spans)
            return False
        # no route key (doubtful routing members), or not an audit event: classified from the
        # routing members' text
        probe = orjson.loads(route_text)
        if hint == "event" and is_event_list(probe):
            if rest is None or counted:  # items not a list; items counted as audit events
                return False
            self._fast_events(payload, rest, out)
            return True
        kind = classify_record(probe) if hint != "event" else "event"
        if kind == "event":
            return self._fast_event(payload, out, probe, _whole(payload))
        if kind == "audit_list":
            if rest is None:
                return False
            self._fast_list(payload, rest, counted, out)
            return True
        if kind == "audit" or (kind is None and hint == "audit"):
            return self._fast_single_audit(payload, out, spans)
        return False

    def _fast_single_audit(
        self, payload: bytes, out: Output, spans: dict[str, tuple[int, int]] | None
    ) -> bool:
        """A single audit event with no route key, decoded from its bytes (:meth:`_fast_audit`)."""
        origin = _whole(payload)
        if not self._fast_audit(
            payload, 0, len(payload), self.engine.audit_needs, out, origin, spans
        ):
            self._record(orjson.loads(payload), out, origin)
        return True

    def _fast_list(
        self,
        payload: bytes,
        rest: list[tuple[int, int, bytes | None]],
        counted: dict[bytes, int],
        out: Output,
    ) -> None:
        """The items of an EventList, routed as the scanner validated them (``split_routed``).

        Items whose route key has a known outcome (skipped, or no rule can match) were only
        counted, in ``counted``; the others (``rest``) take the per-record fast path, in order.
        """
        routes = self.routes
        decisions = routes.items
        spans: ListSpans | None = None
        for s, e, key in rest:
            origin = (payload, s, e)
            try:
                if key is None:
                    needs = self.engine.audit_needs
                    if self._fast_audit(payload, s, e, needs, out, origin):
                        continue
                else:
                    found = routes.decide(key)
                    if isinstance(found, tuple):
                        out.count(found)
                        continue
                    if self._fast_dispatched(payload, s, e, found, out, origin):
                        continue
            except Exception:  # out is untouched: the reference path takes the item
                self.fast_path_errors += 1
                log.debug("fast path failed on an EventList item", exc_info=True)
            if spans is None:
                spans = ListSpans(payload, None)
            self._guarded(orjson.loads(payload[s:e]), out, spans, spans.index_of(s, e))
        for key, n in counted.items():
            out.count(decisions[key], n)  # type: ignore[arg-type]  # counted: an outcome

    def _fast_audit(
        self,
        buf: bytes,
        start: int,
        end: int,
        needs: Needs,
        out: Output,
        origin: Origin,
        spans: dict[str, tuple[int, int]] | None = None,
    ) -> bool:
        """The audit event at ``buf[start:end]`` with no route key, decoded from its bytes
        (:func:`processor.records.typed.decode_audit_typed`, bodies pruned to ``needs``; the
        scanner's body ``spans`` when at hand) and routed once decoded; False (``out``
        untouched) for the reference path."""
        audit = self._typed(buf, start, end, needs, spans)
        if audit is None:
            return False
        result = self.engine.translate_audit(audit, dispatch=True)
        if result.failures:
            return False
        out.records += 1
        out.receive(audit_key(audit))
        self._collect(result, out, origin)
        return True

    def _fast_dispatched(
        self,
        buf: bytes,
        start: int,
        end: int,
        dispatch: AuditDispatch,
        out: Output,
        origin: Origin,
        spans: dict[str, tuple[int, int]] | None = None,
    ) -> bool:
        """:meth:`_fast_audit` of an audit event whose route key the policies want: its
        ``dispatch`` gives the needs, the index key and the rules that may match."""
        audit = self._typed(buf, start, end, dispatch.needs, spans)
        if audit is None:
            return False
        result = self.engine.translate_dispatched(audit, dispatch)
        if result.failures:
            return False
        out.records += 1
        out.receive(dispatch.key)
        self._collect(result, out, origin)
        return True

    def _fast_event(
        self, buf: bytes, out: Output, probe: dict, origin: Origin, *, whole: bool = False
    ) -> bool:
        """A Kubernetes Event, the text at ``origin``; False (``out`` untouched) for the
        reference path.

        Skipped from its involved object alone when no policy wants it; else decoded whole.
        ``probe`` is its parsed route text, or (``whole``) the event itself, decoded once:
        then its numbers become floats in place, as the reference path's ``decode_event`` does.
        """
        found = involved_object(probe)
        if found is None or f"{found[0]}/{found[1]}" not in self.engine.event_index:
            out.records += 1
            out.skip("no_involved_object" if found is None else "no_matching_policy")
            return True
        if whole:
            event = self._scan.floatify(probe)
        else:
            _, start, end = origin
            event = self._scan.floatify(
                orjson.loads(buf if start == 0 and end == len(buf) else buf[start:end])
            )
        result = self.engine.translate_event(event, dispatch=True)
        if result.failures:
            return False
        out.records += 1
        self._collect(result, out, origin)
        return True

    def _fast_events(
        self, payload: bytes, rest: list[tuple[int, int, bytes | None]], out: Output
    ) -> None:
        """The items of a list of Events (their spans, as the scanner validated them), in order;
        an item that is not an object, or that the fast path doubts, takes the reference path."""
        spans: ListSpans | None = None
        for s, e, _key in rest:
            item = orjson.loads(payload[s:e])
            try:
                if type(item) is dict and self._fast_event(
                    payload, out, item, (payload, s, e), whole=True
                ):
                    continue
            except Exception:  # out is untouched: the reference path takes the item
                self.fast_path_errors += 1
                log.debug("fast path failed on an EventList item", exc_info=True)
            if spans is None:
                spans = ListSpans(payload, None)
            self._guarded_event(item, out, spans, spans.index_of(s, e))

    # -- reference path ------------------------------------------------------------------------
    def _unmarshal(self, out: Output, dlq_type: str, origin: Origin, error: str) -> None:
        out.errors += 1
        out.dead(dead_letter_record(dlq_type, _text(origin), error, UNMARSHAL), origin)

    def _audit(self, obj: Any, out: Output, at: Origin | ListSpans, where: str | int) -> None:
        """One audit event (decoded JSON): ``at`` and ``where`` say where its text is --
        the whole payload (an :data:`Origin`, ``where`` names it) or item ``where`` of a list."""
        if type(obj) is dict:
            route = peek_route(obj)
            if route is not None:
                decision = self.routes.outcome(*route, peek_selector(obj))
                if decision is not None:
                    out.count(decision)
                    return
        out.records += 1
        origin = at.origin(int(where)) if isinstance(at, ListSpans) else at
        if type(obj) is not dict:
            name = f"EventList item {where}" if isinstance(at, ListSpans) else str(where)
            self._unmarshal(out, "audit", origin, f"{name} is {a_json_type(obj)}, not an object")
            return
        try:
            audit = decode_audit(obj, copy=False)
        except RecordError as exc:
            self._unmarshal(out, "audit", origin, str(exc))
            return
        out.receive(audit_key(audit))
        result = self.engine.translate_audit(audit)
        self._collect(result, out, origin)
        if result.failures:
            original = _text(origin)
            tenant = audit_tenant(audit.get("user"))
            for f in result.failures:
                out.dead(
                    dead_letter_record(
                        "audit",
                        original,
                        f"rule {f.rule_index} {_stage(f.error_type)}: {f.message}",
                        f.error_type,
                        f.policy.name,
                        0,
                        f.rule_index,
                        tenant,
                        audit_dlq_resource(audit, f.policy.kind),
                    ),
                    origin,
                )

    def _event(self, obj: Any, out: Output, origin: Origin) -> None:
        out.records += 1
        try:
            event = decode_event(obj, copy=False)
        except RecordError as exc:
            self._unmarshal(out, "k8s-event", origin, str(exc))
            return
        result = self.engine.translate_event(event)
        self._collect(result, out, origin)
        if result.failures:
            found = involved_object(event) if event is not None else None
            api_group, _kind, involved = found if found is not None else ("", "", {})
            original = _text(origin)
            for f in result.failures:
                out.dead(
                    dead_letter_record(
                        "k8s-event",
                        original,
                        f"failed to evaluate {_stage(f.error_type)}: {f.message}",
                        f.error_type,
                        f.policy.name,
                        0,
                        f.rule_index,
                        None,
                        event_dlq_resource(api_group, f.policy.kind, involved),
                    ),
                    origin,
                )

    @staticmethod
    def _collect(result: Translation, out: Output, origin: Origin) -> None:
        if result.activity is not None:
            out.activities.append(result.activity)
            out.policies.append(result.policy.name if result.policy is not None else "")
            out.origins.append(origin)
        elif result.skipped:
            out.skip(result.skipped)
        elif not result.failures:
            out.no_match += 1
        out.errors += len(result.failures)


def _stage(error_type: str) -> str:
    return {"cel_match": "match", "cel_summary": "summary"}.get(error_type, "build")


def _whole(payload: bytes) -> Origin:
    return payload, 0, len(payload)


def _text(origin: Origin) -> bytes:
    """The input text at ``origin``."""
    buf, start, end = origin
    return buf if start == 0 and end == len(buf) else buf[start:end]


def _json_error(exc: Exception, payload: bytes) -> str:
    text = str(exc)
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start}"
    return text
