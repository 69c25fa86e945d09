"""``activity serve`` tenancy over TLS: front-proxy headers are honoured only over a client
certificate the requestheader CA verified (and of an allowed name); tokens are platform callers;
no filter, selector or watch reaches another tenant's records."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import nats
import orjson
import pytest

from processor.serve.settings import ServeSettings
from processor.sink.chdb import ChdbSink
from processor.stream.server import NatsServer
from processor.stream.topology import ensure_streams
from tests.integration import serve_tools as st

pytestmark = pytest.mark.integration

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
GV = "/apis/activity.miloapis.com/v1alpha1"
TOKEN = "platform-token-0123456789"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(cwd: Path, ca: str, name: str, subject: str, extensions: str) -> None:
    (cwd / f"{name}.ext").write_text(extensions + "\n")
    _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.crt",
             "-extfile", f"{name}.ext", cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA signing the server certificate, the front proxy's and another client's (CN not
    allowed); a second CA signing a rogue client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    root = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "rogue-ca"):
        _openssl("req", "-x509", *EC, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "1",
                 "-subj", f"/CN={ca}", cwd=root)  # fmt: skip
    _signed(root, "ca", "server", "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")  # fmt: skip
    _signed(root, "ca", "proxy", "/CN=front-proxy", "extendedKeyUsage=clientAuth")
    _signed(root, "ca", "other", "/CN=somebody", "extendedKeyUsage=clientAuth")
    _signed(root, "rogue-ca", "rogue", "/CN=front-proxy", "extendedKeyUsage=clientAuth")
    (root / "tokens").write_text(f"# operators\n{TOKEN}\n")
    return root


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    with st.seeded_sink(tmp_path_factory.mktemp("serve-tenancy") / "chdb") as sink:
        yield sink


@pytest.fixture(scope="module")
def base(pki: Path, sink: ChdbSink, nats_server: NatsServer) -> Iterator[str]:
    settings = ServeSettings(
        listen_addr="127.0.0.1:0",
        nats_url=str(nats_server.url),
        tls_cert_file=str(pki / "server.crt"),
        tls_private_key_file=str(pki / "server.key"),
        requestheader_client_ca_file=str(pki / "ca.crt"),
        requestheader_allowed_names=("front-proxy",),
        token_file=str(pki / "tokens"),
    )
    with st.running(settings, sink) as server:
        yield f"https://127.0.0.1:{server.port}"


def context(pki: Path, cert: str = "") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return ctx


def tenant(kind: str, name: str, user: str = "someone") -> dict[str, str]:
    """The headers kube-apiserver's aggregation layer sends for a user with a parent."""
    return {
        "X-Remote-User": user,
        "X-Remote-Group": "system:authenticated",
        "X-Remote-Extra-Iam.miloapis.com%2fparent-type": kind,
        "X-Remote-Extra-Iam.miloapis.com%2fparent-name": name,
    }


