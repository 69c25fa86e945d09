"""PolicyPreview ``spec.autoFetch``: recent stored records of the policy's kind as preview inputs
(docs/design.md#storage-query-3-6, docs/query.md#policypreview-autofetch).

As upstream: ``limit`` 0-50 (0 = 10) per source, ``timeRange`` a relative duration ending now
(``24h``; ``now-`` is prefixed unless it starts with ``now``), ``sources`` ``audit``, ``events``
or ``both`` (default), audit logs only for a policy with audit rules and Events only for one with
event rules, audit samples first, newest first. Audit logs are selected with upstream's rule
filter (the rules' matches with ``audit.`` stripped outside string literals, ORed; rules that are
empty or ``true`` left out), Events with its field selector (``regarding.kind``, core kinds also
``regarding.apiVersion=v1``) and the ``reason``/``type`` equalities of the event rules. Both go
through the query layer (:func:`processor.query.service.run_query`), like ``activity audit
query`` and ``activity events query``.

Upstream behaviours this does not copy (docs/query.md lists them):

- the resource is matched as ``objectRef.resource == <the policy's plural>``, the plural the
  processor indexes the policy under, not ``contains(lowercase kind)`` (which misses ``Policy`` ->
  ``policies``);
- a rule filter the filter language cannot express (``has()``, ``actor``, ``kind``...) does not
  fail the preview (upstream: HTTP 500): the samples are then selected by resource only;
- non-core Events are selected by ``regarding.apiVersion`` starting with ``<group>/`` (upstream
  compares it with the bare group, so they never match);
- the event rules' equalities are ORed per rule (upstream ANDs every rule's terms into one
  selector, so two rules with different reasons fetch nothing), and a rule without such an
  equality selects by resource only;
- the caller's tenant scope applies (upstream fetches with platform scope for every caller).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processor.cel import ast
from processor.errors import CelCompileError, PolicyError
from processor.kinds import KindResolver
from processor.policy.model import Policy, Rule
from processor.query import celtext
from processor.query.errors import QueryError
from processor.query.filter import compile_filter
from processor.query.service import Backend, QueryRequest, run_query
from processor.query.tables import AUDIT_LOGS, K8S_EVENTS
from processor.query.timeparse import parse_time

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
DEFAULT_TIME_RANGE = "24h"
SOURCES = ("audit", "events", "both")
_EVENT_TERMS = ("reason", "type")


@dataclass(frozen=True)
class AutoFetch:
    """A validated ``spec.autoFetch`` with its defaults applied."""

    limit: int = DEFAULT_LIMIT
    time_range: str = DEFAULT_TIME_RANGE
    sources: str = "both"

    @property
    def start(self) -> str:
        """The window's start in the query layer's syntax (``now-24h``)."""
        return self.time_range if self.time_range.startswith("now") else "now-" + self.time_range

    @classmethod
    def from_spec(cls, value: dict[str, Any]) -> AutoFetch:
        """From a spec :func:`validate` accepted."""
        return cls(
            limit=int(value.get("limit") or DEFAULT_LIMIT),
            time_range=str(value.get("timeRange") or DEFAULT_TIME_RANGE),
            sources=str(value.get("sources") or "both"),
        )


def validate(value: Any, err: Any) -> list[PolicyError]:
    """Upstream's checks of ``spec.autoFetch`` (``err(path, message)`` makes a located error)."""
    path = "spec.autoFetch"
    if not isinstance(value, dict):
        return [err(path, "Invalid value: autoFetch must be a mapping (limit, timeRange, sources)")]
    problems = []
    limit = value.get("limit", 0)
    if limit is None:
        limit = 0
    if type(limit) is not int:
        problems.append(err(f"{path}.limit", f"Invalid value: {limit!r}: must be an integer"))
    elif limit < 0:
        problems.append(err(f"{path}.limit", f"Invalid value: {limit}: must be >= 0"))
    elif limit > MAX_LIMIT:
        problems.append(err(f"{path}.limit", f"Invalid value: {limit}: must be <= {MAX_LIMIT}"))
    time_range = value.get("timeRange") or ""
    if time_range and (
        not isinstance(time_range, str) or not _parses(AutoFetch(time_range=time_range).start)
    ):
        problems.append(
            err(
                f"{path}.timeRange",
                f'Invalid value: "{time_range}": must be a valid relative time '
                "(e.g., '1h', '24h', '7d')",
            )
        )
    sources = value.get("sources") or ""
    if sources and sources not in SOURCES:
        problems.append(
            err(
                f"{path}.sources",
                f'Unsupported value: "{sources}": supported values: '
                + ", ".join(f'"{s}"' for s in SOURCES),
            )
        )
    return problems


