"""Connection options shared by the long-running NATS clients (worker, reconciler), and the
connection of the one-shot commands (``activity policy``, ``activity dlq``)."""

from __future__ import annotations

import logging
from typing import Any

from processor.errors import ProcessorError

log = logging.getLogger(__name__)

#: Bytes nats-py reads from the socket at a time, and its stream reader's buffer limit. nats-py's
#: own 32 KiB (``nats.aio.client.DEFAULT_BUFFER_SIZE``, not a connect option) splits a 400 KB
#: EventList message into a dozen reads, and each read shifts the rest of asyncio's buffer: on
#: the skip path that copying was a sixth of the worker's CPU. 1 MiB measured 1.3x the records/s
#: with EventLists (``docs/benchmarks-history.md``, "Latest: the skip path in C").
READ_BUFFER_SIZE = 1024 * 1024


def tune_client() -> None:
    """Set nats-py's socket read size to :data:`READ_BUFFER_SIZE` for connections made after."""
    import nats.aio.client

    nats.aio.client.DEFAULT_BUFFER_SIZE = max(nats.aio.client.DEFAULT_BUFFER_SIZE, READ_BUFFER_SIZE)


def connect_options(
    nats_url: str,
    name: str,
    status: Any,
    *,
    disconnects: Any = None,
    reconnects: Any = None,
    errors: Any = None,
) -> dict[str, Any]:
    """``nats.connect`` keyword arguments: reconnect forever, report state to metrics.

    Also sets nats-py's read size (:func:`tune_client`), for the connection about to be made.

    Args:
        nats_url: one URL or several, comma separated.
        name: the client name the server shows.
        status: a gauge set to 1 while connected, 0 while not.
        disconnects, reconnects, errors: counters to increment, when the caller has them.
    """

    async def disconnected() -> None:
        status.set(0)
        if disconnects is not None:
            disconnects.inc()

    async def reconnected() -> None:
        status.set(1)
        if reconnects is not None:
            reconnects.inc()
        log.info("%s: reconnected to NATS", name)

    async def error(exc: Exception) -> None:
        if errors is not None:
            errors.inc()
        log.debug("%s: NATS error: %s", name, exc)

    tune_client()
    status.set(1)
    return {
        "servers": [u.strip() for u in nats_url.split(",") if u.strip()],
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
        "error_cb": error,
    }


class NatsUnavailableError(ProcessorError):
    """A command could not reach any NATS server of its URL (an outage: retriable)."""

    retriable = True


async def _quiet(exc: Exception) -> None:
    log.debug("NATS: %s", exc)


async def connect_command(nats_url: str, name: str) -> Any:
    """Connect a one-shot command's client: one try per server, then a clear error.

    nats-py's retries (seconds each) only delay the answer a person waits for; a command that
    fails can be run again.

    Args:
        nats_url: one URL or several, comma separated.
        name: the client name the server shows.

    Raises:
        NatsUnavailableError: no server answered; the message names the URL and what to do.
    """
    import nats
    from nats.errors import Error as NatsError

    servers = [u.strip() for u in nats_url.split(",") if u.strip()]
    try:
        return await nats.connect(
            servers,
            name=name,
            connect_timeout=5,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # nats-py: 0 would retry the first connect forever
            reconnect_time_wait=0.2,
            error_cb=_quiet,
        )
    except (OSError, TimeoutError, NatsError) as exc:
        raise NatsUnavailableError(
            f"cannot connect to NATS at {nats_url}: {exc or type(exc).__name__}; start "
            "nats-server there, or give the right URL with --nats-url (env ACTIVITY_NATS_URL)"
        ) from None
