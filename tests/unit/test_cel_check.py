"""The CEL type checker: static result types and cel-go's compile errors
(docs/design.md#policy-engine-2)."""

from __future__ import annotations

import pytest

from processor.cel import AUDIT_ENV, EVENT_ENV, compile_expr
from processor.cel.env import Environment
from processor.errors import CelCompileError, CelEvalError
from tests.unit.parity import both_plans  # noqa: F401  (runs every test on both plans)


def result_type(src: str, env: Environment = AUDIT_ENV) -> str:
    return str(compile_expr(src, env).result_type)


def compile_error(src: str, env: Environment = AUDIT_ENV) -> str:
    with pytest.raises(CelCompileError) as info:
        compile_expr(src, env)
    return str(info.value)


# -- result types -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("audit.verb == 'create'", "bool"),
        ("has(audit.objectRef.name)", "bool"),
        ("!has(audit.objectRef.subresource) && audit.verb in ['create', 'update']", "bool"),
        ("audit.verb", "dyn"),
        ("audit.responseStatus.code", "dyn"),
        ("audit['verb']", "dyn"),
        ("actorRef.name", "dyn"),
        ("actor", "string"),
        ("kind", "string"),
        ("audit", "map(string, dyn)"),
        ("actor + '!'", "string"),
        ("string(audit.responseStatus.code)", "string"),
        ("link(actor, actorRef)", "string"),
        ("size(actor)", "int"),
        ("actor.size()", "int"),
        ("int(audit.responseStatus.code)", "int"),
        ("1 + 2", "int"),
        ("1u + 2u", "uint"),
        ("1.5 * 2.0", "double"),
        ("double(1)", "double"),
        ("b'x'", "bytes"),
        ("null", "null_type"),
        ("dyn(1)", "dyn"),
        ("audit.responseStatus.code + 1", "int"),  # dyn + int picks the int overload's result
        ("[1, 2]", "list(int)"),
        ("['a', actor]", "list(string)"),
        ("[1, 'a']", "list(dyn)"),  # mixed literals join to dyn (no homogeneous-literal option)
        ("[audit.verb]", "list(dyn)"),
        ("{'a': 1}", "map(string, int)"),
        ("{'a': 1, 'b': 'x'}", "map(string, dyn)"),
        ("[1, 2].map(x, x * 2)", "list(int)"),
        ("[1, 2].map(x, string(x))", "list(string)"),
        ("['a'].filter(x, x != '')", "list(string)"),
        ("audit.user.groups.filter(g, g != '')", "list(dyn)"),
        ("[1].all(x, x > 0)", "bool"),
        ("audit.user.groups.exists_one(g, g == 'x')", "bool"),
        ("true ? 'a' : 'b'", "string"),
        ("true ? 'a' : audit.verb", "dyn"),
        ("true ? size(actor) : audit.verb", "dyn"),  # a dyn branch makes the ternary dyn
        ("true ? [1] : [2]", "list(int)"),
        ("timestamp('2024-01-15T10:30:00Z')", "google.protobuf.Timestamp"),
        ("duration('1h')", "google.protobuf.Duration"),
        (
            "timestamp('2024-01-15T10:30:00Z') - timestamp('2024-01-15T10:00:00Z')",
            "google.protobuf.Duration",
        ),
        ("timestamp('2024-01-15T10:30:00Z').getHours()", "int"),
        ("int", "type(int)"),
    ],
)
def test_result_types(src: str, expected: str) -> None:
    assert result_type(src) == expected


def test_event_environment_types() -> None:
    assert result_type("event.reason", EVENT_ENV) == "dyn"
    assert result_type("source.cluster == ''", EVENT_ENV) == "bool"
    assert result_type("actor", EVENT_ENV) == "string"
    assert result_type("link(actor, event.regarding)", EVENT_ENV) == "string"


# -- cel-go error layout ------------------------------------------------------------------------
def test_error_layout_is_cel_gos() -> None:
    message = compile_error("audit.verb == foo")
    assert message == (
        "ERROR: <input>:1:15: undeclared reference to 'foo' (in container '')\n"
        " | audit.verb == foo\n"
        " | ..............^"
    )


def test_error_on_a_later_line() -> None:
    message = compile_error("audit.verb == 'x' &&\n  bar")
    assert message.startswith("ERROR: <input>:2:3: undeclared reference to 'bar'")
    assert message.splitlines()[1] == " |   bar"


# -- undeclared variables -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, env, name",
    [
        ("kind == 'pods'", EVENT_ENV, "kind"),  # no `kind` in event rules
        ("audit.verb == 'create'", EVENT_ENV, "audit"),
        ("event.reason == 'Ready'", AUDIT_ENV, "event"),
        ("source.cluster == ''", AUDIT_ENV, "source"),  # `source` is event-only
        ("request.verb == 'get'", AUDIT_ENV, "request"),
        ("[1].all(x, y > 0)", AUDIT_ENV, "y"),
        ("[1].map(x, x) == [x]", AUDIT_ENV, "x"),  # the macro variable is scoped
    ],
)
def test_undeclared_variables(src: str, env: Environment, name: str) -> None:
    assert f"undeclared reference to '{name}' (in container '')" in compile_error(src, env)


