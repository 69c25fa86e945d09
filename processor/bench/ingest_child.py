"""``activity ingest`` as a child process, for ``activity bench --ingest`` and the load run.

:func:`ingest_process` starts ``python -m processor ingest`` on a free loopback port (plain HTTP,
a bearer token file), waits until its ``/readyz`` answers 200 and stops it afterwards (SIGTERM:
requests in flight finish, a profile is written). Its output goes to a log file.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from processor.bench.local import free_port, http_status, stop_process
from processor.errors import ProcessorError

__all__ = ["IngestChild", "IngestStartError", "ingest_process", "metric_total"]


class IngestStartError(ProcessorError):
    """The ingest exited or did not become ready; the message ends with its log."""


@dataclass(frozen=True)
class IngestChild:
    """A running ingest: its base URL (``http://127.0.0.1:PORT``), pid and token file."""

    url: str
    pid: int
    token_file: Path
    log: Path


def metric_total(url: str, name: str) -> float:
    """The sum of counter ``name`` over its labels, from ``url`` (a ``/metrics`` endpoint)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name)] in " {"
    )


@contextlib.contextmanager
def ingest_process(
    nats_url: str,
    partitions: int,
    workdir: Path,
    *,
    token: str,
    log: Path | None = None,
    profile: str | None = None,
    timeout: float = 60.0,
) -> Iterator[IngestChild]:
    """Run ``activity ingest`` against ``nats_url`` while the block runs.

    Args:
        nats_url: the NATS server.
        partitions: ``--partition-count`` (the workers').
        workdir: where the token file (and by default the log) goes.
        token: the bearer token the ingest accepts.
        log: the log file (default ``workdir/ingest.log``).
        profile: run under cProfile, stats to this file (``ACTIVITY_INGEST_PROFILE``).
        timeout: seconds to wait for ``/readyz``.

    Raises:
        IngestStartError: it exited or was not ready in time.
    """
    token_file = workdir / "ingest-token"
    token_file.write_text(token + "\n")
    log = log or workdir / "ingest.log"
    port = free_port()
    cmd = [
        sys.executable, "-m", "processor", "ingest",
        "--nats-url", nats_url,
        "--listen-addr", f"127.0.0.1:{port}",
        "--partition-count", str(partitions),
        "--token-file", str(token_file),
        "--provision", "true",
        "--log-level", "WARNING",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_INGEST_")}
    if profile:
        env["ACTIVITY_INGEST_PROFILE"] = profile
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while http_status(url + "/readyz") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise IngestStartError(f"activity ingest did not become ready:\n{text}")
            time.sleep(0.05)
        yield IngestChild(url, proc.pid, token_file, log)
    finally:
        stop_process(proc)
