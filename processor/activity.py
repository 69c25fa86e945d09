"""The one Activity builder (docs/design.md#d6): live, preview and replay; audit and events alike.

Shape and field order follow ``docs/design.md#policy-engine-7`` (Go ``encoding/json`` of the
upstream types): top level ``kind, apiVersion, metadata, spec``; metadata ``name, namespace,
creationTimestamp, labels`` (label keys sorted); spec ``summary, changeSource, actor, resource,
links, tenant, origin``. Differences from upstream, all from the project decisions
(``docs/design.md``): ``creationTimestamp`` has millisecond precision (``#d3``), tenant types are
normalised (``#d9``), and events use the full link conversion (A) of ``#policy-engine-3-6`` with a
kind resolver and actor type ``controller`` (``#d6``).

The engine calls :func:`build_audit` / :func:`build_event`: they give a :class:`Built`, the
Activity's JSON bytes (its NATS message and its ClickHouse row) with the fields the pipeline
needs, so nothing downstream parses or re-encodes it. This module is the specification (the dict
builders, encoded by orjson); ``_native/activity.pyx`` (``processor._native.activity``) writes the
same bytes into one buffer with no dicts on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from processor.errors import KindResolveError
from processor.records import timefmt
from processor.records.event import event_actor

__all__ = [
    "ACTIVITY_API_VERSION",
    "Built",
    "activity_name",
    "audit_tenant",
    "build_audit",
    "build_audit_activity",
    "build_event",
    "build_event_activity",
    "change_source",
    "convert_links",
    "encode_activity",
    "event_tenant",
    "normalize_tenant_type",
    "resolve_actor",
]

ACTIVITY_API_VERSION = "activity.miloapis.com/v1alpha1"

LABEL_API_GROUP = "activity.miloapis.com/api-group"
LABEL_CHANGE_SOURCE = "activity.miloapis.com/change-source"
LABEL_EVENT_REASON = "activity.miloapis.com/event-reason"
LABEL_ORIGIN_TYPE = "activity.miloapis.com/origin-type"
LABEL_RESOURCE_KIND = "activity.miloapis.com/resource-kind"

_TENANT_TYPES = {
    "": "platform",
    "platform": "platform",
    "organization": "Organization",
    "project": "Project",
    "user": "User",
}

_EMPTY: dict[str, Any] = {}
_fromisoformat = datetime.fromisoformat

#: A resolver: a :class:`~processor.kinds.KindResolver` or any ``(apiGroup, resource) -> Kind``.
Resolver = Callable[[str, str], str]


def activity_name(origin_type: str, origin_id: str, api_group: str, kind: str) -> str:
    """``act-`` + the first 12 hex digits of sha256(type NUL id NUL apiGroup NUL kind)
    (docs/design.md#policy-engine-7-1).

    ``_native/activity.pyx`` hashes the same bytes with hashlib, written without a str.
    """
    data = f"{origin_type}\x00{origin_id}\x00{api_group}\x00{kind}".encode()
    return "act-" + hashlib.sha256(data).hexdigest()[:12]


# --- actor, change source, tenant ----------------------------------------------------------------


def change_source(username: str) -> str:
    """``system`` for a ``system:`` username, else ``human`` (an empty username is human)."""
    return "system" if username.startswith("system:") else "human"


def resolve_actor(username: str, uid: str = "") -> dict[str, str]:
    """The audit actor (docs/design.md#policy-engine-5-1): ``{type, name, uid?, email?}``.

    ``type`` is ``system`` for ``system:`` usernames (service accounts too), else ``user``;
    ``name`` drops the leading ``system:`` and is ``unknown`` when empty; ``email`` is the
    username when it contains ``@``.
    """
    if username.startswith("system:"):
        actor = {"type": "system", "name": username[7:] or "unknown"}
    else:
        actor = {"type": "user", "name": username or "unknown"}
    if uid:
        actor["uid"] = uid
    if "@" in username:
        actor["email"] = username
    return actor


def normalize_tenant_type(value: str) -> str:
    """docs/design.md#d9: ``organization``/``project``/``user``/``platform`` (any case) and ``""``
    map to ``Organization``/``Project``/``User``/``platform``; any other value is kept."""
    normal = _TENANT_TYPES.get(value)
    if normal is not None:
        return normal
    return _TENANT_TYPES.get(value.lower(), value)


def _first_extra(extra: dict[str, Any], key: str) -> str:
    values = extra.get(key)
    if type(values) is list and values:
        first = values[0]
        if type(first) is str:
            return first
    return ""


def audit_tenant(user: dict[str, Any] | None) -> dict[str, str]:
    """The tenant of an audit record from ``user.extra`` (docs/design.md#policy-engine-6-1), type
    normalised (#d9).

    Precedence: parent-type/parent-name, then ``organization`` when the type is still platform,
    then ``project`` over everything.
    """
    extra = user.get("extra") if type(user) is dict else None
    if type(extra) is not dict or not extra:
        return {"type": "platform", "name": ""}
    tenant_type, name = "platform", ""
    parent_type = _first_extra(extra, "iam.miloapis.com/parent-type")
    if parent_type:
        tenant_type = normalize_tenant_type(parent_type)
    parent_name = _first_extra(extra, "iam.miloapis.com/parent-name")
    if parent_name:
        name = parent_name
    if tenant_type == "platform":
        org = _first_extra(extra, "organization")
        if org:
            tenant_type, name = "Organization", org
    project = _first_extra(extra, "project")
    if project:
        tenant_type, name = "Project", project
    return {"type": tenant_type, "name": name}


def event_tenant(event: dict[str, Any] | None) -> dict[str, str]:
    """The tenant of an event from its scope annotations (docs/design.md#policy-engine-6-2), type
    normalised (#d9)."""
    meta = event.get("metadata") if type(event) is dict else None
    annotations = meta.get("annotations") if type(meta) is dict else None
    if type(annotations) is dict:
        scope: dict = annotations
        scope_type = scope.get("platform.miloapis.com/scope.type")
        if type(scope_type) is str and scope_type:
            name = scope.get("platform.miloapis.com/scope.name")
            return {
                "type": normalize_tenant_type(scope_type),
                "name": name if type(name) is str else "",
            }
    return {"type": "platform", "name": ""}


# --- links ---------------------------------------------------------------------------------------


def _resource(
    api_group: str, api_version: str, kind: str, name: str, namespace: str, uid: str
) -> dict[str, str]:
    """An ActivityResource: apiGroup/namespace/uid omitted when empty (Go ``omitempty``)."""
    out = {"apiGroup": api_group} if api_group else {}
    out["apiVersion"] = api_version
    out["kind"] = kind
    out["name"] = name
    if namespace:
        out["namespace"] = namespace
    if uid:
        out["uid"] = uid
    return out


def convert_links(
    links: Iterable[tuple[str, Any] | dict[str, Any]], resolver: Resolver | Any | None = None
) -> list[dict[str, Any]]:
    """Collected ``link()`` calls -> ActivityLinks, conversion (A) of
    docs/design.md#policy-engine-3-6, for audit and events.

    Args:
        links: ``(marker, resource_map)`` tuples as the CEL evaluator collects them, or
            ``{"marker", "resource"}`` dicts; items whose resource is not a map are skipped.
        resolver: resolves ``(apiGroup, plural resource)`` to a Kind when the map has no
            ``kind`` but a ``resource`` (e.g. an ``objectRef``); None skips that step.

    Raises:
        KindResolveError: the resolver failed; the activity cannot be built.
    """
    out: list[dict[str, Any]] = []
    resolve = None  # looked up at the first link that needs it (a failed getattr is costly)
    for item in links:
        if type(item) is dict:
            marker, res = item.get("marker", ""), item.get("resource")
        else:
            marker, res = item
        if type(res) is not dict:
            continue
        resource: dict = res
        get = resource.get
        kind = get("kind")
        if type(kind) is not str:
            kind = ""
        api_group = get("apiGroup")
        if type(api_group) is not str:
            api_group = ""
        if not kind and resolver is not None:
            plural = get("resource")
            if type(plural) is str and plural:
                if resolve is None:
                    resolve = getattr(resolver, "resolve", resolver)
                try:
                    kind = resolve(api_group, plural)
                except KindResolveError as exc:
                    reason = getattr(exc, "reason", None) or str(exc)
                    raise KindResolveError(
                        "activity build failed: kind resolution failed: "
                        f'resource "{plural}" in apiGroup "{api_group}": {reason}'
                    ) from exc
        if not kind:
            kind = get("type")
            if type(kind) is not str:
                kind = ""
        api_version = get("apiVersion")
        if type(api_version) is not str:
            api_version = ""
        elif not api_group and "/" in api_version:
            api_group, _, api_version = api_version.partition("/")
        meta = get("metadata")
        if type(meta) is not dict:
            meta = _EMPTY
        fallback: dict = meta  # step 4 of docs/design.md#policy-engine-3-6
        name, namespace, uid = get("name"), get("namespace"), get("uid")
        if type(name) is not str or not name:
            name = fallback.get("name")
            if type(name) is not str:
                name = ""
        if type(namespace) is not str or not namespace:
            namespace = fallback.get("namespace")
            if type(namespace) is not str:
                namespace = ""
        if type(uid) is not str or not uid:
            uid = fallback.get("uid")
            if type(uid) is not str:
                uid = ""
        out.append(
            {
                "marker": marker if type(marker) is str else str(marker),
                "resource": _resource(api_group, api_version, kind, name, namespace, uid),
            }
        )
    return out


# --- builders ------------------------------------------------------------------------------------


def _audit_timestamp(value: Any) -> str:
    if type(value) is str and value:
        if len(value) == 27 and value[19] == "." and value[26] == "Z":
            return value[:23] + "Z"
        try:
            return timefmt.millis(value)
        except ValueError:
            pass
    return timefmt.now_millis()


def build_audit_activity(
    audit: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[tuple[str, Any] | dict[str, Any]] = (),
    resolver: Resolver | Any | None = None,
) -> dict[str, Any]:
    """The Activity of a matched audit rule (docs/design.md#policy-engine-7-2; #d3, #d6, #d9).

    Args:
        audit: the decoded audit map (:func:`processor.records.decode_audit`).
        api_group, kind: the matched policy's ``spec.resource``.
        summary: the rendered summary.
        links: the links collected while rendering (see :func:`convert_links`).
        resolver: kind resolver for links that name a plural resource.

    Raises:
        KindResolveError: a link's kind could not be resolved.
    """
    # decode_audit guarantees the types of auditID, user.* and objectRef.* (strings or absent).
    ref: dict = audit.get("objectRef") or _EMPTY
    user: dict = audit.get("user") or _EMPTY
    username = user.get("username", "")
    audit_id = audit.get("auditID", "")
    namespace = ref.get("namespace", "")
    change = "system" if username.startswith("system:") else "human"

    uid = ""
    obj = audit.get("responseObject")
    if type(obj) is dict:
        meta = obj.get("metadata")
        if type(meta) is dict:
            uid = meta.get("uid", "")
            if type(uid) is not str:
                uid = ""

    metadata: dict[str, Any] = {"name": activity_name("audit", audit_id, api_group, kind)}
    if namespace:
        metadata["namespace"] = namespace
    metadata["creationTimestamp"] = _audit_timestamp(audit.get("requestReceivedTimestamp"))
    metadata["labels"] = {  # sorted keys
        LABEL_API_GROUP: api_group,
        LABEL_CHANGE_SOURCE: change,
        LABEL_ORIGIN_TYPE: "audit",
        LABEL_RESOURCE_KIND: kind,
    }
    spec: dict[str, Any] = {
        "summary": summary,
        "changeSource": change,
        "actor": resolve_actor(username, user.get("uid", "")),
        "resource": _resource(
            api_group, ref.get("apiVersion", ""), kind, ref.get("name", ""), namespace, uid
        ),
    }
    if links:
        converted = convert_links(links, resolver)
        if converted:
            spec["links"] = converted
    spec["tenant"] = audit_tenant(user) if "extra" in user else {"type": "platform", "name": ""}
    spec["origin"] = {"type": "audit", "id": audit_id}
    return {
        "kind": "Activity",
        "apiVersion": ACTIVITY_API_VERSION,
        "metadata": metadata,
        "spec": spec,
    }


_EVENT_TIME_FIELDS = ("eventTime", "lastTimestamp", "firstTimestamp")


def _event_timestamp(event: dict[str, Any]) -> str:
    """First of eventTime, lastTimestamp, firstTimestamp, metadata.creationTimestamp that parses."""
    for field in _EVENT_TIME_FIELDS:
        value = event.get(field)
        if type(value) is str and value:
            n = len(value)
            if (
                (
                    (n == 20 and value[19] == "Z")
                    or (
                        n == 27
                        and value[26] == "Z"
                        and value[19] == "."
                        and value.isascii()
                        and value[20:26].isdigit()
                    )
                )
                and value[4] == "-"
                and value[7] == "-"
                and value[10] == "T"
                and value[13] == ":"
                and value[16] == ":"
            ):
                # timefmt.millis's UTC layouts (seconds; 6 digits) without its regex:
                # fromisoformat takes only ASCII digits between these separators and checks
                # the calendar fields.
                try:
                    _fromisoformat(value[:19])
                except ValueError:
                    continue
                return value[:19] + ".000Z" if n == 20 else value[:23] + "Z"
            try:
                return timefmt.millis(value)
            except ValueError:
                pass
    meta = event.get("metadata")
    if type(meta) is dict:
        value = meta.get("creationTimestamp")
        if type(value) is str and value:
            try:
                return timefmt.millis(value)
            except ValueError:
                pass
    return timefmt.now_millis()


def build_event_activity(
    event: dict[str, Any],
    involved: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[tuple[str, Any] | dict[str, Any]] = (),
    resolver: Resolver | Any | None = None,
) -> dict[str, Any]:
    """The Activity of a matched event rule (docs/design.md#policy-engine-7-3 with #d6).

    Args:
        event: the decoded event map.
        involved: its involved object (``regarding`` or ``involvedObject``).
        api_group, kind: the matched policy's ``spec.resource``.
        summary: the rendered summary.
        links: the links collected while rendering; converted with (A) of
            docs/design.md#policy-engine-3-6.
        resolver: kind resolver for links that name a plural resource.

    Raises:
        KindResolveError: a link's kind could not be resolved.
    """
    meta = event.get("metadata")
    uid = meta.get("uid") if type(meta) is dict else ""
    if type(uid) is not str:
        uid = ""
    get = involved.get
    namespace = get("namespace")
    if type(namespace) is not str:
        namespace = ""
    reason = event.get("reason")
    if type(reason) is not str:
        reason = ""
    api_version, name, res_uid = get("apiVersion"), get("name"), get("uid")
    if type(api_version) is not str:
        api_version = ""
    if type(name) is not str:
        name = ""
    if type(res_uid) is not str:
        res_uid = ""

    metadata: dict[str, Any] = {"name": activity_name("event", uid, api_group, kind)}
    if namespace:
        metadata["namespace"] = namespace
    metadata["creationTimestamp"] = _event_timestamp(event)
    metadata["labels"] = {
        LABEL_API_GROUP: api_group,
        LABEL_CHANGE_SOURCE: "system",
        LABEL_EVENT_REASON: reason,
        LABEL_ORIGIN_TYPE: "event",
        LABEL_RESOURCE_KIND: kind,
    }

    spec: dict[str, Any] = {
        "summary": summary,
        "changeSource": "system",
        "actor": {"type": "controller", "name": event_actor(event) or "unknown"},
        "resource": _resource(api_group, api_version, kind, name, namespace, res_uid),
    }
    if links:
        converted = convert_links(links, resolver)
        if converted:
            spec["links"] = converted
    spec["tenant"] = event_tenant(event)
    spec["origin"] = {"type": "event", "id": uid}
    return {
        "kind": "Activity",
        "apiVersion": ACTIVITY_API_VERSION,
        "metadata": metadata,
        "spec": spec,
    }


def encode_activity(activity: Built | dict[str, Any]) -> bytes:
    """Compact JSON of an Activity (orjson; ``<``/``>``/``&`` unescaped: JSON-equivalent to Go):
    a :class:`Built`'s bytes as they are."""
    if type(activity) is Built:
        return activity.data
    return orjson.dumps(activity)


# --- built: the bytes and what the pipeline reads ----------------------------------------------


class Built(Mapping[str, Any]):
    """A built Activity: its JSON (``data``, the NATS message and the ClickHouse row), its
    ``name``, and the fields its subject and metrics read
    (:func:`processor.subjects.activity_subject`), so nothing downstream parses the bytes.

    It reads as the Activity map too (``built["spec"]``, ``==`` a dict): :meth:`activity` decodes
    ``data`` once, for the callers that want the map (preview, replay, tests). Both
    implementations return this class.
    """

    __slots__ = (
        "_decoded",
        "api_group",
        "data",
        "kind",
        "name",
        "namespace",
        "origin_type",
        "tenant_name",
        "tenant_type",
    )

    def __init__(
        self,
        data: bytes,
        name: str,
        tenant_type: str,
        tenant_name: str,
        api_group: str,
        origin_type: str,
        kind: str,
        namespace: str,
    ) -> None:
        self.data = data
        self.name = name
        self.tenant_type = tenant_type
        self.tenant_name = tenant_name
        self.api_group = api_group
        self.origin_type = origin_type
        self.kind = kind
        self.namespace = namespace
        self._decoded: dict[str, Any] | None = None

    def activity(self) -> dict[str, Any]:
        """The Activity map (``data`` decoded, once)."""
        decoded = self._decoded
        if decoded is None:
            decoded = self._decoded = orjson.loads(self.data)
        return decoded

    def __getitem__(self, key: str) -> Any:
        return self.activity()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.activity())

    def __len__(self) -> int:
        return len(self.activity())

    def __eq__(self, other: object) -> bool:
        if type(other) is Built:
            return self.data == other.data
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Built({self.data!r})"


def _built(activity: dict[str, Any], origin_type: str, api_group: str, kind: str) -> Built:
    """The :class:`Built` of an Activity map: its bytes and fields as the pipeline reads them."""
    metadata, spec = activity["metadata"], activity["spec"]
    tenant = spec["tenant"]
    return Built(
        orjson.dumps(activity),
        metadata["name"],
        tenant["type"],
        tenant["name"],
        api_group,
        origin_type,
        kind,
        spec["resource"].get("namespace", ""),
    )


def build_audit(
    audit: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[tuple[str, Any] | dict[str, Any]] = (),
    resolver: Resolver | Any | None = None,
) -> Built:
    """:func:`build_audit_activity` as a :class:`Built`.

    Raises:
        KindResolveError: a link's kind could not be resolved.
        orjson.JSONEncodeError: a string orjson refuses (a lone surrogate).
    """
    activity = build_audit_activity(audit, api_group, kind, summary, links, resolver)
    return _built(activity, "audit", api_group, kind)


def build_event(
    event: dict[str, Any],
    involved: dict[str, Any],
    api_group: str,
    kind: str,
    summary: str,
    links: Iterable[tuple[str, Any] | dict[str, Any]] = (),
    resolver: Resolver | Any | None = None,
) -> Built:
    """:func:`build_event_activity` as a :class:`Built`.

    Raises:
        KindResolveError: a link's kind could not be resolved.
        orjson.JSONEncodeError: a string orjson refuses (a lone surrogate).
    """
    activity = build_event_activity(event, involved, api_group, kind, summary, links, resolver)
    return _built(activity, "event", api_group, kind)