# -- unknown functions: extension libraries are not available ------------------------------------
@pytest.mark.parametrize(
    "src, name",
    [
        ("actor.lowerAscii() == 'x'", "lowerAscii"),
        ("lowerAscii(actor) == 'x'", "lowerAscii"),
        ("actor.upperAscii() == 'X'", "upperAscii"),
        ("actor.split('@').size() > 1", "split"),
        ("'%s'.format([actor]) == ''", "format"),
        ("actor.replace('a', 'b') == ''", "replace"),
        ("actor.trim() == ''", "trim"),
        ("actor.indexOf('@') > 0", "indexOf"),
        ("actor.substring(1) == ''", "substring"),
        ("actor.charAt(0) == 'a'", "charAt"),
        ("['a', 'b'].join(',') == ''", "join"),
        ("[2, 1].sort() == [1, 2]", "sort"),
        ("base64.encode(b'x') == ''", "base64"),
        ("now() > timestamp('2024-01-01T00:00:00Z')", "now"),
        ("[1].all(x, y, x > 0)", "all"),  # two-variable comprehensions are an extension
    ],
)
def test_extension_functions_are_unknown(src: str, name: str) -> None:
    assert f"undeclared reference to '{name}'" in compile_error(src)


# -- overload resolution ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, shown",
    [
        ("1 == 1.0", "'_==_' applied to '(int, double)'"),  # no int/double equality overload
        ("1.0 != 1", "'_!=_' applied to '(double, int)'"),
        ("1 == 1u", "'_==_' applied to '(int, uint)'"),
        ("actor == 1", "'_==_' applied to '(string, int)'"),
        ("actor == null", "'_==_' applied to '(string, null_type)'"),
        ("[1] == [1.0]", "'_==_' applied to '(list(int), list(double))'"),
        ("{'a': 1} == {'a': 'b'}", "'_==_' applied to '(map(string, int), map(string, string))'"),
        ("1 + 1.0", "'_+_' applied to '(int, double)'"),
        ("actor + 1", "'_+_' applied to '(string, int)'"),
        ("[1] + ['a']", "'_+_' applied to '(list(int), list(string))'"),
        ("1 - 1u", "'_-_' applied to '(int, uint)'"),
        ("1.0 % 2.0", "'_%_' applied to '(double, double)'"),
        ("actor < 1", "'_<_' applied to '(string, int)'"),
        ("[1] < [2]", "'_<_' applied to '(list(int), list(int))'"),
        ("1 in ['a']", "'@in' applied to '(int, list(string))'"),
        ("'a' in {1: 'x'}", "'@in' applied to '(string, map(int, string))'"),
        ("actor in actor", "'@in' applied to '(string, string)'"),
        ("size(1)", "'size' applied to '(int)'"),
        ("actor.contains(1)", "'contains' applied to 'string.(int)'"),
        ("matches(actor)", "'matches' applied to '(string)'"),
        ("int([1])", "'int' applied to '(list(int))'"),
        ("string(null)", "'string' applied to '(null_type)'"),
        ("bool(1)", "'bool' applied to '(int)'"),
        ("timestamp(1.5)", "'timestamp' applied to '(double)'"),
        ("link(1, actorRef)", "'link' applied to '(int, map(string, dyn))'"),  # text must be string
        ("link(actor)", "'link' applied to '(string)'"),
        ("link(actor, actorRef, 1)", "'link' applied to '(string, map(string, dyn), int)'"),
        ("!actor", "'!_' applied to '(string)'"),
        ("-actor", "'-_' applied to '(string)'"),
        ("-duration('1h')", "'-_' applied to '(google.protobuf.Duration)'"),
        ("actor && true", "'_&&_' applied to '(string, bool)'"),
        ("false || 1", "'_||_' applied to '(bool, int)'"),
        ("actor ? 1 : 2", "'_?_:_' applied to '(string, int, int)'"),
        ("true ? 1 : 'a'", "'_?_:_' applied to '(bool, int, string)'"),  # branches must agree
        ("true ? [1] : ['a']", "'_?_:_' applied to '(bool, list(int), list(string))'"),
        ("true ? null : 'a'", "'_?_:_' applied to '(bool, null_type, string)'"),
        ("[1, 2][1u]", "'_[_]' applied to '(list(int), uint)'"),  # lists take int indexes only
        ("[1, 2][1.0]", "'_[_]' applied to '(list(int), double)'"),
        ("{'a': 1}[1]", "'_[_]' applied to '(map(string, int), int)'"),
    ],
)
def test_no_matching_overload(src: str, shown: str) -> None:
    assert f"found no matching overload for {shown}" in compile_error(src)


