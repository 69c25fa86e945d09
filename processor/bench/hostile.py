"""Hostile inputs mixed with valid ones: the conservation suite's and the soak run's vocabulary.

A *spec* is a small tuple naming one message (``("top", b"42")``, ``("list", [...])``...);
:class:`Builder` turns it into bytes, giving every record an id unique to its builder (so one
run's outputs can be told apart from another's) and the current time (the activities table drops
rows past its TTL). The kinds (``docs/reliability.md``): every JSON type at the top level and as
EventList items, invalid UTF-8, truncated JSON, nesting of 100k levels, duplicate keys, wrong
types in the fields the bundled policies read, a field as large as the input stream takes, and a
name that renders an Activity larger than the output stream takes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson

from processor.bench.corpus import generate

__all__ = [
    "AUDITS",
    "DEEP",
    "EVENTS",
    "INPUT_LIMIT",
    "ITEM_VALUES",
    "MIB",
    "PATHS",
    "TOP_LEVEL",
    "WRONG",
    "Builder",
    "random_spec",
]

MIB = 1 << 20
#: The largest input record built: AUDIT_EVENTS' 10 MiB, less room for the subject and headers.
INPUT_LIMIT = 10 * MIB - 4096
_POOL = list(generate(40, seed=23))
AUDITS = [r for r in _POOL if r.get("apiVersion") == "audit.k8s.io/v1"]
EVENTS = [r for r in _POOL if r.get("apiVersion") != "audit.k8s.io/v1"]
TOP_LEVEL = [b"null", b"42", b"-0.5e3", b'"text"', b"true", b"false", b"[1,2,3]", b"{}", b"[]"]
ITEM_VALUES: list[Any] = [None, 42, -1.5, "text", True, [1, "a"], {}, {"kind": "Event"}]
WRONG: list[Any] = [None, 42, 1.5, True, "text", [1, "a"], {"x": 1}]
#: fields the bundled policies and the decoder read
PATHS = [
    ("verb",), ("stage",), ("auditID",), ("kind",), ("apiVersion",), ("objectRef",),
    ("objectRef", "name"), ("objectRef", "namespace"), ("objectRef", "resource"),
    ("objectRef", "apiGroup"), ("objectRef", "subresource"), ("user",), ("user", "username"),
    ("user", "groups"), ("user", "extra"), ("responseStatus",), ("responseStatus", "code"),
    ("requestObject",), ("responseObject",), ("annotations",), ("impersonatedUser",),
    ("requestReceivedTimestamp",), ("stageTimestamp",), ("sourceIPs",),
]  # fmt: skip
DEEP = 100_000


def _deployment(name: str, verb: str) -> dict[str, Any]:
    """An audit event of a Deployment that the bundled policies turn into an activity."""
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": "",
        "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1/namespaces/default/deployments",
        "verb": verb,
        "user": {"username": "alice", "uid": "uid-alice"},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {
            "resource": "deployments",
            "namespace": "default",
            "name": name,
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "requestReceivedTimestamp": "",
        "stageTimestamp": "",
    }


class Builder:
    """Turns specs into ``(subject, payload, hint)`` messages.

    Args:
        prefix: the start of every record id this builder gives (``auditID``, Event ``uid``).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def uid(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n}"

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """A copy with a unique id, dated now."""
        record = orjson.loads(orjson.dumps(record))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if "auditID" in record:
            record["auditID"] = self.uid()
            record["requestReceivedTimestamp"] = record["stageTimestamp"] = now
        else:
            record.setdefault("metadata", {})["uid"] = self.uid()
            for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
                if record.get(key):
                    record[key] = now if key == "eventTime" else now[:19] + "Z"
        return record

    def record(self, spec: tuple) -> Any:
        """One audit record (a dict, or bytes when it is not plain JSON) or a list item value."""
        kind = spec[0]
        if kind == "valid":
            return self.stamp(AUDITS[spec[1] % len(AUDITS)])
        if kind == "wanted":
            return self.stamp(_deployment(self.prefix + "web", spec[1]))
        if kind == "wrong":
            rec = self.stamp(AUDITS[spec[1] % len(AUDITS)])
            target = rec
            for key in spec[2][:-1]:
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                target = target[key]
            target[spec[2][-1]] = spec[3]
            return rec
        if kind == "dupkey":  # a repeated "verb": the last one counts, as in orjson and Go
            text = orjson.dumps(self.stamp(AUDITS[spec[1] % len(AUDITS)]))
            return text[:-1] + b',"verb":"create"}'
        if kind == "deepfield":
            text = orjson.dumps(self.stamp(AUDITS[spec[1] % len(AUDITS)]))
            return text[:-1] + b',"requestObject":' + b"[" * DEEP + b"]" * DEEP + b"}"
        if kind == "hugename":  # a create the policy renders: the name lands in the Activity
            return self.stamp(_deployment("n" * spec[1], "create"))
        if kind == "item":
            return spec[1]
        raise ValueError(f"unknown record spec {spec!r}")

    def message(self, spec: tuple) -> tuple[str, bytes, str]:
        """The ``(subject, payload, hint)`` of one message spec."""
        kind = spec[0]
        if kind == "top":
            return "audit.k8s.p0", spec[1], "audit"
        if kind == "eventtop":
            return "events.p0", spec[1], "event"
        if kind == "event":
            return "events.p1", orjson.dumps(self.stamp(EVENTS[spec[1] % len(EVENTS)])), "event"
        if kind == "utf8":
            text = orjson.dumps(self.stamp(AUDITS[spec[1] % len(AUDITS)]))
            cut = text.index(b'"auditID":"') + 11
            return "audit.k8s.p1", text[:cut] + b"\xff\xfe" + text[cut:], "audit"
        if kind == "truncated":
            text = orjson.dumps(self.stamp(AUDITS[spec[1] % len(AUDITS)]))
            return "audit.k8s.p0", text[: int(len(text) * spec[2])], "audit"
        if kind == "deep":
            return "audit.k8s.p1", b"[" * DEEP + b"]" * DEEP, "audit"
        if kind == "hugeinput":  # a record as large as the input stream takes
            rec = self.stamp(_deployment(self.prefix + "big", "create"))
            rec["requestObject"] = {"data": "x" * (INPUT_LIMIT - 1000)}
            return "audit.k8s.p0", orjson.dumps(rec), "audit"
        if kind == "list":
            items = [self.record(s) for s in spec[1]]
            parts = [i if isinstance(i, bytes) else orjson.dumps(i) for i in items]
            body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
            return "audit.k8s.p1", body + b",".join(parts) + b"]}", "audit"
        rec = self.record(spec)
        return "audit.k8s.p0", rec if isinstance(rec, bytes) else orjson.dumps(rec), "audit"


