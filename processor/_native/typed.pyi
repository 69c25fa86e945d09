"""Type stub of the native typed decoder; the twin is ``processor/records/typed.py``."""

from typing import Any

def decode_audit_typed(
    buf: bytes, start: int, end: int, needs: Any, spans: dict[str, tuple[int, int]] | None = None
) -> dict[str, Any] | None: ...
