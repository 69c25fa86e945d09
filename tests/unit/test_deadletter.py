"""Dead-letter records (docs/design.md#pipeline-8-5, #d7) and NATS subjects
(#pipeline-8-3, #d5, #d13)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from processor.deadletter import (
    CEL_MATCH,
    ERROR_TYPES,
    audit_dlq_resource,
    dead_letter_record,
    decode_dead_letter,
    encode_dead_letter,
    event_dlq_resource,
    original_payload_bytes,
)
from processor.subjects import activity_subject, dlq_subject, partition_of, sanitize_token

NOW = datetime(2026, 11, 20, 10, 0, 0, 999999, tzinfo=UTC)


class TestRecord:
    def test_field_order_full(self):
        rec = dead_letter_record(
            "audit",
            b'{"auditID": "a-1",  "verb": "create"}',
            "rule 0 match: failed to evaluate match: no such key: name",
            CEL_MATCH,
            policy_name="p",
            policy_version=0,
            rule_index=0,
            tenant={"type": "Project", "name": "p1"},
            resource={"apiGroup": "apps", "kind": "Deployment", "name": "d", "namespace": "ns"},
            now=NOW,
        )
        assert list(rec) == [
            "type",
            "originalPayload",
            "error",
            "errorType",
            "policyName",
            "policyVersion",
            "ruleIndex",
            "timestamp",
            "tenant",
            "resource",
            "retryCount",
        ]
        raw = encode_dead_letter(rec)
        assert raw.startswith(b'{"type":"audit","originalPayload":{"auditID": "a-1",  "verb"')
        out = orjson.loads(raw)
        assert out == {
            "type": "audit",
            "originalPayload": {"auditID": "a-1", "verb": "create"},
            "error": "rule 0 match: failed to evaluate match: no such key: name",
            "errorType": "cel_match",
            "policyName": "p",
            "policyVersion": 0,
            "ruleIndex": 0,
            "timestamp": "2026-11-20T10:00:00Z",
            "tenant": {"type": "Project", "name": "p1"},
            "resource": {"apiGroup": "apps", "kind": "Deployment", "name": "d", "namespace": "ns"},
            "retryCount": 0,
        }

    def test_unmarshal_defaults(self):
        rec = dead_letter_record("k8s-event", b"[1,2]", "boom", "unmarshal", now=NOW)
        out = orjson.loads(encode_dead_letter(rec))
        assert out == {
            "type": "k8s-event",
            "originalPayload": [1, 2],
            "error": "boom",
            "errorType": "unmarshal",
            "policyName": "",
            "policyVersion": 0,
            "ruleIndex": -1,
            "timestamp": "2026-11-20T10:00:00Z",
            "retryCount": 0,
        }

    def test_inner_omitempty(self):
        rec = dead_letter_record(
            "audit",
            b"{}",
            "e",
            "kind_resolve",
            tenant={"type": "platform", "name": ""},
            resource={"apiGroup": "", "kind": "Pod", "name": "p", "namespace": ""},
            now=NOW,
        )
        assert rec["tenant"] == {"type": "platform"}
        assert rec["resource"] == {"kind": "Pod", "name": "p"}

    def test_timestamp_utc_seconds(self):
        tz = timezone(timedelta(hours=2))
        rec = dead_letter_record(
            "audit", b"{}", "e", "publish", now=datetime(2026, 1, 1, 1, tzinfo=tz)
        )
        assert rec["timestamp"] == "2025-12-31T23:00:00Z"
        rec = dead_letter_record("audit", b"{}", "e", "publish")
        assert len(rec["timestamp"]) == 20 and rec["timestamp"].endswith("Z")

    @pytest.mark.parametrize("error_type", sorted(ERROR_TYPES))
    def test_error_types(self, error_type):
        assert dead_letter_record("audit", b"{}", "e", error_type)["errorType"] == error_type

    def test_error_type_set(self):
        upstream = {"unmarshal", "cel_match", "cel_summary", "kind_resolve", "publish"}
        ours = {"internal", "activity_too_large", "max_deliveries"}  # docs/reliability.md
        assert upstream | ours == ERROR_TYPES

    def test_rejects_unknown(self):
        with pytest.raises(ValueError, match="error type"):
            dead_letter_record("audit", b"{}", "e", "evaluate")
        with pytest.raises(ValueError, match="event type"):
            dead_letter_record("event", b"{}", "e", "unmarshal")


class TestOriginalPayload:
    @pytest.mark.parametrize(
        "payload",
        [
            b'{"a": 1, "big": 123456789012345678901234567890}',
            b'  {"a":[1,2.50,"x"]}\n',
            b'"just a string"',
            b"null",
        ],
    )
    def test_valid_json_embedded_verbatim(self, payload):
        rec = dead_letter_record("audit", payload, "e", "unmarshal", now=NOW)
        assert "originalPayloadEncoding" not in rec
        raw = encode_dead_letter(rec)
        assert payload in raw
        back = decode_dead_letter(raw)
        assert original_payload_bytes(back) == orjson.dumps(back["originalPayload"])
        assert original_payload_bytes(rec) == payload

    @pytest.mark.parametrize(
        "payload", [b"{not json", b"", b"   ", b"NaN", b"[1,]", b"1e400", "héllo {".encode()]
    )
    def test_text_payload(self, payload):
        rec = dead_letter_record("audit", payload, "e", "unmarshal", now=NOW)
        assert rec["originalPayloadEncoding"] == "text"
        keys = list(rec)
        assert keys.index("originalPayloadEncoding") == keys.index("originalPayload") + 1
        back = decode_dead_letter(encode_dead_letter(rec))
        assert original_payload_bytes(back) == payload

    def test_binary_payload(self):
        payload = b"\xff\xfe\x00garbage"
        rec = dead_letter_record("k8s-event", payload, "e", "unmarshal", now=NOW)
        assert rec["originalPayloadEncoding"] == "base64"
        back = decode_dead_letter(encode_dead_letter(rec))
        assert original_payload_bytes(back) == payload

    def test_str_and_dict_payloads(self):
        rec = dead_letter_record("audit", '{"a":1}', "e", "unmarshal", now=NOW)
        assert orjson.loads(encode_dead_letter(rec))["originalPayload"] == {"a": 1}
        rec = dead_letter_record("audit", {"a": 1}, "e", "unmarshal", now=NOW)
        assert orjson.loads(encode_dead_letter(rec))["originalPayload"] == {"a": 1}

    def test_decode_rejects_non_object(self):
        with pytest.raises(ValueError):
            decode_dead_letter(b"[]")


class TestResourceHelpers:
    def test_audit(self):
        audit = {"objectRef": {"apiGroup": "apps", "resource": "deployments", "name": "d"}}
        assert audit_dlq_resource(audit, "Deployment") == {
            "apiGroup": "apps",
            "kind": "Deployment",
            "name": "d",
            "namespace": "",
        }
        assert audit_dlq_resource({}, "K") == {
            "apiGroup": "",
            "kind": "K",
            "name": "",
            "namespace": "",
        }

    def test_event(self):
        inv = {"name": "web-0", "namespace": "shop", "uid": "u"}
        assert event_dlq_resource("", "Pod", inv) == {
            "apiGroup": "",
            "kind": "Pod",
            "name": "web-0",
            "namespace": "shop",
        }
        assert event_dlq_resource("g", "K", {"name": 1.0})["name"] == ""


def activity(tenant_type="Project", tenant_name="p1", group="networking.datumapis.com",
             namespace="default", kind="HTTPProxy", origin="audit"):  # fmt: skip
    resource = {"apiVersion": "v1", "kind": kind, "name": "x"}
    if group:
        resource = {"apiGroup": group, **resource}
    if namespace:
        resource["namespace"] = namespace
    return {
        "metadata": {"name": "act-5beda4f21f93"},
        "spec": {
            "resource": resource,
            "tenant": {"type": tenant_type, "name": tenant_name},
            "origin": {"type": origin, "id": "i"},
        },
    }


class TestActivitySubject:
    def test_documented_example_sanitised(self):
        assert activity_subject(activity()) == (
            "activities.Project.p1.networking_datumapis_com.audit.HTTPProxy.default.act-5beda4f21f93"
        )

    def test_defaults(self):
        a = activity(tenant_type="", tenant_name="", group="", namespace="", origin="event")
        assert (
            activity_subject(a) == "activities.platform._.core.event.HTTPProxy._.act-5beda4f21f93"
        )

    def test_prefix(self):
        assert activity_subject(activity(), prefix="x.y").startswith("x.y.Project.p1.")

    @pytest.mark.parametrize(
        ("value", "token"),
        [
            ("a.b.c", "a_b_c"),
            ("a*b", "a_b"),
            ("a>b", "a_b"),
            ("a b\tc\nd", "a_b_c_d"),
            ("x\x00y\x7f", "x_y_"),
            ("a\u00a0b\u2003c", "a_b_c"),
            ("plain-Name_1", "plain-Name_1"),
            ("ünïcode", "ünïcode"),
        ],
    )
    def test_sanitize(self, value, token):
        assert sanitize_token(value, "_") == token
        a = activity(tenant_name=value)
        parts = activity_subject(a).split(".")
        assert len(parts) == 8 and parts[2] == token

    def test_sanitize_empty(self):
        assert sanitize_token("", "core") == "core"

    def test_every_token_valid(self):
        a = activity(tenant_type="o rg", tenant_name="*", group=">", namespace="n.s", kind="K.x")
        parts = activity_subject(a).split(".")
        assert len(parts) == 8
        assert all(p and not set(p) & set(" *>\t") for p in parts)


class TestDlqSubject:
    @pytest.mark.parametrize(
        ("args", "subject"),
        [
            (("audit", "apps", "Deployment"), "activity.dlq.audit.apps.Deployment"),
            (("k8s-event", "", "Pod"), "activity.dlq.k8s-event.core.Pod"),
            (("audit", None, ""), "activity.dlq.audit.unknown.unknown"),
            (("k8s-event", "networking.k8s.io", ""),
             "activity.dlq.k8s-event.networking.k8s.io.unknown"),
            (("audit", "a..b", "K"), "activity.dlq.audit.a__b.K"),
            (("audit", ".x", "K"), "activity.dlq.audit._x.K"),
            (("audit", "a*b.c", "K y"), "activity.dlq.audit.a_b.c.K_y"),
            (("audit", "g", "K.x"), "activity.dlq.audit.g.K_x"),
        ],
    )  # fmt: skip
    def test_subjects(self, args, subject):
        assert dlq_subject(*args) == subject

    def test_prefix(self):
        assert dlq_subject("audit", "apps", "D", prefix="dlq") == "dlq.audit.apps.D"


class TestPartition:
    def test_range_and_determinism(self):
        seen = set()
        for i in range(2000):
            p = partition_of("apps", "deployments", "ns", f"d{i}", 8)
            assert 0 <= p < 8
            assert p == partition_of("apps", "deployments", "ns", f"d{i}", 8)
            seen.add(p)
        assert seen == set(range(8))

    def test_known_value(self):
        # zlib.crc32(b"apps/deployments/default/web") == 0x... fixed across runs/platforms
        import zlib

        key = b"apps/deployments/default/web"
        assert partition_of("apps", "deployments", "default", "web", 16) == zlib.crc32(key) % 16

    def test_stable_across_processes(self):
        code = (
            "from processor.subjects import partition_of;"
            "print(partition_of('apps','deployments','default','web',1000))"
        )
        outs = {
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONHASHSEED": seed},
            ).stdout.strip()
            for seed in ("1", "2")
        }
        assert outs == {str(partition_of("apps", "deployments", "default", "web", 1000))}

    def test_single_partition_and_bad_count(self):
        assert partition_of("a", "b", "c", "d", 1) == 0
        with pytest.raises(ValueError):
            partition_of("a", "b", "c", "d", 0)