def _parses(start: str) -> bool:
    try:
        parse_time(start, time.time_ns())
    except QueryError:
        return False
    return True


def strip_audit_prefix(expr: str) -> str:
    """A rule's match as an audit-log filter: the identifier ``audit`` and its dot removed
    outside string literals (``audit.verb == 'audit.x'`` -> ``verb == 'audit.x'``)."""
    out: list[str] = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"":
            end = _string_end(expr, i)
            out.append(expr[i:end])
            i = end
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "_"):
                j += 1
            word = expr[i:j]
            if j < n and expr[j] in "'\"" and word.lower() in ("r", "b", "rb", "br"):
                end = _string_end(expr, j)  # a prefixed literal: r"...", b'...'
                out.append(expr[i:end])
                i = end
                continue
            previous = "".join(out).rstrip()[-1:]
            if word == "audit" and expr[j : j + 1] == "." and previous != ".":
                i = j + 1
                continue
            out.append(word)
            i = j
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(expr: str, start: int) -> int:
    """The index after the string literal opening at ``start`` (the end of text if unclosed)."""
    quote = expr[start]
    delim = quote * 3 if expr.startswith(quote * 3, start) else quote
    raw = start > 0 and expr[start - 1] in "rR"
    i = start + len(delim)
    while i < len(expr):
        if expr[i] == "\\" and not raw:
            i += 2
            continue
        if expr.startswith(delim, i):
            return i + len(delim)
        i += 1
    return len(expr)


def _trivial(rule: Rule) -> bool:
    return rule.match.strip() in ("", "true")


def rule_filter(rules: Sequence[Rule]) -> str:
    """Upstream's audit rule filter: each non-trivial match with ``audit.`` stripped, in
    parentheses, ORed (``""`` when every match is empty or ``true``)."""
    parts = [f"({strip_audit_prefix(r.match)})" for r in rules if not _trivial(r)]
    if len(parts) <= 1:
        return "".join(parts)
    return "(" + " || ".join(parts) + ")"


def event_rule_terms(match: str) -> list[str]:
    """Upstream's field-selector terms of an event rule: ``reason=X`` / ``type=X`` for each
    ``event.reason == "X"`` / ``event.type == "X"`` the match requires (its top-level ``&&``
    chain; either quote style, either side), reason first."""
    try:
        node = ast.parse(match) if match.strip() else None
    except CelCompileError:
        return []
    found: dict[str, list[str]] = {key: [] for key in _EVENT_TERMS}
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, ast.And):
            stack += [current.right, current.left]
        elif isinstance(current, ast.Binary) and current.op == "==":
            term = _event_equality(current.left, current.right) or _event_equality(
                current.right, current.left
            )
            if term is not None:
                found[term[0]].append(term[1])
    return [f"{key}={value}" for key in _EVENT_TERMS for value in found[key]]


def _event_equality(field: ast.Node, literal: ast.Node) -> tuple[str, str] | None:
    if (
        isinstance(field, ast.Select)
        and field.field in _EVENT_TERMS
        and isinstance(field.operand, ast.Ident)
        and field.operand.name == "event"
        and isinstance(literal, ast.Literal)
        and isinstance(literal.value, str)
    ):
        return field.field, literal.value
    return None


@dataclass(frozen=True)
class Scope:
    """The tenant the samples are read for ("" type: every tenant, as the CLI reads)."""

    tenant_type: str = ""
    tenant_name: str = ""


