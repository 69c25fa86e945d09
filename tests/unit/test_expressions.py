"""Validation of match expressions and summary templates with upstream's messages
(docs/design.md#policy-engine-2-5, #policy-engine-3-4)."""

from __future__ import annotations

import pytest

from processor.cel import AUDIT_ENV, EVENT_ENV, FUNCTION_HINT
from processor.policy.expressions import environment, validate_match, validate_summary

AUDIT_HINT = AUDIT_ENV.hint
EVENT_HINT = EVENT_ENV.hint


# -- match (docs/design.md#policy-engine-2-5) ---------------------------------------------------
@pytest.mark.parametrize(
    "src, rule_type",
    [
        ("audit.verb == 'create'", "audit"),
        ("audit.verb in ['create', 'update'] && !has(audit.objectRef.subresource)", "audit"),
        ("audit.responseStatus.code >= 400", "audit"),
        ("kind == 'httpproxies'", "audit"),
        ("actorRef.type == 'serviceaccount'", "audit"),
        ("event.reason == 'Ready' && source.cluster != ''", "event"),
        ("link(actor, actorRef) == actor", "audit"),
        ("true", "audit"),
        ("audit.user.groups.exists(g, g == 'system:masters')", "audit"),
        ("bool(audit.verb == 'x')", "audit"),
        ("actor.matches('[')", "audit"),  # cel-go does not validate regex literals at compile
    ],
)
def test_valid_match(src: str, rule_type: str) -> None:
    assert validate_match(src, rule_type) is None


@pytest.mark.parametrize("src", ["", "   ", "\n\t"])
def test_empty_match(src: str) -> None:
    assert validate_match(src, "audit") == "expression cannot be empty"


@pytest.mark.parametrize(
    "src, got",
    [
        ("audit.verb", "dyn"),
        ("audit.x.enabled", "dyn"),
        ("dyn(true)", "dyn"),
        ("actor", "string"),
        ("1", "int"),
        ("size(actor)", "int"),
        ("[true]", "list(bool)"),
        ("true ? true : audit.verb", "dyn"),
    ],
)
def test_match_must_be_bool(src: str, got: str) -> None:
    assert validate_match(src, "audit") == f"match expression must return a boolean, got {got}"


def test_undeclared_reference_message_lists_what_is_available() -> None:
    message = validate_match("kind == 'pods'", "event")
    assert message == (
        "invalid match expression: ERROR: <input>:1:1: undeclared reference to 'kind' "
        f"(in container ''). {EVENT_HINT}. Also available: {FUNCTION_HINT}"
    )
    for variable in ("event.reason", "actor", "actorRef", "source."):
        assert variable in message


def test_undeclared_reference_in_audit_rules_lists_audit_variables() -> None:
    message = validate_match("request.verb == 'x'", "audit")
    assert message is not None
    assert message.startswith(
        "invalid match expression: ERROR: <input>:1:1: undeclared reference to 'request'"
    )
    assert message.endswith(f"{AUDIT_HINT}. Also available: {FUNCTION_HINT}")
    for variable in ("audit.verb", "audit.objectRef", "actor", "actorRef", "kind"):
        assert variable in message


@pytest.mark.parametrize(
    "src, function",
    [
        ("actor.lowerAscii() == 'x'", "lowerAscii"),
        ("actor.split('@')[0] == 'x'", "split"),
        ("'%s'.format([actor]) == 'x'", "format"),
    ],
)
def test_extension_functions_are_undeclared(src: str, function: str) -> None:
    message = validate_match(src, "audit")
    assert message is not None
    assert message.startswith("invalid match expression: ERROR: <input>:1:")
    assert f"undeclared reference to '{function}' (in container '')" in message
    assert message.endswith(f"Also available: {FUNCTION_HINT}")
    assert "\n" not in message  # only the first line of cel-go's message is kept


def test_no_matching_overload_message() -> None:
    message = validate_match("1 == 1.0", "audit")
    assert message == (
        "invalid match expression: function call error - ERROR: <input>:1:1: "
        "found no matching overload for '_==_' applied to '(int, double)'. "
        f"Available function: {FUNCTION_HINT}"
    )


def test_int_double_literal_equality_rejected_but_dyn_accepted() -> None:
    assert validate_match("201 == 201.0", "audit") is not None
    assert validate_match("audit.responseStatus.code == 201", "audit") is None
    assert validate_match("audit.responseStatus.code == 201.0", "audit") is None