async def call(
    url: str, ctx: ssl.SSLContext | None, method: str = "GET", body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:  # fmt: skip
    async with aiohttp.ClientSession() as session:
        data = orjson.dumps(body) if body is not None else None
        async with session.request(method, url, data=data, headers=headers, ssl=ctx) as resp:
            return resp.status, orjson.loads(await resp.read())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def query(kind: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": kind,
            "metadata": {"name": "q"}, "spec": spec}  # fmt: skip


def names(doc: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in doc.get("items", doc.get("status", {}).get(
        "results", []))]  # fmt: skip


def test_headers_need_the_front_proxy_certificate(base: str, pki: Path) -> None:
    url = f"{base}{GV}/activities"
    acme = tenant("Organization", "acme")
    status, doc = run(call(url, context(pki, "proxy"), headers=acme))
    assert (status, names(doc)) == (200, ["act-000000000000"])
    # the same headers without a certificate: not authenticated
    status, doc = run(call(url, context(pki), headers=acme))
    assert (status, doc["kind"], doc["reason"]) == (401, "Status", "Unauthorized")
    # with a token they are ignored: a token caller is a platform caller (sees every tenant)
    status, doc = run(call(url, context(pki), headers={**acme, "Authorization": f"Bearer {TOKEN}"}))
    assert (status, len(names(doc))) == (200, len(st.ACTIVITIES))
    # a certificate of the CA whose name is not allowed: forbidden
    status, doc = run(call(url, context(pki, "other"), headers=acme))
    assert (status, doc["reason"]) == (403, "Forbidden")
    # discovery holds no records: readable without a credential (kube-apiserver's availability
    # check of the APIService reads it so)
    status, doc = run(call(f"{base}{GV}", context(pki)))
    assert (status, doc["kind"]) == (200, "APIResourceList")
    # a certificate of another CA does not even complete the handshake
    with pytest.raises(aiohttp.ClientError):
        run(call(url, context(pki, "rogue"), headers=acme))


def test_scopes_of_each_kind(base: str, pki: Path) -> None:
    proxy = context(pki, "proxy")
    url = f"{base}{GV}/activityqueries"
    spec = query("ActivityQuery", startTime="now-1d", endTime="now")
    cases = {
        ("Organization", "globex"): ["act-000000000001"],
        ("Project", "p1"): ["act-000000000003"],
        ("User", "uid-erin"): ["act-000000000004"],  # the actor's uid, as upstream
        ("organization", "acme"): [a["metadata"]["name"] for a in st.ACTIVITIES],  # not a type
    }
    for (kind, name), expected in cases.items():
        status, doc = run(call(url, proxy, "POST", spec, tenant(kind, name)))
        assert (status, names(doc)) == (201, expected), (kind, name)
    # audit logs: the scope annotations; User: the user's uid
    audit = query("AuditLogQuery", startTime="now-1d", endTime="now")
    status, doc = run(call(f"{base}{GV}/auditlogqueries", proxy, "POST", audit,
                           tenant("User", "uid-bob")))  # fmt: skip
    assert [e["auditID"] for e in doc["status"]["results"]] == [st.AUDIT[1]["auditID"]]
    events = query("EventQuery", startTime="now-1d", endTime="now")
    status, doc = run(call(f"{base}{GV}/eventqueries", proxy, "POST", events,
                           tenant("Organization", "acme")))  # fmt: skip
    assert [r["event"]["metadata"]["name"] for r in doc["status"]["results"]] == ["ev-0", "ev-2"]
    facets = query("ActivityFacetQuery", facets=[{"field": "spec.resource.kind"}])
    status, doc = run(call(f"{base}{GV}/activityfacetqueries", proxy, "POST", facets,
                           tenant("Organization", "globex")))  # fmt: skip
    assert doc["status"]["facets"][0]["values"] == [{"value": "Pod", "count": 1}]
    globex = tenant("Organization", "globex")
    status, doc = run(call(f"{base}/api/v1/events", proxy, headers=globex))
    assert names(doc) == ["ev-1"]


def test_no_scope_escape(base: str, pki: Path) -> None:
    proxy = context(pki, "proxy")
    acme = tenant("Organization", "acme")
    url = f"{base}{GV}/activityqueries"
    for flt in ("spec.tenant.name == 'globex'", "spec.tenant.name == 'globex' || true", "true",
                "spec.actor.name == 'bob' || spec.actor.name == 'alice'"):  # fmt: skip
        spec = query("ActivityQuery", startTime="now-1d", endTime="now", filter=flt)
        status, doc = run(call(url, proxy, "POST", spec, acme))
        assert status == 201 and set(names(doc)) <= {"act-000000000000"}, flt
    # a filter that is not one: 422, nothing read
    spec = query("ActivityQuery", startTime="now-1d", endTime="now", filter="true) || (true")
    status, doc = run(call(url, proxy, "POST", spec, acme))
    assert (status, doc["reason"], doc["details"]["causes"][0]["field"]) == (
        422, "Invalid", "spec.filter")  # fmt: skip
    # selectors and a get by name of another tenant's record
    selector = "spec.actor.name=bob"
    status, doc = run(call(f"{base}{GV}/activities?fieldSelector={selector}", proxy, headers=acme))
    assert names(doc) == []
    status, doc = run(call(f"{base}{GV}/namespaces/default/activities/act-000000000001", proxy,
                           headers=acme))  # fmt: skip
    assert (status, doc["reason"]) == (404, "NotFound")
    # a continue token of a platform caller does not widen a tenant's view either
    spec = query("ActivityQuery", startTime="now-1d", endTime="now", limit=1)
    token_headers = {"Authorization": f"Bearer {TOKEN}"}
    _, first = run(call(url, context(pki), "POST", spec, token_headers))
    spec["spec"]["continue"] = first["status"]["continue"]
    status, doc = run(call(url, proxy, "POST", spec, acme))
    assert (status, doc["details"]["causes"][0]["field"]) == (422, "spec.continue")


async def _watch(
    url: str, ctx: ssl.SSLContext | None, headers: dict[str, str]
) -> list[dict[str, Any]]:
    events = []
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers, ssl=ctx) as resp,
    ):
        assert resp.status == 200
        async for line in resp.content:
            events.append(orjson.loads(line))
    return events


