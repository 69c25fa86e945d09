"""Kind resolution without a cluster (docs/design.md#d10)."""

from __future__ import annotations

import pytest

from processor.errors import KindResolveError
from processor.kinds import BUILTIN_KINDS, MAX_KNOWN, MAX_OBSERVED, KindResolver, guess_plurals

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "httpproxies.networking.datumapis.com"},
    "spec": {
        "group": "networking.datumapis.com",
        "names": {"plural": "httpproxies", "singular": "httpproxy", "kind": "HTTPProxy"},
    },
}


class TestGuessPlurals:
    @pytest.mark.parametrize(
        ("kind", "plurals"),
        [
            ("Pod", ("pods",)),
            ("HTTPProxy", ("httpproxies",)),
            ("Ingress", ("ingresses",)),
            ("Status", ("statuses",)),
            ("Policy", ("policies",)),
            ("TrafficProtectionPolicy", ("trafficprotectionpolicies",)),
            ("Gateway", ("gateways", "gatewaies")),
            ("Box", ("boxes", "boxs")),
            ("Switch", ("switches", "switchs")),
            ("Endpoints", ("endpoints",)),
            ("Y", ("ies",)),
            ("", ()),
        ],
    )
    def test_guess(self, kind, plurals):
        assert guess_plurals(kind) == plurals


