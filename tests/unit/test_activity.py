"""The Activity builder (docs/design.md#policy-engine-3-6, #policy-engine-5,
#policy-engine-6, #policy-engine-7; #d3, #d6, #d9)."""

from __future__ import annotations

import re
import sys
from types import ModuleType

import orjson
import pytest
import yaml

from processor.activity import (
    Built,
    activity_name,
    audit_tenant,
    build_audit_activity,
    build_event_activity,
    change_source,
    convert_links,
    encode_activity,
    event_tenant,
    normalize_tenant_type,
    resolve_actor,
)
from processor.errors import KindResolveError
from processor.kinds import KindResolver
from processor.native import Implementation
from processor.records import audit_vars, decode_audit, decode_event, involved_object, timefmt
from processor.records import normalize_event as norm_event
from processor.subjects import activity_subject
from tests.conftest import require_shared
from tests.unit.parity import both_plans, use_unit  # noqa: F401  (runs every test on both)


class Views:
    """The builder's helpers as the tests call them, read from what an implementation's
    ``build_audit``/``build_event`` give (:class:`processor.activity.Built`): so every test of
    this module runs on the twin and on the native builder, which has only those two."""

    def __init__(self, unit: ModuleType) -> None:
        self.unit = unit

    def build_audit_activity(self, *args, **kwargs):
        built = self.unit.build_audit(*args, **kwargs)
        assert type(built) is Built and built.data == orjson.dumps(built.activity())
        return built.activity()

    def build_event_activity(self, *args, **kwargs):
        built = self.unit.build_event(*args, **kwargs)
        assert type(built) is Built and built.data == orjson.dumps(built.activity())
        return built.activity()

    def spec_of(self, audit, links=(), resolver=None):
        return self.build_audit_activity(audit, "g", "K", "s", links, resolver)["spec"]

    def convert_links(self, links, resolver=None):
        return self.spec_of({}, links, resolver).get("links", [])

    def activity_name(self, origin_type, origin_id, api_group, kind):
        if origin_type == "audit":
            built = self.unit.build_audit({"auditID": origin_id}, api_group, kind, "s")
        else:
            event = {"metadata": {"uid": origin_id}}
            built = self.unit.build_event(event, {}, api_group, kind, "s")
        assert built.name == built["metadata"]["name"]
        return built.name

    def audit_tenant(self, user):
        return self.spec_of({"user": user} if type(user) is dict else {})["tenant"]

    def event_tenant(self, event):
        event = event if type(event) is dict else {}
        return self.build_event_activity(event, {}, "g", "K", "s")["spec"]["tenant"]

    def normalize_tenant_type(self, value):
        return self.audit_tenant({"extra": {"iam.miloapis.com/parent-type": [value]}})["type"]

    def resolve_actor(self, username, uid=""):
        return self.spec_of({"user": {"username": username, "uid": uid}})["actor"]

    def change_source(self, username):
        return self.spec_of({"user": {"username": username}})["changeSource"]


VIEWS = [
    "activity_name",
    "audit_tenant",
    "build_audit_activity",
    "build_event_activity",
    "change_source",
    "convert_links",
    "event_tenant",
    "normalize_tenant_type",
    "resolve_actor",
]


