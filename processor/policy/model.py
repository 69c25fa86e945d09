"""The ActivityPolicy model: immutable :class:`Policy` and :class:`Rule` objects.

A policy is built from a plain mapping (the ``spec`` of an ActivityPolicy, or ``spec.policy`` of a
PolicyPreview) by :func:`spec_to_policy`, which checks the *shape* of the data (mappings, lists and
strings where the schema wants them) and collects every problem as a :class:`PolicyError` at its
field path. Semantic checks (required fields, rule names, CEL) live in
:mod:`processor.policy.validate`.

Field paths look like ``spec.auditRules[2].summary``. A policy keeps the source position of each
path it came from (``positions``, filled by the YAML loader), so any error can point at a line and
column of the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from processor.errors import PolicyError, PolicyErrors

RuleType = Literal["audit", "event"]

#: Field path -> (line, column), both 1-based. ``""`` is the start of the document.
Positions = Mapping[str, tuple[int, int]]

#: The rule lists of a spec, with the rule type each one holds, in validation order.
RULE_LISTS: tuple[tuple[str, RuleType], ...] = (("auditRules", "audit"), ("eventRules", "event"))

_RULE_FIELDS = ("name", "description", "match", "summary")
_SPEC_FIELDS = ("resource", "auditRules", "eventRules")
_RESOURCE_FIELDS = ("apiGroup", "kind")
_LAST_SEGMENT = re.compile(r"(\.[^.\[\]]*|\[[^\]]*\])$")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def child_path(parent: str, key: str | int) -> str:
    """The field path of ``key`` under ``parent``: ``spec`` + ``auditRules`` -> ``spec.auditRules``.

    Integer keys become list indexes (``[2]``); keys that are not simple identifiers (for example
    annotation keys with dots) are bracketed, as Kubernetes does.
    """
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not _SIMPLE_KEY.fullmatch(key):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def parent_path(path: str) -> str:
    """The path one level up: ``spec.auditRules[2].name`` -> ``spec.auditRules[2]`` -> ``spec``."""
    m = _LAST_SEGMENT.search(path)
    return "" if m is None else path[: m.start()]


def locate(positions: Positions, path: str) -> tuple[int, int] | None:
    """The position of ``path``, or of its nearest ancestor that has one (a missing field)."""
    while True:
        pos = positions.get(path)
        if pos is not None or not path:
            return pos
        path = parent_path(path)


def describe_value(value: Any, limit: int = 80) -> str:
    """A short, Go ``%q``-like rendering of a value for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # pragma: no cover - default=str makes this unlikely
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: Any) -> str:
    """The YAML/JSON name of a value's type, for "must be a string, got ..." messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


@dataclass(frozen=True)
class Rule:
    """One audit or event rule of a policy.

    Attributes:
        name: the rule name ("" when absent; validation reports it).
        match: the CEL match expression.
        summary: the summary template with ``{{ CEL }}`` blocks.
        description: free text, unused by processing.
        index: position of the rule in its list (0-based).
        rule_type: ``"audit"`` or ``"event"``.
    """

    name: str
    match: str
    summary: str
    description: str = ""
    index: int = 0
    rule_type: RuleType = "audit"

    @property
    def list_name(self) -> str:
        """``auditRules`` or ``eventRules``."""
        return "auditRules" if self.rule_type == "audit" else "eventRules"


@dataclass(frozen=True)
class Policy:
    """An ActivityPolicy (or the policy spec of a PolicyPreview).

    Attributes:
        name: ``metadata.name`` ("" when absent).
        api_group: ``spec.resource.apiGroup`` ("" is the core group).
        kind: ``spec.resource.kind``, case-sensitive.
        audit_rules: the audit rules, in order.
        event_rules: the event rules, in order.
        file: the file the policy came from ("" when not from a file).
        document: index of the YAML document in that file (0-based), or None.
        raw: the source mapping (the whole document, or the bare spec).
        positions: field path -> (line, column) from the YAML source; empty when unknown.
        spec_path: the path of the spec inside ``raw``'s document: ``spec`` for an
            ActivityPolicy, ``spec.policy`` for a PolicyPreview.
    """

    name: str
    api_group: str
    kind: str
    audit_rules: tuple[Rule, ...] = ()
    event_rules: tuple[Rule, ...] = ()
    file: str = ""
    document: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    positions: Positions = field(default_factory=dict, compare=False, hash=False, repr=False)
    spec_path: str = "spec"

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Audit rules, then event rules."""
        return self.audit_rules + self.event_rules

    def rule_path(self, rule: Rule) -> str:
        """The field path of a rule, e.g. ``spec.auditRules[2]``."""
        return f"{self.spec_path}.{rule.list_name}[{rule.index}]"

    def position(self, path: str, exact: bool = False) -> tuple[int, int] | None:
        """The (line, column) of a field path in the source file.

        Args:
            path: a field path such as ``spec.auditRules[2].summary``.
            exact: when False (the default), a path that has no position of its own (a missing
                field) falls back to its nearest ancestor that has one.

        Returns:
            1-based (line, column), or None when the source position is unknown.
        """
        return self.positions.get(path) if exact else locate(self.positions, path)

    def error(self, path: str, message: str) -> PolicyError:
        """A :class:`PolicyError` at ``path`` of this policy, located in its source file."""
        line, column = self.position(path) or (None, None)
        return PolicyError(
            message,
            path=path,
            file=self.file,
            policy=self.name,
            document=self.document,
            line=line,
            column=column,
        )

    @classmethod
    def from_spec(
        cls,
        spec: Any,
        name: str = "",
        *,
        file: str = "",
        document: int | None = None,
        raw: Mapping[str, Any] | None = None,
        positions: Positions | None = None,
        spec_path: str = "spec",
    ) -> Policy:
        """Build a policy from a bare ActivityPolicySpec (e.g. a PolicyPreview's ``spec.policy``).

        Args:
            spec: the spec mapping (``resource``, ``auditRules``, ``eventRules``); None is empty.
            name: the policy name to report.
            file, document: where the spec came from, for error locations.
            raw: the source document; defaults to ``spec``.
            positions: field path -> (line, column), keyed from the document root.
            spec_path: where ``spec`` sits in the document (``spec.policy`` for a preview).

        Returns:
            The policy. It is well-formed but not yet validated (see ``validate_policy``).

        Raises:
            PolicyErrors: the spec has the wrong shape (e.g. a rule's ``match`` is not a string).
        """
        policy, errors, _ = spec_to_policy(
            spec,
            name=name,
            file=file,
            document=document,
            raw=raw,
            positions=positions,
            spec_path=spec_path,
        )
        if errors or policy is None:
            raise PolicyErrors(errors)
        return policy