@pytest.mark.parametrize(
    "src",
    [
        "audit.responseStatus.code == 201",  # dyn against int: checked at run time
        "audit.responseStatus.code == '201'",
        "audit.verb == null",
        "null == null",
        "timestamp('2024-01-15T10:30:00Z') != null",  # legacy-nullable in cel-go
        "dyn(1) == 1.0",
        "1 < 1.5",  # ordering has cross-numeric overloads
        "1u <= 2",
        "2.5 > 1u",
        "[1] + [dyn('a')] == [1, 'a']",
        "audit.verb + 1 == 2",
        "audit.user.groups[0] == 'x'",
        "audit.user.groups[dyn(0u)] == 'x'",
        "'x' in audit.user.groups",
        "'x' in audit",
        "size(audit.user.groups) > 0",
        "audit.user.groups.all(g, g != '')",
        "link(audit.verb, actorRef) == ''",  # dyn text type-checks (runtime error if not string)
        "true ? audit.verb : 1",
        "type(actor) == string",
    ],
)
def test_accepted_by_the_checker(src: str) -> None:
    compile_expr(src, AUDIT_ENV)


# -- structural errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, message",
    [
        ("has(actor.x)", "type 'string' does not support field selection"),
        ("actor.name == 'x'", "type 'string' does not support field selection"),
        ("size(actor).x == 1", "type 'int' does not support field selection"),
        ("has(audit)", "invalid argument to has() macro"),
        ("has(audit['verb'])", "invalid argument to has() macro"),
        ("[1].all(1, true)", "argument must be a simple name"),
        ("actor.all(x, true)", "cannot be range of a comprehension"),
        ("[1].all(x, x)", "found no matching overload"),  # predicate must be bool
        ("{[1]: 'a'}", "unsupported map key type"),
    ],
)
def test_structural_errors(src: str, message: str) -> None:
    assert message in compile_error(src)


@pytest.mark.parametrize(
    "src, message",
    [
        ("Foo{a: 1}", "message construction (Type{field: value}) is not supported"),
        ("google.protobuf.Int64Value{value: 1}", "message construction"),
        (".name == 'x'", "leading-dot names (.name) are not supported"),
        (".audit.verb == 'x'", "leading-dot names"),
    ],
)
def test_unsupported_constructs_are_rejected_at_compile_time(src: str, message: str) -> None:
    error = compile_error(src)
    assert error.startswith("ERROR: <input>:1:")
    assert message in error


@pytest.mark.parametrize(
    "src",
    ["audit.verb ==", "audit.verb == 'x", "(audit.verb", "audit..verb", "a b", "1 +* 2", "[1,"],
)
def test_syntax_errors(src: str) -> None:
    error = compile_error(src)
    assert error.startswith("ERROR: <input>:")
    assert "Syntax error" in error


@pytest.mark.parametrize(
    "src",
    [
        "9223372036854775808",
        "18446744073709551616u",
        "'\\z'",  # cel-go rejects unknown escapes (celpy would keep them as text)
        "b'\\q'",
        "'\\x4'",
        "b'\\u0041'",  # no \u escapes in bytes
        "'\\ud800'",  # no surrogate code points
    ],
)
def test_invalid_literals(src: str) -> None:
    compile_error(src)


def test_invalid_literal_regex_is_a_runtime_error() -> None:
    # cel-go's Compile does not validate regex literals; evaluation fails
    program = compile_expr("actor.matches('[')", AUDIT_ENV)
    assert str(program.result_type) == "bool"
    with pytest.raises(CelEvalError, match="regular expression"):
        program.evaluate({"actor": "x"})


def test_compile_is_memoised_and_errors_repeat() -> None:
    assert compile_expr("actor == 'x'", AUDIT_ENV) is compile_expr("actor == 'x'", AUDIT_ENV)
    assert compile_error("nope") == compile_error("nope")
    # the same source in another environment is compiled separately
    assert compile_expr("actor == 'x'", EVENT_ENV) is not compile_expr("actor == 'x'", AUDIT_ENV)
    compile_error("kind == 'x'", EVENT_ENV)
    compile_expr("kind == 'x'", AUDIT_ENV)


@pytest.mark.parametrize(
    "src, expected",
    [
        ("'a\\tb\\n'", "a\tb\n"),
        ("'\\x41\\u00e9\\101\\U0001F600'", "AéA\U0001f600"),
        ("'\\\\d+'", "\\d+"),
        ("r'\\d+'", "\\d+"),  # raw strings keep backslashes
        ("R'\\z'", "\\z"),
        ('"\\"q\\" \'s\'"', "\"q\" 's'"),
        ("'''multi\nline'''", "multi\nline"),
        ("'r'", "r"),
    ],
)
def test_string_literal_escapes(src: str, expected: str) -> None:
    assert compile_expr(src, AUDIT_ENV).evaluate({}) == expected


def test_zero_argument_call_is_a_compile_error_not_a_crash() -> None:
    assert "undeclared reference to 'now'" in compile_error("now()")
    assert "found no matching overload for 'size' applied to '()'" in compile_error("size()")