@pytest.fixture(autouse=True)
def builder_of(both_plans: Implementation, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Every test on the twin's Activity builder, then on the native one
    (``processor._native.activity``)."""
    unit = both_plans.activity
    if both_plans.name == "native":
        assert unit.__name__ == "processor._native.activity", unit
    views = Views(unit)
    for name in VIEWS:
        monkeypatch.setattr(sys.modules[__name__], name, getattr(views, name))
    use_unit(monkeypatch, __name__, both_plans, "audit", ["audit_vars", "decode_audit"])


def load_case(name):
    """A conformance case of ``../shared`` (skips, or fails under PROCESSOR_REQUIRE_SHARED=1,
    when the corpus is absent)."""
    return yaml.safe_load((require_shared("conformance", "cases") / name).read_text())


def assert_subset(expected, actual, path="$"):
    """Conformance comparison: expected mappings are subsets; lists compare element-wise."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        for k, v in expected.items():
            if isinstance(v, list) and not v:
                assert not actual.get(k), f"{path}.{k}"
                continue
            assert k in actual, f"{path}.{k} missing"
            assert_subset(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: {expected!r} != {actual!r}"


class TestName:
    def test_vectors(self):
        assert (
            activity_name("audit", "test-audit-123", "networking.datumapis.com", "HTTPProxy")
            == "act-5beda4f21f93"
        )
        assert activity_name("event", "event-123", "", "Pod") == "act-446959224087"

    def test_shape_and_determinism(self):
        n = activity_name("audit", "x", "g", "K")
        assert re.fullmatch(r"act-[0-9a-f]{12}", n)
        assert n == activity_name("audit", "x", "g", "K")
        assert n != activity_name("event", "x", "g", "K")
        # NUL separators: shifting text between fields changes the name
        assert activity_name("audit", "ab", "c", "K") != activity_name("audit", "a", "bc", "K")


class TestActor:
    @pytest.mark.parametrize(
        ("username", "uid", "actor", "source"),
        [
            ("alice@example.com", "u-1", {"type": "user", "name": "alice@example.com",
             "uid": "u-1", "email": "alice@example.com"}, "human"),
            ("bob", "", {"type": "user", "name": "bob"}, "human"),
            ("system:serviceaccount:default:my-sa", "sa-1",
             {"type": "system", "name": "serviceaccount:default:my-sa", "uid": "sa-1"}, "system"),
            ("system:kube-scheduler", "", {"type": "system", "name": "kube-scheduler"}, "system"),
            ("system:", "", {"type": "system", "name": "unknown"}, "system"),
            ("", "", {"type": "user", "name": "unknown"}, "human"),
            ("system:x@y", "", {"type": "system", "name": "x@y", "email": "system:x@y"}, "system"),
        ],
    )  # fmt: skip
    def test_resolve_actor(self, username, uid, actor, source):
        got = resolve_actor(username, uid)
        assert got == actor
        assert list(got) == [k for k in ("type", "name", "uid", "email") if k in actor]
        assert change_source(username) == source


class TestTenant:
    @staticmethod
    def user(**extra):
        return {"username": "u", "extra": {k.replace("_", "-"): v for k, v in extra.items()}}

    def test_default_platform(self):
        assert audit_tenant({}) == {"type": "platform", "name": ""}
        assert audit_tenant(None) == {"type": "platform", "name": ""}
        assert audit_tenant({"extra": {}}) == {"type": "platform", "name": ""}

    def test_parent_type_and_name(self):
        u = {"extra": {"iam.miloapis.com/parent-type": ["Project"],
                       "iam.miloapis.com/parent-name": ["p1"]}}  # fmt: skip
        assert audit_tenant(u) == {"type": "Project", "name": "p1"}

    def test_parent_name_without_type(self):
        u = {"extra": {"iam.miloapis.com/parent-name": ["n1"]}}
        assert audit_tenant(u) == {"type": "platform", "name": "n1"}

    def test_organization_only_when_still_platform(self):
        u = {"extra": {"organization": ["o1"]}}
        assert audit_tenant(u) == {"type": "Organization", "name": "o1"}
        u = {"extra": {"iam.miloapis.com/parent-name": ["n1"], "organization": ["o1"]}}
        assert audit_tenant(u) == {"type": "Organization", "name": "o1"}
        u = {"extra": {"iam.miloapis.com/parent-type": ["User"],
                       "iam.miloapis.com/parent-name": ["u1"], "organization": ["o1"]}}  # fmt: skip
        assert audit_tenant(u) == {"type": "User", "name": "u1"}

    def test_project_overrides_everything(self):
        u = {"extra": {"iam.miloapis.com/parent-type": ["Organization"],
                       "iam.miloapis.com/parent-name": ["o1"], "organization": ["o2"],
                       "project": ["p9"]}}  # fmt: skip
        assert audit_tenant(u) == {"type": "Project", "name": "p9"}

    def test_first_element_and_empty_values(self):
        u = {"extra": {"project": ["", "p2"], "organization": ["o1", "o2"]}}
        assert audit_tenant(u) == {"type": "Organization", "name": "o1"}
        u = {"extra": {"project": [], "iam.miloapis.com/parent-type": [""]}}
        assert audit_tenant(u) == {"type": "platform", "name": ""}

    @pytest.mark.parametrize(
        ("given", "normal"),
        [
            ("organization", "Organization"),
            ("Organization", "Organization"),
            ("ORGANIZATION", "Organization"),
            ("project", "Project"),
            ("user", "User"),
            ("", "platform"),
            ("Platform", "platform"),
            ("Team", "Team"),
            ("custom-type", "custom-type"),
        ],
    )
    def test_normalize(self, given, normal):
        assert normalize_tenant_type(given) == normal

    def test_parent_type_normalised(self):
        u = {"extra": {"iam.miloapis.com/parent-type": ["organization"],
                       "iam.miloapis.com/parent-name": ["o1"]}}  # fmt: skip
        assert audit_tenant(u) == {"type": "Organization", "name": "o1"}

    def test_event_tenant(self):
        def ev(ann):
            return {"metadata": {"annotations": ann}}

        assert event_tenant(ev({"platform.miloapis.com/scope.type": "organization",
                                "platform.miloapis.com/scope.name": "dev-org"})) == {
            "type": "Organization", "name": "dev-org"}  # fmt: skip
        assert event_tenant(ev({"platform.miloapis.com/scope.type": "Project"})) == {
            "type": "Project",
            "name": "",
        }
        assert event_tenant(ev({"platform.miloapis.com/scope.name": "x"})) == {
            "type": "platform",
            "name": "",
        }
        assert event_tenant({"metadata": "x"}) == {"type": "platform", "name": ""}
        assert event_tenant({"metadata": {"annotations": []}}) == {"type": "platform", "name": ""}
        assert event_tenant(None) == {"type": "platform", "name": ""}


class TestConvertLinks:
    def test_kind_and_api_version_split(self):
        out = convert_links(
            [("m", {"apiVersion": "networking.datumapis.com/v1alpha", "kind": "HTTPProxy",
                    "metadata": {"name": "gw", "namespace": "default", "uid": "r-1"}})]
        )  # fmt: skip
        assert out == [
            {
                "marker": "m",
                "resource": {
                    "apiGroup": "networking.datumapis.com",
                    "apiVersion": "v1alpha",
                    "kind": "HTTPProxy",
                    "name": "gw",
                    "namespace": "default",
                    "uid": "r-1",
                },
            }
        ]
        assert list(out[0]["resource"]) == [
            "apiGroup",
            "apiVersion",
            "kind",
            "name",
            "namespace",
            "uid",
        ]

    def test_split_at_first_slash(self):
        (link,) = convert_links([("m", {"apiVersion": "a/b/v1", "kind": "K"})])
        assert link["resource"]["apiGroup"] == "a"
        assert link["resource"]["apiVersion"] == "b/v1"

    def test_api_group_set_keeps_api_version(self):
        (link,) = convert_links([("m", {"apiGroup": "g", "apiVersion": "apps/v1", "kind": "K"})])
        assert link["resource"]["apiGroup"] == "g"
        assert link["resource"]["apiVersion"] == "apps/v1"

    def test_v1(self):
        (link,) = convert_links([("m", {"apiVersion": "v1", "kind": "Pod", "name": "p"})])
        assert link["resource"] == {"apiVersion": "v1", "kind": "Pod", "name": "p"}

    def test_top_level_wins_over_metadata(self):
        (link,) = convert_links(
            [("m", {"name": "top", "metadata": {"name": "meta", "namespace": "ns", "uid": "u"}})]
        )
        r = link["resource"]
        assert (r["name"], r["namespace"], r["uid"]) == ("top", "ns", "u")

    def test_metadata_fallback_when_top_level_empty(self):
        (link,) = convert_links([("m", {"name": "", "metadata": {"name": "meta"}})])
        assert link["resource"]["name"] == "meta"

    def test_resolver_for_plural_resource(self):
        r = KindResolver({"networking.datumapis.com/httpproxies": "HTTPProxy"})
        ref = {"resource": "httpproxies", "apiGroup": "networking.datumapis.com",
               "apiVersion": "v1alpha", "name": "gw", "namespace": "default"}  # fmt: skip
        (link,) = convert_links([("m", ref)], r)
        assert link["resource"] == {
            "apiGroup": "networking.datumapis.com",
            "apiVersion": "v1alpha",
            "kind": "HTTPProxy",
            "name": "gw",
            "namespace": "default",
        }

    def test_resolver_callable(self):
        (link,) = convert_links([("m", {"resource": "pods"})], lambda g, r: "Callable")
        assert link["resource"]["kind"] == "Callable"

    def test_kind_present_skips_resolver(self):
        def boom(g, r):
            raise AssertionError("called")

        (link,) = convert_links([("m", {"kind": "K", "resource": "ks"})], boom)
        assert link["resource"]["kind"] == "K"

    def test_no_resolver_kind_stays_empty_then_type(self):
        (link,) = convert_links([("m", {"resource": "pods"})])
        assert link["resource"]["kind"] == ""
        (link,) = convert_links([("m", {"resource": "pods", "type": "user"})])
        assert link["resource"]["kind"] == "user"

    def test_resolver_error_fails_build(self):
        with pytest.raises(KindResolveError) as info:
            convert_links([("m", {"resource": "widgets", "apiGroup": "e.com"})], KindResolver())
        assert str(info.value) == (
            'activity build failed: kind resolution failed: resource "widgets" in apiGroup '
            '"e.com": no kind is known for it (add a mapping or CRD manifest)'
        )

    def test_resolver_error_from_plain_callable(self):
        def fail(g, r):
            raise KindResolveError("no matches")

        with pytest.raises(KindResolveError, match=r'apiGroup "": no matches$'):
            convert_links([("m", {"resource": "x"})], fail)

    def test_type_fallback_actor_ref(self):
        (link,) = convert_links([("bob", {"type": "user", "name": "bob"})], KindResolver())
        assert link == {"marker": "bob", "resource": {"apiVersion": "", "kind": "user",
                                                      "name": "bob"}}  # fmt: skip

    def test_non_string_values_become_empty(self):
        (link,) = convert_links(
            [("m", {"kind": 1.0, "type": "t", "apiGroup": ["g"], "apiVersion": 2.0,
                    "name": 3.0, "namespace": None, "uid": {}, "metadata": {"name": 4.0}})]
        )  # fmt: skip
        assert link["resource"] == {"apiVersion": "", "kind": "t", "name": ""}

    def test_empty_map_link(self):
        assert convert_links([("x", {})]) == [
            {"marker": "x", "resource": {"apiVersion": "", "kind": "", "name": ""}}
        ]

    def test_order_and_dict_items(self):
        out = convert_links([("a", {"kind": "A"}), {"marker": "b", "resource": {"kind": "B"}}])
        assert [(x["marker"], x["resource"]["kind"]) for x in out] == [("a", "A"), ("b", "B")]

    def test_non_map_resource_skipped(self):
        assert convert_links([("a", "str"), ("b", None), ("c", [1])]) == []

    def test_empty(self):
        assert convert_links([]) == []


AUDIT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "test-audit-123",
    "verb": "create",
    "user": {"username": "alice@example.com", "uid": "u-1"},
    "objectRef": {
        "resource": "httpproxies",
        "name": "api-gateway",
        "namespace": "default",
        "apiGroup": "networking.datumapis.com",
        "apiVersion": "v1alpha",
    },
    "requestReceivedTimestamp": "2026-11-20T10:00:00.123456Z",
    "responseObject": {
        "apiVersion": "networking.datumapis.com/v1alpha",
        "kind": "HTTPProxy",
        "metadata": {"name": "api-gateway", "namespace": "default", "uid": "r-678"},
    },
}


class TestAuditActivity:
    def build(self, audit=None, links=(), resolver=None, **over):
        a = decode_audit(dict(audit or AUDIT, **over))
        return build_audit_activity(
            a, "networking.datumapis.com", "HTTPProxy", "s", links, resolver
        )

    def test_shape_and_order(self):
        act = self.build()
        assert list(act) == ["kind", "apiVersion", "metadata", "spec"]
        assert list(act["metadata"]) == ["name", "namespace", "creationTimestamp", "labels"]
        assert list(act["spec"]) == [
            "summary", "changeSource", "actor", "resource", "tenant", "origin"
        ]  # fmt: skip
        labels = act["metadata"]["labels"]
        assert list(labels) == sorted(labels)
        assert act == {
            "kind": "Activity",
            "apiVersion": "activity.miloapis.com/v1alpha1",
            "metadata": {
                "name": "act-5beda4f21f93",
                "namespace": "default",
                "creationTimestamp": "2026-11-20T10:00:00.123Z",
                "labels": {
                    "activity.miloapis.com/api-group": "networking.datumapis.com",
                    "activity.miloapis.com/change-source": "human",
                    "activity.miloapis.com/origin-type": "audit",
                    "activity.miloapis.com/resource-kind": "HTTPProxy",
                },
            },
            "spec": {
                "summary": "s",
                "changeSource": "human",
                "actor": {"type": "user", "name": "alice@example.com", "uid": "u-1",
                          "email": "alice@example.com"},
                "resource": {"apiGroup": "networking.datumapis.com", "apiVersion": "v1alpha",
                             "kind": "HTTPProxy", "name": "api-gateway", "namespace": "default",
                             "uid": "r-678"},
                "tenant": {"type": "platform", "name": ""},
                "origin": {"type": "audit", "id": "test-audit-123"},
            },
        }  # fmt: skip

    def test_links_present_after_resource(self):
        act = self.build(links=[("m", {"kind": "K"})])
        assert list(act["spec"]) == [
            "summary", "changeSource", "actor", "resource", "links", "tenant", "origin"
        ]  # fmt: skip

    def test_timestamp_millis_truncated(self):
        for given, want in [
            ("2026-11-20T10:00:00.999999Z", "2026-11-20T10:00:00.999Z"),
            ("2026-11-20T10:00:00Z", "2026-11-20T10:00:00.000Z"),
            ("2026-11-20T11:00:00.5+01:00", "2026-11-20T10:00:00.500Z"),
        ]:
            act = self.build(requestReceivedTimestamp=given)
            assert act["metadata"]["creationTimestamp"] == want

    def test_timestamp_now_when_absent(self):
        act = self.build(requestReceivedTimestamp=None)
        ts = act["metadata"]["creationTimestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts)

    def test_core_group_and_no_namespace(self):
        a = decode_audit(dict(AUDIT, objectRef={"resource": "nodes", "name": "n1",
                                                "apiVersion": "v1"}))  # fmt: skip
        act = build_audit_activity(a, "", "Node", "s", [], None)
        assert "namespace" not in act["metadata"]
        assert act["metadata"]["labels"]["activity.miloapis.com/api-group"] == ""
        assert act["spec"]["resource"] == {"apiVersion": "v1", "kind": "Node", "name": "n1",
                                           "uid": "r-678"}  # fmt: skip

    def test_uid_only_from_response_object(self):
        audit = dict(AUDIT, objectRef=dict(AUDIT["objectRef"], uid="ref-uid"))
        audit["responseObject"] = {"kind": "Status", "metadata": {}}
        act = self.build(audit)
        assert "uid" not in act["spec"]["resource"]
        assert self.build(audit, responseObject=None)["spec"]["resource"].get("uid") is None

    def test_without_object_ref(self):
        a = decode_audit({"auditID": "x"})
        act = build_audit_activity(a, "g", "K", "s", [], None)
        assert act["spec"]["resource"] == {"apiGroup": "g", "apiVersion": "", "kind": "K",
                                           "name": ""}  # fmt: skip
        assert act["spec"]["actor"] == {"type": "user", "name": "unknown"}

    def test_system_user(self):
        act = self.build(user={"username": "system:serviceaccount:default:my-sa", "uid": "sa-1"})
        assert act["spec"]["changeSource"] == "system"
        assert act["metadata"]["labels"]["activity.miloapis.com/change-source"] == "system"
        assert act["spec"]["actor"] == {"type": "system", "name": "serviceaccount:default:my-sa",
                                        "uid": "sa-1"}  # fmt: skip

    def test_tenant(self):
        user = {"username": "a", "extra": {"organization": ["acme"]}}
        assert self.build(user=user)["spec"]["tenant"] == {"type": "Organization", "name": "acme"}

    def test_resolver_error_propagates(self):
        with pytest.raises(KindResolveError, match="activity build failed"):
            self.build(links=[("m", {"resource": "widgets"})], resolver=KindResolver())

    def test_encode(self):
        act = self.build(links=[("<a & b>", {"kind": "K"})])
        raw = encode_activity(act)
        assert isinstance(raw, bytes)
        assert orjson.loads(raw) == act
        assert raw.startswith(b'{"kind":"Activity","apiVersion":"activity.miloapis.com/v1alpha1"')


EVENT = {
    "apiVersion": "events.k8s.io/v1",
    "kind": "Event",
    "metadata": {"name": "e", "namespace": "evns", "uid": "ev-1",
                 "creationTimestamp": "2026-11-20T10:00:05Z"},
    "eventTime": "2026-11-20T10:00:05.250000Z",
    "reason": "Ready",
    "reportingController": "ctrl",
    "regarding": {"apiVersion": "inventory.miloapis.com/v1alpha1", "kind": "Circuit",
                  "name": "ckt-1", "namespace": "ns1", "uid": "c-uid"},
}  # fmt: skip


class TestEventActivity:
    def build(self, event=None, links=(), resolver=None, group="inventory.miloapis.com",
              kind="Circuit"):  # fmt: skip
        e = decode_event(event or EVENT)
        _, _, inv = involved_object(e)
        e = norm_event(e, inv)
        return build_event_activity(e, inv, group, kind, "s", links, resolver)

    def test_shape(self):
        act = self.build()
        assert act == {
            "kind": "Activity",
            "apiVersion": "activity.miloapis.com/v1alpha1",
            "metadata": {
                "name": activity_name("event", "ev-1", "inventory.miloapis.com", "Circuit"),
                "namespace": "ns1",
                "creationTimestamp": "2026-11-20T10:00:05.250Z",
                "labels": {
                    "activity.miloapis.com/api-group": "inventory.miloapis.com",
                    "activity.miloapis.com/change-source": "system",
                    "activity.miloapis.com/event-reason": "Ready",
                    "activity.miloapis.com/origin-type": "event",
                    "activity.miloapis.com/resource-kind": "Circuit",
                },
            },
            "spec": {
                "summary": "s",
                "changeSource": "system",
                "actor": {"type": "controller", "name": "ctrl"},
                "resource": {"apiGroup": "inventory.miloapis.com",
                             "apiVersion": "inventory.miloapis.com/v1alpha1", "kind": "Circuit",
                             "name": "ckt-1", "namespace": "ns1", "uid": "c-uid"},
                "tenant": {"type": "platform", "name": ""},
                "origin": {"type": "event", "id": "ev-1"},
            },
        }  # fmt: skip
        assert list(act["metadata"]["labels"]) == sorted(act["metadata"]["labels"])

    def test_namespace_is_involved_objects(self):
        ev = dict(EVENT, regarding={"apiVersion": "v1", "kind": "Node", "name": "n"})
        act = self.build(ev, group="", kind="Node")
        assert "namespace" not in act["metadata"]
        assert "namespace" not in act["spec"]["resource"]

    @pytest.mark.parametrize(
        ("fields", "want"),
        [
            ({"eventTime": "2026-01-01T00:00:00.123456Z"}, "2026-01-01T00:00:00.123Z"),
            ({"eventTime": None, "lastTimestamp": "2026-01-02T00:00:00Z"},
             "2026-01-02T00:00:00.000Z"),
            ({"eventTime": "bad", "firstTimestamp": "2026-01-03T01:00:00+01:00"},
             "2026-01-03T00:00:00.000Z"),
            ({"eventTime": 5.0}, "2026-11-20T10:00:05.000Z"),
            ({"eventTime": None, "deprecatedLastTimestamp": "2026-01-04T00:00:00Z"},
             "2026-11-20T10:00:05.000Z"),
        ],
    )  # fmt: skip
    def test_timestamp_order(self, fields, want):
        act = self.build(dict(EVENT, **fields))
        assert act["metadata"]["creationTimestamp"] == want

    @pytest.mark.parametrize(
        "value",
        [
            "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456Z", "2026-02-30T00:00:00Z",
            "2026-02-30T00:00:00.123456Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00.000000Z", "2026-01-0\uff11T00:00:00Z", "\uff12026-01-01T00:00:00Z",
            "2026-01-01T00:00:6aZ", "+026-01-01T00:00:00Z", "2026-01-01T00:00:00z",
            "2026-01-01T00:00:00.12345\uff16Z", "2026-01-01T00:00:00.123+01Z",
            "2026-01-01T00:00:00.1234 1Z", "2026-01-01T00:00:00,123456Z", "2026-1-01T00:00:000Z",
        ],
    )  # fmt: skip
    def test_timestamp_as_timefmt_parses_it(self, value):
        """The builder's shortcut for the UTC layouts agrees with timefmt.millis, which falls
        back to the next field on a value that does not parse."""
        try:
            want = timefmt.millis(value)
        except ValueError:
            want = "2026-01-02T00:00:00.500Z"
        ev = dict(EVENT, eventTime=value, lastTimestamp="2026-01-02T00:00:00.5Z")
        assert self.build(ev)["metadata"]["creationTimestamp"] == want

    def test_timestamp_now(self):
        ev = dict(EVENT, eventTime=None, metadata={"uid": "x"})
        ts = self.build(ev)["metadata"]["creationTimestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts)

    def test_actor_fallbacks(self):
        ev = {k: v for k, v in EVENT.items() if k != "reportingController"}
        assert self.build(ev)["spec"]["actor"] == {"type": "controller", "name": "unknown"}
        ev["source"] = {"component": "kubelet"}
        assert self.build(ev)["spec"]["actor"] == {"type": "controller", "name": "kubelet"}

    def test_reason_label_empty(self):
        ev = {k: v for k, v in EVENT.items() if k != "reason"}
        assert self.build(ev)["metadata"]["labels"]["activity.miloapis.com/event-reason"] == ""

    def test_full_link_conversion(self):
        e = decode_event(EVENT)
        act = self.build(links=[("ckt-1", e["regarding"]), ("ctrl", {"type": "controller",
                                                                     "name": "ctrl"})])  # fmt: skip
        assert act["spec"]["links"] == [
            {"marker": "ckt-1", "resource": {"apiGroup": "inventory.miloapis.com",
                                             "apiVersion": "v1alpha1", "kind": "Circuit",
                                             "name": "ckt-1", "namespace": "ns1",
                                             "uid": "c-uid"}},
            {"marker": "ctrl", "resource": {"apiVersion": "", "kind": "controller",
                                            "name": "ctrl"}},
        ]  # fmt: skip

    def test_tenant_from_annotations(self):
        ev = dict(EVENT, metadata=dict(EVENT["metadata"], annotations={
            "platform.miloapis.com/scope.type": "project",
            "platform.miloapis.com/scope.name": "p1"}))  # fmt: skip
        assert self.build(ev)["spec"]["tenant"] == {"type": "Project", "name": "p1"}

    def test_no_uid(self):
        ev = dict(EVENT, metadata={})
        act = self.build(ev)
        assert act["spec"]["origin"] == {"type": "event", "id": ""}
        assert act["metadata"]["name"] == activity_name(
            "event", "", "inventory.miloapis.com", "Circuit"
        )


class TestConformanceShapes:
    """Build the conformance cases' activities with the links their summaries would collect."""

    def audit_case(self, name, links_of):
        case = load_case(name)
        policy = case["spec"]["policy"]["resource"]
        resolver = KindResolver()
        resolver.add_policy_kind(policy["apiGroup"], policy["kind"])
        acts = []
        for inp in case["spec"]["inputs"]:
            a = decode_audit(inp["audit"])
            v = audit_vars(a)
            acts.append(
                build_audit_activity(
                    a, policy["apiGroup"], policy["kind"], "", links_of(v), resolver
                )
            )
        for exp, act in zip(case["expected"]["activities"], acts, strict=True):
            exp = orjson.loads(orjson.dumps(exp))
            exp.get("spec", {}).pop("summary", None)
            assert_subset(exp, act)
        return acts

    def event_case(self, name, links_of):
        case = load_case(name)
        policy = case["spec"]["policy"]["resource"]
        acts = []
        for inp in case["spec"]["inputs"]:
            e = decode_event(inp["event"])
            group, kind, inv = involved_object(e)
            assert (group, kind) == (policy["apiGroup"], policy["kind"])
            e = norm_event(e, inv)
            acts.append(
                build_event_activity(
                    e, inv, policy["apiGroup"], policy["kind"], "", links_of(e), KindResolver()
                )
            )
        for exp, act in zip(case["expected"]["activities"], acts, strict=True):
            exp = orjson.loads(orjson.dumps(exp))
            exp.get("spec", {}).pop("summary", None)
            assert_subset(exp, act)
        return acts

    def test_audit_create_link(self):
        self.audit_case(
            "audit-create-link.yaml",
            lambda v: [("HTTP proxy api-gateway", v["audit"]["responseObject"])],
        )

    def test_audit_actor_link(self):
        self.audit_case(
            "audit-actor-link.yaml",
            lambda v: [(v["actor"], v["actorRef"]), ("HTTP proxy api-gateway",
                                                     v["audit"]["objectRef"])],
        )  # fmt: skip

    def test_audit_serviceaccount_system(self):
        self.audit_case("audit-serviceaccount-system.yaml", lambda v: [])

    def test_tenant_parent_project(self):
        acts = self.audit_case("tenant-parent-project.yaml", lambda v: [])
        assert activity_subject(acts[0]).startswith(
            "activities.Project.p1.networking_datumapis_com.audit.HTTPProxy.default.act-"
        )

    def test_event_ready_link(self):
        acts = self.event_case("event-ready-link.yaml", lambda e: [("ckt-1", e["regarding"])])
        assert acts[0]["spec"]["resource"]["apiVersion"] == "inventory.miloapis.com/v1alpha1"
        assert acts[0]["metadata"]["creationTimestamp"] == "2026-11-20T10:00:05.250Z"
        assert "namespace" not in acts[0]["metadata"]

    def test_event_corev1_involved_object(self):
        self.event_case("event-corev1-involved-object.yaml", lambda e: [])
