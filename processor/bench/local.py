"""Child processes on loopback for the benchmarks and load runs: a free port, an HTTP probe.

One home for what ``activity bench --e2e``/``--ingest``, ``activity loadtest`` and the soak script
need to start a worker or an ingest, wait for its ``/readyz`` and stop it.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.request

__all__ = ["free_port", "http_status", "stop_process"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of ``GET url``; 0 while nothing answers (not listening yet, refused)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except Exception:
        return 0


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """SIGTERM ``proc`` (it finishes what is in flight) and wait; SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
