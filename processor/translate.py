"""One input payload -> activities and dead letters: the step shared by replay and streaming.

A payload is one JSON document: an audit Event, an audit EventList (decision 12) or a Kubernetes
Event. Nothing here raises for bad input: a malformed or oversize payload, a record that decodes
to the wrong shape, and every failing policy become dead-letter records (upstream DLQ format,
decision 7) and the caller goes on with the next payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from processor.activity import audit_tenant
from processor.deadletter import audit_dlq_resource, dead_letter_record, event_dlq_resource
from processor.engine import Engine, Translation
from processor.errors import RecordError
from processor.records import classify_record, decode_audit, decode_event, involved_object
from processor.records.audit import peek_route

Hint = Literal["audit", "event"] | None
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024  # AUDIT_EVENTS maxMsgSize upstream


@dataclass
class Output:
    """What one or more payloads produced, with counters for the summary line and metrics."""

    activities: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    no_match: int = 0
    skipped: int = 0
    errors: int = 0

    def clear(self) -> None:
        self.activities.clear()
        self.dead_letters.clear()


class Translator:
    """Turns payloads into activities with an :class:`Engine`.

    Args:
        engine: the compiled policies.
        max_record_bytes: larger payloads are dead-lettered unread (``unmarshal``).
    """

    def __init__(self, engine: Engine, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.engine = engine
        self.max_record_bytes = max_record_bytes

    def translate(self, payload: bytes, out: Output, hint: Hint = None) -> None:
        """Translate one payload into ``out``.

        Args:
            payload: the raw JSON bytes.
            out: accumulates activities, dead letters and counters.
            hint: the stream the payload came from (``audit`` or ``event``); None detects it.
        """
        dlq_type = "k8s-event" if hint == "event" else "audit"
        if len(payload) > self.max_record_bytes:
            out.records += 1
            self._unmarshal(
                out,
                dlq_type,
                payload,
                f"record of {len(payload)} bytes exceeds the limit of "
                f"{self.max_record_bytes} bytes",
            )
            return
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            out.records += 1
            self._unmarshal(out, dlq_type, payload, f"invalid JSON: {exc}")
            return
        kind = classify_record(obj) if hint != "event" else "event"
        if kind == "audit_list":
            items = obj.get("items")
            if type(items) is not list:
                out.records += 1
                self._unmarshal(out, "audit", payload, "EventList items must be a list")
                return
            for item in items:
                self._audit(item, out, None)
        elif kind == "audit" or (kind is None and hint == "audit"):
            self._audit(obj, out, payload)
        elif kind == "event":
            self._event(obj, out, payload)
        else:
            out.records += 1
            self._unmarshal(
                out,
                dlq_type,
                payload,
                "record is neither an audit event, an audit EventList nor a Kubernetes Event",
            )

    def _unmarshal(self, out: Output, dlq_type: str, payload: Any, error: str) -> None:
        out.errors += 1
        out.dead_letters.append(dead_letter_record(dlq_type, payload, error, "unmarshal"))

    def _audit(self, obj: Any, out: Output, payload: bytes | None) -> None:
        out.records += 1
        route = peek_route(obj)
        if route is not None and self.engine.audit_skip_reason(*route):
            out.skipped += 1
            return
        try:
            audit = decode_audit(obj, copy=False)
        except RecordError as exc:
            self._unmarshal(out, "audit", payload if payload is not None else obj, str(exc))
            return
        result = self.engine.translate_audit(audit)
        self._collect(result, out)
        if result.failures:
            original = payload if payload is not None else obj
            tenant = audit_tenant(audit.get("user"))
            for f in result.failures:
                out.dead_letters.append(
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
                    )
                )

    def _event(self, obj: Any, out: Output, payload: bytes | None) -> None:
        out.records += 1
        try:
            event = decode_event(obj, copy=False)
        except RecordError as exc:
            self._unmarshal(out, "k8s-event", payload if payload is not None else obj, str(exc))
            return
        result = self.engine.translate_event(event)
        self._collect(result, out)
        if result.failures:
            found = involved_object(event) if event is not None else None
            api_group, _kind, involved = found if found is not None else ("", "", {})
            for f in result.failures:
                out.dead_letters.append(
                    dead_letter_record(
                        "k8s-event",
                        payload if payload is not None else obj,
                        f"failed to evaluate {_stage(f.error_type)}: {f.message}",
                        f.error_type,
                        f.policy.name,
                        0,
                        f.rule_index,
                        None,
                        event_dlq_resource(api_group, f.policy.kind, involved),
                    )
                )

    @staticmethod
    def _collect(result: Translation, out: Output) -> None:
        if result.activity is not None:
            out.activities.append(result.activity)
        elif result.skipped:
            out.skipped += 1
        elif not result.failures:
            out.no_match += 1
        out.errors += len(result.failures)


def _stage(error_type: str) -> str:
    return {"cel_match": "match", "cel_summary": "summary"}.get(error_type, "build")