@pytest.mark.parametrize(
    "src, fragment",
    [
        ("audit.verb ==", "Syntax error"),
        ("Foo{a: 1}", "message construction (Type{field: value}) is not supported"),
        (".name == 'x'", "leading-dot names (.name) are not supported"),
        ("has(audit)", "invalid argument to has() macro"),
        ("'\\z' == actor", "invalid escape sequence"),
    ],
)
def test_other_compile_errors(src: str, fragment: str) -> None:
    message = validate_match(src, "audit")
    assert message is not None
    assert message.startswith("invalid match expression: ERROR: <input>:")
    assert fragment in message
    assert "Also available" not in message and "function call error" not in message


# -- summary (docs/design.md#policy-engine-3-4) -------------------------------------------------
@pytest.mark.parametrize(
    "text, rule_type",
    [
        ("{{ actor }} created {{ link(audit.objectRef.name, audit.objectRef) }}", "audit"),
        ("a static summary", "audit"),
        ("", "audit"),
        ("{{ audit.responseStatus.code }}", "audit"),  # dyn is accepted (rendered with %v)
        ("{{ string(size(actor)) }}", "audit"),
        ("{{ true ? size(actor) : audit.verb }}", "audit"),  # a dyn ternary
        ("{{}}", "audit"),  # not a block
        ("{{ a\nb }}", "audit"),  # not a block: stays literal, never compiled
        ("}} {{", "audit"),  # counts equal, order not checked, no block
        ("{{ link(event.regarding.name, event.regarding) }} is {{ event.reason }}", "event"),
        ("{{ source.cluster }}", "event"),
    ],
)
def test_valid_summary(text: str, rule_type: str) -> None:
    assert validate_summary(text, rule_type) is None


@pytest.mark.parametrize(
    "text",
    ["{{ actor", "actor }}", "{{ actor }} }}", "{{ '}}' }}", "{{{{ actor }}", "{{ a }} {{ b"],
)
def test_unbalanced_delimiters(text: str) -> None:
    assert validate_summary(text, "audit") == "error compiling template: missing closing delimiter"


@pytest.mark.parametrize("text", ["{{ }}", "x {{   }} y", "{{ actor }} {{ }}"])
def test_empty_expression_block(text: str) -> None:
    block = text[text.rindex("{{") : text.rindex("}}") + 2]
    assert validate_summary(text, "audit") == f"empty expression in template: {block}"


@pytest.mark.parametrize(
    "text, expr, got",
    [
        ("{{ size(actor) }}", "size(actor)", "int"),
        ("{{\n  size(actor)\n}}", "size(actor)", "int"),  # the trimmed expression is shown
        ("{{ true }}", "true", "bool"),
        ("{{ audit.verb == 'x' }}", "audit.verb == 'x'", "bool"),
        ("{{ [actor] }}", "[actor]", "list(string)"),
        ("{{ 1.5 }}", "1.5", "double"),
        ("{{ null }}", "null", "null_type"),
        ("{{ {'a': actor} }}", "{'a': actor}", "map(string, string)"),
    ],
)
def test_summary_block_must_be_string_or_dyn(text: str, expr: str, got: str) -> None:
    assert validate_summary(text, "audit") == (
        f"expression '{{{{ {expr} }}}}' in summary must return a string, got {got}"
    )


def test_summary_compile_errors_are_rewritten() -> None:
    message = validate_summary("{{ kind }} changed", "event")
    assert message == (
        "invalid summary expression: ERROR: <input>:1:1: undeclared reference to 'kind' "
        f"(in container ''). {EVENT_HINT}. Also available: {FUNCTION_HINT}"
    )
    message = validate_summary("{{ actor + 1 }}", "audit")
    assert message == (
        "invalid summary expression: function call error - ERROR: <input>:1:1: "
        "found no matching overload for '_+_' applied to '(string, int)'. "
        f"Available function: {FUNCTION_HINT}"
    )
    message = validate_summary("{{ has(audit.x) ? size(actor) : 'none' }}", "audit")
    assert message == (
        "invalid summary expression: function call error - ERROR: <input>:1:1: "
        "found no matching overload for '_?_:_' applied to '(bool, int, string)'. "
        f"Available function: {FUNCTION_HINT}"
    )
    message = validate_summary("{{ actor.lowerAscii() }}", "audit")
    assert message is not None and "undeclared reference to 'lowerAscii'" in message


def test_first_problem_is_reported() -> None:
    message = validate_summary("{{ size(actor) }} {{ nope }}", "audit")
    assert message is not None and message.startswith("expression '{{ size(actor) }}'")
    message = validate_summary("{{ nope }} {{ size(actor) }}", "audit")
    assert message is not None and message.startswith("invalid summary expression:")


def test_unknown_rule_type() -> None:
    with pytest.raises(ValueError, match="unknown rule type"):
        environment("webhook")
    with pytest.raises(ValueError):
        validate_match("true", "webhook")
