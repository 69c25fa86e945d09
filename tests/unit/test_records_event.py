"""Kubernetes Event records (docs/design.md#policy-engine-2-2,
#policy-engine-4-4, #pipeline-9, #d11)."""

from __future__ import annotations

import orjson
import pytest

from processor.errors import RecordError
from processor.records import (
    classify_record,
    decode_event,
    event_actor,
    event_key,
    event_source,
    event_vars,
    involved_object,
    normalize_event,
)

V1_EVENT = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "ckt-1.1", "namespace": "default", "uid": "ev-1"},
    "eventTime": "2026-11-20T10:00:05.250000Z",
    "reason": "Ready",
    "reportingController": "inventory.miloapis.com/inventory-controller",
    "regarding": {
        "apiVersion": "inventory.miloapis.com/v1alpha1",
        "kind": "Circuit",
        "name": "ckt-1",
        "uid": "c-uid",
    },
    "series": {"count": 3},
}

CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "web-0.1", "namespace": "shop", "uid": "ev-9"},
    "reason": "Killing",
    "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "namespace": "shop"},
    "source": {"component": "kubelet"},
    "count": 2,
}


class TestDecode:
    def test_numbers_become_float(self):
        e = decode_event(orjson.dumps(V1_EVENT))
        assert e["series"]["count"] == 3.0 and type(e["series"]["count"]) is float
        e = decode_event(orjson.dumps(CORE_EVENT))
        assert type(e["count"]) is float

    def test_nested_lists(self):
        e = decode_event(b'{"a":[1,[2,{"b":3}]],"c":true,"d":1.5}')
        assert e == {"a": [1.0, [2.0, {"b": 3.0}]], "c": True, "d": 1.5}
        assert type(e["c"]) is bool

    def test_null_is_skip(self):
        assert decode_event(b"null") is None

    @pytest.mark.parametrize("raw", [b"[]", b"[1]", b"1", b'"x"', b"false"])
    def test_non_object(self, raw):
        with pytest.raises(RecordError):
            decode_event(raw)

    def test_invalid_json(self):
        with pytest.raises(RecordError, match="invalid JSON"):
            decode_event(b"{")

    def test_dict_not_mutated(self):
        src = orjson.loads(orjson.dumps(CORE_EVENT))
        out = decode_event(src)
        assert out is not src
        assert type(src["count"]) is int

    def test_copy_false_converts_in_place(self):
        src = orjson.loads(orjson.dumps(CORE_EVENT))
        out = decode_event(src, copy=False)
        assert out is src
        assert type(src["count"]) is float


class TestInvolvedObject:
    def test_regarding(self):
        group, kind, inv = involved_object(V1_EVENT)
        assert (group, kind) == ("inventory.miloapis.com", "Circuit")
        assert inv is V1_EVENT["regarding"]

    def test_involved_object_core(self):
        group, kind, inv = involved_object(CORE_EVENT)
        assert (group, kind) == ("", "Pod")
        assert inv is CORE_EVENT["involvedObject"]

    def test_regarding_wins_over_involved_object(self):
        e = dict(CORE_EVENT, regarding={"apiVersion": "apps/v1", "kind": "Deployment"})
        assert involved_object(e)[:2] == ("apps", "Deployment")

    def test_regarding_not_object_falls_back(self):
        for bad in (None, "x", [], 1.0):
            e = dict(CORE_EVENT, regarding=bad)
            assert involved_object(e)[:2] == ("", "Pod")

    def test_skip_without_involved(self):
        assert involved_object({"reason": "x"}) is None
        assert involved_object({"regarding": None, "involvedObject": "x"}) is None

    @pytest.mark.parametrize("kind", ["", None, 1.0])
    def test_skip_empty_kind(self, kind):
        assert involved_object({"regarding": {"apiVersion": "v1", "kind": kind}}) is None

    @pytest.mark.parametrize(
        ("involved", "group"),
        [
            ({"apiVersion": "v1"}, ""),
            ({"apiVersion": "apps/v1"}, "apps"),
            ({"apiVersion": "networking.k8s.io/v1"}, "networking.k8s.io"),
            ({"apiVersion": "v1beta1"}, ""),
            ({"apiVersion": "a/b/v1"}, "a/b"),  # text before the LAST slash
            ({"apiVersion": ""}, ""),
            ({}, ""),
            ({"apiVersion": 1.0}, ""),
            ({"apiGroup": "custom.io", "apiVersion": "apps/v1"}, "custom.io"),
            ({"apiGroup": "", "apiVersion": "apps/v1"}, "apps"),
        ],
    )
    def test_api_group(self, involved, group):
        e = {"regarding": dict(involved, kind="K")}
        assert involved_object(e)[0] == group

    def test_event_key(self):
        assert event_key(V1_EVENT) == "inventory.miloapis.com/Circuit"
        assert event_key(CORE_EVENT) == "/Pod"
        assert event_key({}) is None


