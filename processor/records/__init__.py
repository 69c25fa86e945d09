"""Input records: audit.k8s.io/v1 Events and Kubernetes Events, decoded and normalised.

The decoders produce plain dicts (every JSON number a float) that the CEL evaluator reads and
the activity builder turns into Activities.
"""

from processor.records.audit import audit_actor_ref, audit_key, audit_vars, decode_audit
from processor.records.event import (
    classify_record,
    decode_event,
    event_actor,
    event_key,
    event_source,
    event_vars,
    involved_object,
    normalize_event,
)

__all__ = [
    "audit_actor_ref",
    "audit_key",
    "audit_vars",
    "classify_record",
    "decode_audit",
    "decode_event",
    "event_actor",
    "event_key",
    "event_source",
    "event_vars",
    "involved_object",
    "normalize_event",
]
