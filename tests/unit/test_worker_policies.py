"""The worker's policy set: merge order, atomic reload, rejection of invalid updates."""

from __future__ import annotations

import asyncio
import os

import pytest

from processor.errors import PolicyErrors
from processor.metrics import Metrics
from processor.policy.compile import compile_set, merge
from processor.worker.reload import PolicyReloader

POLICY = """\
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata:
  name: {name}
spec:
  resource:
    apiGroup: apps
    kind: {kind}
  auditRules:
    - name: create
      match: "audit.verb == 'create'"
      summary: "{{{{ actor }}}} {word} {kind} {{{{ audit.objectRef.name }}}}"
"""


def _policy(name: str, kind: str = "Deployment", word: str = "created") -> str:
    return POLICY.format(name=name, kind=kind, word=word)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_kv_policy_replaces_file_policy_in_place(tmp_path):
    _write(tmp_path, "a.yaml", _policy("a", "Deployment"))
    _write(tmp_path, "b.yaml", _policy("b", "StatefulSet"))
    kv = {"z": _policy("z", "DaemonSet").encode(), "a": _policy("a", "Deployment", "made").encode()}
    compiled = compile_set([str(tmp_path)], kv, stages=None, max_record_bytes=1000)
    assert compiled.names == ["a", "b", "z"]
    assert "made" in str(compiled.policies[0].raw)


def test_merge_keeps_file_order():
    class P:
        def __init__(self, name: str) -> None:
            self.name = name

    files = [P("x"), P("y")]
    merged = merge(files, [P("w"), P("y")])  # type: ignore[list-item]
    assert [p.name for p in merged] == ["x", "y", "w"]
    assert merged[1] is not files[1]


def test_invalid_set_raises_with_position(tmp_path):
    _write(tmp_path, "bad.yaml", _policy("bad").replace("audit.verb ==", "audit.verb ==="))
    with pytest.raises(PolicyErrors) as info:
        compile_set([str(tmp_path)], {}, stages=None, max_record_bytes=1000)
    text = str(info.value.errors[0])
    assert "bad.yaml" in text
    assert "spec.auditRules[0].match" in text


def test_duplicate_names_rejected(tmp_path):
    _write(tmp_path, "a.yaml", _policy("same", "Deployment"))
    _write(tmp_path, "b.yaml", _policy("same", "StatefulSet"))
    with pytest.raises(PolicyErrors, match="duplicate policy name 'same'"):
        compile_set([str(tmp_path)], {}, stages=None, max_record_bytes=1000)


def test_reload_swaps_only_valid_sets(tmp_path):
    path = _write(tmp_path, "a.yaml", _policy("a"))
    seen = []
    metrics = Metrics()
    reloader = PolicyReloader([str(tmp_path)], ("ResponseComplete",), 1000, metrics, seen.append)
    first = reloader.load()
    assert first.names == ["a"]
    path.write_text(_policy("a").replace("audit.verb", "nope.verb"))
    assert reloader.reload("files") is False
    assert reloader.current is first
    assert "spec.auditRules[0].match" in reloader.last_error
    assert seen == []
    path.write_text(_policy("a2"))
    assert reloader.reload("files") is True
    assert reloader.current.names == ["a2"]
    assert len(seen) == 1
    assert reloader.reload("kv", {"k": b"not: [valid"}) is False
    assert reloader.kv_entries == {}
    samples = {
        (s.labels["source"], s.labels["result"]): s.value
        for m in metrics.policy_reloads.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }
    assert samples[("files", "rejected")] == 1
    assert samples[("files", "accepted")] == 1
    assert samples[("kv", "rejected")] == 1


def test_file_poll_picks_up_a_change(tmp_path):
    path = _write(tmp_path, "a.yaml", _policy("a"))
    seen = []
    reloader = PolicyReloader([str(tmp_path)], (), 1000, Metrics(), seen.append)
    reloader.load()

    async def main() -> None:
        reloader.start(0.05)
        path.write_text(_policy("renamed"))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        await reloader.stop()

    asyncio.run(main())
    assert reloader.current is not None
    assert reloader.current.names == ["renamed"]
    assert len(seen) == 1
