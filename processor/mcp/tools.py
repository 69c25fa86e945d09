"""The MCP tools over the store: upstream's ``activity mcp`` tools (docs/mcp.md), each a plain
function of a backend and the tool's arguments returning JSON data.

Every query goes through the query layer the CLI uses (:mod:`processor.query.service`,
:mod:`processor.query.facets`). Arguments that narrow a query become CEL through
:mod:`processor.query.celtext` (quoted literals, fixed field paths), never by pasting a value
into the expression. Upstream ignores several arguments (``query_activities``' filters,
``get_resource_history``'s UID, ``get_user_activity_summary``'s user, the timeline's and
summary's ``changeSource``); here every argument narrows the query it names.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from processor.query import celtext
from processor.query.errors import QueryError
from processor.query.facets import facets
from processor.query.service import Backend, QueryRequest, run_query
from processor.query.tables import ACTIVITIES, AUDIT_LOGS, K8S_EVENTS, Table
from processor.query.timeparse import format_rfc3339

#: The most rows a summarising tool reads (upstream's 1000-row queries).
SUMMARY_ROWS = 1000


@dataclass(frozen=True)
class Store:
    """The backend and the tenant every tool reads ("" type: every tenant)."""

    backend: Backend
    tenant_type: str = ""
    tenant_name: str = ""

    def request(self, table: Table, **kw: Any) -> QueryRequest:
        return QueryRequest(table, tenant_type=self.tenant_type, tenant_name=self.tenant_name, **kw)

    def page(self, request: QueryRequest) -> dict[str, Any]:
        page = run_query(self.backend, request)
        return {
            "count": len(page.items),
            "continue": page.continue_token,
            "effectiveStartTime": format_rfc3339(page.start_ns, 3),
            "effectiveEndTime": format_rfc3339(page.end_ns, 3),
            "items": page.items,
        }

    def facet_map(self, request: QueryRequest, fields: list[str], limit: int) -> dict[str, Any]:
        found = facets(self.backend, request, list(fields), limit)
        return {f.field: [{"value": v, "count": c} for v, c in f.values] for f in found}


def _terms(table: Table, pairs: list[tuple[str, str | None]]) -> str:
    """``path == "value"`` for each pair with a value, ANDed."""
    return celtext.all_of(celtext.equals(table, path, v) for path, v in pairs if v)


def _and(*parts: str) -> str:
    return celtext.all_of(parts)


# --- audit logs ---


def query_audit_logs(
    store: Store, startTime: str, endTime: str, filter: str = "", limit: int = 100,
    continueToken: str = "",
) -> dict[str, Any]:  # fmt: skip
    request = store.request(
        AUDIT_LOGS, filter=filter, start=startTime, end=endTime, limit=limit,
        continue_token=continueToken,
    )  # fmt: skip
    out = store.page(request)
    out["events"] = out.pop("items")
    return out


def get_audit_log_facets(
    store: Store, fields: list[str], startTime: str = "now-7d", endTime: str = "now",
    filter: str = "", limit: int = 20,
) -> dict[str, Any]:  # fmt: skip
    request = store.request(AUDIT_LOGS, filter=filter, start=startTime, end=endTime)
    return store.facet_map(request, fields, limit)


def find_failed_operations(
    store: Store, startTime: str, endTime: str = "now", statusCodeMin: int = 400,
    statusCodeMax: int = 599, username: str = "", resource: str = "", verb: str = "",
    limit: int = 100,
) -> dict[str, Any]:  # fmt: skip
    code = celtext.field_path(AUDIT_LOGS, "responseStatus.code")
    text = _and(
        f"{code} >= {celtext.cel_int(statusCodeMin)}",
        f"{code} <= {celtext.cel_int(statusCodeMax)}",
        _terms(
            AUDIT_LOGS,
            [("user.username", username), ("objectRef.resource", resource), ("verb", verb)],
        ),
    )
    page = store.page(
        store.request(AUDIT_LOGS, filter=text, start=startTime, end=endTime, limit=limit)
    )
    failures = [_failure(e) for e in page["items"]]
    by_code = Counter(str(f["statusCode"]) for f in failures)
    return {"count": len(failures), "byStatusCode": dict(by_code), "failures": failures}


def _failure(event: dict[str, Any]) -> dict[str, Any]:
    ref = event.get("objectRef") or {}
    status = event.get("responseStatus") or {}
    out = {
        "timestamp": event.get("requestReceivedTimestamp", ""),
        "user": (event.get("user") or {}).get("username", ""),
        "verb": event.get("verb", ""),
        "resource": ref.get("resource", ""),
        "name": ref.get("name", ""),
        "namespace": ref.get("namespace", ""),
        "statusCode": status.get("code", 0),
    }
    if status.get("message"):
        out["message"] = status["message"]
    return out


# --- activities ---


def condensed(activity: dict[str, Any]) -> dict[str, Any]:
    """An activity in upstream's condensed tool form."""
    spec = activity.get("spec") or {}
    actor = spec.get("actor") or {}
    res = spec.get("resource") or {}
    return {
        "name": (activity.get("metadata") or {}).get("name", ""),
        "summary": spec.get("summary", ""),
        "changeSource": spec.get("changeSource", ""),
        "actor": {"type": actor.get("type", ""), "name": actor.get("name", "")},
        "resource": {k: res.get(k, "") for k in ("apiGroup", "kind", "name", "namespace", "uid")},
        "timestamp": (activity.get("metadata") or {}).get("creationTimestamp", ""),
    }


