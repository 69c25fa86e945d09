"""API-server validation of ActivityPolicies (docs/design.md#policy-engine-1-1): rule by rule, and
the corpus.

The CEL checks come from ``processor.policy.expressions``; the wiring tests replace it with fakes,
the corpus and fixture tests use the real one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from processor.errors import PolicyError
from processor.policy import Policy, check_policy, load_policies, parse_policy_text
from processor.policy.validate import (
    DNS1123_SUBDOMAIN_FMT,
    NAME_INVALID_PREFIX,
    NO_RULES_WARNING,
    dns1123_subdomain_errors,
    policy_warnings,
    validate_policy,
)
from tests.conftest import require_shared, shared_files

REGEX_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def corpus_files(*parts: str, recursive: bool = False) -> list:
    """Files of ``../shared/real-policies/parts`` as pytest params (a placeholder that skips, or
    fails under ``PROCESSOR_REQUIRE_SHARED=1``, when the corpus is absent)."""
    return shared_files("real-policies", *parts, recursive=recursive)


def make(rules: str = "", kind: str = "Deployment") -> Policy:
    text = textwrap.dedent(
        f"""\
        apiVersion: activity.miloapis.com/v1alpha1
        kind: ActivityPolicy
        metadata:
          name: p
        spec:
          resource:
            apiGroup: apps
            kind: "{kind}"
        """
    ) + textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
    (policy,) = parse_policy_text(text, file="p.yaml")
    return policy


def rule(name: str | None = "r", match: str = "true", summary: str = "s") -> str:
    lines = [f"- name: {name!r}"] if name is not None else ["- description: d"]
    if match:
        lines.append(f"  match: {match!r}")
    if summary:
        lines.append(f"  summary: {summary!r}")
    return "\n".join(lines) + "\n"


def audit(*rules: str) -> str:
    return "auditRules:\n" + "".join(rules)


def event(*rules: str) -> str:
    return "eventRules:\n" + "".join(rules)


def fields(errors: list[PolicyError]) -> list[str]:
    return [e.path for e in errors]


@pytest.fixture
def accept_cel(monkeypatch):
    """Replace the CEL validators with ones that accept everything and record their calls."""
    calls: list[tuple[str, str, str]] = []

    def fake_match(source, rule_type):
        calls.append(("match", source, rule_type))

    def fake_summary(text, rule_type):
        calls.append(("summary", text, rule_type))

    monkeypatch.setattr("processor.policy.expressions.validate_match", fake_match)
    monkeypatch.setattr("processor.policy.expressions.validate_summary", fake_summary)
    return calls


# --- docs/design.md#policy-engine-1-1 step by step (CEL faked) -----------------------------


def test_valid_policy_has_no_errors_or_warnings(accept_cel):
    result = check_policy(make(audit(rule("a")) + event(rule("a"))))
    assert result.ok and result.errors == [] and result.warnings == []


def test_kind_is_required_with_detail_and_located(accept_cel):
    (err,) = validate_policy(make(audit(rule()), kind=""))
    assert err.path == "spec.resource.kind"
    assert err.message == (
        "Required value: specify the kind of resource this policy targets "
        "(e.g., 'Deployment', 'Service')"
    )
    assert (err.file, err.policy, err.document, err.line, err.column) == ("p.yaml", "p", 0, 8, 5)


def test_empty_api_group_is_the_core_group(accept_cel):
    policy = make(audit(rule()))
    core = Policy.from_spec({"resource": {"apiGroup": "", "kind": "Pod"}, "auditRules": []})
    assert validate_policy(policy) == [] and validate_policy(core) == []


@pytest.mark.parametrize("name", ["a", "create-rule", "rule.with.dots", "12345", "a" * 253])
def test_valid_rule_names(accept_cel, name):
    assert validate_policy(make(audit(rule(name)))) == []


@pytest.mark.parametrize(
    "name", ["CreateRule", "create_rule", "rule with spaces", "-start", "end-", "a..b", ".a", "é"]
)
def test_invalid_rule_names(accept_cel, name):
    (err,) = validate_policy(make(audit(rule(name))))
    assert err.path == "spec.auditRules[0].name"
    assert err.message == f'Invalid value: "{name}": {NAME_INVALID_PREFIX}{REGEX_ERROR}'


def test_too_long_name_reports_the_length():
    assert dns1123_subdomain_errors("a" * 254) == ["must be no more than 253 characters"]
    assert dns1123_subdomain_errors("A" * 254) == [
        "must be no more than 253 characters",
        REGEX_ERROR,
    ]
    assert DNS1123_SUBDOMAIN_FMT in REGEX_ERROR


def test_missing_and_empty_fields_are_required(accept_cel):
    policy = make(audit(rule(None, match="", summary=""), rule("")))
    errors = validate_policy(policy)
    assert fields(errors) == [
        "spec.auditRules[0].name",
        "spec.auditRules[0].match",
        "spec.auditRules[0].summary",
        "spec.auditRules[1].name",
    ]
    assert all(e.message.startswith("Required value: ") for e in errors)
    assert "'audit.verb == \"create\"'" in errors[1].message
    assert "{{ actor }} created {{ kind }}" in errors[2].message
    # a missing field is located at its rule
    assert (errors[0].line, errors[0].column) == policy.position("spec.auditRules[0]")


def test_duplicate_names_are_reported_on_the_later_rule(accept_cel):
    policy = make(audit(rule("x"), rule("y"), rule("x"), rule("x")) + event(rule("x"), rule("x")))
    errors = validate_policy(policy)
    assert [(e.path, e.message) for e in errors] == [
        ("spec.auditRules[2].name", 'Duplicate value: "x (conflicts with auditRules[0])"'),
        ("spec.auditRules[3].name", 'Duplicate value: "x (conflicts with auditRules[0])"'),
        ("spec.eventRules[1].name", 'Duplicate value: "x (conflicts with eventRules[0])"'),
    ]
    assert errors[0].line == policy.position("spec.auditRules[2].name")[0]


def test_empty_names_are_not_duplicates(accept_cel):
    errors = validate_policy(make(audit(rule(""), rule(""))))
    assert [e.message.split(":")[0] for e in errors] == ["Required value", "Required value"]


def test_invalid_duplicate_name_gets_both_errors(accept_cel):
    errors = validate_policy(make(audit(rule("X"), rule("X"))))
    assert [e.message.split(":")[0] for e in errors] == [
        "Invalid value",
        "Invalid value",
        "Duplicate value",
    ]


def test_errors_come_in_upstream_order(monkeypatch):
    monkeypatch.setattr("processor.policy.expressions.validate_match", lambda s, t: f"bad {t}")
    monkeypatch.setattr("processor.policy.expressions.validate_summary", lambda s, t: "bad tpl")
    policy = make(audit(rule("A"), rule("A")) + event(rule("")), kind="")
    assert fields(validate_policy(policy)) == [
        "spec.resource.kind",
        "spec.auditRules[0].name",
        "spec.auditRules[0].match",
        "spec.auditRules[0].summary",
        "spec.auditRules[1].name",
        "spec.auditRules[1].match",
        "spec.auditRules[1].summary",
        "spec.auditRules[1].name",
        "spec.eventRules[0].name",
        "spec.eventRules[0].match",
        "spec.eventRules[0].summary",
    ]


def test_cel_validators_get_the_rule_type_and_their_messages_are_invalid_values(monkeypatch):
    calls = []

    def fake_match(source, rule_type):
        calls.append(("match", source, rule_type))
        return "match expression must return a boolean, got string" if "x" in source else None

    def fake_summary(text, rule_type):
        calls.append(("summary", text, rule_type))
        return "error compiling template: missing closing delimiter" if "{{" in text else None

    monkeypatch.setattr("processor.policy.expressions.validate_match", fake_match)
    monkeypatch.setattr("processor.policy.expressions.validate_summary", fake_summary)
    policy = make(audit(rule("a", match="audit.x")) + event(rule("b", summary="{{ x")))
    errors = validate_policy(policy)
    assert calls == [
        ("match", "audit.x", "audit"),
        ("summary", "s", "audit"),
        ("match", "true", "event"),
        ("summary", "{{ x", "event"),
    ]
    assert [(e.path, e.message) for e in errors] == [
        (
            "spec.auditRules[0].match",
            'Invalid value: "audit.x": match expression must return a boolean, got string',
        ),
        (
            "spec.eventRules[0].summary",
            'Invalid value: "{{ x": error compiling template: missing closing delimiter',
        ),
    ]
    assert errors[1].line == policy.position("spec.eventRules[0].summary")[0]


def test_empty_expressions_are_not_sent_to_the_cel_validators(accept_cel):
    validate_policy(make(audit(rule("a", match="", summary=""))))
    assert accept_cel == []


def test_no_rules_is_a_warning_not_an_error(accept_cel):
    policy = make("")
    assert validate_policy(policy) == []
    (warning,) = policy_warnings(policy)
    assert warning.message == NO_RULES_WARNING and warning.path == "spec"
    assert check_policy(policy).ok


def test_preview_spec_paths_are_prefixed(accept_cel):
    spec = {"resource": {"kind": ""}, "eventRules": [{"name": "Bad", "match": "x", "summary": "y"}]}
    policy = Policy.from_spec(spec, spec_path="spec.policy")
    assert fields(validate_policy(policy)) == [
        "spec.policy.resource.kind",
        "spec.policy.eventRules[0].name",
    ]


# --- upstream fixtures (real CEL validation) -----------------------------------------------

INVALID_FIXTURES = {
    "chainsaw-20-existing-policy-without-names__test-policy-mixed-names": [
        ("spec.auditRules[1].name", "Required value")
    ],
    "chainsaw-20-existing-policy-without-names__test-policy-no-audit-name": [
        ("spec.auditRules[0].name", "Required value")
    ],
    "chainsaw-20-existing-policy-without-names__test-policy-no-event-name": [
        ("spec.eventRules[0].name", "Required value")
    ],
    "chainsaw-22-policy-status-with-invalid-cel__test-policy-invalid-cel": [
        ("spec.auditRules[0].match", 'Invalid value: "verb == ": invalid match expression: ')
    ],
    "chainsaw-22-policy-status-with-invalid-cel__test-policy-invalid-template": [
        ("spec.auditRules[0].summary", "error compiling template: missing closing delimiter")
    ],
    "chainsaw-22-policy-status-with-invalid-cel__test-policy-undefined-var": [
        ("spec.auditRules[0].summary", "undeclared reference")
    ],
    "test-duplicate-audit-names__test-duplicate-audit-names": [
        ("spec.auditRules[1].name", 'Duplicate value: "same-name (conflicts with auditRules[0])"')
    ],
    "test-duplicate-event-names__test-duplicate-event-names": [
        ("spec.eventRules[1].name", 'Duplicate value: "same-name (conflicts with eventRules[0])"')
    ],
    "test-edge-case-empty-name__test-edge-case-empty-name": [
        ("spec.auditRules[0].name", "Required value")
    ],
    "test-edge-case-hyphen-end__test-edge-case-hyphen-end": [
        ("spec.auditRules[0].name", REGEX_ERROR)
    ],
    "test-edge-case-too-long__test-edge-case-too-long": [
        ("spec.auditRules[0].name", NAME_INVALID_PREFIX + "must be no more than 253 characters")
    ],
    "test-invalid-name-hyphen-start__test-invalid-name-hyphen-start": [
        ("spec.auditRules[0].name", 'Invalid value: "-create-rule": ' + NAME_INVALID_PREFIX)
    ],
    "test-invalid-name-spaces__test-invalid-name-spaces": [
        ("spec.auditRules[0].name", 'Invalid value: "rule with spaces"')
    ],
    "test-invalid-name-underscores__test-invalid-name-underscores": [
        ("spec.auditRules[0].name", 'Invalid value: "create_rule"')
    ],
    "test-invalid-name-uppercase__test-invalid-name-uppercase": [
        ("spec.auditRules[0].name", 'Invalid value: "CreateRule"')
    ],
    "test-missing-audit-rule-name__test-missing-audit-rule-name": [
        ("spec.auditRules[0].name", "Required value")
    ],
    "test-missing-event-rule-name__test-missing-event-rule-name": [
        ("spec.eventRules[0].name", "Required value")
    ],
}


def fixture_key(path: Path) -> str:
    return path.stem.removeprefix("datum-cloud-activity__")


def test_every_invalid_fixture_exists():
    fixtures = require_shared("real-policies", "test-fixtures")
    present = {fixture_key(p) for p in fixtures.glob("*.yaml")}
    assert set(INVALID_FIXTURES) <= present


@pytest.mark.parametrize("path", corpus_files("test-fixtures"))
def test_upstream_fixture(path):
    (policy,) = load_policies([path])
    errors = validate_policy(policy)
    expected = INVALID_FIXTURES.get(fixture_key(path), [])
    assert [e.path for e in errors] == [p for p, _ in expected], [str(e) for e in errors]
    for err, (_, fragment) in zip(errors, expected, strict=True):
        assert fragment in err.message
        assert err.file == str(path) and err.policy == policy.name and err.line is not None


# --- the production and example corpus (real CEL validation) -------------------------------


@pytest.mark.parametrize("path", corpus_files() + corpus_files("older-versions", recursive=True))
def test_production_policies_are_valid(path):
    for policy in load_policies([path]):
        assert [str(e) for e in validate_policy(policy)] == []
        assert policy.audit_rules or policy.event_rules


@pytest.mark.parametrize("path", corpus_files("docs-examples"))
def test_docs_examples_are_valid_except_for_missing_rule_names(path):
    """Upstream documentation predates required rule names; everything else must validate."""
    for policy in load_policies([path]):
        errors = validate_policy(policy)
        unnamed = [policy.rule_path(r) + ".name" for r in policy.rules if not r.name]
        assert [e.path for e in errors] == unnamed, [str(e) for e in errors]
        assert all(e.message.startswith("Required value: ") for e in errors)
