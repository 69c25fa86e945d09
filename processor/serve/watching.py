"""``?watch=true``: the Kubernetes watch protocol over the NATS streams
(docs/design.md#storage-query-6).

The response is a chunked stream of JSON lines ``{"type": "ADDED", "object": ...}``, one per
Activity (or Event) as it arrives, each with ``metadata.resourceVersion`` = its stream sequence.
``resourceVersion=N`` resumes at sequence N inclusive (upstream's semantics), none or ``0`` starts
with new messages; ``timeoutSeconds`` ends the watch. The consumer is the CLI's
(:func:`processor.query.watch.watch`: ordered, ephemeral, flow-controlled); a tenant-scoped
caller's subject is narrowed to its tenant, and every message is checked again in memory against
the scope, the URL's namespace and the field selector before it is sent (subject tokens are
sanitised, so two tenant names can share one; the check keeps them apart). An error after the
response started is sent as an ``ERROR`` event holding a ``Status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from processor.query.errors import QueryError
from processor.query.evaluate import matches
from processor.query.filter import Compare, Const, Expr, Field, Logic
from processor.query.selectors import compile_selector
from processor.query.tables import K8S_EVENTS, Table
from processor.query.watch import Watched, WatchSpec, watch
from processor.serve.identity import Scope
from processor.serve.status import ApiError

log = logging.getLogger(__name__)

#: how often an idle watch checks that its client is still connected
IDLE_CHECK = 2.0


@dataclass(frozen=True)
class WatchRequest:
    """One watch: table, namespace, selector, scope, start sequence, timeout."""

    table: Table
    namespace: str
    selector: str
    scope: Scope
    since: int
    timeout: float


def parse_since(raw: str | None) -> int:
    """``resourceVersion``: a stream sequence; "" or "0" = new messages only."""
    if not raw:
        return 0
    if not raw.isdigit():
        raise ApiError(400, f"invalid resourceVersion {raw!r}: must be a stream sequence")
    return int(raw)


def parse_timeout(raw: str | None) -> float:
    if not raw:
        return 0.0
    if not raw.isdigit():
        raise ApiError(400, f"invalid timeoutSeconds {raw!r}")
    return float(raw)


def _eq(table: Table, column_name: str, value: str) -> Compare:
    columns = {c.name: c for c in (*table.fields.values(), *table.sort_key)}
    column = columns[column_name]
    return Compare("==", Field(column_name, column), Const("string", value))


def scope_expr(table: Table, scope: Scope) -> Expr | None:
    """The scope as an in-memory check (the same columns as the SQL scope)."""
    if scope.platform:
        return None
    if scope.type == "User" and table.uid_column:
        return _eq(table, table.uid_column, scope.name)
    type_col, name_col = table.tenant_columns
    return Logic("and", _eq(table, type_col, scope.type), _eq(table, name_col, scope.name))


def checks(req: WatchRequest, selectable: Table) -> Expr | None:
    """Scope AND namespace AND field selector (400 for a bad selector)."""
    terms = []
    if req.namespace:
        terms.append(f"metadata.namespace={req.namespace}")
    if req.selector.strip():
        terms.append(req.selector)
    try:
        expr = compile_selector(",".join(terms), selectable)
    except QueryError as exc:
        raise ApiError(400, str(exc)) from None
    scope = scope_expr(req.table, req.scope)
    if scope is None:
        return expr
    return scope if expr is None else Logic("and", scope, expr)


def spec_of(req: WatchRequest) -> WatchSpec:
    """The consumer: activities narrowed to an Organization/Project tenant's subject."""
    if req.table is K8S_EVENTS:
        return WatchSpec(since=req.since, stream="EVENTS", prefix="events")
    if req.scope.platform or req.scope.type == "User":
        return WatchSpec(since=req.since)
    return WatchSpec(since=req.since, tenant_type=req.scope.type, tenant_name=req.scope.name)


def _items(item: Watched) -> list[dict[str, Any]]:
    """The objects of a message (an Event message may hold an EventList, docs/design.md#d12)."""
    doc = item.activity
    items = doc.get("items")
    if isinstance(items, list) and str(doc.get("kind", "")).endswith("List"):
        out = []
        for obj in items:
            if isinstance(obj, dict):
                meta = obj.setdefault("metadata", {})
                if isinstance(meta, dict):
                    meta["resourceVersion"] = str(item.sequence)
                out.append(obj)
        return out
    return [doc]


async def serve_watch(
    request: web.Request,
    nats_url: str,
    req: WatchRequest,
    selectable: Table,
    render: Callable[[dict[str, Any], bool], dict[str, Any]],
    stopping: asyncio.Event | None = None,
) -> web.StreamResponse:
    """Stream watch events until the client goes, the timeout ends, NATS fails or ``stopping``
    is set (the server is shutting down).

    ``render(obj, first)`` turns a matching object into the event's object (a Table row or the
    object in the requested version).
    """
    if not nats_url:
        raise ApiError(503, "Watch API is not available. NATS is not configured.")
    expr = checks(req, selectable)
    spec = spec_of(req)
    queue: asyncio.Queue[Watched | BaseException] = asyncio.Queue(100)

    async def pump() -> None:
        try:
            async for item in watch(nats_url, spec):
                await queue.put(item)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(exc)

    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + req.timeout if req.timeout else None
    first = True
    try:
        async for obj in _objects(queue, request, deadline, loop, stopping or asyncio.Event()):
            if not matches(expr, obj):
                continue
            event = {"type": "ADDED", "object": render(obj, first)}
            first = False
            await response.write(orjson.dumps(event) + b"\n")
    except _Failed as exc:
        status = ApiError(503, f"watch failed: {exc}").status()
        with contextlib.suppress(Exception):
            await response.write(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    with contextlib.suppress(Exception):
        await response.write_eof()
    return response


class _Failed(Exception):
    pass


async def _objects(
    queue: asyncio.Queue[Watched | BaseException],
    request: web.Request,
    deadline: float | None,
    loop: asyncio.AbstractEventLoop,
    stopping: asyncio.Event,
) -> AsyncIterator[dict[str, Any]]:
    while not stopping.is_set():
        wait = IDLE_CHECK
        if deadline is not None:
            wait = min(wait, deadline - loop.time())
            if wait <= 0:
                return
        try:
            item = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            continue
        if isinstance(item, BaseException):
            log.warning("watch: %s", item)
            raise _Failed(str(item) or type(item).__name__)
        for obj in _items(item):
            yield obj


__all__ = ["WatchRequest", "serve_watch"]
