"""Run list queries: validate a request, build its SQL, fetch one page, issue the next token."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import orjson

from processor.activity import normalize_tenant_type
from processor.query import cursor
from processor.query.errors import QueryError
from processor.query.filter import Expr, Logic, compile_filter
from processor.query.selectors import compile_selector
from processor.query.sql import (
    DATABASE,
    DEDUP,
    PROJECTION_MAX_ROWS,
    TOO_MANY_ROWS,
    Select,
    check_identifier,
)
from processor.query.tables import Table
from processor.query.timeparse import resolve_window
from processor.query.tokenkeys import TokenKeys, process_keys
from processor.sink.base import SinkError

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_SEARCH_TERMS = 32


class Backend(Protocol):
    """What the query layer needs from a sink (:class:`processor.sink.base.Sink` has it)."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` with typed parameters; rows as dicts."""
        ...


@dataclass(frozen=True)
class QueryRequest:
    """One list query over a table (the flags of ``activity query`` and friends).

    ``filter`` is CEL; ``selector`` an event field selector; ``start``/``end`` use the syntax of
    :mod:`processor.query.timeparse`; ``max_window_ns`` 0 means the table's default. ``user_uid``
    keeps the records of one user uid (the ``User`` tenancy scope of ``activity serve``: the
    table's ``uid_column``; events have none and use the tenant columns).
    """

    table: Table
    filter: str = ""
    selector: str = ""
    search: str = ""
    start: str = "now-7d"
    end: str = "now"
    limit: int = DEFAULT_LIMIT
    continue_token: str = ""
    tenant_type: str = ""
    tenant_name: str = ""
    actor: str = ""
    namespace: str = ""
    max_window_ns: int = 0
    user_uid: str = ""

    def binding(self) -> str:
        """The hash a continue token is bound to (every parameter but the token)."""
        raw = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "continue_token"}
        raw["table"] = self.table.name
        return cursor.params_hash(raw)


@dataclass
class Page:
    """One page of results, newest first, with the token of the next page ("" = last)."""

    items: list[dict[str, Any]]
    continue_token: str
    start_ns: int
    end_ns: int


@dataclass
class Plan:
    """A validated request: its SELECT (without LIMIT), page size and resolved window."""

    select: Select
    limit: int
    start_ns: int
    end_ns: int


def build(
    request: QueryRequest, now_ns: int, database: str = DATABASE, keys: TokenKeys | None = None
) -> Plan:
    """Validate ``request`` and build its SELECT.

    Args:
        request: the request; its continue token, if any, is verified with ``keys``.
        now_ns: the current time.
        database: the database of the tables.
        keys: the continue-token keys (``None``: this process's random key).

    Raises:
        QueryError: any invalid parameter (time, limit, filter, selector, token, scope).
    """
    table = request.table
    if not 0 <= request.limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 1 and {MAX_LIMIT} (0 = {DEFAULT_LIMIT})")
    expr = _conditions(request)
    cur = None
    max_window = request.max_window_ns or table.max_window_ns
    if request.continue_token:
        cur = cursor.decode(
            request.continue_token,
            request.binding(),
            len(table.sort_key),
            now_ns // 10**6,
            keys or process_keys(),
        )
        cursor.check_window(cur, request.start, request.end, max_window, now_ns)
        start_ns, end_ns = cur.start_ns, cur.end_ns
    else:
        window = resolve_window(request.start, request.end, now_ns, max_window)
        start_ns, end_ns = window.start, window.end
    select = Select(table, check_identifier(database))
    select.window(start_ns, end_ns)
    _scope(select, request)
    select.filter(expr)
    select.search(_search_terms(request))
    if cur is not None:
        select.after(cur.key)
    return Plan(select, request.limit or DEFAULT_LIMIT, start_ns, end_ns)


def _conditions(request: QueryRequest) -> Expr | None:
    table = request.table
    if request.selector and not table.selectors:
        raise QueryError(f"field selectors are only supported for events, not {table.noun}")
    expr = compile_filter(request.filter, table)
    sel = compile_selector(request.selector, table)
    if expr is not None and sel is not None:
        return Logic("and", sel, expr)
    return expr if expr is not None else sel


def _scope(select: Select, request: QueryRequest) -> None:
    table = request.table
    type_col, name_col = table.tenant_columns
    if request.tenant_name and not request.tenant_type:
        raise QueryError("--tenant-name needs --tenant-type")
    if request.tenant_type:
        tenant_type = normalize_tenant_type(request.tenant_type)
        select.equals(type_col, "" if tenant_type == "platform" else tenant_type)
        if request.tenant_name or tenant_type != "platform":
            select.equals(name_col, request.tenant_name)
    if request.actor:
        if not table.actor_column:
            raise QueryError(f"--actor is not supported for {table.noun}")
        select.equals(table.actor_column, request.actor)
    if request.user_uid:
        if not table.uid_column:
            raise QueryError(f"a user uid scope is not supported for {table.noun}")
        select.equals(table.uid_column, request.user_uid)
    if request.namespace:
        if table.name != "k8s_events":
            raise QueryError("--namespace is only supported for events")
        select.equals("namespace", request.namespace)


