"""Static analysis of expressions: body paths read (lazy bodies) and guards (rule pre-dispatch)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from processor.cel import AUDIT_ENV, EVENT_ENV, compile_expr
from processor.cel.needs import PRESENT, WHOLE, Guard, body_needs, guards, merge_need
from processor.engine import RuleTable, compile_rule
from processor.errors import CelEvalError
from processor.policy.model import Rule
from processor.records import jsonscan


def needs(*sources: str) -> dict[str, Any]:
    return body_needs(compile_expr(s, AUDIT_ENV).node for s in sources)


def test_paths_presence_and_whole_bodies() -> None:
    assert needs("audit.verb == 'create'") == {}
    assert needs("audit.responseObject.metadata.name == 'x'") == {
        "responseObject": {"metadata": {"name": WHOLE}}
    }
    assert needs("has(audit.requestObject.spec)") == {"requestObject": {"spec": PRESENT}}
    assert needs("has(audit.requestObject.spec)", "audit.requestObject.spec.replicas > 1.0") == {
        "requestObject": {"spec": {"replicas": WHOLE}}
    }
    assert needs("audit.responseObject.metadata.labels['a'] == 'b'") == {
        "responseObject": {"metadata": {"labels": WHOLE}}
    }
    assert needs("size(audit.responseObject) > 0") == {"responseObject": WHOLE}
    assert needs("size(audit) > 0") == {"requestObject": WHOLE, "responseObject": WHOLE}
    assert needs("[1].exists(audit, audit == 1)") == {
        "requestObject": WHOLE,
        "responseObject": WHOLE,
    }


def test_merge_need() -> None:
    assert merge_need(None, PRESENT) == PRESENT
    assert merge_need(PRESENT, {"a": WHOLE}) == {"a": WHOLE}
    assert merge_need({"a": PRESENT}, {"a": {"b": WHOLE}, "c": WHOLE}) == {
        "a": {"b": WHOLE},
        "c": WHOLE,
    }
    assert merge_need({"a": WHOLE}, WHOLE) == WHOLE


BODY = {
    "metadata": {"name": "web", "labels": {"a": "b"}, "uid": "u", "generation": 2},
    "spec": {"replicas": 3, "list": [1, {"x": 1}]},
    "status": "text",
}
EXPRESSIONS = [
    "audit.responseObject.metadata.name",
    "audit.responseObject.metadata.missing",
    "has(audit.responseObject.spec)",
    "has(audit.responseObject.nope)",
    "audit.responseObject.spec.list[1].x",
    "audit.responseObject.status.deeper",
    "has(audit.responseObject.status.deeper)",
    "audit.responseObject.metadata.generation + 1.0",
    "size(audit.responseObject.metadata.labels)",
    "type(audit.responseObject.spec) == map",
    "type(audit.responseObject.status) == string",
    "link('a', audit.responseObject.metadata)",
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_a_pruned_body_evaluates_like_the_whole_body(source: str) -> None:
    buf = orjson.dumps(BODY)
    need = needs(source)["responseObject"]
    pruned = jsonscan.prune(buf, 0, len(buf), need, orjson.loads)
    full = jsonscan.floatify(orjson.loads(buf))
    program = compile_expr(source, AUDIT_ENV)

    def run(body: Any) -> Any:
        try:
            return program.evaluate({"audit": {"responseObject": body}, "actor": ""})
        except CelEvalError as exc:
            return f"error: {exc}"

    assert run(pruned) == run(full)
    assert pruned != full  # something was left out


def test_guards() -> None:
    node = compile_expr(
        "audit.verb in ['update', 'patch'] && (has(audit.requestObject.spec) && "
        "audit.objectRef.subresource == 'scale')",
        AUDIT_ENV,
    ).node
    assert guards(node) == (
        Guard("verb", frozenset({"update", "patch"})),
        Guard("subresource", frozenset({"scale"})),
    )
    assert guards(compile_expr("!has(audit.objectRef.subresource)", AUDIT_ENV).node) == (
        Guard("subresource", frozenset(), absent=True),
    )
    assert guards(compile_expr("'Ready' == event.reason", EVENT_ENV).node) == (
        Guard("reason", frozenset({"Ready"})),
    )
    assert guards(
        compile_expr("actorRef.type == 'user' && audit.verb == 'get'", AUDIT_ENV).node
    ) == (Guard("actor", frozenset({"user"})), Guard("verb", frozenset({"get"})))
    assert guards(compile_expr("actorRef.type in ['user', 'serviceaccount']", AUDIT_ENV).node) == (
        Guard("actor", frozenset({"user", "serviceaccount"})),
    )
    # the name is not a guard field (only the type is known from the username this cheaply)
    assert guards(compile_expr("actorRef.name == 'alice'", AUDIT_ENV).node) == ()
    # a guard under || is not a conjunct of the match
    assert guards(compile_expr("audit.verb == 'a' || audit.verb == 'b'", AUDIT_ENV).node) == ()


def rule(index: int, match: str, rule_type: str = "audit") -> Any:
    return compile_rule(Rule(rule_type=rule_type, index=index, name="", match=match, summary="s"))


def test_rule_table_selects_rules_that_may_match() -> None:
    table = RuleTable(
        [
            rule(0, "audit.verb == 'create'"),
            rule(1, "audit.verb in ['update', 'patch'] && audit.objectRef.subresource == 'scale'"),
            rule(2, "audit.verb == 'patch' && !has(audit.objectRef.subresource)"),
            rule(3, "audit.responseStatus.code >= 400"),
        ]
    )

    def picked(verb: str, sub: str | None) -> list[int]:
        return [r.rule.index for r in table.select(verb, sub)]

    assert picked("create", None) == [0, 3]
    assert picked("patch", None) == [1, 2, 3]  # absent subresource: '==' errors, rule 1 kept
    assert picked("patch", "scale") == [1, 3]
    assert picked("patch", "status") == [3]
    assert picked("get", None) == [3]
    people = RuleTable(
        [
            rule(0, "audit.verb == 'get' && actorRef.type == 'user'"),
            rule(1, "actorRef.type in ['serviceaccount', 'system']"),
        ]
    )

    def acting(verb: str, actor: str | None) -> list[int]:
        return [r.rule.index for r in people.select(verb, None, None, actor)]

    assert acting("get", "user") == [0]
    assert acting("get", "system") == [1]
    assert acting("list", "user") == []
    assert acting("get", "unknown") == []
    assert acting("get", None) == [0, 1]  # actor not known: every rule kept
    events = RuleTable([rule(0, "event.reason == 'Ready'", "event"), rule(1, "true", "event")])
    assert [r.rule.index for r in events.select(None, None, "Ready")] == [0, 1]
    assert [r.rule.index for r in events.select(None, None, None)] == [1]


def test_link_and_type_need_little() -> None:
    got = needs("link('x', audit.responseObject) != '' && type(audit.requestObject) == map")
    assert got["requestObject"] == {}
    assert set(got["responseObject"]) >= {"kind", "apiVersion", "name", "metadata"}
    assert got["responseObject"]["metadata"] == {"name": WHOLE, "namespace": WHOLE, "uid": WHOLE}
