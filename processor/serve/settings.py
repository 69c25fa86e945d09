"""Settings of ``activity serve``: one frozen, validated object from flags and the environment.

As for the ingest (:mod:`processor.ingest.settings`): every field is declared once in
:data:`FIELDS`, which drives the flags (``--field-name``) and the variables. Settings shared with
the other commands (:data:`SHARED`) read ``ACTIVITY_<NAME>`` (``ACTIVITY_CLICKHOUSE_URL``,
``ACTIVITY_NATS_URL``...), the server's own ``ACTIVITY_SERVE_<NAME>``. A flag wins over its
variable, which wins over the default. Imported when the CLI parser is built: standard library only.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from processor.config import add_field_arguments, field_defaults, field_values, is_host_port
from processor.query.timeparse import duration_ns

__all__ = ["FIELDS", "SHARED", "ServeSettings", "add_arguments", "build_serve_settings"]


@dataclass(frozen=True)
class ServeSettings:
    """Everything the API server needs; see :data:`FIELDS` for the meaning of each field."""

    clickhouse_url: str = ""
    nats_url: str = ""
    log_level: str = "INFO"
    listen_addr: str = "127.0.0.1:6443"
    health_addr: str = ""
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    requestheader_client_ca_file: str = ""
    requestheader_allowed_names: tuple[str, ...] = ()
    requestheader_username_headers: tuple[str, ...] = ("X-Remote-User",)
    requestheader_group_headers: tuple[str, ...] = ("X-Remote-Group",)
    requestheader_extra_headers_prefix: tuple[str, ...] = ("X-Remote-Extra-",)
    token_file: str = ""
    trust_loopback_headers: bool = False
    token_key_file: str = ""
    max_query_window: str = "30d"
    list_window: str = "1h"
    events_list_window: str = "24h"
    workers: int = 4

    def __post_init__(self) -> None:
        problems = []
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            problems.append("tls_cert_file and tls_private_key_file go together")
        if self.requestheader_client_ca_file and not self.tls_cert_file:
            problems.append(
                "requestheader_client_ca_file needs TLS (tls_cert_file and tls_private_key_file)"
            )
        for name in ("listen_addr", "health_addr"):
            value = getattr(self, name)
            if (value or name == "listen_addr") and not is_host_port(value):
                problems.append(f"{name} must be HOST:PORT, got {value!r}")
        for name in ("max_query_window", "list_window", "events_list_window"):
            if duration_ns(getattr(self, name)) <= 0:
                problems.append(f"{name} must be <N><s|m|h|d|w>, got {getattr(self, name)!r}")
        if self.workers < 1:
            problems.append("workers must be at least 1")
        if problems:
            raise ValueError("invalid serve settings: " + "; ".join(problems))

    @property
    def tls(self) -> bool:
        """Whether the listener speaks TLS."""
        return bool(self.tls_cert_file)


#: field name -> help text (the flag is ``--field-name``; the variable :func:`env_name`).
FIELDS: dict[str, str] = {
    "clickhouse_url": "the store: chdb:///DIR or clickhouse://user:pw@host:9000/audit (default: "
    "chDB in $ACTIVITY_DATA_DIR or ~/.local/share/activity)",
    "nats_url": "NATS server URL(s) for ?watch=true ('' = watch answers 503)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "listen_addr": "HOST:PORT of the API listener",
    "health_addr": "HOST:PORT of a plain-HTTP listener of /healthz, /readyz only ('' = off)",
    "tls_cert_file": "PEM certificate (chain) of the listener; without it plain HTTP",
    "tls_private_key_file": "PEM private key of --tls-cert-file",
    "requestheader_client_ca_file": "PEM CA of the front proxy (the aggregating kube-apiserver): "
    "a request over a client certificate it verifies may name the user and tenant in "
    "X-Remote-* headers",
    "requestheader_allowed_names": "common names the front proxy's certificate may have, comma "
    "separated ('' = any certificate the CA verifies)",
    "requestheader_username_headers": "headers naming the user (comma separated)",
    "requestheader_group_headers": "headers naming the user's groups",
    "requestheader_extra_headers_prefix": "prefixes of the headers of the user's extras (the "
    "tenant: iam.miloapis.com/parent-type and parent-name)",
    "token_file": "file of bearer tokens, one per line ('#' comments), re-read when it changes; "
    "a token caller has the platform scope (sees every tenant)",
    "trust_loopback_headers": "development: also trust the X-Remote-* headers of plain "
    "connections from the loopback address",
    "token_key_file": "continue-token signing keys, one per line, the first signs (every replica "
    "needs the same; default: a random key per process)",
    "max_query_window": "longest startTime..endTime of audit and activity queries",
    "list_window": "how far back a list of activities reads (upstream: 1h)",
    "events_list_window": "how far back a list of Events reads (upstream: 24h)",
    "workers": "threads that run store queries",
}

#: Fields read from the other commands' variables (``ACTIVITY_<NAME>``).
SHARED = frozenset({"clickhouse_url", "nats_url", "log_level", "token_key_file"})


def env_name(field: str) -> str:
    """The variable of ``field``: ``ACTIVITY_NATS_URL``, ``ACTIVITY_SERVE_TOKEN_FILE``..."""
    return f"ACTIVITY_{field.upper()}" if field in SHARED else f"ACTIVITY_SERVE_{field.upper()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`ServeSettings` (all default to None = not given)."""
    add_field_arguments(parser, FIELDS, field_defaults(ServeSettings), env_name)


def build_serve_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> ServeSettings:
    """Build :class:`ServeSettings` from flags, the environment and ``overrides``.

    Raises:
        ValueError: a value has the wrong type or the result is invalid.
    """
    values = field_values(FIELDS, field_defaults(ServeSettings), env_name, args, environ)
    values.update(overrides)
    return ServeSettings(**values)
