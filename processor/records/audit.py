"""audit.k8s.io/v1 Event records: decode and normalise, CEL variables, index key.

:func:`decode_audit` reproduces what upstream's Go struct round trip does to an audit event
(``docs/design.md#policy-engine-2-3``): unknown keys are dropped at the top level and inside
``user``, ``impersonatedUser``, ``objectRef`` and ``responseStatus``; struct field names match
case-insensitively (Go's folding; the last duplicate wins); empty optional fields are omitted; the
two timestamps become ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC (any RFC3339 precision and offset is
accepted, ``docs/design.md#d3``) or None; every JSON number becomes a float. A value of the wrong
JSON type raises :class:`~processor.errors.RecordError` with a Go-style message (DLQ ``unmarshal``).

The output map is built once per record and shared read-only by every rule evaluation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processor.errors import RecordError
from processor.records import timefmt
from processor.records._json import floatify, json_type, load_object

__all__ = [
    "EVENT_KEYS",
    "OBJECT_REF_KEYS",
    "audit_actor_ref",
    "audit_key",
    "audit_vars",
    "decode_audit",
]

# --- field tables ------------------------------------------------------------------------------

_EVENT_FIELDS = (
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "impersonatedUser",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
    "authenticationMetadata",
)
_USER_FIELDS = ("username", "uid", "groups", "extra")
_OBJECT_REF_FIELDS = (
    "resource",
    "namespace",
    "name",
    "uid",
    "apiGroup",
    "apiVersion",
    "resourceVersion",
    "subresource",
)
_STATUS_FIELDS = (
    "kind",
    "apiVersion",
    "metadata",
    "status",
    "message",
    "reason",
    "details",
    "code",
)
_LIST_META_FIELDS = ("selfLink", "resourceVersion", "continue", "remainingItemCount")
_DETAILS_FIELDS = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_FIELDS = ("reason", "message", "field")

# Fields whose Go type is a value (string/struct): JSON null leaves them unchanged.
_VALUE_FIELDS = frozenset(
    {"kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "userAgent"}
)

_NONE: frozenset[str] = frozenset()

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _fold(name: str) -> str:
    """Go's encoding/json case folding of a key (ASCII upper-case; Unicode lower-then-upper)."""
    if name.isascii():
        return name.upper()
    out = []
    for c in name:
        if c.isascii():
            out.append(c.upper())
        else:
            u = c.lower().upper()
            out.append(u if len(u) == 1 else c)
    return "".join(out)


def _fold_table(fields: tuple[str, ...]) -> dict[str, str]:
    return {_fold(f): f for f in fields}


_EVENT_FOLD = _fold_table(_EVENT_FIELDS)
_USER_FOLD = _fold_table(_USER_FIELDS)
_OBJECT_REF_FOLD = _fold_table(_OBJECT_REF_FIELDS)
_STATUS_FOLD = _fold_table(_STATUS_FIELDS)
_LIST_META_FOLD = _fold_table(_LIST_META_FIELDS)
_DETAILS_FOLD = _fold_table(_DETAILS_FIELDS)
_CAUSE_FOLD = _fold_table(_CAUSE_FIELDS)

#: the keys of an audit event and of its objectRef (exact case; decode_audit also folds case)
EVENT_KEYS = frozenset(_EVENT_FIELDS)
OBJECT_REF_KEYS = frozenset(_OBJECT_REF_FIELDS)
_USER_SET = frozenset(_USER_FIELDS)
_STATUS_SET = frozenset(_STATUS_FIELDS)


def _match_keys(
    obj: dict[str, Any], exact: frozenset[str], folded: dict[str, str], value_fields: frozenset[str]
) -> dict[str, Any]:
    """Map input keys to struct field names (exact first, then folded); null keeps value fields.

    Readers treat a None value like an absent key, so an object whose keys are all exact field
    names (the normal case) is returned as is.
    """
    if obj.keys() <= exact:
        return obj
    out: dict[str, Any] = {}
    for key, val in obj.items():
        field = key if key in exact else folded.get(_fold(key))
        if field is None:
            continue
        if val is None and field in value_fields:
            continue
        out[field] = val
    return out


