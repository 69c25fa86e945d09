"""Dead-letter records (``docs/design.md#pipeline-8-5``, ``#d7``).

A record that cannot be turned into an Activity is published to the DLQ with its original payload,
the reason and enough context to retry it. Field order is upstream's: ``type, originalPayload,
[originalPayloadEncoding,] error, errorType, policyName, policyVersion, ruleIndex, timestamp,
[tenant,] [resource,] retryCount, [lastRetryAt,] [nextRetryAfter]``.

``originalPayload`` is the input embedded as JSON when it is valid JSON (byte for byte, not
re-encoded: in the record dict it is an ``orjson.Fragment``). Upstream cannot dead-letter anything
else (its marshal fails and the message is redelivered for ever); here a payload that is not JSON
is kept as a JSON string (UTF-8 text) or as base64 (other bytes), and the extra key
``originalPayloadEncoding`` (``text``/``base64``) says so, so the record is never lost.
:func:`original_payload_bytes` gives the bytes back for a retry.

Error types are accurate (docs/design.md#d7): a failing match is ``cel_match``, not ``cel_summary``.
Beyond upstream's, ``internal`` (an unexpected exception while handling one record),
``activity_too_large`` (the rendered Activity exceeds the ACTIVITIES stream's message size) and
``max_deliveries`` (NATS gave up redelivering an input) keep every input accounted for
(``docs/reliability.md``).

A dead letter too large for the dead-letter stream is published as a pointer instead
(:func:`pointer_record`): ``originalPayload`` is null and ``originalPayloadRef`` names the input
stream, sequence and byte span that hold the payload; ``activity dlq retry`` reads it from there.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any, Final

import orjson

from processor.records import timefmt
from processor.records.spans import member_span

__all__ = [
    "CEL_MATCH",
    "CEL_SUMMARY",
    "ERROR_TYPES",
    "EVENT_TYPES",
    "INTERNAL",
    "KIND_RESOLVE",
    "MAX_DELIVERIES",
    "PUBLISH",
    "TOO_LARGE",
    "UNMARSHAL",
    "audit_dlq_resource",
    "dead_letter_record",
    "decode_dead_letter",
    "encode_dead_letter",
    "event_dlq_resource",
    "original_payload_bytes",
    "payload_from_ref",
    "pointer_record",
]

UNMARSHAL: Final = "unmarshal"
CEL_MATCH: Final = "cel_match"
CEL_SUMMARY: Final = "cel_summary"
KIND_RESOLVE: Final = "kind_resolve"
PUBLISH: Final = "publish"
INTERNAL: Final = "internal"
TOO_LARGE: Final = "activity_too_large"
MAX_DELIVERIES: Final = "max_deliveries"
ERROR_TYPES: Final = frozenset(
    {UNMARSHAL, CEL_MATCH, CEL_SUMMARY, KIND_RESOLVE, PUBLISH, INTERNAL, TOO_LARGE, MAX_DELIVERIES}
)
#: Longest ``error`` text kept (an error can quote a value of any size).
MAX_ERROR_CHARS: Final = 4096
#: Longest resource or tenant field a pointer keeps (Kubernetes names stop at 253).
MAX_NAME_CHARS: Final = 512
EVENT_TYPES: Final = frozenset({"audit", "k8s-event"})


def _is_json(payload: bytes) -> bool:
    # orjson, not the stdlib: the retry side decodes the record with orjson, so a payload is
    # embedded only when orjson reads it (a few exotic valid documents, e.g. ``1e400``, are not).
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


def _payload_fields(payload: Any) -> dict[str, Any]:
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    elif isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    elif not isinstance(payload, bytes):  # an already-decoded value (dict, list, number, null)
        try:
            return {"originalPayload": orjson.Fragment(orjson.dumps(payload))}
        except TypeError:
            payload = repr(payload).encode()
    if payload.strip() and _is_json(payload):
        return {"originalPayload": orjson.Fragment(payload)}
    try:
        return {"originalPayload": payload.decode("utf-8"), "originalPayloadEncoding": "text"}
    except UnicodeDecodeError:
        return {
            "originalPayload": base64.b64encode(payload).decode("ascii"),
            "originalPayloadEncoding": "base64",
        }


def _omit_empty(d: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    d = d or {}
    return {k: d[k] for k in keys if d.get(k)}


def dead_letter_record(
    event_type: str,
    original_payload: bytes | str | dict[str, Any] | list[Any],
    error: str,
    error_type: str,
    policy_name: str = "",
    policy_version: int = 0,
    rule_index: int = -1,
    tenant: dict[str, str] | None = None,
    resource: dict[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A DLQ record in the field order of docs/design.md#pipeline-8-5.

    Args:
        event_type: ``audit`` or ``k8s-event``.
        original_payload: the input message body (bytes as received).
        error: the error text.
        error_type: one of :data:`ERROR_TYPES`.
        policy_name, policy_version, rule_index: the failing policy and rule (-1: before rules).
        tenant: ``{type, name}`` (empty fields omitted); None omits the key.
        resource: ``{apiGroup, kind, name, namespace}`` (empty fields omitted); None omits it.
        now: time of failure (default: now); serialised as RFC3339 seconds, UTC.

    Raises:
        ValueError: unknown event type or error type.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown DLQ event type {event_type!r}")
    if error_type not in ERROR_TYPES:
        raise ValueError(f"unknown DLQ error type {error_type!r}")
    record: dict[str, Any] = {"type": event_type}
    record.update(_payload_fields(original_payload))
    record["error"] = _clip(error)
    record["errorType"] = error_type
    record["policyName"] = policy_name
    record["policyVersion"] = policy_version
    record["ruleIndex"] = rule_index
    record["timestamp"] = timefmt.format_seconds(now) if now else timefmt.now_seconds()
    if tenant is not None:
        record["tenant"] = _omit_empty(tenant, ("type", "name"))
    if resource is not None:
        record["resource"] = _omit_empty(resource, ("apiGroup", "kind", "name", "namespace"))
    record["retryCount"] = 0
    return record


def _clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def pointer_record(
    record: dict[str, Any], stream: str, sequence: int, span: tuple[int, int], payload: bytes
) -> dict[str, Any]:
    """``record`` without its payload, pointing at where the payload is kept instead.

    Args:
        record: a dead letter from :func:`dead_letter_record`.
        stream, sequence: the input message that holds the payload.
        span: ``(start, end)`` of the payload within that message's data.
        payload: the payload itself (for its size and digest).
    """
    out = {k: v for k, v in record.items() if k != "originalPayloadEncoding"}
    for key in ("resource", "tenant"):  # their values come from the record: any size
        if isinstance(out.get(key), dict):
            out[key] = {k: _clip(v, MAX_NAME_CHARS) for k, v in out[key].items()}
    out["originalPayload"] = None
    out["originalPayloadRef"] = {
        "stream": stream,
        "sequence": sequence,
        "start": span[0],
        "end": span[1],
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    out["error"] = _clip(
        f"{record.get('error', '')} [payload of {len(payload)} bytes too large for the "
        f"dead-letter stream: kept in {stream} at sequence {sequence}]"
    )
    return out


def payload_from_ref(ref: dict[str, Any], data: bytes) -> bytes:
    """The payload a pointer's ``originalPayloadRef`` names, cut from its message ``data``.

    Raises:
        ValueError: the span or the digest does not match (the message is not the one named).
    """
    start, end = int(ref["start"]), int(ref["end"])
    if not 0 <= start <= end <= len(data):
        raise ValueError(f"span [{start}, {end}) is outside the message of {len(data)} bytes")
    payload = data[start:end]
    if hashlib.sha256(payload).hexdigest() != ref.get("sha256"):
        raise ValueError("payload digest does not match the dead letter's originalPayloadRef")
    return payload


def encode_dead_letter(record: dict[str, Any]) -> bytes:
    """The record's JSON (the original payload embedded verbatim when it is JSON)."""
    return orjson.dumps(record)


