"""Type stub of the native route; the twin is ``processor/records/route.py``."""

from typing import Any

from processor.records.route import DocumentKey, Routed, RouteKey

def split_routed(
    buf: bytes,
    bodies: Any,
    route: Any,
    decisions: dict[bytes, Any],
    documents: dict[bytes, Any] | None = None,
) -> Routed | None: ...
def pack(
    stage: bytes, verb: bytes, ref: tuple[bytes, bytes, bytes] | None = None, actor: int = -1
) -> bytes: ...
def pack_document(kind: bytes, api_version: bytes, flags: int, key: bytes) -> bytes: ...
def unpack(key: bytes) -> RouteKey: ...
def unpack_document(key: bytes) -> DocumentKey: ...