class TestNormalize:
    def test_copies_involved_object_to_regarding(self):
        inv = CORE_EVENT["involvedObject"]
        out = normalize_event(CORE_EVENT, inv)
        assert out["regarding"] is inv
        assert out is not CORE_EVENT and "regarding" not in CORE_EVENT
        assert out["involvedObject"] is inv

    def test_existing_regarding_unchanged(self):
        assert normalize_event(V1_EVENT, V1_EVENT["regarding"]) is V1_EVENT

    def test_regarding_null_present_unchanged(self):
        e = dict(CORE_EVENT, regarding=None)
        _, _, inv = involved_object(e)
        out = normalize_event(e, inv)
        assert out is e and out["regarding"] is None


class TestVars:
    def test_v1(self):
        v = event_vars(V1_EVENT)
        assert v["event"] is V1_EVENT
        assert v["actor"] == "inventory.miloapis.com/inventory-controller"
        assert v["actorRef"] == {
            "type": "controller",
            "name": "inventory.miloapis.com/inventory-controller",
        }
        assert v["source"] == {"planeType": "", "cluster": "", "region": "", "city": ""}
        assert set(v) == {"event", "actor", "actorRef", "source"}

    def test_actor_fallbacks(self):
        assert event_actor(CORE_EVENT) == "kubelet"
        assert event_actor(dict(CORE_EVENT, reportingController="")) == "kubelet"
        assert event_actor(dict(CORE_EVENT, reportingController="rc")) == "rc"
        assert event_actor({"reportingController": 1.0, "source": {"component": "c"}}) == "c"
        # deprecatedSource is not consulted; no "unknown" in the variable
        assert event_actor({"deprecatedSource": {"component": "x"}}) == ""
        assert event_vars({})["actorRef"] == {"type": "controller", "name": ""}

    def test_no_default_maps(self):
        v = event_vars({"reason": "x"})
        assert v["event"] == {"reason": "x"}

    def test_source_annotations(self):
        e = {
            "metadata": {
                "annotations": {
                    "activity.miloapis.com/source-plane-type": "edge",
                    "activity.miloapis.com/source-cluster": "c1",
                    "activity.miloapis.com/source-city": "AMS",
                    "activity.miloapis.com/source-region": 1.0,
                }
            }
        }
        assert event_source(e) == {
            "planeType": "edge",
            "cluster": "c1",
            "region": "",
            "city": "AMS",
        }
        assert event_source({"metadata": "x"})["cluster"] == ""
        assert event_source({"metadata": {"annotations": None}})["city"] == ""


class TestClassify:
    @pytest.mark.parametrize(
        ("obj", "expected"),
        [
            ({"apiVersion": "audit.k8s.io/v1", "kind": "Event"}, "audit"),
            ({"apiVersion": "audit.k8s.io/v1", "kind": "EventList", "items": []}, "audit_list"),
            ({"auditID": "x", "stage": "ResponseComplete"}, "audit"),
            ({"apiVersion": "events.k8s.io/v1", "kind": "Event"}, "event"),
            ({"apiVersion": "v1", "kind": "Event"}, "event"),
            ({"regarding": {}}, "event"),
            ({"involvedObject": {}}, "event"),
            ({"apiVersion": "apps/v1", "kind": "Deployment"}, None),
            ({"kind": "EventList"}, None),
            ({"apiVersion": ["x"], "kind": "Event"}, None),
            ([], None),
            ("x", None),
        ],
    )
    def test_classify(self, obj, expected):
        assert classify_record(obj) == expected