def random_spec(rng: random.Random, hostile: float, large: float = 0.0) -> tuple:
    """A message spec: hostile with probability ``hostile``; a huge one (a 10 MiB input or a
    1 MiB name) with probability ``large``; else a valid record, a wanted one or an EventList."""
    if rng.random() < large:
        return rng.choice([("hugeinput",), ("hugename", MIB + 7)])
    if rng.random() >= hostile:
        valid = [("valid", rng.randrange(len(AUDITS))), ("wanted", "create")]
        if rng.random() < 0.3:
            return ("list", [rng.choice(valid) for _ in range(rng.randint(1, 100))])
        return rng.choice([*valid, ("event", rng.randrange(len(EVENTS)))])
    return rng.choice(
        [
            ("top", rng.choice(TOP_LEVEL)),
            ("eventtop", rng.choice(TOP_LEVEL)),
            ("utf8", rng.randrange(len(AUDITS))),
            ("truncated", rng.randrange(len(AUDITS)), rng.random()),
            ("deep",),
            ("deepfield", rng.randrange(len(AUDITS))),
            ("dupkey", rng.randrange(len(AUDITS))),
            ("wrong", rng.randrange(len(AUDITS)), rng.choice(PATHS), rng.choice(WRONG)),
            ("list", [("item", rng.choice(ITEM_VALUES)), ("wanted", "update")]),
        ]
    )
