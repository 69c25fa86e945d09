"""The create-only query resources (docs/design.md#storage-query-3): ``POST`` a query object,
get it back (``201``) with ``status`` filled; nothing is stored.

Every spec is checked before anything reaches the store, and all problems are answered together
as one ``422 Invalid`` with a cause per field (upstream sends some of them, such as filter
translation failures, bad field selectors and bad cursors, to the store and answers ``503``).
The requests are the CLI's (:class:`processor.query.service.QueryRequest`), scoped to the caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from processor.query.errors import QueryError
from processor.query.facets import MAX_FACETS, facets
from processor.query.filter import compile_filter
from processor.query.selectors import compile_selector
from processor.query.service import MAX_LIMIT, QueryRequest, run_query
from processor.query.tables import ACTIVITIES, AUDIT_LOGS, K8S_EVENTS, Table
from processor.query.timeparse import NS, format_rfc3339, parse_time
from processor.query.tokenkeys import TokenKeys
from processor.serve.identity import Caller, Scope
from processor.serve.status import (
    API_VERSION,
    ApiError,
    Cause,
    bad_value,
    cause_of,
    invalid,
    required,
)
from processor.serve.store import Store
from processor.sink.base import SinkError

STORE_FAILED = "Failed to execute query. Please try again later or contact support for help."
FACETS_FAILED = "Failed to retrieve facets. Please try again later or contact support for help."


@dataclass
class Context:
    """What the handlers share: the store, the token keys and the limits."""

    store: Store
    keys: TokenKeys
    max_window_ns: int


def scoped(request: QueryRequest, scope: Scope) -> QueryRequest:
    """``request`` limited to the caller's scope (docs/design.md#storage-query-5).

    Organization/Project: the table's tenant columns; User: the actor's / user's uid (events,
    which have no user: the tenant columns with type ``User``). Platform: unchanged.
    """
    if scope.platform:
        return request
    if scope.type == "User" and request.table.uid_column:
        return replace(request, user_uid=scope.name)
    return replace(request, tenant_type=scope.type, tenant_name=scope.name)


def rfc3339(ns: int) -> str:
    """An effective time: whole seconds as upstream prints them, else with nanoseconds."""
    return format_rfc3339(ns, 0 if ns % NS == 0 else 9)


# --- validation --------------------------------------------------------------------------------


def _text(spec: Mapping[str, Any], key: str, causes: list[Cause]) -> str:
    value = spec.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        causes.append(bad_value(f"spec.{key}", value, "must be a string"))
        return ""
    return value


def check_times(
    spec: Mapping[str, Any],
    start_key: str,
    end_key: str,
    max_window_ns: int,
    now_ns: int,
    causes: list[Cause],
    *,
    prefix: str = "spec",
    must: bool = True,
) -> tuple[str, str]:
    """Check a start/end pair; append a cause per problem; return the texts (defaults applied)."""
    values: dict[str, str] = {}
    parsed: dict[str, int] = {}
    for key, noun in ((start_key, "a start time"), (end_key, "an end time")):
        field = f"{prefix}.{key}"
        value = spec.get(key)
        if value in (None, ""):
            if must:
                causes.append(required(field, f"must specify {noun}"))
                continue
            value = f"now-{max_window_ns // NS}s" if key == start_key else "now"
        if not isinstance(value, str):
            causes.append(bad_value(field, value, "must be a string"))
            continue
        try:
            parsed[key] = parse_time(value, now_ns)
        except QueryError as exc:
            causes.append(bad_value(field, value, str(exc)))
        values[key] = value
    if len(parsed) == 2:
        start, end = parsed[start_key], parsed[end_key]
        if end <= start:
            field = f"{prefix}.{end_key}"
            causes.append(bad_value(field, values[end_key], f"{end_key} must be after {start_key}"))
        elif end - start > max_window_ns:
            from processor.query.timeparse import format_duration

            causes.append(
                Cause(
                    prefix,
                    f"Invalid value: time range of {format_duration(end - start)} exceeds the "
                    f"maximum of {format_duration(max_window_ns)}; reduce the time range or split "
                    "the query",
                )
            )
    return values.get(start_key, ""), values.get(end_key, "")


def check_limit(spec: Mapping[str, Any], causes: list[Cause]) -> int:
    value = spec.get("limit", 0)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        causes.append(bad_value("spec.limit", value, "must be an integer"))
        return 0
    if value < 0:
        causes.append(bad_value("spec.limit", value, "limit must be non-negative"))
    elif value > MAX_LIMIT:
        causes.append(
            bad_value(
                "spec.limit",
                value,
                f"limit of {value} exceeds maximum of {MAX_LIMIT}. Set limit to {MAX_LIMIT} or "
                "less",
            )
        )
    return value if 0 <= value <= MAX_LIMIT else 0


def _check_filter(text: str, table: Table, field: str, causes: list[Cause]) -> None:
    try:
        compile_filter(text, table)
    except QueryError as exc:
        causes.append(bad_value(field, text, str(exc)))


def _check_selector(text: str, table: Table, field: str, causes: list[Cause]) -> None:
    try:
        compile_selector(text, table)
    except QueryError as exc:
        causes.append(bad_value(field, text, str(exc)))


# --- list queries ------------------------------------------------------------------------------


def _list_request(
    table: Table, spec: Mapping[str, Any], ctx: Context, now: int, causes: list[Cause]
) -> QueryRequest:
    max_window = ctx.max_window_ns if table is not K8S_EVENTS else K8S_EVENTS.max_window_ns
    start, end = check_times(spec, "startTime", "endTime", max_window, now, causes)
    limit = check_limit(spec, causes)
    flt = _text(spec, "filter", causes) if table is not K8S_EVENTS else ""
    if flt:
        _check_filter(flt, table, "spec.filter", causes)
    selector = _text(spec, "fieldSelector", causes) if table is K8S_EVENTS else ""
    if selector:
        _check_selector(selector, table, "spec.fieldSelector", causes)
    return QueryRequest(
        table,
        filter=flt,
        selector=selector,
        search=_text(spec, "search", causes) if table is ACTIVITIES else "",
        start=start,
        end=end,
        limit=limit,
        continue_token=_text(spec, "continue", causes),
        namespace=_text(spec, "namespace", causes) if table is K8S_EVENTS else "",
        max_window_ns=max_window,
    )


def event_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """An EventQuery result: the Event wrapped with a copy of its metadata."""
    meta = event.get("metadata")
    return {
        "apiVersion": API_VERSION,
        "kind": "EventRecord",
        "metadata": dict(meta) if isinstance(meta, Mapping) else {},
        "event": dict(event),
    }


def _spec_and_name(obj: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
    """The spec and name of a created query resource (422 when the spec is not an object)."""
    spec = obj.get("spec") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    if not isinstance(spec, dict):
        raise invalid(kind, name, [Cause("spec", "Invalid value: spec must be an object")])
    return spec, name


def list_query(table: Table, kind: str) -> Handler:
    """The handler of a list query resource over ``table``."""

    async def handle(obj: dict[str, Any], caller: Caller, ctx: Context) -> dict[str, Any]:
        spec, name = _spec_and_name(obj, kind)
        now = time.time_ns()
        causes: list[Cause] = []
        request = _list_request(table, spec, ctx, now, causes)
        if causes:
            raise invalid(kind, name, causes)
        request = scoped(request, caller.scope)
        try:
            page = await ctx.store.run(run_query, request, now, keys=ctx.keys)
        except QueryError as exc:
            values = {f"spec.{k}": v for k, v in spec.items()}
            where = "spec.filter" if table is not K8S_EVENTS else "spec.fieldSelector"
            field_of = {"filter": where}
            raise invalid(kind, name, [cause_of(exc, field_of, values)]) from None
        except SinkError as exc:
            raise ApiError(503, STORE_FAILED) from exc
        items = page.items if table is not K8S_EVENTS else [event_record(e) for e in page.items]
        return {
            "results": items,
            "continue": page.continue_token,
            "effectiveStartTime": rfc3339(page.start_ns),
            "effectiveEndTime": rfc3339(page.end_ns),
        }

    return handle


# --- facets ------------------------------------------------------------------------------------


def facet_query(table: Table, kind: str) -> Handler:
    """The handler of a facet query resource over ``table``."""

    async def handle(obj: dict[str, Any], caller: Caller, ctx: Context) -> dict[str, Any]:
        spec, name = _spec_and_name(obj, kind)
        now = time.time_ns()
        causes: list[Cause] = []
        window = spec.get("timeRange") or {}
        if not isinstance(window, dict):
            causes.append(bad_value("spec.timeRange", window, "must be an object"))
            window = {}
        max_window = ctx.max_window_ns if table is not K8S_EVENTS else K8S_EVENTS.max_window_ns
        start, end = check_times(
            window, "start", "end", max_window, now, causes, prefix="spec.timeRange", must=False
        )
        flt = _text(spec, "filter", causes) if table is not K8S_EVENTS else ""
        if flt:
            _check_filter(flt, table, "spec.filter", causes)
        wanted = _facet_fields(spec.get("facets"), table, causes)
        if causes:
            raise invalid(kind, name, causes)
        request = scoped(
            QueryRequest(table, filter=flt, start=start, end=end, max_window_ns=max_window),
            caller.scope,
        )
        out = []
        try:
            for field, limit in wanted:
                result = await ctx.store.run(facets, request, [field], limit, now)
                values = [{"value": v, "count": c} for v, c in result[0].values]
                out.append({"field": field, "values": values})
        except QueryError as exc:
            raise invalid(kind, name, [Cause("spec", f"Invalid value: {exc}")]) from None
        except SinkError as exc:
            raise ApiError(503, FACETS_FAILED) from exc
        return {"facets": out}

    return handle


def _facet_fields(raw: Any, table: Table, causes: list[Cause]) -> list[tuple[str, int]]:
    if not raw:
        causes.append(required("spec.facets", "provide at least one facet to query"))
        return []
    if not isinstance(raw, list):
        causes.append(bad_value("spec.facets", raw, "must be a list"))
        return []
    if len(raw) > MAX_FACETS:
        causes.append(
            Cause("spec.facets", f"Too many: {len(raw)}: must have at most {MAX_FACETS} items",
                  "FieldValueTooMany")
        )  # fmt: skip
        return []
    out = []
    for i, item in enumerate(raw):
        path = f"spec.facets[{i}]"
        item = item if isinstance(item, dict) else {}
        field, limit = item.get("field"), item.get("limit", 0) or 0
        if not field:
            text = "specify which field to get distinct values for"
            causes.append(required(f"{path}.field", text))
            continue
        if field not in table.facets:
            supported = ", ".join(f'"{f}"' for f in sorted(table.facets))
            text = f'Unsupported value: "{field}": supported values: {supported}'
            causes.append(Cause(f"{path}.field", text, "FieldValueNotSupported"))
            continue
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            causes.append(bad_value(f"{path}.limit", limit, "must be non-negative"))
            continue
        out.append((str(field), limit))
    return out


# --- PolicyPreview -----------------------------------------------------------------------------


async def policy_preview(obj: dict[str, Any], caller: Caller, ctx: Context) -> dict[str, Any]:
    """Preview the policy of a PolicyPreview on its inputs, or on recent stored records
    (``spec.autoFetch``) read in the caller's scope."""
    import orjson

    from processor.errors import PolicyErrors, ProcessorError
    from processor.preview import load_manifest

    name = (obj.get("metadata") or {}).get("name", "")
    body = {k: v for k, v in obj.items() if k != "status"}
    try:
        manifest, policy = load_manifest(orjson.dumps(body).decode())
    except PolicyErrors as exc:
        causes = [
            Cause(e.path or "spec", getattr(e, "message", str(e)) or str(e)) for e in exc.errors
        ]
        raise invalid("PolicyPreview", name, causes) from None
    try:
        out = await ctx.store.run(_run_preview, manifest, policy, caller.scope)
    except QueryError as exc:
        cause = Cause("spec.autoFetch", f"Invalid value: {exc}")
        raise invalid("PolicyPreview", name, [cause]) from None
    except SinkError as exc:
        raise ApiError(503, STORE_FAILED) from exc
    except ProcessorError as exc:
        raise invalid("PolicyPreview", name, [Cause("spec", f"Invalid value: {exc}")]) from None
    status: dict[str, Any] = out.get("status", {})
    return status


