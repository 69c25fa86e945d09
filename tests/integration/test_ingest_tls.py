"""``activity ingest`` over TLS with a test CA (made here with the ``openssl`` CLI): bearer tokens
and client certificates; an unauthenticated request gets 401 and publishes nothing."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from processor.ingest.server import IngestServer
from processor.ingest.settings import IngestSettings
from processor.stream.server import NatsServer
from tests.integration import records
from tests.integration.ingest_tools import audit_items, event_list, stored

pytestmark = pytest.mark.integration

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _signed(cwd: Path, name: str, subject: str, extensions: str) -> None:
    """``name.key`` and ``name.crt``, signed by ``ca``."""
    (cwd / f"{name}.ext").write_text(extensions + "\n")
    _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-out", f"{name}.crt",
             "-extfile", f"{name}.ext", cwd=cwd)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    root = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", *EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=activity-ingest-test-ca", cwd=root)  # fmt: skip
    _signed(root, "server", "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")  # fmt: skip
    _signed(root, "client", "/CN=kube-apiserver", "extendedKeyUsage=clientAuth")
    (root / "tokens").write_text("# kube-apiserver\ngood-token\n")
    return root


def client_context(pki: Path, certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if certificate:
        context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    return context


def test_tokens_and_client_certificates_over_tls(pki: Path, fresh_nats_server: NatsServer) -> None:
    url = str(fresh_nats_server.url)
    accepted = [records.audit(f"tls-{i}", seq=i) for i in range(4)]
    refused = records.audit("refused")
    cases: list[tuple[str, bool, dict[str, str], int, Any]] = [
        ("wrong token", False, {"Authorization": "Bearer bad-token"}, 401, refused),
        ("no token, no certificate", False, {}, 401, refused),
        ("not a bearer token", False, {"Authorization": "Basic Z29vZC10b2tlbg=="}, 401, refused),
        ("token", False, {"Authorization": "Bearer good-token"}, 200, accepted[:2]),
        ("certificate", True, {}, 200, accepted[2:3]),
        ("certificate and a wrong token", True, {"Authorization": "Bearer x"}, 200, accepted[3:]),
    ]

    async def body() -> None:
        settings = IngestSettings(
            nats_url=url,
            listen_addr="127.0.0.1:0",
            partition_count=4,
            tls_cert_file=str(pki / "server.crt"),
            tls_private_key_file=str(pki / "server.key"),
            client_ca_file=str(pki / "ca.crt"),
            token_file=str(pki / "tokens"),
        )
        server = IngestServer(settings)
        await server.start()
        try:
            for what, certificate, headers, expected, recs in cases:
                items = recs if isinstance(recs, list) else [recs]
                connector = aiohttp.TCPConnector(ssl=client_context(pki, certificate))
                async with (
                    aiohttp.ClientSession(connector=connector) as http,
                    http.post(
                        f"https://127.0.0.1:{server.port}/audit",
                        data=orjson.dumps(event_list(items)),
                        headers=headers,
                    ) as response,
                ):
                    assert response.status == expected, what
                    if expected == 401:
                        assert response.headers["WWW-Authenticate"].startswith("Bearer")
            async with aiohttp.ClientSession() as http:  # plain HTTP to a TLS port
                with pytest.raises(aiohttp.ClientError):
                    await http.post(f"http://127.0.0.1:{server.port}/audit", data=b"{}")
        finally:
            await server.stop()
        text = server.metrics.render().decode()
        assert 'activity_ingest_rejected_total{reason="unauthenticated",source="audit"} 3.0' in text

    asyncio.run(body())
    items = audit_items(asyncio.run(stored(url, "AUDIT_EVENTS")))
    assert sorted(i["auditID"] for i in items) == sorted(r["auditID"] for r in accepted)
    assert asyncio.run(stored(url, "ACTIVITY_DEAD_LETTER")) == []
