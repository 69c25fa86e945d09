"""``list`` and ``get`` of Activities and Events, as kubectl calls them.

Activities (``/apis/activity.miloapis.com/v1alpha1[/namespaces/NS]/activities[/NAME]``): a list
reads the last ``--list-window`` (upstream: ``now-1h``), a get the last ``--max-query-window``.
The URL's namespace is ``metadata.namespace``; field selectors are exact matches (``=``, ``==``,
``!=``), AND-ed, on upstream's field labels, and every label upstream accepts is honoured
(upstream silently ignores ``metadata.*``, ``spec.resource.name/namespace`` and
``spec.actor.type/uid``). Events (core ``/api/v1`` and ``events.k8s.io/v1``) read ``k8s_events``
over the last ``--events-list-window`` (upstream: 24 h), with upstream's selector keys (core v1
also takes ``involvedObject.*``). Pages use the signed continue tokens of the query layer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from processor.query.errors import CursorError, QueryError
from processor.query.service import MAX_LIMIT, Page, QueryRequest, run_query
from processor.query.tables import ACTIVITIES, K8S_EVENTS, Table
from processor.serve.identity import Caller
from processor.serve.queries import STORE_FAILED, Context, scoped
from processor.serve.status import ApiError
from processor.sink.base import SinkError

#: upstream's field labels of Activities (all honoured here)
ACTIVITY_SELECTORS = (
    "metadata.name",
    "metadata.namespace",
    "spec.changeSource",
    "spec.resource.apiGroup",
    "spec.resource.kind",
    "spec.resource.name",
    "spec.resource.namespace",
    "spec.resource.uid",
    "spec.actor.name",
    "spec.actor.type",
    "spec.actor.uid",
)
#: Activities with field selectors (the same table; only the selector keys are added)
ACTIVITIES_SELECTABLE = replace(
    ACTIVITIES, selectors=MappingProxyType({k: ACTIVITIES.fields[k] for k in ACTIVITY_SELECTORS})
)
# Kubernetes names: DNS-1123 subdomains (activity names are ``act-<hex>``)
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
DEFAULT_EVENT_LIMIT = 500


@dataclass(frozen=True)
class Listing:
    """What to list: the table, the URL's namespace, the query parameters, the window."""

    table: Table
    namespace: str
    selector: str
    limit: int
    continue_token: str
    window_ns: int


def check_name(value: str, what: str) -> str:
    """A namespace or object name from the URL (400 when it is not a Kubernetes name)."""
    if not _NAME.fullmatch(value):
        raise ApiError(400, f"invalid {what} {value!r}: must be a lowercase RFC 1123 subdomain")
    return value


def parse_limit(raw: str | None, default: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"invalid limit {raw!r}: must be an integer") from None
    if value < 0:
        raise ApiError(400, f"invalid limit {value}: must be non-negative")
    return min(value or default, MAX_LIMIT)


def listing_request(listing: Listing, caller: Caller, ctx: Context) -> QueryRequest:
    """The scoped query of a list."""
    terms = []
    if listing.namespace:
        key = "metadata.namespace"
        terms.append(f"{key}={check_name(listing.namespace, 'namespace')}")
    if listing.selector.strip():
        terms.append(listing.selector)
    seconds = listing.window_ns // 1_000_000_000
    request = QueryRequest(
        listing.table,
        selector=",".join(terms),
        start=f"now-{seconds}s",
        end="now",
        limit=listing.limit,
        continue_token=listing.continue_token,
        max_window_ns=max(listing.window_ns, ctx.max_window_ns),
    )
    return scoped(request, caller.scope)


async def fetch(request: QueryRequest, ctx: Context) -> Page:
    """Run a list's query: 400 for a bad selector, 410 for an expired token, 503 if the store
    failed."""
    try:
        return await ctx.store.run(run_query, request, time.time_ns(), keys=ctx.keys)
    except CursorError as exc:
        code = 410 if "expired" in str(exc) else 400
        raise ApiError(code, str(exc)) from None
    except QueryError as exc:
        raise ApiError(400, str(exc)) from None
    except SinkError as exc:
        raise ApiError(503, STORE_FAILED) from exc


async def get_one(
    table: Table, namespace: str, name: str, caller: Caller, ctx: Context, plural: str, group: str
) -> dict[str, Any]:
    """The newest stored object named ``name`` (in ``namespace``), or 404."""
    selector = f"metadata.name={check_name(name, 'name')}"
    listing = Listing(table, namespace, selector, 1, "", ctx.max_window_ns)
    if table is K8S_EVENTS:
        listing = replace(listing, window_ns=K8S_EVENTS.max_window_ns)
    page = await fetch(listing_request(listing, caller, ctx), ctx)
    if not page.items:
        qualified = f"{plural}.{group}" if group else plural
        raise ApiError(404, f'{qualified} "{name}" not found', kind=plural, name=name, group=group)
    return page.items[0]


def list_object(kind: str, api_version: str, items: list[Any], token: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": ""}
    if token:
        meta["continue"] = token
    return {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": items}


def query_params(query: Mapping[str, str]) -> tuple[str, str]:
    """``fieldSelector`` and ``continue``; a label selector is refused (nothing has labels to
    select on; upstream ignores it silently)."""
    if query.get("labelSelector", "").strip():
        raise ApiError(400, "label selectors are not supported by this resource")
    return query.get("fieldSelector", ""), query.get("continue", "")
