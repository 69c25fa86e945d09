"""Kubernetes discovery: ``/version``, ``/api``, ``/apis``, the groups and their resource lists,
and a small OpenAPI v3 document for kubectl's field validation.

Served groups: ``activity.miloapis.com/v1alpha1`` (the query resources, Activities), and the
native Events API, core ``v1`` and ``events.k8s.io/v1``, read from ``k8s_events``. Legacy
(unaggregated) discovery documents are answered whatever the Accept header asks for; kubectl
falls back to them when it gets no aggregated discovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import processor
from processor.serve.queries import QUERY_RESOURCES
from processor.serve.status import GROUP, VERSION

EVENTS_GROUP = "events.k8s.io"


@dataclass(frozen=True)
class Resource:
    """One entry of an APIResourceList."""

    name: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    singular: str = ""

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        if self.categories:
            out["categories"] = list(self.categories)
        return out


ACTIVITY_RESOURCES: tuple[Resource, ...] = (
    Resource("activities", "Activity", True, ("get", "list", "watch"), ("act",), ("activity",)),
    *(
        Resource(r.plural, r.kind, False, ("create",), r.short_names)
        for r in QUERY_RESOURCES.values()
    ),
)
EVENT_RESOURCES = (Resource("events", "Event", True, ("get", "list", "watch"), ("ev",)),)

#: group -> (version, resources)
GROUPS: dict[str, tuple[str, Sequence[Resource]]] = {
    GROUP: (VERSION, ACTIVITY_RESOURCES),
    EVENTS_GROUP: ("v1", EVENT_RESOURCES),
}


def version_info() -> dict[str, Any]:
    """``/version`` (kubectl prints it in ``kubectl version``)."""
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": f"v1.32.0-activity.{processor.__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions() -> dict[str, Any]:
    """``/api``: the core group (only Events are served in it)."""
    return {
        "kind": "APIVersions",
        "apiVersion": "v1",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def resource_list(group_version: str, resources: Sequence[Resource]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [r.document() for r in resources],
    }


def core_resources() -> dict[str, Any]:
    """``/api/v1``."""
    return resource_list("v1", EVENT_RESOURCES)


def api_group(name: str) -> dict[str, Any]:
    version = GROUPS[name][0]
    gv = {"groupVersion": f"{name}/{version}", "version": version}
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": [gv],
        "preferredVersion": gv,
    }


def api_group_list() -> dict[str, Any]:
    """``/apis``."""
    groups = [api_group(name) for name in GROUPS]
    for group in groups:
        del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group_resources(name: str, version: str) -> dict[str, Any] | None:
    """``/apis/<group>/<version>`` or None when not served."""
    found = GROUPS.get(name)
    if found is None or found[0] != version:
        return None
    return resource_list(f"{name}/{version}", found[1])


# --- OpenAPI v2 --------------------------------------------------------------------------------
# kubectl validates a manifest client-side against /openapi/v2 (protobuf) when the server does not
# validate fields itself; a document without definitions makes it skip the validation of our
# kinds (kubectl 1.20 always asks for it). Protobuf of gnostic's openapi_v2.Document: field 1
# swagger, field 2 info {1 title, 2 version}.

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _pb_string(number: int, text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([number << 3 | 2, len(raw)]) + raw


def openapi_v2(protobuf: bool) -> bytes:
    """``/openapi/v2``: swagger 2.0, no paths or definitions (protobuf or JSON)."""
    if protobuf:
        info = _pb_string(1, "activity") + _pb_string(2, processor.__version__)
        return _pb_string(1, "2.0") + bytes([2 << 3 | 2, len(info)]) + info
    import orjson

    doc = {"swagger": "2.0", "info": {"title": "activity", "version": processor.__version__}}
    return orjson.dumps({**doc, "paths": {}, "definitions": {}})


# --- OpenAPI v3 --------------------------------------------------------------------------------
# kubectl >= 1.27 reads /openapi/v3 to learn whether the server validates fields itself
# (the fieldValidation parameter of the POST operation); the schemas are open objects, so kubectl
# never rejects a field of a spec client-side.


def openapi_root() -> dict[str, Any]:
    """``/openapi/v3``: the paths of the group-version documents."""
    path = f"apis/{GROUP}/{VERSION}"
    return {"paths": {path: {"serverRelativeURL": f"/openapi/v3/{path}"}}}


def _gvk(kind: str) -> list[dict[str, str]]:
    return [{"group": GROUP, "version": VERSION, "kind": kind}]


def openapi_group() -> dict[str, Any]:
    """``/openapi/v3/apis/activity.miloapis.com/v1alpha1``."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "description": "Ignored: unknown fields are kept as they are (the object is echoed).",
        "schema": {"type": "string", "uniqueItems": True},
    }
    for r in ACTIVITY_RESOURCES:
        ref = f"com.miloapis.activity.{VERSION}.{r.kind}"
        schemas[ref] = {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": _gvk(r.kind),
        }
        body = {"$ref": f"#/components/schemas/{ref}"}
        ok = {"content": {"application/json": {"schema": body}}}
        if "create" in r.verbs:
            paths[f"/apis/{GROUP}/{VERSION}/{r.name}"] = {
                "post": {
                    "operationId": f"create{r.kind}",
                    "parameters": [field_validation],
                    "requestBody": {"content": {"application/json": {"schema": body}}},
                    "responses": {"201": {"description": "Created", **ok}},
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": _gvk(r.kind)[0],
                }
            }
        else:
            paths[f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/{r.name}"] = {
                "get": {
                    "operationId": f"list{r.kind}",
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "list",
                    "x-kubernetes-group-version-kind": _gvk(r.kind)[0],
                }
            }
    return {
        "openapi": "3.0.0",
        "info": {"title": "activity", "version": processor.__version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
