"""The demo's records as HTTP requests to ``activity ingest``, as a cluster would send them.

Audit records go to ``/audit`` as ``audit.k8s.io/v1`` EventLists, batched the way kube-apiserver's
audit webhook batches them in ``batch`` mode with the settings ``docs/ingest.md`` recommends
(``--audit-webhook-batch-max-size=400``, ``--audit-webhook-batch-max-wait=1s``): a batch is sent
once it holds :data:`BATCH_MAX_SIZE` records, or when a record comes more than
:data:`BATCH_MAX_WAIT` seconds after the batch's first. Each Kubernetes Event is posted alone to
``/events`` when it happens, as an Event exporter does. The requests go out in the scenario's
time order, one at a time, each with the ingest's bearer token; every one must be answered 200,
which the ingest sends only after JetStream stored the messages that hold its records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from processor.demo.story import ScenarioRecord
from processor.errors import ProcessorError

__all__ = [
    "BATCH_MAX_SIZE",
    "BATCH_MAX_WAIT",
    "IngestRefused",
    "Request",
    "Sent",
    "post_all",
    "requests",
]

#: kube-apiserver's ``--audit-webhook-batch-max-size`` (its default).
BATCH_MAX_SIZE = 400
#: ``--audit-webhook-batch-max-wait`` in seconds, as docs/ingest.md configures it.
BATCH_MAX_WAIT = 1.0


class IngestRefused(ProcessorError):
    """The demo's ingest did not answer a request with 200."""


@dataclass(frozen=True, slots=True)
class Request:
    """One POST: its path (``/audit`` or ``/events``), body and how many records it holds."""

    path: str
    body: bytes
    records: int


@dataclass(slots=True)
class Sent:
    """What the ingest answered, summed over the requests (its ``IngestResult`` documents)."""

    requests: int = 0
    accepted: int = 0
    messages: int = 0
    rejected: int = 0

    def add(self, result: dict[str, Any]) -> None:
        """Count one ``IngestResult``."""
        self.requests += 1
        self.accepted += int(result.get("accepted", 0))
        self.messages += int(result.get("messages", 0))
        self.rejected += int(result.get("rejectedCount", 0))


def _time(record: ScenarioRecord) -> datetime:
    return datetime.fromisoformat(record.time.replace("Z", "+00:00"))


def _event_list(items: Sequence[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    )


def requests(records: Iterable[ScenarioRecord]) -> list[Request]:
    """The requests that carry ``records`` (oldest first), in the order they are sent.

    A batch of audit records is sent when the next audit record would make it too big or too
    old; an Event is sent at once, so it goes before a batch that is still open.
    """
    out: list[Request] = []
    batch: list[dict[str, Any]] = []
    opened: datetime | None = None
    for record in records:
        if record.kind == "event":
            out.append(Request("/events", orjson.dumps(record.payload), 1))
            continue
        when = _time(record)
        if batch and (
            len(batch) >= BATCH_MAX_SIZE
            or opened is None
            or (when - opened).total_seconds() > BATCH_MAX_WAIT
        ):
            out.append(Request("/audit", _event_list(batch), len(batch)))
            batch = []
        if not batch:
            opened = when
        batch.append(record.payload)
    if batch:
        out.append(Request("/audit", _event_list(batch), len(batch)))
    return out


async def post_all(base_url: str, token: str, reqs: Sequence[Request]) -> Sent:
    """POST ``reqs`` to the ingest at ``base_url`` one after another.

    Raises:
        IngestRefused: a request was not answered 200, or the ingest rejected one of its records.
    """
    import aiohttp

    sent = Sent()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
        for req in reqs:
            async with http.post(base_url + req.path, data=req.body) as response:
                text = await response.read()
            if response.status != 200:
                raise IngestRefused(
                    f"the ingest answered POST {req.path} with {response.status}: "
                    f"{text[:300].decode(errors='replace')}"
                )
            result = orjson.loads(text)
            if result.get("rejectedCount"):
                raise IngestRefused(f"the ingest rejected records of POST {req.path}: {result}")
            sent.add(result)
    return sent