class _ShapeChecker:
    """Collects shape errors and unknown-field warnings while reading a spec mapping."""

    def __init__(self, located: Policy) -> None:
        self.located = located  # a placeholder policy that only supplies error locations
        self.errors: list[PolicyError] = []
        self.warnings: list[PolicyError] = []

    def mapping(self, value: Any, path: str, what: str) -> dict[str, Any] | None:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        self.errors.append(
            self.located.error(
                path,
                f"Invalid value: {describe_value(value)}: {what} must be a mapping, "
                f"got {type_name(value)}",
            )
        )
        return None

    def string(self, mapping: dict[str, Any], key: str, path: str) -> str:
        value = mapping.get(key)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        message = (
            f"Invalid value: {describe_value(value)}: must be a string, got {type_name(value)}"
        )
        if isinstance(value, bool | int | float):
            text = str(value).lower() if isinstance(value, bool) else str(value)
            message += f"; quote it in YAML, e.g. {key}: {json.dumps(text)}"
        self.errors.append(self.located.error(child_path(path, key), message))
        return ""

    def unknown_fields(self, mapping: dict[str, Any], known: tuple[str, ...], path: str) -> None:
        for key in mapping:
            if key not in known:
                self.warnings.append(
                    self.located.error(
                        child_path(path, str(key)),
                        f'unknown field "{key}" is ignored (known fields: {", ".join(known)})',
                    )
                )

    def rules(
        self, spec: dict[str, Any], list_name: str, rule_type: RuleType, path: str
    ) -> list[Rule]:
        list_path = child_path(path, list_name)
        items = spec.get(list_name)
        if items is None:
            return []
        if not isinstance(items, list):
            self.errors.append(
                self.located.error(
                    list_path,
                    f"Invalid value: {describe_value(items)}: {list_name} must be a list of rules, "
                    f"got {type_name(items)}",
                )
            )
            return []
        rules = []
        for i, item in enumerate(items):
            item_path = child_path(list_path, i)
            rule = self.mapping(item, item_path, "a rule (name, match, summary)")
            if rule is None:
                continue
            self.unknown_fields(rule, _RULE_FIELDS, item_path)
            rules.append(
                Rule(
                    name=self.string(rule, "name", item_path),
                    match=self.string(rule, "match", item_path),
                    summary=self.string(rule, "summary", item_path),
                    description=self.string(rule, "description", item_path),
                    index=i,
                    rule_type=rule_type,
                )
            )
        return rules


def spec_to_policy(
    spec: Any,
    *,
    name: str = "",
    file: str = "",
    document: int | None = None,
    raw: Mapping[str, Any] | None = None,
    positions: Positions | None = None,
    spec_path: str = "spec",
) -> tuple[Policy | None, list[PolicyError], list[PolicyError]]:
    """Read an ActivityPolicySpec mapping into a :class:`Policy`, without raising.

    Null values count as absent (as in Kubernetes' JSON decoding). Arguments are those of
    :meth:`Policy.from_spec`.

    Returns:
        ``(policy, errors, warnings)``: the policy is None when ``errors`` is not empty; warnings
        name unknown fields (which Kubernetes drops).
    """
    located = Policy(
        name=name,
        api_group="",
        kind="",
        file=file,
        document=document,
        positions=positions or {},
        spec_path=spec_path,
    )
    check = _ShapeChecker(located)
    body = check.mapping(spec, spec_path, "spec")
    if body is None:
        return None, check.errors, check.warnings
    check.unknown_fields(body, _SPEC_FIELDS, spec_path)
    resource_path = child_path(spec_path, "resource")
    resource = check.mapping(body.get("resource"), resource_path, "spec.resource")
    api_group = kind = ""
    if resource is not None:
        check.unknown_fields(resource, _RESOURCE_FIELDS, resource_path)
        api_group = check.string(resource, "apiGroup", resource_path)
        kind = check.string(resource, "kind", resource_path)
    lists = {ln: check.rules(body, ln, rt, spec_path) for ln, rt in RULE_LISTS}
    if check.errors:
        return None, check.errors, check.warnings
    policy = Policy(
        name=name,
        api_group=api_group,
        kind=kind,
        audit_rules=tuple(lists["auditRules"]),
        event_rules=tuple(lists["eventRules"]),
        file=file,
        document=document,
        raw=raw if raw is not None else body,
        positions=positions or {},
        spec_path=spec_path,
    )
    return policy, [], check.warnings
