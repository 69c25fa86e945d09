"""Type stub of the native scanner; the twin is ``processor/records/jsonscan.py``."""

from collections.abc import Callable
from typing import Any

MAX_DEPTH_: int

def scan_document(buf: bytes) -> list[tuple[str | None, int, int]] | None: ...
def object_members(buf: bytes, start: int, end: int) -> list[tuple[str | None, int, int]] | None: ...
def array_items(buf: bytes, start: int, end: int) -> list[tuple[int, int]] | None: ...
def floatify(value: Any) -> Any: ...
def split_document(
    buf: bytes, bodies: Any, route: Any
) -> tuple[bytes, dict[str, tuple[int, int]], bytes] | None: ...
def split_object(
    buf: bytes, start: int, end: int, bodies: Any, route: Any
) -> tuple[bytes, dict[str, tuple[int, int]], bytes] | None: ...
def split_routed(
    buf: bytes,
    bodies: Any,
    route: Any,
    event_keys: Any,
    ref_keys: Any,
    decisions: dict[bytes, Any],
    tally: dict[bytes, int],
) -> (
    tuple[
        bytes,
        dict[str, tuple[int, int]],
        bytes,
        list[tuple[int, int, bytes | None]] | None,
        bytes | None,
    ]
    | None
): ...
def prune(buf: bytes, start: int, end: int, need: Any, loads: Callable[[bytes], Any]) -> Any: ...