def _activity_filter(
    changeSource: str = "", actorName: str = "", resourceKind: str = "", apiGroup: str = ""
) -> str:
    return _terms(
        ACTIVITIES,
        [
            ("spec.changeSource", changeSource),
            ("spec.actor.name", actorName),
            ("spec.resource.kind", resourceKind),
            ("spec.resource.apiGroup", apiGroup),
        ],
    )


def query_activities(
    store: Store, startTime: str, endTime: str = "now", changeSource: str = "",
    actorName: str = "", resourceKind: str = "", apiGroup: str = "", search: str = "",
    filter: str = "", limit: int = 100, continueToken: str = "",
) -> dict[str, Any]:  # fmt: skip
    text = _and(_activity_filter(changeSource, actorName, resourceKind, apiGroup), filter)
    request = store.request(
        ACTIVITIES, filter=text, search=search, start=startTime, end=endTime, limit=limit,
        continue_token=continueToken,
    )  # fmt: skip
    out = store.page(request)
    out["activities"] = [condensed(a) for a in out.pop("items")]
    return out


def get_activity_facets(
    store: Store, fields: list[str], startTime: str = "now-7d", endTime: str = "now",
    filter: str = "", limit: int = 20,
) -> dict[str, Any]:  # fmt: skip
    request = store.request(ACTIVITIES, filter=filter, start=startTime, end=endTime)
    return store.facet_map(request, fields, limit)


def get_resource_history(
    store: Store, resourceUID: str = "", apiGroup: str = "", kind: str = "", name: str = "",
    namespace: str = "", startTime: str = "now-30d", endTime: str = "now", limit: int = 100,
) -> dict[str, Any]:  # fmt: skip
    if not (resourceUID or name):
        raise QueryError("give resourceUID or name (with kind, apiGroup, namespace to narrow it)")
    text = _terms(
        ACTIVITIES,
        [
            ("spec.resource.uid", resourceUID),
            ("spec.resource.apiGroup", apiGroup),
            ("spec.resource.kind", kind),
            ("spec.resource.name", name),
            ("spec.resource.namespace", namespace),
        ],
    )
    request = store.request(ACTIVITIES, filter=text, start=startTime, end=endTime, limit=limit)
    out = store.page(request)
    out["activities"] = [condensed(a) for a in reversed(out.pop("items"))]  # oldest first
    return out


def _sample(store: Store, request: QueryRequest) -> tuple[list[dict[str, Any]], bool]:
    """Up to :data:`SUMMARY_ROWS` activities, newest first, and whether there were more."""
    page = run_query(store.backend, replace(request, limit=SUMMARY_ROWS))
    return page.items, bool(page.continue_token)


