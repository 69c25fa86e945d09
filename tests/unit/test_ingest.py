"""``activity ingest`` without servers: partitions, settings, bodies, messages and ids, tokens,
the webhook config and the metrics' documentation (docs/ingest.md)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from processor.cli import main
from processor.deadletter import decode_dead_letter, original_payload_bytes
from processor.ingest.auth import AuthConfigError, Authenticator
from processor.ingest.batching import (
    Linger,
    Message,
    audit_list,
    dead_letter_messages,
    message_id,
    partition_messages,
    shared_messages,
)
from processor.ingest.body import BodyError, parse_body, parse_exact
from processor.ingest.metrics import IngestMetrics
from processor.ingest.publish import StreamFull, Unavailable, classify
from processor.ingest.settings import IngestSettings, build_ingest_settings
from processor.ingest.webhook import WebhookConfigError, webhook_config
from processor.stream.publisher import PublishError
from processor.subjects import (
    audit_partition,
    audit_partition_key,
    event_partition,
    event_partition_key,
    partition_of,
)
from tests.integration import records

ROOT = Path(__file__).resolve().parents[2]


# --- the partition function, shared by every producer -------------------------------------------


def _crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: the reference."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(
    ("key", "crc", "p8", "p16"),
    [
        (("apps", "deployments", "default", "web"), 3954183086, 6, 14),
        (("", "", "", ""), 1973280251, 3, 11),  # no objectRef: the empty key "///"
        (("", "configmaps", "kube-system", "coredns"), 3702906747, 3, 11),
        (("apps/v1", "Deployment", "default", "web"), 461551472, 0, 0),  # an Event's key
        (("v1", "Pod", "default", "web-0"), 2195705943, 7, 7),
    ],
)
def test_partition_of_known_vectors(key: tuple[str, ...], crc: int, p8: int, p16: int) -> None:
    assert _crc32("/".join(key).encode()) == crc
    assert partition_of(*key, 8) == p8 == crc % 8
    assert partition_of(*key, 16) == p16


def test_audit_and_event_keys() -> None:
    rec = records.audit("web")
    assert audit_partition_key(rec) == ("apps", "deployments", "default", "web")
    assert audit_partition(rec, 8) == 6
    assert audit_partition_key({"auditID": "x"}) == ("", "", "", "")
    assert audit_partition_key({"objectRef": {"name": 7, "resource": "pods"}}) == (
        "", "pods", "", "",
    )  # fmt: skip
    ev = records.event("web")
    assert event_partition_key(ev) == ("apps/v1", "Deployment", "default", "web")
    assert event_partition(ev, 8) == 0
    core = {"involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "default",
                               "name": "web-0"}}  # fmt: skip
    assert event_partition(core, 8) == 7
    assert event_partition_key([]) == ("", "", "", "")


def test_bench_routes_with_the_shared_functions() -> None:
    """(The demo sends its records through the ingest, which routes them.)"""
    from processor.bench.e2e import PARTITIONS, Corpus

    rec, ev = records.audit("api-3"), records.event("api-3")
    corpus = Corpus([])
    assert corpus.subject(rec) == f"audit.k8s.p{audit_partition(rec, PARTITIONS)}"
    assert corpus.subject(ev) == f"events.p{event_partition(ev, PARTITIONS)}"


# --- settings --------------------------------------------------------------------------------


def test_settings_read_flags_then_shared_and_own_variables() -> None:
    env = {
        "ACTIVITY_PARTITION_COUNT": "16",
        "ACTIVITY_NATS_URL": "nats://n:4222",
        "ACTIVITY_INGEST_BATCH_ITEMS": "50",
        "ACTIVITY_INGEST_ALSO_PUBLISH_SHARED": "true",
        "ACTIVITY_BATCH_ITEMS": "7",  # not the ingest's variable
    }
    s = build_ingest_settings(None, env)
    assert (s.partition_count, s.nats_url, s.batch_items, s.also_publish_shared) == (
        16, "nats://n:4222", 50, True,
    )  # fmt: skip
    import argparse

    args = argparse.Namespace(batch_items="9", linger_ms="2.5")
    s = build_ingest_settings(args, env)
    assert (s.batch_items, s.linger_ms) == (9, 2.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tls_cert_file": "c.pem"}, "go together"),
        ({"client_ca_file": "ca.pem"}, "needs TLS"),
        ({"batch_items": 0}, "batch_items"),
        ({"listen_addr": "8443"}, "HOST:PORT"),
        ({"linger_ms": -1.0}, "linger_ms"),
    ],
)
def test_invalid_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IngestSettings(**overrides)


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(ValueError, match="max_body_bytes: expected int"):
        build_ingest_settings(None, {"ACTIVITY_INGEST_MAX_BODY_BYTES": "lots"})


# --- bodies ----------------------------------------------------------------------------------


def event_list(items: list[Any]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


def test_audit_list_items_are_routed_and_bad_ones_rejected() -> None:
    good = [records.audit(f"web-{i}", seq=i) for i in range(5)]
    body = event_list([good[0], 42, good[1], None, *good[2:]]).replace(b"42", b"4.2e1")
    parsed = parse_body("audit", body, 8, 1 << 20)
    assert [r.data for r in parsed.records] == [orjson.dumps(g) for g in good]
    assert [r.partition for r in parsed.records] == [audit_partition(g, 8) for g in good]
    assert [(r.index, r.reason, r.message) for r in parsed.rejected] == [
        (1, "not_object", "EventList item 1 is a number, not an object"),
        (3, "not_object", "EventList item 3 is null, not an object"),
    ]
    assert parsed.rejected[0].payload == b"4.2e1"  # the original bytes, not orjson's
    assert parsed.records[0].shared_id == good[0]["auditID"]


def test_single_audit_event_and_shared_ids_per_stage() -> None:
    rec = records.audit("web") | {"stage": "RequestReceived"}
    (record,) = parse_body("audit", orjson.dumps(rec), 8, 1 << 20).records
    assert record.shared_id == f"{rec['auditID']}-RequestReceived"


@pytest.mark.parametrize(
    ("source", "body", "message"),
    [
        ("audit", b"", "empty body"),
        ("audit", b"{nope", "invalid JSON"),
        ("audit", b"[1, 2]", "body is an array, not an object"),
        ("audit", b'{"kind": "Pod", "apiVersion": "v1"}', "not an audit.k8s.io EventList"),
        ("audit", orjson.dumps(records.event("x")), "POST it to /events"),
        ("audit", b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":3}', "not number"),
        ("audit", b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}', "not missing"),
        ("event", event_list([]), "POST them to /audit"),
        ("event", b'{"kind": "ConfigMap", "apiVersion": "v1"}', "not a Kubernetes Event"),
        ("event", b'{"kind": "List", "apiVersion": "v1", "items": {}}', "not object"),
    ],
)
def test_bodies_refused_whole(source: Any, body: bytes, message: str) -> None:
    with pytest.raises(BodyError, match=message) as caught:
        parse_body(source, body, 8, 1 << 20)
    assert caught.value.status == 400


def test_event_lists_single_events_nulls_and_oversize() -> None:
    events = [records.event(f"web-{i}", seq=i) for i in range(3)]
    single = parse_body("event", orjson.dumps(events[0]), 8, 1 << 20)
    assert [r.partition for r in single.records] == [event_partition(events[0], 8)]
    big = events[2] | {"note": "x" * 2000}
    body = orjson.dumps({"kind": "List", "apiVersion": "v1", "items": [events[0], None, [1], big]})
    parsed = parse_body("event", body, 8, 1500)
    assert len(parsed.records) == 1
    assert [(r.index, r.reason, r.payload is not None) for r in parsed.rejected] == [
        (1, "null", False),  # the worker skips null Events: nothing to keep
        (2, "not_object", True),
        (3, "too_large", True),
    ]
    assert "cannot unmarshal array" in parsed.rejected[1].message
    with pytest.raises(BodyError, match="exceeds the limit") as caught:
        parse_body("event", orjson.dumps(big), 8, 1500)
    assert caught.value.status == 413


# --- messages and ids --------------------------------------------------------------------------


def test_audit_messages_per_partition_by_items_and_bytes_with_stable_ids() -> None:
    recs = [records.audit(f"obj-{i % 6}", seq=i) for i in range(40)]
    parsed = parse_body("audit", event_list(recs), 4, 1 << 20)
    messages = partition_messages(parsed, 3, 1 << 20)
    again = partition_messages(parse_body("audit", event_list(recs), 4, 1 << 20), 3, 1 << 20)
    assert [m.msg_id for m in messages] == [m.msg_id for m in again]
    assert len({m.msg_id for m in messages}) == len(messages)
    seen: list[bytes] = []
    for m in messages:
        doc = orjson.loads(m.data)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "audit.k8s.io/v1")
        assert 1 <= len(doc["items"]) == m.records <= 3
        assert m.subject == f"audit.k8s.p{m.partition}"
        assert m.msg_id == message_id(m.subject, m.data)
        for item in doc["items"]:
            assert audit_partition(item, 4) == int(m.partition)
            seen.append(orjson.dumps(item))
    assert sorted(seen) == sorted(orjson.dumps(r) for r in recs)
    size = len(orjson.dumps(recs[0]))
    by_bytes = partition_messages(parsed, 100, len(audit_list([b""])) + 2 * size + 10)
    assert max(m.records for m in by_bytes) == 2
    alone = partition_messages(parsed, 100, 1024)  # a record over batch_bytes travels alone
    assert all(m.records == 1 for m in alone)


def test_per_object_order_is_kept_within_a_partition() -> None:
    recs = [records.audit("same", verb=("create", "delete")[i % 2], seq=i) for i in range(9)]
    parsed = parse_body("audit", event_list(recs), 8, 1 << 20)
    items = [
        i for m in partition_messages(parsed, 4, 1 << 20) for i in orjson.loads(m.data)["items"]
    ]
    assert [i["auditID"] for i in items] == [r["auditID"] for r in recs]


def test_events_batched_per_partition_and_shared_copies() -> None:
    events = [records.event(f"e-{i % 5}", seq=i) for i in range(30)]
    body = orjson.dumps({"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": events})
    parsed = parse_body("event", body, 4, 1 << 20)
    messages = partition_messages(parsed, 4, 1 << 20)
    again = partition_messages(parse_body("event", body, 4, 1 << 20), 4, 1 << 20)
    assert [m.msg_id for m in messages] == [m.msg_id for m in again]
    seen = []
    for m in messages:
        doc = orjson.loads(m.data)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "v1")
        assert 1 <= len(doc["items"]) == m.records <= 4
        assert m.subject == f"events.p{m.partition}" and m.source == "event"
        assert m.msg_id == message_id(m.subject, m.data)
        assert all(event_partition(item, 4) == int(m.partition) for item in doc["items"])
        seen += doc["items"]
    assert max(m.records for m in messages) == 4
    assert sorted(seen, key=orjson.dumps) == sorted(events, key=orjson.dumps)
    for name in {e["regarding"]["name"] for e in events}:  # per-object order
        mine = [e for e in seen if e["regarding"]["name"] == name]
        assert mine == [e for e in events if e["regarding"]["name"] == name]
    big = records.event("big", seq=0)
    big["note"] = "x" * 2000
    parsed = parse_body("event", orjson.dumps(big), 4, 1 << 20)
    alone = partition_messages(parsed, 100, 1024)  # too large for a list of one: travels alone
    assert [(orjson.loads(m.data), m.records) for m in alone] == [(big, 1)]
    assert partition_messages(parsed, 100, 1 << 20)[0].data.startswith(b'{"kind":"EventList"')
    recs = [records.audit("a"), records.audit("b")]
    shared = shared_messages(parse_body("audit", event_list(recs), 4, 1 << 20))
    assert [(m.subject, m.msg_id) for m in shared] == [
        ("audit.k8s.activity", r["auditID"]) for r in recs
    ]


def test_shared_events_in_upstreams_form() -> None:
    """One Event per message on ``events.<namespace>``, id ``<uid>`` or ``<uid>-<RV>``
    (upstream's producers, spec pipeline.md section 2), on both body paths."""
    plain = records.event("a", namespace="team-a", seq=1)
    versioned = records.event("b", namespace="team-b", seq=2)
    versioned["metadata"]["resourceVersion"] = "4711"
    zero = records.event("c", seq=3)
    zero["metadata"]["resourceVersion"] = "0"
    no_uid = records.event("d", seq=4)
    del no_uid["metadata"]["uid"]
    events = [plain, versioned, zero, no_uid]
    expected = [
        ("events.team-a", plain["metadata"]["uid"]),
        ("events.team-b", versioned["metadata"]["uid"] + "-4711"),
        ("events.default", zero["metadata"]["uid"]),
    ]
    listed = orjson.dumps({"kind": "EventList", "apiVersion": "v1", "items": events})
    for parsed in (
        parse_body("event", listed, 4, 1 << 20),
        parse_exact("event", listed, 4, 1 << 20),
    ):
        shared = shared_messages(parsed)
        assert [(m.subject, m.msg_id) for m in shared[:3]] == expected
        assert shared[3].subject == "events.default"
        assert shared[3].msg_id.startswith("ingest-shared-")
        assert [orjson.loads(m.data) for m in shared] == events
        assert {(m.source, m.partition, m.records) for m in shared} == {("event", "shared", 1)}
    single = shared_messages(parse_body("event", orjson.dumps(plain), 4, 1 << 20))
    assert [(m.subject, m.msg_id) for m in single] == expected[:1]


def test_event_linger_makes_the_messages_of_partition_messages() -> None:
    """Events of several requests gathered per partition: event lists on events.p<N> within the
    limits, an Event too large for a list alone, per-object order kept."""
    events = [records.event(f"e-{i % 5}", seq=i) for i in range(24)]
    big = records.event("e-1", seq=99)
    big["note"] = "x" * 3000
    bodies = [
        orjson.dumps({"kind": "EventList", "apiVersion": "v1", "items": events[:12]}),
        orjson.dumps(big),
        orjson.dumps({"kind": "EventList", "apiVersion": "v1", "items": events[12:]}),
    ]
    sent: list[Message] = []

    async def send(messages: list[Message]) -> None:
        sent.extend(messages)

    async def run() -> None:
        linger = Linger(send, "event", 5, 2048, 30.0)
        waits = [
            f for body in bodies for f in linger.add(parse_body("event", body, 4, 8192).records)
        ]
        await linger.close()
        await asyncio.gather(*waits)

    asyncio.run(run())
    seen = []
    for m in sent:
        assert m.subject == f"events.p{m.partition}" and m.msg_id == message_id(m.subject, m.data)
        doc = orjson.loads(m.data)
        if doc.get("kind") == "EventList":
            assert doc["apiVersion"] == "v1" and len(m.data) <= 2048
            assert 1 <= len(doc["items"]) == m.records <= 5
            seen += [(int(m.partition), e) for e in doc["items"]]
        else:  # too large for a list of one
            assert doc == big and m.records == 1
            seen.append((int(m.partition), doc))
    assert all(event_partition(e, 4) == p for p, e in seen)
    assert any(m.records == 1 and orjson.loads(m.data) == big for m in sent)
    first, second = ({orjson.dumps(e) for e in half} for half in (events[:12], events[12:]))
    shared_lists = [
        m
        for m in sent
        if {orjson.dumps(e) for e in orjson.loads(m.data).get("items", [])} & first
        and {orjson.dumps(e) for e in orjson.loads(m.data).get("items", [])} & second
    ]
    assert shared_lists  # the two requests' Events share messages
    order = [*events[:12], big, *events[12:]]
    assert sorted((e for _, e in seen), key=orjson.dumps) == sorted(order, key=orjson.dumps)
    for name in {e["regarding"]["name"] for e in order}:
        assert [e for _, e in seen if e["regarding"]["name"] == name] == [
            e for e in order if e["regarding"]["name"] == name
        ]


def test_dead_letters_keep_the_bytes_and_have_stable_ids() -> None:
    body = event_list([records.audit("a"), "text", 7])
    parsed = parse_body("audit", body, 4, 1 << 20)
    first = dead_letter_messages(parsed, body, 1 << 20)
    assert [m.msg_id for m in first] == [
        m.msg_id for m in dead_letter_messages(parsed, body, 1 << 20)
    ]
    assert len({m.msg_id for m in first}) == 2
    assert {m.subject for m in first} == {"activity.dlq.audit.unknown.unknown"}
    record = decode_dead_letter(first[0].data)
    assert (record["type"], record["errorType"], record["ruleIndex"]) == ("audit", "unmarshal", -1)
    assert record["error"] == "EventList item 1 is a string, not an object"
    assert original_payload_bytes(record, first[0].data) == b'"text"'
    other = event_list([records.audit("b"), "text", 7])
    assert (
        dead_letter_messages(parse_body("audit", other, 4, 1 << 20), other, 1 << 20)[0].msg_id
        != first[0].msg_id
    )
    (small,) = dead_letter_messages(parse_body("audit", event_list(["x" * 5000]), 4, 1 << 20),
                                    event_list(["x" * 5000]), 1000)  # fmt: skip
    kept = decode_dead_letter(small.data)
    assert kept["originalPayload"] is None and "not kept" in kept["error"]


def test_publish_failures_map_to_429_and_503() -> None:
    full = PublishError(2, 3, ["maximum messages exceeded (err_code 10077)"])
    assert isinstance(classify(full), StreamFull) and classify(full).status == 429
    mixed = PublishError(2, 3, ["maximum bytes exceeded (err_code 10077)", "no PubAck within 5s"])
    assert isinstance(classify(mixed), Unavailable) and classify(mixed).status == 503
    none = PublishError(1, 1, ["no stream listens on the subject (503 no responders)"])
    assert classify(none).status == 503


# --- authentication ----------------------------------------------------------------------------


def test_tokens_certificates_and_reload(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# comment\n\nfirst\n  second  \n")
    auth = Authenticator(str(tokens), recheck=0)
    assert auth.authenticate("Bearer first", None) == "token"
    assert auth.authenticate("bearer second", None) == "token"
    assert auth.authenticate("Bearer third", None) is None
    assert auth.authenticate("Basic first", None) is None
    assert auth.authenticate(None, {"subject": ()}) is None  # no CA configured
    tokens.write_text("third\n")
    os.utime(tokens, ns=(1, 1))  # a different stamp even within the clock's resolution
    assert auth.authenticate("Bearer third", None) == "token"
    assert auth.authenticate("Bearer first", None) is None
    both = Authenticator(str(tokens), client_ca=True)
    assert both.authenticate(None, {"subject": ()}) == "certificate"
    assert both.authenticate("Bearer wrong", None) is None
    assert Authenticator().authenticate(None, None) == "none"
    (tmp_path / "empty").write_text("# none\n")
    with pytest.raises(AuthConfigError, match="holds no token"):
        Authenticator(str(tmp_path / "empty"))


# --- webhook config ----------------------------------------------------------------------------


def test_webhook_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tokens").write_text("s3cret\nother\n")
    (tmp_path / "ca.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    argv = ["ingest", "webhook-config", "--server", "https://ingest.example:8443",
            "--token-file", str(tmp_path / "tokens"),
            "--certificate-authority", str(tmp_path / "ca.crt")]  # fmt: skip
    assert main(argv) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["kind"] == "Config"
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://ingest.example:8443/audit"
    assert base64.b64decode(cluster["certificate-authority-data"]).startswith(b"-----BEGIN")
    assert config["users"][0]["user"] == {"token": "s3cret"}
    assert config["contexts"][0]["context"] == {
        "cluster": "activity-ingest",
        "user": "kube-apiserver",
    }
    assert (
        webhook_config("https://h:1/x", token_file=str(tmp_path / "tokens"))["clusters"][0][
            "cluster"
        ]["server"]
        == "https://h:1/x"
    )
    with pytest.raises(WebhookConfigError, match="https"):
        webhook_config("h:1", token_file=str(tmp_path / "tokens"))
    assert main(["ingest", "webhook-config", "--server", "https://h:1"]) == 1


# --- documentation -----------------------------------------------------------------------------


def test_every_metric_is_documented() -> None:
    doc = (ROOT / "docs" / "ingest.md").read_text()
    missing = [f.name for f in IngestMetrics().registry.collect() if f"`{f.name}" not in doc]
    assert not missing, f"not in docs/ingest.md: {missing}"


def test_every_flag_is_documented() -> None:
    from processor.ingest.settings import FIELDS

    doc = (ROOT / "docs" / "ingest.md").read_text()
    flags = [f"--{name.replace('_', '-')}" for name in FIELDS]
    assert not [f for f in flags if not re.search(re.escape(f) + r"\b", doc)]