def _run_preview(backend: Any, manifest: dict[str, Any], policy: Any, scope: Scope) -> Any:
    from processor import preview

    fetch_scope = _fetch_scope(scope)
    return preview.run_preview(manifest, policy, backend=backend, scope=fetch_scope)


def _fetch_scope(scope: Scope) -> Any:
    """The caller's scope in autoFetch's terms (:mod:`processor.preview_fetch`)."""
    from processor.preview_fetch import Scope as FetchScope

    if scope.platform:
        return FetchScope()
    names = getattr(FetchScope, "__dataclass_fields__", {})
    if scope.type == "User" and "user_uid" in names:
        return FetchScope(user_uid=scope.name)  # type: ignore[call-arg]
    # a User scope without uid support reads the events' and audit logs' scope columns: narrower,
    # never wider than the caller's
    return FetchScope(tenant_type=scope.type, tenant_name=scope.name)


# --- registry ----------------------------------------------------------------------------------

Handler = Callable[[dict[str, Any], Caller, Context], Any]


@dataclass(frozen=True)
class QueryResource:
    """A create-only resource of the group: plural, kind, short names and its handler."""

    plural: str
    kind: str
    short_names: tuple[str, ...]
    handler: Handler


QUERY_RESOURCES = {
    r.plural: r
    for r in (
        QueryResource("auditlogqueries", "AuditLogQuery", ("alq",),
                      list_query(AUDIT_LOGS, "AuditLogQuery")),
        QueryResource("activityqueries", "ActivityQuery", ("aq",),
                      list_query(ACTIVITIES, "ActivityQuery")),
        QueryResource("eventqueries", "EventQuery", ("evq",), list_query(K8S_EVENTS, "EventQuery")),
        QueryResource("auditlogfacetsqueries", "AuditLogFacetsQuery", (),
                      facet_query(AUDIT_LOGS, "AuditLogFacetsQuery")),
        QueryResource("activityfacetqueries", "ActivityFacetQuery", (),
                      facet_query(ACTIVITIES, "ActivityFacetQuery")),
        QueryResource("eventfacetqueries", "EventFacetQuery", (),
                      facet_query(K8S_EVENTS, "EventFacetQuery")),
        QueryResource("policypreviews", "PolicyPreview", ("ppv",), policy_preview),
    )
}  # fmt: skip
