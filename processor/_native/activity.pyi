"""Type stub of the native Activity builder; the twin is ``processor/activity.py``."""

from collections.abc import Iterable
from typing import Any

from processor.activity import Built as Built

def build_audit(
    audit: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[Any] = (),
    resolver: Any = None,
) -> Built: ...
def build_event(
    event: dict[str, Any],
    involved: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[Any] = (),
    resolver: Any = None,
) -> Built: ...