def audit_request(
    policy: Policy, auto: AutoFetch, resolver: KindResolver, scope: Scope = Scope()
) -> QueryRequest:
    """The audit-log query of the samples."""
    resource = resolver.kind_to_resource(policy.api_group, policy.kind)
    base = celtext.all_of(
        [
            celtext.equals(AUDIT_LOGS, "objectRef.apiGroup", policy.api_group),
            celtext.equals(AUDIT_LOGS, "objectRef.resource", resource),
        ]
    )
    rules = rule_filter(policy.audit_rules)
    text = f"{base} && {rules}" if rules else base
    if rules and not _translatable(text):
        text = base
    return QueryRequest(
        AUDIT_LOGS,
        filter=text,
        start=auto.start,
        end="now",
        limit=auto.limit,
        tenant_type=scope.tenant_type,
        tenant_name=scope.tenant_name,
    )


def _translatable(text: str) -> bool:
    try:
        compile_filter(text, AUDIT_LOGS)
    except QueryError:
        return False
    return True


def event_selector(policy: Policy) -> str:
    """Upstream's field selector of the samples without its rule terms: ``regarding.kind`` (and
    ``regarding.apiVersion=v1`` for a core kind); "" if the kind cannot be a selector value."""
    if any(c in policy.kind for c in ",=!") or policy.kind != policy.kind.strip():
        return ""
    core = "" if policy.api_group else ",regarding.apiVersion=v1"
    return f"regarding.kind={policy.kind}{core}"


def event_filter(policy: Policy) -> str:
    """The CEL part of the Event samples' selection: the group (non-core kinds), the kind when it
    is no selector value, and the event rules' terms ORed per rule."""
    terms = []
    if not event_selector(policy):
        terms.append(celtext.equals(K8S_EVENTS, "regarding.kind", policy.kind))
        if not policy.api_group:
            terms.append(celtext.equals(K8S_EVENTS, "regarding.apiVersion", "v1"))
    if policy.api_group:
        path = celtext.field_path(K8S_EVENTS, "regarding.apiVersion")
        terms.append(f"{path}.startsWith({celtext.cel_string(policy.api_group + '/')})")
    per_rule: list[str] = []
    for rule in policy.event_rules:
        if _trivial(rule):
            continue
        found = event_rule_terms(rule.match)
        if not found:
            per_rule = []  # this rule may match any Event of the kind: no narrowing
            break
        per_rule.append(
            celtext.all_of(
                celtext.equals(K8S_EVENTS, key, value)
                for key, _, value in (t.partition("=") for t in found)
            )
        )
    terms.append(celtext.any_of(per_rule))
    return celtext.all_of(terms)


def event_request(policy: Policy, auto: AutoFetch, scope: Scope = Scope()) -> QueryRequest:
    """The Event query of the samples."""
    return QueryRequest(
        K8S_EVENTS,
        filter=event_filter(policy),
        selector=event_selector(policy),
        start=auto.start,
        end="now",
        limit=auto.limit,
        tenant_type=scope.tenant_type,
        tenant_name=scope.tenant_name,
    )


def fetch_inputs(
    backend: Backend,
    policy: Policy,
    auto: AutoFetch,
    resolver: KindResolver,
    scope: Scope = Scope(),
    now_ns: int | None = None,
) -> list[dict[str, Any]]:
    """The sample inputs (``{type: audit, audit: ...}`` then ``{type: event, event: ...}``).

    Raises:
        QueryError: the window is invalid for a table (e.g. longer than its maximum).
        processor.sink.base.SinkError: the store failed.
    """
    inputs: list[dict[str, Any]] = []
    if auto.sources in ("audit", "both") and policy.audit_rules:
        page = run_query(backend, audit_request(policy, auto, resolver, scope), now_ns)
        inputs += [{"type": "audit", "audit": item} for item in page.items]
    if auto.sources in ("events", "both") and policy.event_rules:
        page = run_query(backend, event_request(policy, auto, scope), now_ns)
        inputs += [{"type": "event", "event": item} for item in page.items]
    return inputs
