"""The three queryable tables: columns, CEL field sets, facet fields, sort keys.

Every column name that can appear in generated SQL comes from this module (a fixed whitelist);
user text only ever reaches ClickHouse as a typed parameter. The CEL field sets are upstream's
(docs/design.md#storage-query-4-2, #storage-query-4-3) plus a few documented extensions (marked
``ext``); the facet fields are upstream's (#storage-query-3-5); the event field-selector keys are
upstream's (#storage-query-3-3).

``sort_key`` is the table's full ORDER BY key without the hour bucket: unique per stored row
once ReplacingMergeTree duplicates are collapsed, so keyset pagination on it never skips or
repeats a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from processor.query.timeparse import EVENTS_MAX_WINDOW_NS

Kind = Literal["string", "int", "time", "uuid"]


@dataclass(frozen=True)
class Column:
    """A ClickHouse column: name, value kind, SQL type and the JSON path it is read from.

    ``path`` is the key path in the stored JSON document (the MATERIALIZED expression), used to
    evaluate filters client-side (``activity watch``) with the same meaning as in SQL.
    """

    name: str
    kind: Kind
    sql_type: str
    path: tuple[str, ...]


def _s(name: str, *path: str) -> Column:
    return Column(name, "string", "String", path)


@dataclass(frozen=True)
class Table:
    """One queryable table.

    Attributes:
        name: the table name in the ``audit`` database.
        noun: what its rows are, for messages.
        json_column: the column holding the whole JSON document.
        time_column: the column the time window applies to.
        sort_key: the full ORDER BY key without the hour bucket (unique per row).
        fields: CEL field path -> column.
        facets: facet field -> column.
        selectors: event field-selector key -> column (events only).
        max_window_ns: the longest allowed time window.
        tenant_columns: (type column, name column) of the tenant scope.
        actor_column: the column ``--actor`` applies to ("" = not supported).
        uid_column: the user-uid column a ``User`` tenancy scope applies to (activities: the
            actor's, audit logs: the user's; "" = the tenant columns; design.md#storage-query-5).
        version_column: the ReplacingMergeTree version column ("" = none; equal rows).
    """

    name: str
    noun: str
    json_column: str
    time_column: str
    sort_key: tuple[Column, ...]
    fields: MappingProxyType[str, Column]
    facets: MappingProxyType[str, Column]
    tenant_columns: tuple[str, str]
    actor_column: str = ""
    uid_column: str = ""
    version_column: str = ""
    selectors: MappingProxyType[str, Column] = field(default_factory=lambda: MappingProxyType({}))
    max_window_ns: int = 30 * 86400 * 1_000_000_000

    def field_list(self) -> str:
        """The CEL fields, comma separated, for error messages."""
        return ", ".join(self.fields)


_A_TIME = Column("timestamp", "time", "DateTime64(3)", ("metadata", "creationTimestamp"))
_A = {
    "change_source": _s("change_source", "spec", "changeSource"),
    "summary": _s("summary", "spec", "summary"),
    "actor_name": _s("actor_name", "spec", "actor", "name"),
    "actor_type": _s("actor_type", "spec", "actor", "type"),
    "actor_uid": _s("actor_uid", "spec", "actor", "uid"),
    "api_group": _s("api_group", "spec", "resource", "apiGroup"),
    "resource_kind": _s("resource_kind", "spec", "resource", "kind"),
    "resource_name": _s("resource_name", "spec", "resource", "name"),
    "resource_namespace": _s("resource_namespace", "spec", "resource", "namespace"),
    "resource_uid": _s("resource_uid", "spec", "resource", "uid"),
    "origin_type": _s("origin_type", "spec", "origin", "type"),
    "origin_id": _s("origin_id", "spec", "origin", "id"),
    "tenant_type": _s("tenant_type", "spec", "tenant", "type"),
    "tenant_name": _s("tenant_name", "spec", "tenant", "name"),
    "activity_namespace": _s("activity_namespace", "metadata", "namespace"),
    "activity_name": _s("activity_name", "metadata", "name"),
}

ACTIVITIES = Table(
    name="activities",
    noun="activities",
    json_column="activity_json",
    time_column="timestamp",
    sort_key=(_A_TIME, _A["tenant_type"], _A["tenant_name"], _A["origin_id"]),
    fields=MappingProxyType(
        {
            "spec.changeSource": _A["change_source"],
            "spec.summary": _A["summary"],
            "spec.actor.name": _A["actor_name"],
            "spec.actor.type": _A["actor_type"],
            "spec.actor.uid": _A["actor_uid"],
            "spec.resource.apiGroup": _A["api_group"],
            "spec.resource.kind": _A["resource_kind"],
            "spec.resource.name": _A["resource_name"],
            "spec.resource.namespace": _A["resource_namespace"],
            "spec.resource.uid": _A["resource_uid"],
            "spec.origin.type": _A["origin_type"],
            "metadata.namespace": _A["activity_namespace"],
            "metadata.name": _A["activity_name"],
            # ext: not in upstream's environment
            "spec.origin.id": _A["origin_id"],
            "spec.tenant.type": _A["tenant_type"],
            "spec.tenant.name": _A["tenant_name"],
            "metadata.creationTimestamp": _A_TIME,
        }
    ),
    facets=MappingProxyType(
        {
            "spec.actor.name": _A["actor_name"],
            "spec.actor.type": _A["actor_type"],
            "spec.resource.apiGroup": _A["api_group"],
            "spec.resource.kind": _A["resource_kind"],
            "spec.resource.namespace": _A["resource_namespace"],
            "spec.changeSource": _A["change_source"],
        }
    ),
    tenant_columns=("tenant_type", "tenant_name"),
    actor_column="actor_name",
    uid_column="actor_uid",
    version_column="reindex_version",
)

_L_TIME = Column("timestamp", "time", "DateTime64(3)", ("requestReceivedTimestamp",))
_L = {
    "scope_type": _s("scope_type", "annotations", "platform.miloapis.com/scope.type"),
    "scope_name": _s("scope_name", "annotations", "platform.miloapis.com/scope.name"),
    "user": _s("user", "user", "username"),
    "user_uid": _s("user_uid", "user", "uid"),
    "audit_id": Column("audit_id", "uuid", "UUID", ("auditID",)),
    "verb": _s("verb", "verb"),
    "api_group": _s("api_group", "objectRef", "apiGroup"),
    "resource": _s("resource", "objectRef", "resource"),
    "namespace": _s("namespace", "objectRef", "namespace"),
    "resource_name": _s("resource_name", "objectRef", "name"),
    "status_code": Column("status_code", "int", "UInt16", ("responseStatus", "code")),
}

AUDIT_LOGS = Table(
    name="audit_logs",
    noun="audit events",
    json_column="event_json",
    time_column="timestamp",
    sort_key=(_L_TIME, _L["scope_type"], _L["scope_name"], _L["user"], _L["audit_id"]),
    fields=MappingProxyType(
        {
            "auditID": _L["audit_id"],
            "verb": _L["verb"],
            "requestReceivedTimestamp": _L_TIME,
            "objectRef.namespace": _L["namespace"],
            "objectRef.resource": _L["resource"],
            "objectRef.name": _L["resource_name"],
            "objectRef.apiGroup": _L["api_group"],
            "user.username": _L["user"],
            "user.uid": _L["user_uid"],
            "responseStatus.code": _L["status_code"],
        }
    ),
    facets=MappingProxyType(
        {
            "verb": _L["verb"],
            "user.username": _L["user"],
            "user.uid": _L["user_uid"],
            "responseStatus.code": _L["status_code"],
            "objectRef.namespace": _L["namespace"],
            "objectRef.resource": _L["resource"],
            "objectRef.apiGroup": _L["api_group"],
        }
    ),
    tenant_columns=("scope_type", "scope_name"),
    actor_column="user",
    uid_column="user_uid",
)

_E_TIME = Column("last_timestamp", "time", "DateTime64(3)", ("series", "lastObservedTime"))
_E = {
    "scope_type": _s("scope_type", "metadata", "annotations", "platform.miloapis.com/scope.type"),
    "scope_name": _s("scope_name", "metadata", "annotations", "platform.miloapis.com/scope.name"),
    "namespace": _s("namespace", "metadata", "namespace"),
    "name": _s("name", "metadata", "name"),
    "uid": _s("uid", "metadata", "uid"),
    "regarding_api_group": _s("regarding_api_group", "regarding", "apiVersion"),
    "regarding_api_version": _s("regarding_api_version", "regarding", "apiVersion"),
    "regarding_kind": _s("regarding_kind", "regarding", "kind"),
    "regarding_namespace": _s("regarding_namespace", "regarding", "namespace"),
    "regarding_name": _s("regarding_name", "regarding", "name"),
    "regarding_uid": _s("regarding_uid", "regarding", "uid"),
    "regarding_field_path": _s("regarding_field_path", "regarding", "fieldPath"),
    "related_api_version": _s("related_api_version", "related", "apiVersion"),
    "related_kind": _s("related_kind", "related", "kind"),
    "related_namespace": _s("related_namespace", "related", "namespace"),
    "related_name": _s("related_name", "related", "name"),
    "reason": _s("reason", "reason"),
    "type": _s("type", "type"),
    "action": _s("action", "action"),
    "source_component": _s("source_component", "reportingController"),
    "source_host": _s("source_host", "reportingInstance"),
}


def _selectors() -> dict[str, Column]:
    keys = {
        "metadata.namespace": "namespace",
        "namespace": "namespace",
        "metadata.name": "name",
        "name": "name",
        "metadata.uid": "uid",
        "uid": "uid",
        "reason": "reason",
        "type": "type",
        "source.component": "source_component",
        "reportingComponent": "source_component",
        "source.host": "source_host",
        "reportingInstance": "source_host",
    }
    for part in ("apiVersion", "kind", "namespace", "name", "uid", "fieldPath"):
        keys[f"regarding.{part}"] = "regarding_" + _snake(part)
    for part in ("apiVersion", "kind", "namespace", "name"):
        keys[f"related.{part}"] = "related_" + _snake(part)
    return {key: _E[col] for key, col in keys.items()}


def _snake(name: str) -> str:
    return {"apiVersion": "api_version", "fieldPath": "field_path"}.get(name, name)


_SELECTORS = _selectors()

K8S_EVENTS = Table(
    name="k8s_events",
    noun="events",
    json_column="event_json",
    time_column="last_timestamp",
    sort_key=(
        _E_TIME,
        _E["scope_type"],
        _E["scope_name"],
        _E["regarding_api_group"],
        _E["regarding_kind"],
        _E["type"],
        _E["uid"],
    ),
    fields=MappingProxyType(  # ext: upstream has field selectors only
        {
            key: col
            for key, col in _SELECTORS.items()
            if "." in key and not key.startswith("source.")
        }
        | {"reason": _E["reason"], "type": _E["type"], "action": _E["action"]}
        | {
            "reportingController": _E["source_component"],
            "reportingInstance": _E["source_host"],
        }
    ),
    facets=MappingProxyType(
        {
            "regarding.kind": _E["regarding_kind"],
            "regarding.namespace": _E["regarding_namespace"],
            "related.kind": _E["related_kind"],
            "related.namespace": _E["related_namespace"],
            "reason": _E["reason"],
            "type": _E["type"],
            "source.component": _E["source_component"],
            "namespace": _E["namespace"],
        }
    ),
    selectors=MappingProxyType(_SELECTORS),
    tenant_columns=("scope_type", "scope_name"),
    max_window_ns=EVENTS_MAX_WINDOW_NS,
    version_column="inserted_at",
)

TABLES = {t.name: t for t in (ACTIVITIES, AUDIT_LOGS, K8S_EVENTS)}
