"""Helpers of the ``activity ingest`` integration tests: a server on a free loopback port with an
HTTP client, and what the streams hold."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import nats
import orjson

from processor.ingest.server import IngestServer
from processor.ingest.settings import IngestSettings
from processor.subjects import audit_partition

PARTITIONS = 4


@contextlib.asynccontextmanager
async def running_ingest(url: str, **overrides: Any) -> AsyncIterator[Client]:
    """An ingest server on a free loopback port, and an HTTP client for it."""
    options: dict[str, Any] = {
        "nats_url": url,
        "listen_addr": "127.0.0.1:0",
        "partition_count": PARTITIONS,
    }
    options.update(overrides)
    server = IngestServer(IngestSettings(**options))
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Client(server, http)
    finally:
        await server.stop()


class Client:
    """Posts bodies to one ingest server."""

    def __init__(self, server: IngestServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.base = f"http://127.0.0.1:{server.port}"

    async def post(self, path: str, body: Any) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with self.http.post(self.base + path, data=data) as response:
            text = await response.read()
            doc = orjson.loads(text) if response.content_type == "application/json" else text
            return response.status, doc, response.headers

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path) as response:
            return response.status, await response.text()


def event_list(items: list[Any]) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}


async def stored(url: str, stream: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """(subject, data, headers) of every message of ``stream``, in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        state = (await js.stream_info(stream)).state
        out = []
        for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
            msg = await js.get_msg(stream, seq)
            out.append((msg.subject, msg.data or b"", dict(msg.headers or {})))
        return out
    finally:
        await nc.close()


def audit_items(messages: list[tuple[str, bytes, dict[str, str]]]) -> list[dict[str, Any]]:
    """The items of the partition EventLists, checking each sits on its partition's subject."""
    items = []
    for subject, data, headers in messages:
        if subject == "audit.k8s.activity":
            continue
        doc = orjson.loads(data)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "audit.k8s.io/v1")
        assert headers["Nats-Msg-Id"].startswith("ingest-")
        for item in doc["items"]:
            assert subject == f"audit.k8s.p{audit_partition(item, PARTITIONS)}"
            items.append(item)
    return items