# --- typed field readers (Go unmarshal type checks) ---------------------------------------------


def _type_error(value: Any, path: str, go_type: str) -> RecordError:
    return RecordError(
        f"json: cannot unmarshal {json_type(value)} into Go struct field {path} of type {go_type}"
    )


def _string(value: Any, path: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    raise _type_error(value, path, "string")


def _copy_strings(
    src: dict[str, Any], fields: tuple[str, ...], out: dict[str, Any], path: str
) -> None:
    """Copy each non-empty string field of ``src`` to ``out`` (Go ``string`` + ``omitempty``)."""
    for field in fields:
        v = src.get(field)
        if type(v) is str:
            if v:
                out[field] = v
        elif v is not None:
            raise _type_error(v, f"{path}.{field}", "string")


def _string_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if type(value) is not list:
        raise _type_error(value, path, "[]string")
    nulls = False
    for item in value:
        if type(item) is not str:
            if item is not None:
                raise _type_error(item, path, "string")
            nulls = True
    return [x if x is not None else "" for x in value] if nulls else value


def _int(value: Any, path: str, go_type: str, lo: int, hi: int) -> float:
    if type(value) is int and lo <= value <= hi:
        return float(value)
    if type(value) is float and value.is_integer() and lo <= value <= hi:
        # A dict input (YAML) may carry 201.0; JSON text "201.0" would fail in Go, but the value
        # is the same number, so it is accepted here.
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise RecordError(
            f"json: cannot unmarshal number {value} into Go struct field {path} of type {go_type}"
        )
    raise _type_error(value, path, go_type)


def _object(value: Any, path: str, go_type: str) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise _type_error(value, path, go_type)


def _timestamp(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        if isinstance(value, datetime):  # a YAML timestamp in an uncopied dict
            value = value.isoformat() if value.tzinfo else value.isoformat() + "Z"
        else:
            raise _type_error(value, path, "v1.MicroTime")
    try:
        return timefmt.micro(value)
    except ValueError as exc:
        raise RecordError(f"{path}: {exc}") from None


# --- nested structs ------------------------------------------------------------------------------


def _user(value: Any, path: str) -> dict[str, Any]:
    src = _match_keys(_object(value, path, "v1.UserInfo"), _USER_SET, _USER_FOLD, _NONE)
    out: dict[str, Any] = {}
    username = src.get("username")
    if type(username) is not str:
        username = _string(username, path + ".username")
    if username:
        out["username"] = username
    uid = src.get("uid")
    if type(uid) is not str:
        uid = _string(uid, path + ".uid")
    if uid:
        out["uid"] = uid
    groups = src.get("groups")
    if groups is not None:
        groups = _string_list(groups, path + ".groups")
        if groups:
            out["groups"] = groups
    extra = src.get("extra")
    if extra is not None:
        extra = _object(extra, path + ".extra", "map[string]v1.ExtraValue")
        if extra:
            out["extra"] = {
                k: (_string_list(v, path + ".extra") if v is not None else None)
                for k, v in extra.items()
            }
    return out


def _object_ref(value: Any) -> dict[str, Any]:
    path = "Event.objectRef"
    src = _match_keys(
        _object(value, path, "v1.ObjectReference"), OBJECT_REF_KEYS, _OBJECT_REF_FOLD, _NONE
    )
    out: dict[str, Any] = {}
    for field, v in src.items():
        if type(v) is str:
            if v:
                out[field] = v
        elif v is not None:
            raise _type_error(v, f"{path}.{field}", "string")
    return out


def _list_meta(value: Any, path: str) -> dict[str, Any]:
    if value is None or (type(value) is dict and not value):
        return {}
    src = _match_keys(
        _object(value, path, "v1.ListMeta"), frozenset(_LIST_META_FIELDS), _LIST_META_FOLD, _NONE
    )
    out: dict[str, Any] = {}
    _copy_strings(src, ("selfLink", "resourceVersion", "continue"), out, path)
    count = src.get("remainingItemCount")
    if count is not None:
        out["remainingItemCount"] = _int(
            count, path + ".remainingItemCount", "int64", _INT64_MIN, _INT64_MAX
        )
    return out


def _details(value: Any, path: str) -> dict[str, Any]:
    src = _match_keys(
        _object(value, path, "v1.StatusDetails"), frozenset(_DETAILS_FIELDS), _DETAILS_FOLD, _NONE
    )
    out: dict[str, Any] = {}
    _copy_strings(src, ("name", "group", "kind", "uid"), out, path)
    causes = src.get("causes")
    if causes is not None:
        if type(causes) is not list:
            raise _type_error(causes, path + ".causes", "[]v1.StatusCause")
        if causes:
            out["causes"] = [_cause(c, path + ".causes") for c in causes]
    retry = src.get("retryAfterSeconds")
    if retry is not None:
        r = _int(retry, path + ".retryAfterSeconds", "int32", _INT32_MIN, _INT32_MAX)
        if r:
            out["retryAfterSeconds"] = r
    return out


def _cause(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    src = _match_keys(
        _object(value, path, "v1.StatusCause"), frozenset(_CAUSE_FIELDS), _CAUSE_FOLD, _NONE
    )
    out: dict[str, Any] = {}
    _copy_strings(src, _CAUSE_FIELDS, out, path)
    return out


def _status(value: Any) -> dict[str, Any]:
    path = "Event.responseStatus"
    src = _match_keys(_object(value, path, "v1.Status"), _STATUS_SET, _STATUS_FOLD, _NONE)
    out: dict[str, Any] = {}
    _copy_strings(src, ("kind", "apiVersion"), out, path)
    out["metadata"] = _list_meta(src.get("metadata"), path + ".metadata")
    _copy_strings(src, ("status", "message", "reason"), out, path)
    details = src.get("details")
    if details is not None:
        out["details"] = _details(details, path + ".details")
    code = src.get("code")
    if code is not None:
        if type(code) is int and _INT32_MIN <= code <= _INT32_MAX:
            c = float(code)
        else:
            c = _int(code, path + ".code", "int32", _INT32_MIN, _INT32_MAX)
        if c:
            out["code"] = c
    return out


def _annotations(value: Any) -> dict[str, str]:
    path = "Event.annotations"
    src = _object(value, path, "map[string]string")
    for k, v in src.items():
        if type(v) is not str:
            if v is None:
                src[k] = ""
            else:
                raise _type_error(v, path, "string")
    return src


# --- public API ----------------------------------------------------------------------------------


def decode_audit(
    raw: bytes | bytearray | memoryview | str | dict[str, Any], *, copy: bool = True
) -> dict[str, Any]:
    """Decode one audit.k8s.io/v1 Event and normalise it like upstream's Go round trip.

    Args:
        raw: the JSON payload, or an already-parsed object.
        copy: for an already-parsed object: True copies it through JSON first (it is never
            changed; YAML datetimes are accepted); False uses it directly, which is cheaper
            but lets nested values change in place (integers become floats) -- pass False
            only for objects the caller owns, e.g. the items of a freshly parsed EventList.

    Returns:
        The normalised audit map (plain dicts, lists, str, float, bool, None).

    Raises:
        RecordError: invalid JSON, a non-object payload, or a field of the wrong type.
    """
    obj = load_object(raw, "audit event", copy)
    if type(obj) is not dict:
        raise RecordError(
            f"json: cannot unmarshal {json_type(obj)} into Go value of type audit.Event"
        )
    src = _match_keys(obj, EVENT_KEYS, _EVENT_FOLD, _VALUE_FIELDS)
    out: dict[str, Any] = {}
    _copy_strings(src, ("kind", "apiVersion"), out, "Event")
    for field in ("level", "auditID", "stage", "requestURI", "verb"):
        v = src.get(field)
        out[field] = v if type(v) is str else _string(v, "Event." + field)
    user = src.get("user")
    out["user"] = _user(user, "Event.user") if user is not None else {}
    v = src.get("impersonatedUser")
    if v is not None:
        out["impersonatedUser"] = _user(v, "Event.impersonatedUser")
    v = src.get("sourceIPs")
    if v is not None:
        ips = _string_list(v, "Event.sourceIPs")
        if ips:
            out["sourceIPs"] = ips
    v = src.get("userAgent")
    if v is not None:
        agent = _string(v, "Event.userAgent")
        if agent:
            out["userAgent"] = agent
    v = src.get("objectRef")
    if v is not None:
        out["objectRef"] = _object_ref(v)
    v = src.get("responseStatus")
    if v is not None:
        out["responseStatus"] = _status(v)
    for field in ("requestObject", "responseObject"):
        v = src.get(field)
        if v is not None:
            out[field] = floatify(v)
    out["requestReceivedTimestamp"] = _timestamp(
        src.get("requestReceivedTimestamp"), "Event.requestReceivedTimestamp"
    )
    out["stageTimestamp"] = _timestamp(src.get("stageTimestamp"), "Event.stageTimestamp")
    v = src.get("annotations")
    if v is not None:
        ann = _annotations(v)
        if ann:
            out["annotations"] = ann
    v = src.get("authenticationMetadata")
    if v is not None:
        out["authenticationMetadata"] = floatify(
            _object(v, "Event.authenticationMetadata", "audit.AuthenticationMetadata")
        )
    return out


def audit_actor_type(username: str) -> str:
    """``actorRef.type`` for the raw username (``unknown``, ``serviceaccount``, ``system``,
    ``user``)."""
    if not username:
        return "unknown"
    if username.startswith("system:serviceaccount:"):
        return "serviceaccount"
    if username.startswith("system:"):
        return "system"
    return "user"


def audit_actor_ref(username: str) -> dict[str, str]:
    """The ``actorRef`` variable of audit rules (docs/design.md#policy-engine-2-1): ``{type, name}``
    from the raw username."""
    return {"type": audit_actor_type(username), "name": username}


def audit_vars(audit: dict[str, Any]) -> dict[str, Any]:
    """The CEL activation of audit rules: ``audit``, ``actor``, ``actorRef``, ``kind``
    (docs/design.md#policy-engine-2-1).

    ``audit`` is a shallow copy with ``{}`` for each absent top-level ``objectRef``, ``user``,
    ``responseStatus``, ``responseObject`` and ``requestObject``; ``audit`` itself is not changed.
    """
    a = dict(audit)
    if "objectRef" not in a:
        a["objectRef"] = {}
    if "user" not in a:
        a["user"] = {}
    if "responseStatus" not in a:
        a["responseStatus"] = {}
    if "responseObject" not in a:
        a["responseObject"] = {}
    if "requestObject" not in a:
        a["requestObject"] = {}
    user = a["user"]
    username = user.get("username", "") if type(user) is dict else ""
    if type(username) is not str:
        username = ""
    ref = a["objectRef"]
    kind = ref.get("resource", "") if type(ref) is dict else ""
    if type(kind) is not str:
        kind = ""
    return {"audit": a, "actor": username, "actorRef": audit_actor_ref(username), "kind": kind}


def audit_key(audit: dict[str, Any]) -> str | None:
    """The audit index key ``"<apiGroup>/<resource>"``; None when the record has no objectRef.

    Subresources are ignored (docs/design.md#policy-engine-4-3, step 5): a status write uses the
    main resource's key.
    """
    ref = audit.get("objectRef")
    if type(ref) is not dict:
        return None
    return f"{ref.get('apiGroup', '')}/{ref.get('resource', '')}"
