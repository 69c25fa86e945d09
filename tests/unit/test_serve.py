"""``activity serve`` without a server: who the caller is, Status objects, Table cells, event
versions, settings, discovery documents and spec validation."""

from __future__ import annotations

import argparse

import pytest
from multidict import CIMultiDict

from processor.serve import discovery
from processor.serve.convert import core_selector, to_core_v1, to_events_v1
from processor.serve.identity import Forbidden, IdentityResolver, Scope, Unauthenticated, scope_of
from processor.serve.queries import check_limit, check_times
from processor.serve.settings import ServeSettings, add_arguments, build_serve_settings
from processor.serve.status import Cause, invalid, required
from processor.serve.table import human_duration, wants_table

PROXY_CERT = {"subject": ((("commonName", "front-proxy"),),)}
OTHER_CERT = {"subject": ((("commonName", "somebody"),),)}
LOOPBACK = ("127.0.0.1", 50000)
REMOTE = ("10.1.2.3", 50000)


def headers(kind: str = "Organization", name: str = "acme", **extra: str) -> CIMultiDict[str]:
    h = CIMultiDict(
        {
            "X-Remote-User": "alice",
            "X-Remote-Extra-Iam.miloapis.com%2Fparent-type": kind,
            "X-Remote-Extra-Iam.miloapis.com%2Fparent-name": name,
        }
    )
    h.add("X-Remote-Group", "a")
    h.add("X-Remote-Group", "b")
    for k, v in extra.items():
        h[k] = v
    return h


def test_scope_is_upstreams() -> None:
    extra = {"iam.miloapis.com/parent-type": ("Project",),
             "iam.miloapis.com/parent-name": ("p1", "p2")}  # fmt: skip
    assert scope_of(extra) == Scope("Project", "p1")
    for kind, name in (("organization", "acme"), ("Team", "x"), ("Organization", "")):
        extra = {"iam.miloapis.com/parent-type": (kind,), "iam.miloapis.com/parent-name": (name,)}
        assert scope_of(extra).platform
    assert scope_of({}).platform


def test_front_proxy_headers_need_the_certificate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens"
    tokens.write_text("secret-token\n")
    resolver = IdentityResolver(
        ServeSettings(
            tls_cert_file="c",
            tls_private_key_file="k",
            requestheader_client_ca_file="ca",
            requestheader_allowed_names=("front-proxy",),
            token_file=str(tokens),
        )
    )
    caller = resolver.resolve(headers(), PROXY_CERT, REMOTE)
    assert (caller.user, caller.how, caller.scope) == (
        "alice",
        "front-proxy",
        Scope("Organization", "acme"),
    )
    assert caller.groups == ("a", "b")
    with pytest.raises(Unauthenticated):
        resolver.resolve(headers(), None, LOOPBACK)  # no certificate, no token
    with pytest.raises(Forbidden):
        resolver.resolve(headers(), OTHER_CERT, REMOTE)
    token = headers(Authorization="Bearer secret-token")
    assert resolver.resolve(token, None, REMOTE).scope.platform  # the headers are ignored
    with pytest.raises(Unauthenticated):
        resolver.resolve(headers(Authorization="Bearer wrong"), None, REMOTE)
    # a verified certificate without a user header is not a caller
    bare = CIMultiDict({"X-Remote-Extra-Iam.miloapis.com%2Fparent-type": "Organization"})
    with pytest.raises(Unauthenticated):
        resolver.resolve(bare, PROXY_CERT, REMOTE)


def test_loopback_headers_only_when_asked_and_only_from_loopback() -> None:
    open_ = IdentityResolver(ServeSettings())
    assert open_.resolve(headers(), None, LOOPBACK).scope.platform  # open: headers ignored
    dev = IdentityResolver(ServeSettings(trust_loopback_headers=True))
    assert dev.resolve(headers("User", "uid-1"), None, LOOPBACK).scope == Scope("User", "uid-1")
    assert dev.resolve(headers("User", "uid-1"), None, ("::1", 1, 0, 0)).scope == Scope(
        "User", "uid-1"
    )
    assert dev.resolve(headers("User", "uid-1"), None, REMOTE).scope.platform


