"""Audit record decoding and normalisation (docs/design.md#policy-engine-2-1,
#policy-engine-2-3, #d3)."""

from __future__ import annotations

import orjson
import pytest

from processor.errors import RecordError
from processor.native import Implementation
from processor.records import audit_key, audit_vars, decode_audit, timefmt
from processor.records.audit import audit_actor_ref
from processor.records.route import peek_selector
from tests.unit.parity import impl, use_unit  # noqa: F401


@pytest.fixture(autouse=True)
def decoder_of(impl: Implementation, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Every test on the twin's decoder, then on its Cython build."""
    use_unit(
        monkeypatch,
        __name__,
        impl,
        "audit",
        ["audit_actor_ref", "audit_key", "audit_vars", "decode_audit"],
    )


BASE = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "a-1",
    "stage": "ResponseComplete",
    "requestURI": "/apis/networking.datumapis.com/v1alpha/namespaces/default/httpproxies/gw",
    "verb": "create",
    "user": {"username": "alice@example.com", "uid": "u-1", "groups": ["system:authenticated"]},
    "objectRef": {
        "resource": "httpproxies",
        "name": "gw",
        "namespace": "default",
        "apiGroup": "networking.datumapis.com",
        "apiVersion": "v1alpha",
    },
    "responseStatus": {"metadata": {}, "code": 201},
    "requestReceivedTimestamp": "2026-11-20T10:00:00.123456Z",
    "stageTimestamp": "2026-11-20T10:00:00.123456Z",
    "responseObject": {"kind": "HTTPProxy", "metadata": {"uid": "r-1", "generation": 1}},
}


def dec(**over):
    d = dict(BASE)
    for k, v in over.items():
        if v is ...:
            d.pop(k, None)
        else:
            d[k] = v
    return decode_audit(orjson.dumps(d))


