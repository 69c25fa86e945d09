"""pytest helpers for a real nats-server (``processor.stream.server``), used by ``conftest.py``.

A missing ``nats-server`` skips the test with the reason locally and fails it when
``PROCESSOR_REQUIRE_SERVERS=1`` (CI). A server of a failed test prints the end of its log.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from processor.stream.server import NatsServer, NatsServerError, nats_server_binary

_names = itertools.count(1)


def require_nats_binary() -> str:
    """The nats-server path; skips (locally) or fails (CI) when it is missing."""
    try:
        return nats_server_binary()
    except NatsServerError as exc:
        if os.environ.get("PROCESSOR_REQUIRE_SERVERS", "") not in ("", "0"):
            pytest.fail(f"{exc} (PROCESSOR_REQUIRE_SERVERS=1)")
        pytest.skip(str(exc))


@contextmanager
def running_nats(
    root: Path, request: pytest.FixtureRequest | None = None, max_payload: int | None = None
) -> Iterator[NatsServer]:
    """A started server with its store and log under ``root``; stopped (or killed) on exit.

    With ``request`` (a function-scoped fixture's), the log tail is printed if the test failed.
    """
    require_nats_binary()
    server = NatsServer(root / "store", log_file=root / "nats-server.log", max_payload=max_payload)
    server.start()
    failed_before = request.session.testsfailed if request else 0
    try:
        yield server
    finally:
        if request is not None and request.session.testsfailed > failed_before:
            print(f"--- nats-server log ({server.log_file}) ---\n{server.log_tail(80)}")
        server.stop()


def unique(prefix: str) -> str:
    """A stream/consumer name unique within the test session (``PREFIX_<pid>_<n>``)."""
    return f"{prefix}_{os.getpid()}_{next(_names)}"


async def connect(url: str, **options: Any) -> Any:
    """A nats-py connection that reconnects forever quickly (for restart tests)."""
    import nats

    options.setdefault("max_reconnect_attempts", -1)
    options.setdefault("reconnect_time_wait", 0.2)
    return await nats.connect(url, **options)


async def wait_until(
    predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; AssertionError after ``timeout`` (a guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


#: What nats-py 2.16 leaks when a reconnect attempt reaches a server that is still starting or
#: already stopping: ``_attempt_reconnect`` opens a new transport and, when the CONNECT
#: handshake then fails, replaces it on the next attempt without closing it. The garbage
#: collector closes it (a ResourceWarning); the client itself is fine.
_RECONNECT_LEAK = (
    "Exception ignored in. <socket.socket",
    "Exception ignored in. <function _SelectorTransport.__del__",
    "Exception ignored in. <function StreamWriter.__del__",
)


def tolerates_reconnect_leak(test: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a test that restarts nats-server under connected clients.

    Only nats-py's leaked sockets of failed reconnect attempts are tolerated, and only in such a
    test: it collects garbage before it ends, so their finalizers run under these filters
    rather than in whichever test happens to come next.
    """

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return test(*args, **kwargs)
        finally:
            gc.collect()

    for message in _RECONNECT_LEAK:
        run = pytest.mark.filterwarnings(
            f"ignore:{message}:pytest.PytestUnraisableExceptionWarning"
        )(run)
    return run
