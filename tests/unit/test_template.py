"""Summary templates: block syntax, rendering, errors, links (docs/design.md#policy-engine-3-1,
#policy-engine-3-2, #policy-engine-3-3)."""

from __future__ import annotations

from typing import Any

import pytest

from processor.cel import AUDIT_ENV, EVENT_ENV
from processor.errors import TemplateError
from processor.native import Implementation
from processor.policy.template import SummaryTemplate, find_blocks
from tests.unit.parity import both_plans, use_unit  # noqa: F401  (runs every test on both)


@pytest.fixture(autouse=True)
def template_of(both_plans: Implementation, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Every test on the twin's template and plans, then on the native units."""
    use_unit(monkeypatch, __name__, both_plans, "template", ["SummaryTemplate"])


ACTOR_REF = {"type": "user", "name": "alice"}
OBJECT_REF = {"resource": "httpproxies", "name": "api", "namespace": "default"}
VARS: dict[str, Any] = {
    "audit": {
        "verb": "create",
        "objectRef": OBJECT_REF,
        "responseStatus": {"code": 201.0},
        "user": {"username": "alice"},
        "requestObject": {},
        "responseObject": {},
    },
    "actor": "alice",
    "actorRef": ACTOR_REF,
    "kind": "httpproxies",
}


def render(text: str, variables: dict | None = None, links: list | None = None) -> str:
    return SummaryTemplate(text, AUDIT_ENV).render(VARS if variables is None else variables, links)


def render_error(text: str, variables: dict | None = None, links: list | None = None) -> str:
    with pytest.raises(TemplateError) as info:
        render(text, variables, links)
    return str(info.value)


def with_audit(**fields: Any) -> dict:
    return {**VARS, "audit": {**VARS["audit"], **fields}}


# -- block syntax (docs/design.md#policy-engine-3-1) --------------------------------------------
@pytest.mark.parametrize(
    "text, expressions",
    [
        ("{{ actor }}", ["actor"]),
        ("{{actor}}", ["actor"]),
        ("hi {{ actor }}!", ["actor"]),
        ("{{ a }}{{ b }}", ["a", "b"]),  # adjacent blocks
        ("{{ a }} and {{ b }}", ["a", "b"]),
        ("{{ '}}' }}", ["'"]),  # non-greedy: the block ends at the first }}
        ("{{ {'a': {'b': 'c'}}.a.b }}", ["{'a': {'b': 'c'"]),
        ("{{ {'a': 'b'}['a'] }}", ["{'a': 'b'}['a']"]),  # a single } is not an end
        ("{{{ actor }}}", ["{ actor"]),
        ("{{ a\nb }}", []),  # a newline inside the expression: no block, stays literal
        ("{{ a\nb }} {{ c }}", ["c"]),
        ("{{ x\n }}", ["x"]),  # whitespace around the expression, newlines included, is absorbed
        ("{{\n\t x \r\n}}", ["x"]),
        ("{{}}", []),  # nothing between: not a block
        ("{{}} {{ actor }}", ["}} {{ actor"]),  # ... but the next }} can still close it (RE2 too)
        ("{{ }}", [""]),  # a block whose expression trims to empty
        ("{{   }}", [""]),
        ("{{ \u00a0actor }}", ["actor"]),  # the capture is TrimSpace'd (Unicode whitespace)
        ("{{ actor", []),
        ("actor }}", []),
        ("}} {{", []),
        ("{{ a }} }}", ["a"]),
        ("{{ {{ a }}", ["{{ a"]),  # leftmost-first: the first {{ opens the block
    ],
)
def test_find_blocks(text: str, expressions: list[str]) -> None:
    assert [b.expression for b in find_blocks(text)] == expressions


def test_block_positions_and_text() -> None:
    text = "x {{  a  }} y {{b}}"
    blocks = find_blocks(text)
    assert [(b.text, b.start, b.end) for b in blocks] == [("{{  a  }}", 2, 11), ("{{b}}", 14, 19)]
    assert all(text[b.start : b.end] == b.text for b in blocks)


# -- rendering (docs/design.md#policy-engine-3-2) -----------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("{{ actor }} created {{ audit.objectRef.name }}", "alice created api"),
        ("{{actor}}{{kind}}", "alicehttpproxies"),
        ("[{{ actor }}]", "[alice]"),
        ("{{\n  actor\n}}", "alice"),
        ("{{ a\nb }} {{ actor }}", "{{ a\nb }} alice"),
        ("{{}} and {{ a\nb }}: {{ actor }}", "{{}} and {{ a\nb }}: alice"),
        ("{{ actor }} }}", "alice }}"),  # runtime does no balance check
        ("{{ actor }} {{ kind", "alice {{ kind"),
        ("{{ {'a': 'b'}['a'] }}", "b"),
        ("{{ audit.verb == 'create' ? 'made' : 'changed' }} by {{ actor }}", "made by alice"),
        ("{{ 'x' + \"y\" }}", "xy"),
    ],
)
def test_render(text: str, expected: str) -> None:
    assert render(text) == expected