def _search_terms(request: QueryRequest) -> list[str]:
    terms = request.search.split()
    if terms and request.table.name != "activities":
        raise QueryError("--search is only supported for activities")
    if len(terms) > MAX_SEARCH_TERMS:
        raise QueryError(f"--search takes at most {MAX_SEARCH_TERMS} terms")
    return terms


def run_query(
    backend: Backend,
    request: QueryRequest,
    now_ns: int | None = None,
    dedup: str = DEDUP,
    keys: TokenKeys | None = None,
    projections: bool = True,
) -> Page:
    """Fetch one page of ``request``.

    ``keys`` verify the request's continue token and sign the next one; ``None`` uses a random
    key of this process, so tokens do not work in another process (the CLI passes
    :func:`processor.query.tokenkeys.load_keys`). ``projections=False`` always sends the plain
    query (the benchmark's baseline, see :func:`fetch_rows`).

    Raises:
        QueryError: an invalid request (nothing is sent to the store).
        processor.sink.base.SinkError: the store failed.
    """
    now = time.time_ns() if now_ns is None else now_ns
    keys = keys or process_keys()
    plan = build(request, now, getattr(backend, "database", DATABASE), keys)
    if dedup == "collapse":
        rows = fetch_collapsed(backend, plan.select, plan.limit + 1, projections)
    else:
        rows = fetch_rows(backend, plan.select, plan.limit + 1, dedup, projections)
    more = len(rows) > plan.limit
    rows = rows[: plan.limit]
    token = ""
    if more:
        key = cursor.key_of(rows[-1], len(request.table.sort_key))
        position = cursor.Cursor(key, plan.start_ns, plan.end_ns)
        token = cursor.encode(position, request.binding(), now // 10**6, keys)
    items = [orjson.loads(row["doc"]) for row in rows]
    log.debug("query %s: %d rows, more=%s", request.table.name, len(items), more)
    return Page(items, token, plan.start_ns, plan.end_ns)


def fetch_rows(
    backend: Backend, select: Select, limit: int, dedup: str, projections: bool = True
) -> list[dict[str, Any]]:
    """One ``page_sql`` read: through a projection when one may serve it and ClickHouse's
    estimate stays within ``PROJECTION_MAX_ROWS``, else (or with ``projections=False``) the
    plain reverse-order read (see :mod:`processor.query.sql`)."""
    if projections and select.projection(dedup):
        try:
            sql = select.page_sql(limit, dedup, projection=True)
            return backend.query(sql, select.params.values)
        except SinkError as exc:
            if exc.code != TOO_MANY_ROWS:
                raise
            log.debug("projection read over %d rows: reading newest first", PROJECTION_MAX_ROWS)
    return backend.query(select.page_sql(limit, dedup), select.params.values)


def fetch_collapsed(
    backend: Backend, select: Select, want: int, projections: bool = True
) -> list[dict[str, Any]]:
    """Up to ``want`` rows, one per sort key (the newest version), read without ``FINAL``.

    Copies of a key left by redelivery are adjacent (the ORDER BY is the full key). A full batch
    may end inside a group of copies, so its last group is re-read with the next batch, which
    starts right after the last complete group.
    """
    n_keys = len(select.table.sort_key)
    batch = want + 2 + want // 50  # room for a few copies without a second round trip
    out: list[dict[str, Any]] = []
    current = select
    while True:
        rows = fetch_rows(backend, current, batch, "collapse", projections)
        groups = _collapse(rows, n_keys)
        full = len(rows) == batch
        if full and len(groups) > 1:
            groups.pop()
        out += groups
        if len(out) >= want or not full:
            return out[:want]
        current = select.copy()
        current.after(cursor.key_of(out[-1], n_keys))


def _collapse(rows: list[dict[str, Any]], n_keys: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    last: tuple[Any, ...] | None = None
    for row in rows:
        key = tuple(row[f"k{i}"] for i in range(n_keys))
        if key == last:
            if str(row.get("v", "")) > str(out[-1].get("v", "")):
                out[-1] = row
            continue
        out.append(row)
        last = key
    return out


def iter_pages(
    backend: Backend,
    request: QueryRequest,
    max_pages: int | None = None,
    keys: TokenKeys | None = None,
) -> Iterator[Page]:
    """Every page of ``request`` in order, following continue tokens (signed with ``keys``)."""
    count = 0
    while True:
        page = run_query(backend, request, keys=keys)
        yield page
        count += 1
        if not page.continue_token or (max_pages is not None and count >= max_pages):
            return
        request = _with_token(request, page.continue_token)


def _with_token(request: QueryRequest, token: str) -> QueryRequest:
    return replace(request, continue_token=token)


__all__ = ["Backend", "Page", "Plan", "QueryRequest", "build", "iter_pages", "run_query"]
