"""Helpers of the ``activity serve`` tests: seeded records, a server on a thread, kubectl."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nats
import orjson

from processor.query.timeparse import NS, format_rfc3339
from processor.query.tokenkeys import TokenKeys
from processor.serve.server import ApiServer
from processor.serve.settings import ServeSettings
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate
from processor.stream.topology import ensure_streams
from processor.subjects import activity_subject
from tests.integration.conftest import missing_server

NOW = time.time_ns()
LONG = "carol rotated the signing keys of every service account in the team-a namespace today"
#: (actor, kind, tenant type, tenant name, namespace, summary)
ROWS = [
    ("alice", "Deployment", "Organization", "acme", "default", "alice scaled Deployment web"),
    ("bob", "Pod", "Organization", "globex", "default", "bob deleted Pod web-1"),
    ("carol", "Secret", "", "", "team-a", LONG),
    ("dave", "ConfigMap", "Project", "p1", "team-a", "dave edited ConfigMap cfg"),
    ("erin", "Deployment", "User", "uid-erin", "default", "erin created Deployment api"),
]


def activity(i: int, actor: str, kind: str, tenant: tuple[str, str], namespace: str,
             summary: str, when: int | None = None) -> dict[str, Any]:  # fmt: skip
    stamp = when if when is not None else NOW - (i + 1) * 60 * NS
    return {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "Activity",
        "metadata": {"name": f"act-{i:012x}", "namespace": namespace,
                     "creationTimestamp": format_rfc3339(stamp, 3)},
        "spec": {"summary": summary, "changeSource": "system" if actor == "dave" else "human",
                 "actor": {"name": actor, "type": "user", "uid": f"uid-{actor}"},
                 "resource": {"apiGroup": "apps", "kind": kind, "name": f"obj-{i}",
                              "namespace": namespace},
                 "tenant": {"type": tenant[0], "name": tenant[1]},
                 "origin": {"type": "audit", "id": f"origin-{i}"}},
    }  # fmt: skip


def audit(i: int, user: str, verb: str, scope: str) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"0b2c3d4e-0000-4000-8000-{i:012d}",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": user, "uid": f"uid-{user}"},
        "objectRef": {"resource": "deployments", "name": f"web-{i}", "namespace": "default",
                      "apiGroup": "apps"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": format_rfc3339(NOW - (i + 1) * 60 * NS, 6),
        "annotations": {"platform.miloapis.com/scope.type": "Organization",
                        "platform.miloapis.com/scope.name": scope},
    }  # fmt: skip


def event(i: int, reason: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"ev-{i}", "namespace": "prod", "uid": f"e-{i}",
                     "annotations": {"platform.miloapis.com/scope.type": "Organization",
                                     "platform.miloapis.com/scope.name": scope}},
        "eventTime": format_rfc3339(NOW - (i + 1) * 60 * NS, 6),
        "regarding": {"apiVersion": "v1", "kind": kind, "name": f"n-{i}", "namespace": "prod"},
        "reason": reason,
        "type": "Warning" if reason == "BackOff" else "Normal",
        "note": f"event {i} {reason}",
        "reportingController": "kubelet",
    }  # fmt: skip


ACTIVITIES = [activity(i, a, k, (tt, tn), ns, s) for i, (a, k, tt, tn, ns, s) in enumerate(ROWS)]
AUDIT = [audit(0, "alice", "delete", "acme"), audit(1, "bob", "update", "globex"),
         audit(2, "alice", "create", "acme")]  # fmt: skip
EVENTS = [event(0, "BackOff", "Pod", "acme"), event(1, "Started", "Pod", "globex"),
          event(2, "Scheduled", "Node", "acme")]  # fmt: skip


def seed(sink: Any) -> None:
    for table, docs in (("activities", ACTIVITIES), ("audit_logs", AUDIT), ("k8s_events", EVENTS)):
        sink.insert(table, [orjson.dumps(d) for d in docs], f"serve-test-{table}")


@contextmanager
def seeded_sink(path: Path) -> Iterator[ChdbSink]:
    """A migrated chDB store at ``path`` holding :func:`seed`'s records."""
    sink = ChdbSink(path)
    try:
        migrate(sink)
        sink.open()
        seed(sink)
        yield sink
    finally:
        sink.close()


async def publish_activities(nats_url: str, items: list[dict[str, Any]]) -> list[int]:
    """Publish ``items`` to their activity subjects (as the workers do); their stream seqs."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        return [(await js.publish(activity_subject(i), orjson.dumps(i))).seq for i in items]
    finally:
        await nc.close()


KEYS = TokenKeys((b"serve-test-key-0123456789",))


@contextmanager
def running(settings: ServeSettings, sink: Any) -> Iterator[ApiServer]:
    """An :class:`ApiServer` on a thread of its own (kubectl runs as a subprocess meanwhile)."""
    loop = asyncio.new_event_loop()
    server = ApiServer(settings, sink=sink, keys=KEYS)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.close()

    thread = threading.Thread(target=run, name="activity-serve-test", daemon=True)
    thread.start()
    ready.wait(60)
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


def kubectl_binary() -> str:
    """``$ACTIVITY_TEST_KUBECTL`` (another kubectl to check, e.g. Debian's 1.20), else PATH's."""
    found = os.environ.get("ACTIVITY_TEST_KUBECTL") or shutil.which("kubectl")
    if found is None:
        missing_server("kubectl is not installed (apt-get install kubernetes-client)")
    assert found is not None
    return found


class Kubectl:
    """Runs the real kubectl against ``server`` with no user configuration."""

    def __init__(self, binary: str, server: str, home: Path) -> None:
        self.binary = binary
        self.server = server
        home.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
                    "KUBECONFIG": str(home / "kubeconfig")}  # fmt: skip
        self.cache = str(home / "cache")

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--server", self.server, "--cache-dir", self.cache, *args]

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env, input=input, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