def test_status_objects() -> None:
    err = invalid(
        "ActivityQuery",
        "q",
        [
            required("spec.startTime", "must specify a start time"),
            Cause("spec", "Invalid value: x"),
        ],
    )
    status = err.status()
    assert (status["code"], status["reason"], status["kind"]) == (422, "Invalid", "Status")
    assert status["message"] == (
        'ActivityQuery.activity.miloapis.com "q" is invalid: [spec.startTime: Required value: '
        "must specify a start time, spec: Invalid value: x]"
    )
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value: must specify a start time",
        "field": "spec.startTime",
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (600, "10m"), (3 * 3600 - 1, "179m"),
     (3 * 3600 + 300, "3h5m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (50 * 3600, "2d2h"),
     (8 * 86400, "8d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"), (-1, "<invalid>")],
)  # fmt: skip
def test_human_duration_is_kubernetes(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_wants_table() -> None:
    kubectl = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    assert wants_table(kubectl)
    assert not wants_table("application/json")
    assert not wants_table("")


def test_event_versions() -> None:
    v1 = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
          "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reportingController": "kubelet",
          "deprecatedCount": 3, "reason": "R"}  # fmt: skip
    core = to_core_v1(v1)
    assert core["apiVersion"] == "v1"
    assert (core["involvedObject"], core["message"], core["count"]) == (
        {"kind": "Pod", "name": "p"}, "hi", 3)  # fmt: skip
    assert core["source"] == {"component": "kubelet"}
    back = to_events_v1(core)
    assert (back["regarding"], back["note"], back["reportingController"]) == (
        {"kind": "Pod", "name": "p"}, "hi", "kubelet")  # fmt: skip
    assert to_events_v1(v1) == v1
    assert (
        core_selector("involvedObject.kind=Pod, type=Warning") == "regarding.kind=Pod,type=Warning"
    )


def test_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--trust-loopback-headers", "--requestheader-allowed-names", "a,b"])
    env = {"ACTIVITY_NATS_URL": "nats://x:4222", "ACTIVITY_SERVE_LIST_WINDOW": "2h"}
    s = build_serve_settings(args, env)
    assert s.trust_loopback_headers and s.requestheader_allowed_names == ("a", "b")
    assert (s.nats_url, s.list_window) == ("nats://x:4222", "2h")
    with pytest.raises(ValueError, match="requestheader_client_ca_file needs TLS"):
        ServeSettings(requestheader_client_ca_file="ca.crt")
    with pytest.raises(ValueError, match="list_window"):
        ServeSettings(list_window="1.5h")


def test_discovery_documents() -> None:
    resources = discovery.group_resources("activity.miloapis.com", "v1alpha1")
    assert resources is not None
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["activities"]["verbs"] == ["get", "list", "watch"]
    assert by_name["activities"]["namespaced"] is True
    assert by_name["policypreviews"] == {"name": "policypreviews", "singularName": "policypreview",
                                         "namespaced": False, "kind": "PolicyPreview",
                                         "verbs": ["create"], "shortNames": ["ppv"]}  # fmt: skip
    assert set(by_name) >= {"auditlogqueries", "activityqueries", "eventqueries",
                            "auditlogfacetsqueries", "activityfacetqueries",
                            "eventfacetqueries"}  # fmt: skip
    assert discovery.group_resources("activity.miloapis.com", "v1") is None
    # gnostic openapi_v2.Document: field 1 swagger "2.0", field 2 info
    pb = discovery.openapi_v2(True)
    assert pb[:5] == b"\x0a\x032.0" and pb[5] == 0x12


def test_spec_times_and_limit() -> None:
    now = 1_800_000_000 * 10**9
    causes: list[Cause] = []
    check_times({"startTime": "now-2h", "endTime": "now-3h"}, "startTime", "endTime",
                30 * 86400 * 10**9, now, causes)  # fmt: skip
    assert [c.field for c in causes] == ["spec.endTime"]
    causes = []
    check_times({"startTime": "now-40d", "endTime": "now"}, "startTime", "endTime",
                30 * 86400 * 10**9, now, causes)  # fmt: skip
    assert [c.field for c in causes] == ["spec"] and "exceeds the maximum of 30d" in causes[
        0
    ].message
    causes = []
    assert check_limit({"limit": -1}, causes) == 0 and causes[0].field == "spec.limit"
    assert check_limit({"limit": "10"}, causes) == 0 and len(causes) == 2


def test_every_flag_is_documented() -> None:
    import re
    from pathlib import Path

    from processor.serve.settings import FIELDS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    flags = [f"--{name.replace('_', '-')}" for name in FIELDS]
    assert not [f for f in flags if not re.search(re.escape(f) + r"\b", doc)]