def test_output_is_not_rescanned() -> None:
    variables = {**VARS, "actor": "{{ kind }}"}
    assert render("{{ actor }} did it", variables) == "{{ kind }} did it"


def test_static_template_is_returned_unchanged_without_links() -> None:
    for text in ["a static summary", "", "{{}}", "{{ a\nb }}", "unbalanced {{ here", "}} {{"]:
        links: list = []
        template = SummaryTemplate(text, AUDIT_ENV)
        assert template.valid
        assert template.render(VARS, links) == text
        assert links == []
        assert template.render({}, None) == text  # no variables are needed


def test_links_are_collected_in_evaluation_order_across_blocks() -> None:
    links: list = []
    text = (
        "{{ link(actor, actorRef) }} created {{ link(audit.objectRef.name, audit.objectRef) }}"
        " ({{ link('again', actorRef) }})"
    )
    assert render(text, links=links) == "alice created api (again)"
    assert links == [("alice", ACTOR_REF), ("api", OBJECT_REF), ("again", ACTOR_REF)]


def test_untaken_branch_records_no_link() -> None:
    links: list = []
    text = "{{ actor.startsWith('system:') ? 'System' : link(actor, actorRef) }}"
    assert render(text, links=links) == "alice"
    assert links == [("alice", ACTOR_REF)]
    links.clear()
    system = {**VARS, "actor": "system:kube-scheduler"}
    assert render(text, system, links) == "System"
    assert links == []


def test_link_with_non_map_ref_renders_text_only() -> None:
    links: list = []
    assert render("{{ link(actor, 'nope') }} {{ link(kind, null) }}", links=links) == (
        "alice httpproxies"
    )
    assert links == []


def test_render_without_a_collector() -> None:
    assert render("{{ link(actor, actorRef) }}", links=None) == "alice"


# -- %v rendering (docs/design.md#policy-engine-3-3) --------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        (201.0, "201"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.5, "0.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (201.5, "201.5"),
        (True, "true"),
        (False, "false"),
        (None, "NULL_VALUE"),
        (["a", "b"], "[a b]"),
        ({"k2": "v2", "k1": "v1"}, "map[k1:v1 k2:v2]"),
        ("text", "text"),
    ],
)
def test_percent_v_rendering_of_dyn_values(value: Any, expected: str) -> None:
    assert render("{{ audit.v }}", with_audit(v=value)) == expected
    assert render("code {{ audit['v'] }}.", with_audit(v=value)) == f"code {expected}."


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{{ true ? size(actor) : audit.verb }}", "5"),  # an int inside a dyn ternary
        ("{{ has(audit.x) ? audit.verb : int(audit.responseStatus.code) }}", "201"),
        ("{{ true ? 1u : audit.verb }}", "1"),
        ("{{ string(audit.responseStatus.code) }}", "201"),
        ("{{ string(1234567.0) }}", "1.234567e+06"),
        ("{{ audit.responseStatus.code }}", "201"),
        ("{{ dyn([1, 'a', true]) }}", "[1 a true]"),
    ],
)
def test_percent_v_rendering_of_expressions(text: str, expected: str) -> None:
    assert render(text) == expected


