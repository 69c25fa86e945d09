"""The seeded benchmark corpus: determinism, sizes, mix, decodability, batching and the CLI."""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from processor.bench import generate, write_jsonl
from processor.cli import main
from processor.records import classify_record, decode_audit, decode_event

N = 500


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return list(generate(N, seed=7))


def _audit(records: list[dict]) -> list[dict]:
    return [r for r in records if r["apiVersion"] == "audit.k8s.io/v1"]


def test_same_seed_same_bytes() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    write_jsonl(a, 200, seed=3)
    write_jsonl(b, 200, seed=3)
    assert a.getvalue() == b.getvalue()
    c = io.BytesIO()
    write_jsonl(c, 200, seed=4)
    assert c.getvalue() != a.getvalue()


def test_same_bytes_in_another_process() -> None:
    code = (
        "import io, hashlib; from processor.bench import write_jsonl; b = io.BytesIO(); "
        "write_jsonl(b, 50, seed=11); print(hashlib.sha256(b.getvalue()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    import hashlib

    here = io.BytesIO()
    write_jsonl(here, 50, seed=11)
    assert out.strip() == hashlib.sha256(here.getvalue()).hexdigest()


def test_request_response_sizes_mostly_2_to_8_kb(records: list[dict]) -> None:
    sizes = [len(orjson.dumps(r)) for r in _audit(records) if r["level"] == "RequestResponse"]
    deciles = statistics.quantiles(sizes, n=10)
    assert deciles[0] >= 2000, deciles
    assert deciles[-1] <= 8192, deciles


def test_event_ratio(records: list[dict]) -> None:
    events = N - len(_audit(records))
    assert 0.06 * N <= events <= 0.14 * N


def test_every_record_classifies_and_decodes(records: list[dict]) -> None:
    for rec in records:
        kind = classify_record(rec)
        raw = orjson.dumps(rec)
        if kind == "audit":
            decoded = decode_audit(raw)
            assert decoded is not None and decoded["auditID"] == rec["auditID"]
        else:
            assert kind == "event", rec
            assert decode_event(raw) is not None


def test_coverage(records: list[dict]) -> None:
    audit = _audit(records)
    verbs = {r["verb"] for r in audit}
    assert {"create", "update", "patch", "delete", "get", "list"} <= verbs
    assert any(
        r["objectRef"].get("subresource") == "status" and r["verb"] in ("update", "patch")
        for r in audit
    )
    assert any(r.get("responseStatus", {}).get("code", 0) >= 400 for r in audit)
    assert any("dryRun=All" in r["requestURI"] for r in audit)
    assert any(
        "managedFields" in (r.get("responseObject") or {}).get("metadata", {}) for r in audit
    )
    assert any(r["level"] == "Metadata" for r in audit)
    assert any(r["stage"] != "ResponseComplete" for r in audit)
    groups = {r["objectRef"].get("apiGroup", "") for r in audit}
    assert {"", "apps", "coordination.k8s.io", "inventory.miloapis.com"} <= groups
    events = [r for r in records if r["apiVersion"] != "audit.k8s.io/v1"]
    assert {r["apiVersion"] for r in events} == {"v1", "events.k8s.io/v1"}


def test_timestamps_increase_with_six_digits(records: list[dict]) -> None:
    stamps = [r["requestReceivedTimestamp"] for r in _audit(records)]
    assert stamps == sorted(stamps)
    assert all(len(s) == len("2025-01-15T09:00:00.000000Z") for s in stamps)


def test_eventlist_batching() -> None:
    buf = io.BytesIO()
    stats = write_jsonl(buf, 300, seed=5, batch=40)
    lines = [orjson.loads(line) for line in buf.getvalue().splitlines()]
    assert len(lines) == stats.lines
    lists = [x for x in lines if classify_record(x) == "audit_list"]
    events = [x for x in lines if classify_record(x) == "event"]
    sizes = [len(x["items"]) for x in lists]
    assert all(s == 40 for s in sizes[:-1]) and 1 <= sizes[-1] <= 40
    assert sum(sizes) == stats.audit and len(events) == stats.events
    assert stats.audit + stats.events == 300
    # the same records as the unbatched corpus, in the same order per kind
    flat = list(generate(300, seed=5))
    assert [x["auditID"] for lst in lists for x in lst["items"]] == [
        r["auditID"] for r in flat if "auditID" in r
    ]


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "corpus.jsonl"
    assert main(["bench", "--generate", str(path), "--count", "200"]) == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 200
    assert "records=200" in capsys.readouterr().err


def test_cli_bench_without_generate_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicy\n"
        "metadata: {name: d}\nspec:\n  resource: {apiGroup: apps, kind: Deployment}\n"
        "  auditRules:\n    - {name: c, match: \"audit.verb == 'create'\", summary: created}\n"
    )
    args = ["bench", "--count", "40", "--repeat", "1", "--naive-sample", "3", "--json"]
    assert main([*args, "--policies", str(policy)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in result["paths"]][:3] == ["naive", "ceiling", "python"]
    assert result["records"] == 40 and result["counts"]["records"] == 40
    assert all(p["records_per_s"] > 0 for p in result["paths"])
    assert result["identical"] in (True, None)


def test_mixes_are_named_and_standard_is_the_default() -> None:
    from processor.bench.corpus.vocab import MIXES
    from processor.commands.bench import MIX_NAMES

    assert tuple(MIXES) == MIX_NAMES
    assert [orjson.dumps(r) for r in generate(300, seed=2)] == [
        orjson.dumps(r) for r in generate(300, seed=2, mix="standard")
    ]
    with pytest.raises(ValueError, match="mix must be one of standard, production"):
        next(generate(1, mix="busy"))


def _shares(records: list[dict]) -> tuple[float, float, float]:
    """(reads among audit events, people among main-resource writers, Events among records)."""
    audit = _audit(records)
    reads = sum(r["verb"] in ("get", "list", "watch") for r in audit) / len(audit)
    writes = [
        r
        for r in audit
        if r["verb"] in ("create", "update", "patch", "delete")
        and "subresource" not in r["objectRef"]
    ]
    people = sum(r["user"]["username"].endswith(".com") for r in writes) / len(writes)
    return reads, people, 1 - len(audit) / len(records)


def test_the_production_mix_is_mostly_reads_renewals_and_controllers() -> None:
    standard = _shares(list(generate(4000, seed=3)))
    production = _shares(list(generate(4000, seed=3, mix="production")))
    assert production[0] >= 0.55 > 0.5 >= standard[0]  # reads (leases are renewed by update)
    assert production[1] <= 0.03 < 0.1 <= standard[1]  # people among the writers
    assert production[2] <= 0.01 < standard[2]  # Kubernetes Events


def test_the_production_mix_turns_few_records_into_activities() -> None:
    from processor.policy.bundled import bundled_policy_dir
    from processor.policy.compile import compile_set
    from processor.translate import Output

    translator = compile_set(
        [str(bundled_policy_dir())], {}, stages=None, max_record_bytes=10 << 20
    ).translator
    shares = {}
    for mix in ("standard", "production"):
        out = Output()
        for record in generate(20000, seed=1, mix=mix):
            translator.translate(orjson.dumps(record), out, None)
        assert out.records == 20000 and out.errors == 0
        shares[mix] = len(out.activities) / out.records
    assert 0.001 <= shares["production"] <= 0.01  # about one record in three hundred
    assert shares["standard"] >= 0.1


def test_cli_generate_takes_the_mix(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    assert main(["bench", "--generate", str(path), "--count", "100", "--mix", "production"]) == 0
    expected = io.BytesIO()
    write_jsonl(expected, 100, seed=1, mix="production")
    assert path.read_bytes() == expected.getvalue()
    assert expected.getvalue() != _standard_bytes(100)


def _standard_bytes(count: int) -> bytes:
    buf = io.BytesIO()
    write_jsonl(buf, count, seed=1)
    return buf.getvalue()
