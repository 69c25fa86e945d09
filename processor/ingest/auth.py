"""TLS and authentication of the ingest listener (the TLS context itself:
:func:`processor.httpserve.tls_server_context`, shared with ``activity serve``).

A request is authenticated by either of two means, each active only when configured:

- a bearer token (``Authorization: Bearer <token>``) listed in ``--token-file`` (one per line,
  blank lines and ``#`` comments ignored; the file is re-read when its modification time or size
  changes, so a rotated Secret takes effect without a restart);
- a client certificate verified against ``--client-ca-file``. The TLS handshake asks for a
  certificate without requiring one (``CERT_OPTIONAL``): a client without a certificate completes
  the handshake and gets an HTTP 401 it can read, not a handshake failure. A certificate that
  does not verify still fails the handshake (the ssl module cannot defer that).

With neither configured every request is accepted and :func:`warnings` says so loudly at start.
Tokens are compared in constant time (``hmac.compare_digest``) with every configured token.
"""

from __future__ import annotations

import hmac
import logging
import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

from processor.httpserve import AuthConfigError, tls_server_context
from processor.ingest.settings import IngestSettings

log = logging.getLogger(__name__)

__all__ = [
    "AuthConfigError",
    "Authenticator",
    "first_token",
    "server_ssl_context",
    "tls_server_context",
    "warnings",
]


def server_ssl_context(settings: IngestSettings) -> ssl.SSLContext | None:
    """The listener's TLS context, or None for plain HTTP.

    Raises:
        AuthConfigError: a certificate, key or CA file cannot be loaded.
    """
    if not settings.tls:
        return None
    return tls_server_context(
        settings.tls_cert_file, settings.tls_private_key_file, settings.client_ca_file
    )


def warnings(settings: IngestSettings) -> list[str]:
    """What is unsafe about the configuration (logged at WARNING at start)."""
    out = []
    if not settings.token_file and not settings.client_ca_file:
        out.append(
            "NO AUTHENTICATION: neither --token-file nor --client-ca-file is set, so anyone who "
            "reaches the listener can write audit records and Events into the pipeline"
        )
    if not settings.tls:
        out.append(
            "NO TLS: the listener speaks plain HTTP; audit records and bearer tokens cross the "
            "network in clear (set --tls-cert-file and --tls-private-key-file)"
        )
    return out


@dataclass(frozen=True, slots=True)
class _TokenFile:
    stamp: tuple[int, int]
    tokens: tuple[bytes, ...]


class Authenticator:
    """Decides whether a request may publish.

    Args:
        token_file: the bearer token file ('' = tokens not used).
        client_ca: whether client certificates are verified (``--client-ca-file`` set).
        recheck: seconds between looks at the token file's stamp (a ``stat`` per request costs
            more than the rest of the authentication).

    Raises:
        AuthConfigError: the token file cannot be read or holds no token.
    """

    def __init__(self, token_file: str = "", client_ca: bool = False, recheck: float = 1.0) -> None:
        self.token_file = token_file
        self.client_ca = client_ca
        self.recheck = recheck
        self._checked = time.monotonic()
        self._tokens: _TokenFile | None = None
        if token_file:
            self._tokens = self._load()
            if not self._tokens.tokens:
                raise AuthConfigError(f"the token file {token_file} holds no token")

    @property
    def open(self) -> bool:
        """True when nothing is configured: every request is accepted."""
        return not self.token_file and not self.client_ca

    def authenticate(self, authorization: str | None, peercert: Any) -> str | None:
        """How the request authenticated (``token``, ``certificate``, ``none`` when nothing is
        configured), or None when it did not.

        Args:
            authorization: the ``Authorization`` header, if any.
            peercert: the verified peer certificate (``SSLObject.getpeercert()``), None or empty
                when the client sent none.
        """
        if self.open:
            return "none"
        if self.token_file and authorization:
            scheme, _, credential = authorization.strip().partition(" ")
            if scheme.lower() == "bearer" and self._valid(credential.strip().encode()):
                return "token"
        if self.client_ca and peercert:
            return "certificate"
        return None

    def _valid(self, token: bytes) -> bool:
        if not token:
            return False
        tokens = self._current()
        found = False
        for candidate in tokens:  # every one: the time taken does not tell which matched
            found |= hmac.compare_digest(candidate, token)
        return found

    def _current(self) -> tuple[bytes, ...]:
        """The tokens, re-read when the file changed (looked at every ``recheck`` seconds); the
        last good set if it cannot be read."""
        assert self._tokens is not None
        now = time.monotonic()
        if now - self._checked < self.recheck:
            return self._tokens.tokens
        self._checked = now
        try:
            st = os.stat(self.token_file)
        except OSError:
            return self._tokens.tokens
        if (st.st_mtime_ns, st.st_size) != self._tokens.stamp:
            try:
                fresh = self._load()
            except AuthConfigError as exc:
                log.warning("%s; keeping the tokens read before", exc)
            else:
                if fresh.tokens:
                    self._tokens = fresh
                    log.info("re-read %d tokens from %s", len(fresh.tokens), self.token_file)
        return self._tokens.tokens

    def _load(self) -> _TokenFile:
        try:
            st = os.stat(self.token_file)
            with open(self.token_file, "rb") as handle:
                text = handle.read()
        except OSError as exc:
            raise AuthConfigError(
                f"cannot read the token file {self.token_file}: {exc.strerror or exc}"
            ) from None
        tokens = []
        for line in text.splitlines():
            token = line.strip()
            if token and not token.startswith(b"#"):
                tokens.append(token)
        return _TokenFile((st.st_mtime_ns, st.st_size), tuple(tokens))


def first_token(token_file: str) -> str:
    """The first token of a token file (what ``webhook-config`` hands to kube-apiserver).

    Raises:
        AuthConfigError: the file cannot be read or holds no token.
    """
    auth = Authenticator(token_file)
    assert auth._tokens is not None
    return auth._tokens.tokens[0].decode("utf-8", "replace")