def get_user_activity_summary(
    store: Store, username: str, startTime: str = "now-7d", endTime: str = "now",
    includeDetails: bool = False,
) -> dict[str, Any]:  # fmt: skip
    if not username:
        raise QueryError("username is required")
    request = store.request(ACTIVITIES, actor=username, start=startTime, end=endTime)
    items, more = _sample(store, request)
    out: dict[str, Any] = {
        "username": username,
        "totalActivities": len(items),
        "truncated": more,
        "byChangeSource": dict(Counter(_spec(a, "changeSource") for a in items)),
        "byResourceKind": dict(Counter(_resource(a, "kind") for a in items)),
        "byDay": dict(sorted(Counter(_bucket(a, "day") for a in items).items())),
    }
    if includeDetails:
        out["activities"] = [condensed(a) for a in items[:50]]
    return out


def _spec(activity: dict[str, Any], key: str) -> str:
    return str((activity.get("spec") or {}).get(key, ""))


def _resource(activity: dict[str, Any], key: str) -> str:
    return str(((activity.get("spec") or {}).get("resource") or {}).get(key, ""))


def _bucket(activity: dict[str, Any], size: str) -> str:
    ts = str((activity.get("metadata") or {}).get("creationTimestamp", ""))
    return ts[:10] if size == "day" else ts[:13] + ":00:00Z"


def get_activity_timeline(
    store: Store, startTime: str, endTime: str = "now", bucketSize: str = "hour",
    changeSource: str = "",
) -> dict[str, Any]:  # fmt: skip
    if bucketSize not in ("hour", "day"):
        raise QueryError('bucketSize must be "hour" or "day"')
    request = store.request(
        ACTIVITIES, filter=_activity_filter(changeSource), start=startTime, end=endTime
    )
    items, more = _sample(store, request)
    buckets = sorted(Counter(_bucket(a, bucketSize) for a in items).items())
    peak = max(buckets, key=lambda b: b[1]) if buckets else ("", 0)
    return {
        "bucketSize": bucketSize,
        "totalActivities": len(items),
        "truncated": more,
        "buckets": [{"time": t, "count": n} for t, n in buckets],
        "peak": {"time": peak[0], "count": peak[1]},
        "averagePerBucket": round(len(items) / len(buckets), 2) if buckets else 0,
    }


def summarize_recent_activity(
    store: Store, startTime: str, endTime: str = "now", changeSource: str = "", topN: int = 5,
) -> dict[str, Any]:  # fmt: skip
    text = _activity_filter(changeSource)
    request = store.request(ACTIVITIES, filter=text, start=startTime, end=endTime, limit=10)
    counts = store.facet_map(
        request, ["spec.changeSource", "spec.actor.name", "spec.resource.kind"], max(topN, 1)
    )
    total = sum(v["count"] for v in counts["spec.changeSource"])
    recent = run_query(store.backend, request).items
    return {
        "totalActivities": total,
        "byChangeSource": {v["value"]: v["count"] for v in counts["spec.changeSource"]},
        "topActors": counts["spec.actor.name"][:topN],
        "topResourceKinds": counts["spec.resource.kind"][:topN],
        "highlights": [_spec(a, "summary") for a in recent],
    }


def compare_activity_periods(
    store: Store, baselineStart: str, baselineEnd: str, comparisonStart: str,
    comparisonEnd: str,
) -> dict[str, Any]:  # fmt: skip
    fields = ["spec.changeSource", "spec.actor.name", "spec.resource.kind"]
    periods = []
    for start, end in ((baselineStart, baselineEnd), (comparisonStart, comparisonEnd)):
        counts = store.facet_map(store.request(ACTIVITIES, start=start, end=end), fields, 100)
        periods.append({f: {v["value"]: v["count"] for v in counts[f]} for f in fields})
    base, comp = periods
    before = sum(base["spec.changeSource"].values())
    after = sum(comp["spec.changeSource"].values())
    kinds = set(base["spec.resource.kind"]) | set(comp["spec.resource.kind"])
    delta = {k: comp["spec.resource.kind"].get(k, 0) - base["spec.resource.kind"].get(k, 0)
             for k in sorted(kinds)}  # fmt: skip
    return {
        "baseline": {"total": before, "byChangeSource": base["spec.changeSource"]},
        "comparison": {"total": after, "byChangeSource": comp["spec.changeSource"]},
        "changePercent": round((after - before) * 100 / before, 1) if before else None,
        "newActors": sorted(set(comp["spec.actor.name"]) - set(base["spec.actor.name"])),
        "increasedKinds": {k: d for k, d in delta.items() if d > 0},
        "decreasedKinds": {k: d for k, d in delta.items() if d < 0},
    }