class TestResolve:
    def test_builtin(self):
        r = KindResolver()
        assert r.resolve("", "pods") == "Pod"
        assert r.resolve("apps", "deployments") == "Deployment"
        assert r.resolve("networking.k8s.io", "ingresses") == "Ingress"
        assert r.resolve("gateway.networking.k8s.io", "httproutes") == "HTTPRoute"
        assert r.resolve("rbac.authorization.k8s.io", "clusterrolebindings") == "ClusterRoleBinding"
        assert r("batch", "cronjobs") == "CronJob"

    def test_builtin_covers_required_groups(self):
        for group in (
            "",
            "apps",
            "batch",
            "networking.k8s.io",
            "rbac.authorization.k8s.io",
            "policy",
            "autoscaling",
            "storage.k8s.io",
            "coordination.k8s.io",
            "discovery.k8s.io",
            "events.k8s.io",
            "admissionregistration.k8s.io",
            "apiextensions.k8s.io",
            "certificates.k8s.io",
            "scheduling.k8s.io",
            "node.k8s.io",
            "gateway.networking.k8s.io",
        ):
            assert BUILTIN_KINDS[group]

    def test_unknown_raises(self):
        r = KindResolver()
        with pytest.raises(KindResolveError) as info:
            r.resolve("example.com", "widgets")
        assert str(info.value) == (
            'resource "widgets" in apiGroup "example.com": no kind is known for it '
            "(add a mapping or CRD manifest)"
        )
        assert info.value.resource == "widgets"
        assert info.value.api_group == "example.com"
        assert info.value.reason.startswith("no kind is known")
        assert r.lookup("example.com", "widgets") is None

    def test_group_matters(self):
        r = KindResolver()
        with pytest.raises(KindResolveError):
            r.resolve("apps", "pods")

    def test_mapping(self):
        r = KindResolver({"example.com/widgets": "Widget", "/things": "Thing", "gizmos": "Gizmo"})
        assert r.resolve("example.com", "widgets") == "Widget"
        assert r.resolve("", "things") == "Thing"
        assert r.resolve("", "gizmos") == "Gizmo"

    def test_crd_manifest(self):
        r = KindResolver(crd_manifests=[CRD])
        assert r.resolve("networking.datumapis.com", "httpproxies") == "HTTPProxy"
        r2 = KindResolver()
        r2.add_crd_manifest(CRD)
        assert r2.resolve("networking.datumapis.com", "httpproxies") == "HTTPProxy"

    def test_bad_crd_manifest(self):
        with pytest.raises(ValueError, match=r"spec\.group"):
            KindResolver().add_crd_manifest({"metadata": {"name": "x"}, "spec": {"group": "g"}})

    def test_bad_mapping(self):
        with pytest.raises(ValueError):
            KindResolver({"example.com/widgets": ""})

    def test_policy_kind_guess(self):
        r = KindResolver()
        r.add_policy_kind("networking.datumapis.com", "HTTPProxy")
        r.add_policy_kind("gateway.example.com", "Gateway")
        assert r.resolve("networking.datumapis.com", "httpproxies") == "HTTPProxy"
        assert r.resolve("gateway.example.com", "gateways") == "Gateway"
        assert r.resolve("gateway.example.com", "gatewaies") == "Gateway"
        with pytest.raises(KindResolveError):
            r.resolve("other.example.com", "httpproxies")

    def test_observe(self):
        r = KindResolver()
        r.observe("example.com", "widgets", "Widget")
        r.observe("example.com", "widgets", "Other")  # first observation sticks
        assert r.resolve("example.com", "widgets") == "Widget"
        r.observe("example.com", "", "X")
        r.observe("example.com", "x", "")
        assert r.lookup("example.com", "x") is None

    def test_observe_bounded(self):
        r = KindResolver(builtin=False)
        for i in range(MAX_OBSERVED + 5):
            r.observe("g", f"r{i}", "K")
        assert r.lookup("g", f"r{MAX_OBSERVED + 1}") is None

    def test_observe_audit(self):
        r = KindResolver()
        audit = {
            "objectRef": {"apiGroup": "example.com", "resource": "widgets"},
            "responseObject": {"apiVersion": "example.com/v1", "kind": "Widget"},
        }
        r.observe_audit(audit)
        assert r.resolve("example.com", "widgets") == "Widget"

    @pytest.mark.parametrize(
        "audit",
        [
            {
                "objectRef": {"apiGroup": "e.com", "resource": "ws", "subresource": "scale"},
                "responseObject": {"apiVersion": "e.com/v1", "kind": "W"},
            },
            {
                "objectRef": {"apiGroup": "e.com", "resource": "ws"},
                "responseObject": {"apiVersion": "v1", "kind": "Status"},
            },
            {
                "objectRef": {"apiGroup": "e.com", "resource": "ws"},
                "responseObject": {"apiVersion": "e.com/v1", "kind": "WList"},
            },
            {
                "objectRef": {"apiGroup": "e.com", "resource": "ws"},
                "responseObject": {"apiVersion": "other.com/v1", "kind": "W"},
            },
            {"objectRef": {"apiGroup": "e.com", "resource": "ws"}},
            {"responseObject": {"apiVersion": "e.com/v1", "kind": "W"}},
        ],
    )
    def test_observe_audit_ignores(self, audit):
        r = KindResolver()
        r.observe_audit(audit)
        assert r.lookup("e.com", "ws") is None

    def test_precedence(self):
        r = KindResolver({"/pods": "MyPod"})
        assert r.resolve("", "pods") == "MyPod"  # explicit over builtin
        r = KindResolver()
        r.observe("", "pods", "Observed")
        assert r.resolve("", "pods") == "Pod"  # builtin over observed
        r.add_policy_kind("example.com", "Widget")
        r.observe("example.com", "widgets", "ObservedWidget")
        assert r.resolve("example.com", "widgets") == "ObservedWidget"  # observed over guess
        r.add_mapping("example.com", "widgets", "Explicit")
        assert r.resolve("example.com", "widgets") == "Explicit"

    def test_builtin_off(self):
        r = KindResolver(builtin=False)
        assert r.lookup("", "pods") is None

    def test_uppercase_resource_falls_back_to_lower(self):
        assert KindResolver().resolve("", "Pods") == "Pod"

    def test_learning_after_a_resolve_changes_the_answer(self):
        # resolved kinds are memoised; every source change must be seen by the next resolve
        r = KindResolver()
        r.add_policy_kind("example.com", "Widget")
        assert r.resolve("example.com", "widgets") == "Widget"
        r.observe("example.com", "widgets", "ObservedWidget")
        assert r.resolve("example.com", "widgets") == "ObservedWidget"
        assert r.lookup("example.com", "widgets") == "ObservedWidget"
        r.add_mapping("example.com", "widgets", "Explicit")
        assert r.resolve("example.com", "widgets") == "Explicit"
        r.add_crd_manifest(CRD)
        assert r.resolve("example.com", "widgets") == "Explicit"
        assert r.resolve("networking.datumapis.com", "httpproxies") == "HTTPProxy"

    def test_unknown_after_a_miss_then_learnt(self):
        r = KindResolver()
        with pytest.raises(KindResolveError):
            r.resolve("example.com", "gadgets")
        r.add_policy_kind("example.com", "Gadget")
        assert r.resolve("example.com", "Gadgets") == "Gadget"

    def test_memo_bounded(self):
        r = KindResolver({f"g/r{i}": f"K{i}" for i in range(MAX_KNOWN + 5)}, builtin=False)
        for _ in range(2):
            for i in range(MAX_KNOWN + 5):
                assert r.resolve("g", f"r{i}") == f"K{i}"
        assert len(r._known) == MAX_KNOWN


class TestKindToResource:
    def test_sources(self):
        r = KindResolver({"networking.datumapis.com/httpproxies": "HTTPProxy"})
        assert r.kind_to_resource("networking.datumapis.com", "HTTPProxy") == "httpproxies"
        assert r.kind_to_resource("apps", "Deployment") == "deployments"
        assert r.kind_to_resource("", "Endpoints") == "endpoints"
        r.observe("example.com", "wdgts", "Widget")
        assert r.kind_to_resource("example.com", "Widget") == "wdgts"

    def test_guess(self):
        r = KindResolver()
        assert r.kind_to_resource("iam.miloapis.com", "Policy") == "policies"
        assert r.kind_to_resource("x.io", "Gateway") == "gateways"
        r.add_policy_kind("x.io", "Gateway")
        assert r.kind_to_resource("x.io", "Gateway") == "gateways"

    def test_empty_kind(self):
        with pytest.raises(KindResolveError):
            KindResolver().kind_to_resource("x.io", "")