class TestDecodeShape:
    def test_full_record(self):
        a = dec()
        assert list(a) == [
            "kind",
            "apiVersion",
            "level",
            "auditID",
            "stage",
            "requestURI",
            "verb",
            "user",
            "objectRef",
            "responseStatus",
            "responseObject",
            "requestReceivedTimestamp",
            "stageTimestamp",
        ]
        assert a["responseStatus"] == {"metadata": {}, "code": 201.0}
        assert type(a["responseStatus"]["code"]) is float

    def test_always_present_keys(self):
        a = decode_audit(b"{}")
        assert a == {
            "level": "",
            "auditID": "",
            "stage": "",
            "requestURI": "",
            "verb": "",
            "user": {},
            "requestReceivedTimestamp": None,
            "stageTimestamp": None,
        }

    def test_kind_api_version_only_if_present(self):
        a = dec(kind=..., apiVersion=...)
        assert "kind" not in a and "apiVersion" not in a

    def test_accepts_bytes_str_dict(self):
        raw = orjson.dumps(BASE)
        assert decode_audit(raw) == decode_audit(raw.decode()) == decode_audit(BASE)
        assert decode_audit(bytearray(raw)) == decode_audit(memoryview(raw))

    def test_dict_input_not_mutated(self):
        src = orjson.loads(orjson.dumps(BASE))
        decode_audit(src)
        assert src == BASE
        assert type(src["responseStatus"]["code"]) is int

    def test_dict_input_with_yaml_datetime(self):
        from datetime import UTC, datetime

        d = dict(BASE, requestReceivedTimestamp=datetime(2026, 11, 20, 10, 0, 0, 5, tzinfo=UTC))
        assert decode_audit(d)["requestReceivedTimestamp"] == "2026-11-20T10:00:00.000005Z"
        d = dict(BASE, requestReceivedTimestamp=datetime(2026, 11, 20, 10, 0, 0))  # naive = UTC
        assert decode_audit(d)["requestReceivedTimestamp"] == "2026-11-20T10:00:00.000000Z"

    def test_copy_false_uses_owned_dict(self):
        from datetime import UTC, datetime

        src = orjson.loads(orjson.dumps(BASE))
        src["stageTimestamp"] = datetime(2026, 11, 20, 10, 0, 0, 5, tzinfo=UTC)
        a = decode_audit(src, copy=False)
        assert a == decode_audit(BASE) | {"stageTimestamp": "2026-11-20T10:00:00.000005Z"}
        assert a["responseObject"] is src["responseObject"]  # shared, converted in place
        assert type(src["responseObject"]["metadata"]["generation"]) is float
        src = {"stageTimestamp": datetime(2026, 11, 20, 10, 0, 0)}  # naive = UTC
        assert decode_audit(src, copy=False)["stageTimestamp"] == "2026-11-20T10:00:00.000000Z"

    def test_unknown_keys_dropped(self):
        a = dec(
            extraTop=1,
            user={"username": "bob", "nick": "b"},
            objectRef={"resource": "pods", "color": "red"},
            responseStatus={"code": 200, "foo": "bar", "metadata": {"x": 1}},
        )
        assert "extraTop" not in a
        assert a["user"] == {"username": "bob"}
        assert a["objectRef"] == {"resource": "pods"}
        assert a["responseStatus"] == {"metadata": {}, "code": 200.0}

    def test_case_insensitive_keys(self):
        a = decode_audit(
            b'{"VERB":"get","AuditId":"x","User":{"UserName":"bob"},'
            b'"objectref":{"Resource":"pods","APIGROUP":"apps"}}'
        )
        assert a["verb"] == "get"
        assert a["auditID"] == "x"
        assert a["user"] == {"username": "bob"}
        assert a["objectRef"] == {"resource": "pods", "apiGroup": "apps"}

    def test_last_duplicate_wins(self):
        assert decode_audit(b'{"verb":"a","Verb":"b"}')["verb"] == "b"
        assert decode_audit(b'{"verb":"a","verb":"c"}')["verb"] == "c"

    def test_unicode_folding_like_go(self):
        # Go folds U+212A KELVIN SIGN to 'k' and U+017F LONG S to 's'.
        assert decode_audit('{"\u212aind":"Event"}'.encode())["kind"] == "Event"
        assert decode_audit('{"\u017ftage":"X"}'.encode())["stage"] == "X"

    def test_null_value_field_keeps_previous(self):
        assert decode_audit(b'{"verb":"get","Verb":null}')["verb"] == "get"
        assert decode_audit(b'{"user":null}')["user"] == {}

    def test_optional_fields_omitted_when_empty(self):
        a = dec(
            sourceIPs=[],
            userAgent="",
            annotations={},
            impersonatedUser=None,
            objectRef=None,
            responseStatus=None,
            requestObject=None,
            responseObject=None,
        )
        for key in (
            "sourceIPs",
            "userAgent",
            "annotations",
            "impersonatedUser",
            "objectRef",
            "responseStatus",
            "requestObject",
            "responseObject",
        ):
            assert key not in a

    def test_optional_fields_kept(self):
        a = dec(
            sourceIPs=["10.0.0.1"],
            userAgent="kubectl",
            annotations={"authorization.k8s.io/decision": "allow"},
            impersonatedUser={"username": "eve", "junk": 1},
            requestObject={"spec": {"replicas": 3, "list": [1, {"n": 2}]}},
            authenticationMetadata={"x": 1},
        )
        assert a["sourceIPs"] == ["10.0.0.1"]
        assert a["userAgent"] == "kubectl"
        assert a["annotations"] == {"authorization.k8s.io/decision": "allow"}
        assert a["impersonatedUser"] == {"username": "eve"}
        assert a["requestObject"] == {"spec": {"replicas": 3.0, "list": [1.0, {"n": 2.0}]}}
        assert type(a["requestObject"]["spec"]["list"][1]["n"]) is float
        assert a["authenticationMetadata"] == {"x": 1.0}

    def test_request_object_any_json_value(self):
        assert dec(requestObject="raw")["requestObject"] == "raw"
        assert dec(requestObject=[1, 2])["requestObject"] == [1.0, 2.0]
        assert dec(responseObject=7)["responseObject"] == 7.0

    def test_object_ref_empty_fields_omitted(self):
        a = dec(objectRef={"resource": "pods", "name": "", "subresource": ""})
        assert a["objectRef"] == {"resource": "pods"}
        assert "subresource" not in a["objectRef"]

    def test_object_ref_empty_object_kept(self):
        a = dec(objectRef={})
        assert a["objectRef"] == {}
        assert audit_key(a) == "/"

    def test_object_ref_all_fields(self):
        ref = {
            "resource": "deployments",
            "namespace": "ns",
            "name": "n",
            "uid": "u",
            "apiGroup": "apps",
            "apiVersion": "v1",
            "resourceVersion": "9",
            "subresource": "scale",
        }
        assert dec(objectRef=ref)["objectRef"] == ref

    def test_user_fields(self):
        a = dec(user={"username": "", "uid": "", "groups": [], "extra": {}})
        assert a["user"] == {}
        a = dec(user={"username": "u", "extra": {"project": ["p1"]}})
        assert a["user"] == {"username": "u", "extra": {"project": ["p1"]}}

    def test_response_status(self):
        a = dec(
            responseStatus={
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "5"},
                "status": "Failure",
                "message": "nope",
                "reason": "NotFound",
                "details": {"name": "x", "kind": "pods", "causes": [{"reason": "r", "y": 1}]},
                "code": 404,
            }
        )
        assert a["responseStatus"] == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "5"},
            "status": "Failure",
            "message": "nope",
            "reason": "NotFound",
            "details": {"name": "x", "kind": "pods", "causes": [{"reason": "r"}]},
            "code": 404.0,
        }

    def test_response_status_zero_code_omitted(self):
        assert dec(responseStatus={"code": 0})["responseStatus"] == {"metadata": {}}
        assert dec(responseStatus={})["responseStatus"] == {"metadata": {}}