# -- errors (docs/design.md#policy-engine-3-2) --------------------------------------------------
def test_error_message_for_one_failed_block() -> None:
    message = render_error("{{ actor }} touched {{ audit.objectRef.uid }}")
    assert (
        message
        == 'summary template evaluation failed: eval "audit.objectRef.uid": no such key: uid'
    )


def test_every_block_is_evaluated_and_errors_are_joined() -> None:
    links: list = []
    text = "{{ audit.a }} {{ link(actor, actorRef) }} {{ audit.b }} {{ 1 / 0 == 1 ? 'x' : 'y' }}"
    message = render_error(text, links=links)
    assert message == (
        "summary template evaluation failed: "
        'eval "audit.a": no such key: a\n'
        'eval "audit.b": no such key: b\n'
        "eval \"1 / 0 == 1 ? 'x' : 'y'\": division by zero"
    )
    assert links == [("alice", ACTOR_REF)]  # the blocks after a failure still ran


def test_expression_in_error_is_go_quoted() -> None:
    message = render_error('{{ audit["missing"] }}')
    assert message == (
        'summary template evaluation failed: eval "audit[\\"missing\\"]": no such key: missing'
    )


def test_runtime_type_error_message() -> None:
    message = render_error("{{ audit.verb + 1 }}")
    assert message.startswith('summary template evaluation failed: eval "audit.verb + 1": ')
    assert "no such overload" in message


def test_compile_error_block_fails_at_render() -> None:
    template = SummaryTemplate("{{ actor }} {{ nope }}", AUDIT_ENV)
    assert not template.valid
    assert "undeclared reference to 'nope'" in template.errors[0]
    with pytest.raises(TemplateError) as info:
        template.render(VARS)
    message = str(info.value)
    assert message.startswith('summary template evaluation failed: compile "nope": ')
    assert "undeclared reference to 'nope'" in message


def test_cut_short_expression_is_a_compile_error() -> None:
    template = SummaryTemplate("{{ {'a': {'b': 'c'}}.a.b }}", AUDIT_ENV)
    assert not template.valid
    with pytest.raises(TemplateError, match="compile"):
        template.render(VARS)


def test_empty_block_is_invalid() -> None:
    template = SummaryTemplate("hello {{ }}", AUDIT_ENV)
    assert template.errors == ["empty expression in template: {{ }}"]
    with pytest.raises(TemplateError):
        template.render(VARS)


def test_event_template() -> None:
    variables = {
        "event": {"reason": "Ready", "regarding": {"kind": "Domain", "name": "example-com"}},
        "actor": "domain-controller",
        "actorRef": {"type": "controller", "name": "domain-controller"},
        "source": {"planeType": "", "cluster": "", "region": "", "city": ""},
    }
    links: list = []
    template = SummaryTemplate(
        "{{ link(event.regarding.name, event.regarding) }} is {{ event.reason }}", EVENT_ENV
    )
    assert template.render(variables, links) == "example-com is Ready"
    assert links == [("example-com", variables["event"]["regarding"])]
    assert not SummaryTemplate("{{ kind }}", EVENT_ENV).valid


def test_template_is_reusable_and_does_not_keep_state() -> None:
    template = SummaryTemplate("{{ link(actor, actorRef) }}", AUDIT_ENV)
    first: list = []
    second: list = []
    assert template.render(VARS, first) == "alice"
    assert template.render({**VARS, "actor": "bob"}, second) == "bob"
    assert first == [("alice", ACTOR_REF)]
    assert second == [("bob", ACTOR_REF)]
