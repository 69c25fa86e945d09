"""The kubeconfig-format file kube-apiserver reads with ``--audit-webhook-config-file``.

kube-apiserver posts its audit EventLists to the ``cluster.server`` URL of this file, trusts the
server certificate through ``certificate-authority-data`` and authenticates with the ``user``'s
bearer token (or client certificate). The CA and client certificate are embedded (``*-data``), so
the file is self-contained on the control-plane host.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from processor.errors import ProcessorError
from processor.ingest.auth import first_token

__all__ = ["WebhookConfigError", "webhook_config"]

NAME = "activity-ingest"


class WebhookConfigError(ProcessorError):
    """The webhook config cannot be made from what was given."""


def _server(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise WebhookConfigError(f"--server must be an https:// URL, got {url!r}")
    path = parts.path if parts.path not in ("", "/") else "/audit"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _data(path: str, what: str) -> str:
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise WebhookConfigError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN" not in content:
        raise WebhookConfigError(f"{path} is not PEM (no -----BEGIN line): expected the {what}")
    return base64.b64encode(content).decode("ascii")


def webhook_config(
    server: str,
    token_file: str = "",
    certificate_authority: str = "",
    client_certificate: str = "",
    client_key: str = "",
) -> dict[str, Any]:
    """The webhook config as a mapping (``kind: Config``).

    Args:
        server: the ingest URL, ``https://host:port`` (``/audit`` is added when there is no path).
        token_file: a token file of ``activity ingest``; its first token is used.
        certificate_authority: PEM CA that signed the ingest's serving certificate.
        client_certificate, client_key: PEM client certificate and key (``--client-ca-file``).

    Raises:
        WebhookConfigError: no credential, a missing file, or not an https URL.
        AuthConfigError: the token file cannot be read or holds no token.
    """
    url = _server(server)
    if bool(client_certificate) != bool(client_key):
        raise WebhookConfigError("--client-certificate and --client-key go together")
    if not token_file and not client_certificate:
        raise WebhookConfigError(
            "give --token-file or --client-certificate/--client-key: the ingest must be able to "
            "authenticate kube-apiserver"
        )
    cluster: dict[str, Any] = {"server": url}
    if certificate_authority:
        cluster["certificate-authority-data"] = _data(
            certificate_authority, "certificate authority"
        )
    user: dict[str, Any] = {}
    if token_file:
        user["token"] = first_token(token_file)
    if client_certificate:
        user["client-certificate-data"] = _data(client_certificate, "client certificate")
        user["client-key-data"] = _data(client_key, "client key")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": "kube-apiserver", "user": user}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": "kube-apiserver"}}],
        "current-context": NAME,
        "preferences": {},
    }
