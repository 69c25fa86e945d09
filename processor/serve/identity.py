"""Who is calling, and which records they may read (docs/design.md#storage-query-5).

A request is authenticated by the first of these that applies:

1. **front proxy**: the connection presented a client certificate that verified against
   ``--requestheader-client-ca-file`` (and, when ``--requestheader-allowed-names`` is set, its
   common name is one of them). Then, and only then, the ``X-Remote-User``, ``X-Remote-Group``
   and ``X-Remote-Extra-<key>`` headers name the caller, as kube-apiserver's aggregation layer
   sends them;
2. **loopback headers** (``--trust-loopback-headers``, development): the same headers on a
   connection from 127.0.0.1 / ::1;
3. **bearer token** listed in ``--token-file``: a platform caller (operators, automation);
4. **open**: nothing configured at all, every request is a platform caller (loudly warned).

A request with none of these is refused: 401, or 403 when it came with a certificate the
front-proxy CA verified but whose common name is not in ``--requestheader-allowed-names``.

Headers of any other request are ignored, so they cannot narrow or widen anything. The scope comes
from the caller's extras as upstream derives it: ``iam.miloapis.com/parent-type`` (exactly
``Organization``, ``Project`` or ``User``) and ``iam.miloapis.com/parent-name``, both present and
non-empty; otherwise the platform scope (everything). For ``User`` the name is the user's uid.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from processor.ingest.auth import Authenticator
from processor.serve.settings import ServeSettings

PARENT_TYPE = "iam.miloapis.com/parent-type"
PARENT_NAME = "iam.miloapis.com/parent-name"
SCOPE_TYPES = ("Organization", "Project", "User")
PLATFORM = "platform"


@dataclass(frozen=True)
class Scope:
    """A caller's tenancy scope: ``platform`` (everything) or one Organization/Project/User."""

    type: str = PLATFORM
    name: str = ""

    @property
    def platform(self) -> bool:
        return self.type == PLATFORM


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: user, groups, extras, how it authenticated, and its scope."""

    user: str
    how: str
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    scope: Scope = Scope()


def scope_of(extra: Mapping[str, tuple[str, ...]]) -> Scope:
    """Upstream's ``ExtractScopeFromUser``: the first parent-type and parent-name values."""
    kind = next(iter(extra.get(PARENT_TYPE, ())), "")
    name = next(iter(extra.get(PARENT_NAME, ())), "")
    if kind in SCOPE_TYPES and name:
        return Scope(kind, name)
    return Scope()


class Unauthenticated(Exception):
    """No accepted credential (401)."""


class Forbidden(Exception):
    """A client certificate the front-proxy CA verified, but not of an allowed name (403)."""


class IdentityResolver:
    """Turns a request's connection and headers into a :class:`Caller`."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.tokens = Authenticator(settings.token_file) if settings.token_file else None
        self.front_proxy = bool(settings.requestheader_client_ca_file)
        self.allowed = frozenset(settings.requestheader_allowed_names)

    @property
    def open(self) -> bool:
        """Nothing configured: every request is a platform caller."""
        return self.tokens is None and not self.front_proxy

    def resolve(self, headers: Mapping[str, str], peercert: Any, peer: Any) -> Caller:
        """The caller of a request.

        Args:
            headers: the request headers (a case-insensitive multi-dict in aiohttp).
            peercert: the verified client certificate (``getpeercert()``), or None/empty.
            peer: the transport's ``peername`` (``(host, port, ...)``) or None.

        Raises:
            Unauthenticated: no accepted credential.
        """
        refused = False
        if self.front_proxy and peercert:
            if self._allowed(peercert):
                return self._from_headers(headers, "front-proxy")
            refused = True
        if self.settings.trust_loopback_headers and _is_loopback(peer) and not peercert:
            user = self._first(headers, self.settings.requestheader_username_headers)
            if user:
                return self._from_headers(headers, "loopback-headers")
        if self.tokens is not None:
            how = self.tokens.authenticate(headers.get("Authorization"), None)
            if how == "token":
                return Caller("token", "token")
        if self.open:
            return Caller("anonymous", "none")
        if refused:
            raise Forbidden()
        raise Unauthenticated()

    def _allowed(self, peercert: Any) -> bool:
        if not self.allowed:
            return True
        for rdn in peercert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName" and value in self.allowed:
                    return True
        return False

    def _from_headers(self, headers: Mapping[str, str], how: str) -> Caller:
        s = self.settings
        user = self._first(headers, s.requestheader_username_headers)
        if not user:
            raise Unauthenticated()
        groups: list[str] = []
        for name in s.requestheader_group_headers:
            groups += _all(headers, name)
        extra: dict[str, tuple[str, ...]] = {}
        prefixes = tuple(p.lower() for p in s.requestheader_extra_headers_prefix)
        for name in {k.lower() for k in headers.keys()}:  # noqa: SIM118 (a multi-dict)
            for prefix in prefixes:
                if name.startswith(prefix) and len(name) > len(prefix):
                    key = unquote(name[len(prefix) :]).lower()
                    extra[key] = extra.get(key, ()) + tuple(_all(headers, name))
        return Caller(user, how, tuple(groups), extra, scope_of(extra))

    @staticmethod
    def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> str:
        for name in names:
            values = _all(headers, name)
            if values and values[0]:
                return values[0]
        return ""


def _all(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    value = headers.get(name)
    return [value] if value is not None else []


def _is_loopback(peer: Any) -> bool:
    if not peer:
        return False
    host = peer[0] if isinstance(peer, tuple | list) else str(peer)
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
