"""A real Prometheus for the load runs: Debian's ``prometheus`` scraping the processes of the run.

:func:`prometheus_server` starts ``prometheus`` on a free loopback port with its own config and a
temporary TSDB directory, scraping the given ``/metrics`` URLs every ``interval`` seconds; each
target carries ``namespace`` and ``pod`` labels as Kubernetes service discovery would give them,
so the dashboard's ``{namespace=~"$namespace", pod=~"$pod"}`` selectors apply unchanged.
:class:`Prometheus` wraps its HTTP API (``/api/v1/query``, ``/api/v1/query_range``).
``processor.bench.dashboard`` evaluates the Grafana dashboard's queries through it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processor.errors import ProcessorError

__all__ = [
    "Prometheus",
    "PrometheusError",
    "Target",
    "prometheus_binary",
    "prometheus_server",
    "scrape_config",
]

#: The namespace label every target of a local run carries.
NAMESPACE = "loadtest"


class PrometheusError(ProcessorError):
    """Prometheus did not start, or its HTTP API answered an error."""


@dataclass(frozen=True)
class Target:
    """One ``/metrics`` endpoint: its URL, its job (``worker``, ``ingest``, ...) and its pod."""

    url: str
    job: str
    pod: str


def prometheus_binary() -> str | None:
    """The ``prometheus`` executable (Debian's package installs ``/usr/bin/prometheus``)."""
    return shutil.which("prometheus")


def scrape_config(targets: Sequence[Target], interval: float) -> dict[str, Any]:
    """The Prometheus configuration: one scrape config per job, one static target per pod.

    Raises:
        ValueError: a target URL is not ``http://host:port/path``.
    """
    seconds = f"{max(interval, 0.1):g}s"
    jobs: dict[str, list[dict[str, Any]]] = {}
    paths: dict[str, str] = {}
    for target in targets:
        parts = urllib.parse.urlsplit(target.url)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"scrape target must be http://host:port/path: {target.url!r}")
        path = parts.path or "/metrics"
        if paths.setdefault(target.job, path) != path:
            raise ValueError(f"job {target.job!r}: every target needs the same path")
        labels = {"namespace": NAMESPACE, "pod": target.pod}
        jobs.setdefault(target.job, []).append({"targets": [parts.netloc], "labels": labels})
    return {
        "global": {"scrape_interval": seconds, "scrape_timeout": seconds},
        "scrape_configs": [
            {"job_name": job, "metrics_path": paths[job], "static_configs": static}
            for job, static in jobs.items()
        ],
    }


class Prometheus:
    """The HTTP API of a Prometheus server at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one series without labels) of ``expr`` at ``at``."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The range vector of ``expr``: series with ``values`` [[t, "v"], ...]."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return list(self._get("/api/v1/query_range", params)["result"])

    def targets_up(self) -> int:
        """How many scrape targets are up."""
        return sum(1 for s in self.query("up == 1", time.time()))

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query, the error is in the body
            body = json.loads(exc.read() or b"{}")
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"prometheus at {self.url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{params.get('query')!r}: {body.get('error', body)}")
        return dict(body["data"])


@contextlib.contextmanager
def prometheus_server(
    targets: Sequence[Target], root: Path, interval: float = 1.0, log: Path | None = None
) -> Iterator[Prometheus]:
    """Run ``prometheus`` scraping ``targets`` every ``interval`` s while the block runs.

    ``root`` holds its config and TSDB (the caller's temporary directory); ``log`` gets its
    output. Waits until it is ready and has scraped every target once.

    Raises:
        PrometheusError: the binary is missing, or the server or a target did not come up.
    """
    from processor.bench.local import free_port, http_status, stop_process

    binary = prometheus_binary()
    if binary is None:
        raise PrometheusError("prometheus is not installed (apt-get install prometheus)")
    root.mkdir(parents=True, exist_ok=True)
    config = root / "prometheus.yml"
    config.write_text(json.dumps(scrape_config(targets, interval), indent=1))  # YAML reads JSON
    port = free_port()
    cmd = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
    with open(log or root / "prometheus.log", "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while http_status(server.url + "/-/ready") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PrometheusError(f"prometheus did not start; see {log or root}")
            time.sleep(0.1)
        while targets and server.targets_up() < len(targets):
            if time.monotonic() > deadline:
                raise PrometheusError("prometheus: a scrape target is down (see /targets)")
            time.sleep(max(interval / 4, 0.1))
        yield server
    finally:
        stop_process(proc)  # type: ignore[arg-type]