def decode_dead_letter(data: bytes | str) -> dict[str, Any]:
    """Parse a DLQ message body (the retry side); ``originalPayload`` comes back parsed.

    Raises:
        ValueError: not a JSON object (``orjson.JSONDecodeError`` is a ValueError).
    """
    record = orjson.loads(data)
    if type(record) is not dict:
        raise ValueError("dead-letter record is not a JSON object")
    return record


def original_payload_bytes(record: dict[str, Any], data: bytes | None = None) -> bytes:
    """The input bytes to republish from a decoded DLQ record (:func:`decode_dead_letter`).

    With the DLQ message's ``data``, a JSON payload comes back byte for byte (its text in the
    message); without it, compact (as upstream's Go re-compacting does). A pointer record
    (``originalPayloadRef``) holds no payload: read it with :func:`payload_from_ref`.
    """
    payload = record.get("originalPayload")
    encoding = record.get("originalPayloadEncoding")
    if data is not None and encoding is None:
        span = member_span(data, "originalPayload")
        if span is not None:
            return data[span[0] : span[1]]
    if encoding == "text" and isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    if encoding == "base64" and isinstance(payload, str):
        return base64.b64decode(payload)
    return orjson.dumps(payload)


def audit_dlq_resource(audit: dict[str, Any], kind: str) -> dict[str, str]:
    """DLQ ``resource`` of an audit policy failure: objectRef group/name/namespace + policy Kind."""
    ref = audit.get("objectRef")
    if type(ref) is not dict:
        ref = {}
    return {
        "apiGroup": ref.get("apiGroup", ""),
        "kind": kind,
        "name": ref.get("name", ""),
        "namespace": ref.get("namespace", ""),
    }


def event_dlq_resource(api_group: str, kind: str, involved: dict[str, Any]) -> dict[str, str]:
    """DLQ ``resource`` of an event failure: derived group and Kind, involved name/namespace."""
    name = involved.get("name")
    namespace = involved.get("namespace")
    return {
        "apiGroup": api_group,
        "kind": kind,
        "name": name if type(name) is str else "",
        "namespace": namespace if type(namespace) is str else "",
    }