def test_watch_is_scoped_and_resumable(base: str, pki: Path, nats_server: NatsServer) -> None:
    now = time.time_ns()
    # "a.b" and "a_b" share one subject token (sanitised): the in-memory check keeps them apart
    mine = st.activity(200, "amy", "Pod", ("Organization", "a_b"), "default", "amy: mine", now)
    theirs = st.activity(201, "ben", "Pod", ("Organization", "a.b"), "default", "ben: theirs", now)
    seqs = run(st.publish_activities(str(nats_server.url), [theirs, mine]))
    proxy = context(pki, "proxy")
    url = f"{base}{GV}/activities?watch=true&resourceVersion={seqs[0]}&timeoutSeconds=2"
    events = run(_watch(url, proxy, tenant("Organization", "a_b")))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "act-0000000000c8")
    ]
    assert events[0]["object"]["metadata"]["resourceVersion"] == str(seqs[1])
    # a platform caller resumes at the sequence, inclusively, and sees both
    events = run(_watch(url, context(pki), {"Authorization": f"Bearer {TOKEN}"}))
    assert [e["object"]["metadata"]["resourceVersion"] for e in events] == [str(s) for s in seqs]


SUMMARY = "{{ actor }} {{ audit.verb }} {{ audit.objectRef.name }}"


def test_policypreview_autofetch_reads_the_callers_tenant(base: str, pki: Path) -> None:
    preview = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "PolicyPreview",
        "metadata": {"name": "p"},
        "spec": {
            "policy": {
                "resource": {"apiGroup": "apps", "kind": "Deployment"},
                "auditRules": [{"name": "any", "match": "true", "summary": SUMMARY}],
            },
            "autoFetch": {"limit": 10, "timeRange": "24h", "sources": "audit"},
        },
    }  # fmt: skip
    url = f"{base}{GV}/policypreviews"
    status, doc = run(call(url, context(pki, "proxy"), "POST", preview,
                           tenant("Organization", "globex")))  # fmt: skip
    assert status == 201, doc
    assert [a["spec"]["summary"] for a in doc["status"]["activities"]] == ["bob update web-1"]
    platform = {"Authorization": f"Bearer {TOKEN}"}
    status, doc = run(call(url, context(pki), "POST", preview, platform))
    assert len(doc["status"]["activities"]) == 3


async def _publish_events(nats_url: str, payloads: list[Any]) -> list[int]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        return [(await js.publish("events.p0", orjson.dumps(p))).seq for p in payloads]
    finally:
        await nc.close()


def test_events_watch_is_scoped(base: str, pki: Path, nats_server: NatsServer) -> None:
    acme = st.event(300, "BackOff", "Pod", "acme")
    globex = st.event(301, "Started", "Pod", "globex")
    listed = {"apiVersion": "events.k8s.io/v1", "kind": "EventList",
              "items": [st.event(302, "Pulled", "Pod", "acme"), globex]}  # fmt: skip
    seqs = run(_publish_events(str(nats_server.url), [acme, globex, listed]))
    url = f"{base}/api/v1/events?watch=true&resourceVersion={seqs[0]}&timeoutSeconds=2"
    events = run(_watch(url, context(pki, "proxy"), tenant("Organization", "acme")))
    got = [(e["object"]["apiVersion"], e["object"]["metadata"]["name"],
            e["object"]["metadata"]["resourceVersion"]) for e in events]  # fmt: skip
    assert got == [("v1", "ev-300", str(seqs[0])), ("v1", "ev-302", str(seqs[2]))]
    assert events[0]["object"]["message"] == "event 300 BackOff"  # core v1 fields


def test_loopback_headers_and_stopping_ends_watches(
    sink: ChdbSink, nats_server: NatsServer
) -> None:
    settings = ServeSettings(
        listen_addr="127.0.0.1:0", nats_url=str(nats_server.url), trust_loopback_headers=True
    )
    outcome: list[Any] = []
    run(st.publish_activities(str(nats_server.url), []))  # the streams exist
    with st.running(settings, sink) as server:
        base = f"http://127.0.0.1:{server.port}{GV}"
        status, doc = run(call(f"{base}/activities", None, headers=tenant("Project", "p1")))
        assert (status, names(doc)) == (200, ["act-000000000003"])

        def watch_forever() -> None:
            outcome.append(run(_watch(f"{base}/activities?watch=true", None, {})))

        watcher = threading.Thread(target=watch_forever, daemon=True)
        watcher.start()
        time.sleep(1)  # the watch is being served
        assert watcher.is_alive()
    watcher.join(15)
    assert not watcher.is_alive() and outcome == [[]]  # the server's stop ended it