class TestTimestamps:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("2026-11-20T10:00:00.123456Z", "2026-11-20T10:00:00.123456Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00.000000Z"),
            ("2026-11-20T10:00:00.1Z", "2026-11-20T10:00:00.100000Z"),
            ("2026-11-20T10:00:00.123Z", "2026-11-20T10:00:00.123000Z"),
            ("2026-11-20T10:00:00.123456789Z", "2026-11-20T10:00:00.123456Z"),
            ("2026-11-20T12:30:00.5+02:30", "2026-11-20T10:00:00.500000Z"),
            ("2026-11-20T01:00:00-09:00", "2026-11-20T10:00:00.000000Z"),
            ("2026-12-31T23:30:00-01:00", "2027-01-01T00:30:00.000000Z"),
            ("0001-01-01T00:00:00Z", None),
            ("0001-01-01T00:00:00.000000Z", None),
            (None, None),
        ],
    )
    def test_any_precision_any_offset(self, given, expected):
        a = dec(requestReceivedTimestamp=given, stageTimestamp=given)
        assert a["requestReceivedTimestamp"] == expected
        assert a["stageTimestamp"] == expected

    def test_missing_is_null(self):
        a = dec(requestReceivedTimestamp=..., stageTimestamp=...)
        assert a["requestReceivedTimestamp"] is None and a["stageTimestamp"] is None

    @pytest.mark.parametrize(
        "bad",
        [
            "yesterday",
            "2026-11-20",
            "2026-11-20 10:00:00Z",
            "2026-11-20T10:00:00",
            "2026-13-20T10:00:00.000000Z",
            "2026-02-30T10:00:00Z",
            "2026-11-20T24:00:00Z",
            "2026-11-20T10:00:60Z",
            "2026-11-20T10:00:00.Z",
            "2026-11-20T10:00:00+25:00",
            "",
        ],
    )
    def test_bad_timestamp_is_record_error(self, bad):
        with pytest.raises(RecordError, match="requestReceivedTimestamp"):
            dec(requestReceivedTimestamp=bad)

    def test_non_string_timestamp(self):
        with pytest.raises(RecordError, match="stageTimestamp"):
            dec(stageTimestamp=12345)


class TestWrongTypes:
    @pytest.mark.parametrize(
        ("over", "fragment"),
        [
            ({"verb": 1}, "Event.verb of type string"),
            ({"auditID": True}, "cannot unmarshal bool"),
            ({"level": {}}, "cannot unmarshal object"),
            ({"objectRef": "pods"}, "Event.objectRef"),
            ({"objectRef": {"name": 5}}, "Event.objectRef.name"),
            ({"user": []}, "Event.user"),
            ({"user": {"groups": "g"}}, "Event.user.groups"),
            ({"user": {"groups": [1]}}, "Event.user.groups"),
            ({"user": {"extra": {"k": "v"}}}, "Event.user.extra"),
            ({"sourceIPs": "1.2.3.4"}, "Event.sourceIPs"),
            ({"annotations": {"a": 1}}, "Event.annotations"),
            ({"responseStatus": []}, "Event.responseStatus"),
            ({"responseStatus": {"code": "200"}}, "Event.responseStatus.code"),
            ({"responseStatus": {"code": 200.5}}, "number 200.5"),
            ({"responseStatus": {"code": 2**40}}, "int32"),
        ],
    )
    def test_wrong_type(self, over, fragment):
        with pytest.raises(RecordError, match=fragment.replace(".", r"\.")):
            dec(**over)

    @pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null", b"true"])
    def test_top_level_not_object(self, raw):
        with pytest.raises(RecordError, match=r"audit\.Event"):
            decode_audit(raw)

    def test_invalid_json(self):
        with pytest.raises(RecordError, match="invalid JSON"):
            decode_audit(b"{not json")

    def test_record_error_is_value_error(self):
        with pytest.raises(ValueError):
            decode_audit(b"[]")


