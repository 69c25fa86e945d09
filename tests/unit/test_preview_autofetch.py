"""PolicyPreview autoFetch without a store: upstream's rule-filter, field-selector and validation
cases (its preview storage tests TestBuildRuleFilter, TestExtractEventFiltersFromCEL and the
AutoFetch validation tests), the selections built for the query layer, and the CEL quoting they
rely on. The fetching itself runs on chDB in tests/integration/test_preview_autofetch.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.cel import ast
from processor.errors import PolicyErrors
from processor.kinds import KindResolver
from processor.policy.model import Policy, Rule
from processor.preview import load_manifest
from processor.preview_fetch import (
    AutoFetch,
    Scope,
    audit_request,
    event_filter,
    event_request,
    event_rule_terms,
    event_selector,
    rule_filter,
    strip_audit_prefix,
)
from processor.query.celtext import all_of, any_of, cel_string, equals
from processor.query.filter import Compare, Const, Logic, compile_filter
from processor.query.tables import AUDIT_LOGS, K8S_EVENTS


def _rules(*matches: str, kind: str = "audit") -> tuple[Rule, ...]:
    return tuple(
        Rule(name=f"rule{i + 1}", match=m, summary="s", index=i, rule_type=kind)  # type: ignore[arg-type]
        for i, m in enumerate(matches)
    )


# upstream TestBuildRuleFilter: (name, matches, expected)
RULE_FILTER_CASES = [
    ("single rule - audit prefix stripped", ['audit.verb == "create"'], '(verb == "create")'),
    (
        "multiple rules - ORed together with prefix stripped",
        ['audit.verb == "create"', 'audit.verb == "delete"'],
        '((verb == "create") || (verb == "delete"))',
    ),
    (
        "complex expression - audit prefix stripped",
        ['audit.verb == "update" && audit.objectRef.namespace == "production"'],
        '(verb == "update" && objectRef.namespace == "production")',
    ),
    ("skips empty match", ["", 'audit.verb == "create"'], '(verb == "create")'),
    ("skips 'true' match", ["true", 'audit.verb == "create"'], '(verb == "create")'),
    ("empty rules", [], ""),
    ("all rules are true or empty", ["true", ""], ""),
    (
        "preserves audit. inside string literals",
        ['audit.objectRef.name == "audit.log-collector"'],
        '(objectRef.name == "audit.log-collector")',
    ),
    (
        "preserves audit. inside single-quoted strings",
        ["audit.verb == 'audit.create'"],
        "(verb == 'audit.create')",
    ),
]


@pytest.mark.parametrize(
    ("matches", "expected"),
    [c[1:] for c in RULE_FILTER_CASES],
    ids=[c[0] for c in RULE_FILTER_CASES],
)
def test_upstream_rule_filter_cases(matches: list[str], expected: str) -> None:
    assert rule_filter(_rules(*matches)) == expected


# upstream TestExtractEventFiltersFromCEL
EVENT_TERM_CASES = [
    ("reason equals", 'event.reason == "Ready"', ["reason=Ready"]),
    ("type equals", 'event.type == "Warning"', ["type=Warning"]),
    (
        "reason and type",
        'event.reason == "Failed" && event.type == "Warning"',
        ["reason=Failed", "type=Warning"],
    ),
    ("no extractable filters", 'event.note.contains("error")', []),
    ("empty expression", "", []),
]


@pytest.mark.parametrize(
    ("match", "expected"), [c[1:] for c in EVENT_TERM_CASES], ids=[c[0] for c in EVENT_TERM_CASES]
)
def test_upstream_event_selector_cases(match: str, expected: list[str]) -> None:
    assert event_rule_terms(match) == expected


def _manifest(auto: object, inputs: object = None) -> str:
    import orjson

    spec = {
        "policy": {
            "resource": {"apiGroup": "networking.datumapis.com", "kind": "HTTPProxy"},
            "auditRules": [{"name": "rule-create", "match": "true", "summary": "Test"}],
        },
        "autoFetch": auto,
    }
    if inputs is not None:
        spec["inputs"] = inputs
    doc = {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "PolicyPreview", "spec": spec}
    return orjson.dumps(doc).decode()


def _problems(text: str) -> list[str]:
    with pytest.raises(PolicyErrors) as caught:
        load_manifest(text)
    return [e.field_message() for e in caught.value.errors]


def test_upstream_validation_invalid_limit() -> None:
    assert _problems(_manifest({"limit": 100})) == [
        "spec.autoFetch.limit: Invalid value: 100: must be <= 50"
    ]
    assert _problems(_manifest({"limit": -1})) == [
        "spec.autoFetch.limit: Invalid value: -1: must be >= 0"
    ]


def test_upstream_validation_invalid_sources() -> None:
    (problem,) = _problems(_manifest({"limit": 10, "sources": "invalid"}))
    assert problem.startswith("spec.autoFetch.sources: Unsupported value") and (
        'supported values: "audit", "events", "both"' in problem
    )


def test_upstream_validation_inputs_and_autofetch() -> None:
    both = _manifest({"limit": 10}, [{"type": "audit", "audit": {"verb": "create"}}])
    assert "cannot specify both 'inputs' and 'autoFetch'" in _problems(both)[0]
    doc = _manifest(None).replace(',"autoFetch":null', "")
    assert "provide either 'inputs' or 'autoFetch'" in _problems(doc)[0]


def test_valid_autofetch_and_defaults() -> None:
    manifest, _ = load_manifest(_manifest({}))
    auto = AutoFetch.from_spec(manifest["spec"]["autoFetch"])
    assert (auto.limit, auto.start, auto.sources) == (10, "now-24h", "both")
    manifest, _ = load_manifest(_manifest({"limit": 0, "timeRange": "now-7d", "sources": "audit"}))
    auto = AutoFetch.from_spec(manifest["spec"]["autoFetch"])
    assert (auto.limit, auto.start, auto.sources) == (10, "now-7d", "audit")
    assert _problems(_manifest({"timeRange": "yesterday"})) == [
        'spec.autoFetch.timeRange: Invalid value: "yesterday": must be a valid relative time '
        "(e.g., '1h', '24h', '7d')"
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("audit.verb", "verb"),
        ("x.audit.verb", "x.audit.verb"),  # a field named audit, not the variable
        ("myaudit.verb", "myaudit.verb"),
        ("audit.verb == r'audit.x' || audit.user.username == '''a'b audit.'''",
         "verb == r'audit.x' || user.username == '''a'b audit.'''"),
        ('audit.verb == "a\\"audit.b"', 'verb == "a\\"audit.b"'),
        ("has(audit.objectRef.name)", "has(objectRef.name)"),
    ],
)  # fmt: skip
def test_strip_audit_prefix(source: str, expected: str) -> None:
    assert strip_audit_prefix(source) == expected


def test_event_terms_follow_the_expression_not_the_text() -> None:
    # single quotes and a reversed comparison count; an alternative or a negation does not
    assert event_rule_terms("'Warning' == event.type && event.reason == 'BackOff'") == [
        "reason=BackOff",
        "type=Warning",
    ]
    assert event_rule_terms('event.reason == "A" || event.reason == "B"') == []
    assert event_rule_terms('!(event.reason == "A")') == []
    assert event_rule_terms('event.reason == "A" && (event.type == "B" || true)') == ["reason=A"]
    assert event_rule_terms("event.reason ==") == []  # does not compile: no terms


def _policy(group: str, kind: str, audit: tuple[str, ...] = (), events: tuple[str, ...] = ()):
    return Policy(
        name="p",
        api_group=group,
        kind=kind,
        audit_rules=_rules(*audit),
        event_rules=_rules(*events, kind="event"),
    )


def test_audit_request_uses_the_indexed_plural_and_the_rule_filter() -> None:
    policy = _policy("networking.k8s.io", "NetworkPolicy", audit=("audit.verb == 'create'",))
    request = audit_request(policy, AutoFetch(limit=5, time_range="2h"), KindResolver())
    # upstream: objectRef.resource.contains("networkpolicy"), which "networkpolicies" never is
    assert request.filter == (
        '(objectRef.apiGroup == "networking.k8s.io") && (objectRef.resource == '
        "\"networkpolicies\") && (verb == 'create')"
    )
    assert (request.table, request.start, request.limit) == (AUDIT_LOGS, "now-2h", 5)
    compile_filter(request.filter, AUDIT_LOGS)


def test_a_rule_filter_the_filter_language_cannot_express_selects_by_resource() -> None:
    policy = _policy("", "Pod", audit=("audit.verb == 'create'", "actorRef.type == 'user'"))
    request = audit_request(policy, AutoFetch(), KindResolver(), Scope("Organization", "acme"))
    assert request.filter == '(objectRef.apiGroup == "") && (objectRef.resource == "pods")'
    assert (request.tenant_type, request.tenant_name) == ("Organization", "acme")


def test_event_selection() -> None:
    core = _policy("", "Pod", events=('event.reason == "BackOff"', "true"))
    assert event_selector(core) == "regarding.kind=Pod,regarding.apiVersion=v1"
    assert event_filter(core) == 'reason == "BackOff"'
    grouped = _policy(
        "apps",
        "Deployment",
        events=('event.reason == "A" && event.type == "Warning"', "event.reason == 'B'"),
    )
    assert event_selector(grouped) == "regarding.kind=Deployment"
    # non-core: the group is a prefix of apiVersion (upstream compares it with the bare group);
    # the rules' terms are ORed per rule (upstream ANDs them: reason=A,type=Warning,reason=B)
    assert event_filter(grouped) == (
        '(regarding.apiVersion.startsWith("apps/")) && '
        '(((reason == "A") && (type == "Warning")) || (reason == "B"))'
    )
    unnarrowed = _policy("apps", "Deployment", events=('event.reason == "A"', "event.note != ''"))
    assert event_filter(unnarrowed) == 'regarding.apiVersion.startsWith("apps/")'
    odd = _policy("", "Odd,Kind=x", events=("true",))
    assert event_selector(odd) == ""
    assert event_filter(odd) == '(regarding.kind == "Odd,Kind=x") && (regarding.apiVersion == "v1")'
    request = event_request(grouped, AutoFetch(limit=3))
    assert (request.table, request.selector, request.limit) == (
        K8S_EVENTS,
        "regarding.kind=Deployment",
        3,
    )
    compile_filter(request.filter, K8S_EVENTS)


@given(st.text())
def test_cel_string_reads_back_unchanged(value: str) -> None:
    node = ast.parse(cel_string(value))
    assert isinstance(node, ast.Literal) and node.value == value


@given(st.text())
def test_a_quoted_value_stays_one_literal(value: str) -> None:
    expr = compile_filter(equals(AUDIT_LOGS, "objectRef.name", value), AUDIT_LOGS)
    assert isinstance(expr, Compare) and expr.right == Const("string", value)


def test_injection_attempt_is_one_literal() -> None:
    hostile = "x' || true || '"
    expr = compile_filter(
        all_of([equals(AUDIT_LOGS, "verb", "get"), equals(AUDIT_LOGS, "objectRef.name", hostile)]),
        AUDIT_LOGS,
    )
    assert isinstance(expr, Logic) and expr.op == "and"
    assert isinstance(expr.right, Compare) and expr.right.right == Const("string", hostile)
    assert any_of(["a", ""]) == "a" and all_of([]) == ""
    with pytest.raises(ValueError, match="not a filter field"):
        equals(AUDIT_LOGS, "verb == 'x' || verb", "y")