# --- events ---


def condensed_event(event: dict[str, Any]) -> dict[str, Any]:
    """An Event in upstream's condensed tool form (``count``: series.count, else 1)."""
    meta = event.get("metadata") or {}
    about = event.get("regarding") or event.get("involvedObject") or {}
    series = event.get("series") or {}
    return {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "type": event.get("type", ""),
        "reason": event.get("reason", ""),
        "message": event.get("note") or event.get("message") or "",
        "regarding": {k: about.get(k, "") for k in ("kind", "name", "namespace")},
        "source": event.get("reportingController")
        or (event.get("source") or {}).get("component", ""),
        "count": series.get("count") or event.get("count") or 1,
        "timestamp": series.get("lastObservedTime")
        or event.get("eventTime")
        or event.get("lastTimestamp")
        or event.get("deprecatedLastTimestamp")
        or "",
    }


def query_events(
    store: Store, startTime: str, endTime: str = "now", namespace: str = "",
    regardingKind: str = "", regardingName: str = "", reason: str = "", type: str = "",
    sourceComponent: str = "", limit: int = 100, continueToken: str = "",
) -> dict[str, Any]:  # fmt: skip
    text = _terms(
        K8S_EVENTS,
        [
            ("regarding.kind", regardingKind),
            ("regarding.name", regardingName),
            ("reason", reason),
            ("type", type),
            ("reportingController", sourceComponent),
        ],
    )
    request = store.request(
        K8S_EVENTS, filter=text, namespace=namespace, start=startTime, end=endTime, limit=limit,
        continue_token=continueToken,
    )  # fmt: skip
    out = store.page(request)
    out["events"] = [condensed_event(e) for e in out.pop("items")]
    return out


def get_event_facets(
    store: Store, fields: list[str], startTime: str = "now-7d", endTime: str = "now",
    limit: int = 20,
) -> dict[str, Any]:  # fmt: skip
    request = store.request(K8S_EVENTS, start=startTime, end=endTime)
    return store.facet_map(request, fields, limit)


# --- policies ---


def preview_activity_policy(
    store: Store, policy: dict[str, Any], inputs: list[dict[str, Any]] | None = None,
    autoFetch: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    import orjson

    from processor.preview import API_VERSION, KIND, load_manifest, run_preview
    from processor.preview_fetch import Scope

    spec: dict[str, Any] = {"policy": policy}
    if inputs:
        spec["inputs"] = [_input(item) for item in inputs]
    if autoFetch is not None:
        spec["autoFetch"] = autoFetch
    doc = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "mcp"}, "spec": spec}
    manifest, loaded = load_manifest(orjson.dumps(doc).decode())
    scope = Scope(store.tenant_type, store.tenant_name)
    status = run_preview(manifest, loaded, backend=store.backend, scope=scope)["status"]
    return {k: status[k] for k in ("results", "activities", "fetchedInputs") if k in status}


def _input(item: Any) -> Any:
    """A preview input: ``{type, audit|event}`` as given, a raw audit event or Event wrapped."""
    from processor.records import classify_record

    if (
        isinstance(item, dict)
        and item.get("type") in ("audit", "event")
        and (item.get("audit") is not None or item.get("event") is not None)
    ):
        return item
    kind = classify_record(item)
    if kind in ("audit", "event"):
        return {"type": kind, kind: item}
    return item  # validation says what is missing