class TestAuditVars:
    def test_defaults_for_absent_maps(self):
        a = decode_audit(b'{"verb":"get"}')
        v = audit_vars(a)
        for key in ("objectRef", "user", "responseStatus", "responseObject", "requestObject"):
            assert v["audit"][key] == {}
        assert v["actor"] == ""
        assert v["actorRef"] == {"type": "unknown", "name": ""}
        assert v["kind"] == ""
        # shallow copy: the decoded map is untouched
        assert "objectRef" not in a and "responseObject" not in a

    def test_present_maps_kept(self):
        a = dec()
        v = audit_vars(a)
        assert v["audit"]["objectRef"] is a["objectRef"]
        assert v["kind"] == "httpproxies"
        assert v["actor"] == "alice@example.com"
        assert v["actorRef"] == {"type": "user", "name": "alice@example.com"}

    @pytest.mark.parametrize(
        ("username", "ref_type"),
        [
            ("", "unknown"),
            ("system:serviceaccount:ns:sa", "serviceaccount"),
            ("system:kube-scheduler", "system"),
            ("system:", "system"),
            ("bob", "user"),
            ("serviceaccount:x", "user"),
        ],
    )
    def test_actor_ref(self, username, ref_type):
        assert audit_actor_ref(username) == {"type": ref_type, "name": username}
        a = dec(user={"username": username} if username else {})
        v = audit_vars(a)
        assert v["actor"] == username  # raw, system: not stripped
        assert v["actorRef"] == {"type": ref_type, "name": username}


class TestAuditKey:
    def test_key(self):
        assert audit_key(dec()) == "networking.datumapis.com/httpproxies"
        assert audit_key(dec(objectRef={"resource": "pods"})) == "/pods"

    def test_subresource_ignored(self):
        ref = {"resource": "deployments", "apiGroup": "apps", "subresource": "status"}
        assert audit_key(dec(objectRef=ref)) == "apps/deployments"

    def test_no_object_ref(self):
        assert audit_key(dec(objectRef=...)) is None


class TestTimefmt:
    tf = timefmt

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("2026-11-20T10:00:00.123456Z", "2026-11-20T10:00:00.123Z"),
            ("2026-11-20T10:00:00.999999Z", "2026-11-20T10:00:00.999Z"),
            ("2026-11-20T10:00:05Z", "2026-11-20T10:00:05.000Z"),
            ("2026-11-20T10:00:05.2Z", "2026-11-20T10:00:05.200Z"),
            ("2026-11-20T10:00:05.123456789Z", "2026-11-20T10:00:05.123Z"),
            ("2026-11-20T11:00:05.5+01:00", "2026-11-20T10:00:05.500Z"),
            ("2026-11-20t10:00:05z", "2026-11-20T10:00:05.000Z"),
        ],
    )
    def test_millis(self, given, expected):
        assert self.tf.millis(given) == expected

    @pytest.mark.parametrize(
        "bad",
        ["2026-02-30T10:00:05Z", "2026-02-30T10:00:05.000000Z", "2026-11-20T10:00", "x", "١٢"],
    )
    def test_millis_rejects(self, bad):
        with pytest.raises(ValueError):
            self.tf.millis(bad)

    def test_unicode_digits_rejected(self):
        with pytest.raises(ValueError):
            self.tf.micro("٢٠٢٦-11-20T10:00:00.000000Z")

    def test_seconds_and_now(self):
        assert self.tf.seconds("2026-11-20T10:00:05.9+00:30") == "2026-11-20T09:30:05Z"
        assert len(self.tf.now_millis()) == 24
        assert len(self.tf.now_seconds()) == 20


@pytest.mark.parametrize(
    ("user", "actor"),
    [
        ({"username": "alice@example.com", "groups": ["a"]}, "user"),
        ({"username": "system:serviceaccount:ns:sa"}, "serviceaccount"),
        ({"username": "system:kube-scheduler"}, "system"),
        ({"username": ""}, "unknown"),
        ({"username": None}, "unknown"),
        ({}, "unknown"),
        (None, "unknown"),
        ("absent", "unknown"),
        # only a full decode can tell: keys in another case, values of the wrong type
        ({"Username": "alice"}, None),
        ({"username": "alice", "bogus": 1}, None),
        ({"username": 7}, None),
        ("alice", None),
    ],
)
def test_peek_selector_tells_the_actor_type_its_rules_see(user: object, actor: str | None) -> None:
    record = {k: v for k, v in BASE.items() if k != "user"}
    if user != "absent":
        record["user"] = user
    assert peek_selector(record) == ("create", None, actor)
    if actor is not None:  # exactly what the rules' actorRef.type reads once decoded
        assert audit_vars(decode_audit(record))["actorRef"]["type"] == actor
