"""HTTP(S) listener plumbing shared by ``activity serve`` and ``activity ingest``.

The TLS server context (:func:`tls_server_context`), the listeners of one server
(:class:`Listeners`: the API or webhook listener and the optional plain health listener), the
peer certificate of a request (:func:`peercert`) and the wait for SIGTERM/SIGINT
(:func:`wait_for_signal`). aiohttp is imported only where a listener starts.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from typing import TYPE_CHECKING, Any

from processor.errors import ProcessorError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["AuthConfigError", "Listeners", "peercert", "tls_server_context", "wait_for_signal"]


class AuthConfigError(ProcessorError):
    """A TLS or token file cannot be used (missing, unreadable, empty)."""


def tls_server_context(cert_file: str, key_file: str, client_ca_file: str = "") -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca_file`` client certificates are asked for
    (``CERT_OPTIONAL``) and verified against it (``activity ingest`` and ``activity serve``).

    Raises:
        AuthConfigError: a certificate, key or CA file cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise AuthConfigError(
            f"cannot load the TLS certificate {cert_file} with key {key_file}: {exc}"
        ) from None
    if client_ca_file:
        try:
            context.load_verify_locations(cafile=client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise AuthConfigError(f"cannot load the client CA {client_ca_file}: {exc}") from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def peercert(request: web.Request) -> Any:
    """The verified client certificate of ``request`` (None: none, or plain HTTP)."""
    transport = request.transport
    return transport.get_extra_info("peercert") if transport is not None else None


class Listeners:
    """The listeners of one server, closed together (last opened first)."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []

    async def listen(self, app: web.Application, addr: str, ssl: ssl.SSLContext | None) -> int:
        """Serve ``app`` on ``addr`` (``HOST:PORT``; port 0 picks one); returns the bound port."""
        from aiohttp import web

        host, _, port = addr.rpartition(":")
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, host or "0.0.0.0", int(port), ssl_context=ssl)
        await site.start()
        bound: int = runner.addresses[0][1]
        return bound

    async def close(self) -> None:
        """Stop listening; requests in flight finish."""
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()


async def wait_for_signal() -> None:
    """Return at the first SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
