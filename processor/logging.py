"""Logging setup: the only place that installs handlers.

Modules log through ``logging.getLogger(__name__)``; nothing per record above DEBUG (count in
metrics, log one line per batch or per minute).
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Send log records to stderr at ``level`` (idempotent)."""
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root.setLevel(numeric)
    if not any(getattr(h, "_activity", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._activity = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # nats-py logs every reconnect attempt at ERROR; the worker counts and logs them itself.
    logging.getLogger("nats.aio.client").setLevel(max(numeric, logging.CRITICAL))
