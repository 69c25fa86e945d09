"""CEL runtime semantics (cel-go v0.27, standard library only): docs/design.md#policy-engine-2-4,
#policy-engine-2-6, #d1.

Data follows the project convention: JSON numbers are Python ``float`` (CEL ``double``), CEL int
literals are ``int`` and ``uint`` is :class:`UInt`.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processor.cel import AUDIT_ENV, EVENT_ENV, compile_expr
from processor.cel.values import TypeValue, UInt
from processor.errors import CelEvalError
from tests.unit.parity import both_plans  # noqa: F401  (runs every test on both plans)

AUDIT: dict[str, Any] = {
    "level": "RequestResponse",
    "verb": "create",
    "stage": "ResponseComplete",
    "objectRef": {
        "resource": "httpproxies",
        "namespace": "default",
        "apiGroup": "networking.datumapis.com",
    },
    "user": {"username": "alice@example.com", "groups": ["system:authenticated", "devs"]},
    "responseStatus": {"metadata": {}, "code": 201.0},
    "requestObject": {},
    "responseObject": {
        "metadata": {"name": "api", "labels": {"k1": "v1", "k2": "v2"}},
        "spec": {"replicas": 3.0, "ratio": 0.5, "hosts": ["a", "b"], "enabled": True},
        "status": None,
    },
}
VARS: dict[str, Any] = {
    "audit": AUDIT,
    "actor": "alice@example.com",
    "actorRef": {"type": "user", "name": "alice@example.com"},
    "kind": "httpproxies",
}
EVENT_VARS: dict[str, Any] = {
    "event": {
        "reason": "Ready",
        "regarding": {"kind": "Domain", "name": "example-com", "namespace": "default"},
    },
    "actor": "domain-controller",
    "actorRef": {"type": "controller", "name": "domain-controller"},
    "source": {"planeType": "", "cluster": "", "region": "", "city": ""},
}


def ev(src: str, variables: dict | None = None, links: list | None = None) -> Any:
    return compile_expr(src, AUDIT_ENV).evaluate(VARS if variables is None else variables, links)


def err(src: str, variables: dict | None = None, links: list | None = None) -> str:
    with pytest.raises(CelEvalError) as info:
        ev(src, variables, links)
    return str(info.value)


def same(actual: Any, expected: Any) -> bool:
    """Equal with the same Python types all the way down (``1`` is not ``1.0`` nor ``True``)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    return bool(actual == expected)


def test_evaluation_does_not_mutate_the_input() -> None:
    before = copy.deepcopy(VARS)
    ev("audit.objectRef.resource == 'httpproxies' && has(audit.objectRef.name) == false")
    ev("[1, 2].map(x, x * 2).size() == 2")
    assert before == VARS


# -- errors as values: && and || absorb them ----------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("false && audit.missing", False),
        ("audit.missing && false", False),
        ("audit.missing || true", True),
        ("true || audit.missing", True),
        ("false && 1 / 0 == 1", False),
        ("1 / 0 == 1 && false", False),
        ("1 / 0 == 1 || true", True),
        ("(audit.missing && false) || true", True),
        ("!(audit.missing && false)", True),
        ("audit.objectRef.name == 'x' && false", False),
        ("has(audit.objectRef.name) && audit.objectRef.name == 'x'", False),
        ("!has(audit.objectRef.name) || audit.objectRef.name == 'x'", True),
    ],
)
def test_logical_operators_absorb_errors(src: str, expected: bool) -> None:
    assert ev(src) is expected


@pytest.mark.parametrize(
    "src, message",
    [
        ("true && audit.missing", "no such key: missing"),
        ("audit.missing && true", "no such key: missing"),
        ("false || audit.missing", "no such key: missing"),
        ("audit.missing || false", "no such key: missing"),
        ("audit.missing && audit.other", "no such key: missing"),  # the left error wins
        ("audit.missing || audit.other", "no such key: missing"),
        ("!audit.missing", "no such key: missing"),
    ],
)
def test_logical_operators_propagate_errors_otherwise(src: str, message: str) -> None:
    assert message in err(src)


def test_logical_operator_on_non_bool_dyn_is_no_such_overload() -> None:
    assert "no such overload" in err("audit.verb && true")
    assert "no such overload" in err("audit.verb || false")
    assert "no such overload" in err("!audit.verb")
    # a non-bool on one side is still absorbed by a decisive other side
    assert ev("audit.verb && false") is False
    assert ev("audit.verb || true") is True


# -- ternary ------------------------------------------------------------------------------------
def test_ternary_propagates_condition_error() -> None:
    assert "no such key: missing" in err("audit.missing ? 'a' : 'b'")
    assert "no such overload" in err("audit.verb ? 'a' : 'b'")  # non-bool condition


def test_ternary_evaluates_only_the_taken_branch() -> None:
    assert ev("true ? 'ok' : audit.missing") == "ok"
    assert ev("false ? audit.missing : 'ok'") == "ok"
    assert ev("has(audit.objectRef.name) ? audit.objectRef.name : 'unnamed'") == "unnamed"
    assert "no such key: missing" in err("false ? 'ok' : audit.missing")


def test_chained_ternary() -> None:
    src = "audit.verb == 'delete' ? 'deleted' : audit.verb == 'create' ? 'created' : 'changed'"
    assert ev(src) == "created"


# -- has() --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("has(audit.objectRef)", True),
        ("has(audit.objectRef.resource)", True),
        ("has(audit.objectRef.name)", False),
        ("has(audit.objectRef.subresource)", False),
        ("has(audit.responseObject.status)", True),  # present with a null value
        ("has(audit.responseObject.spec.replicas)", True),
        ("has(audit.requestObject.spec)", False),
        ("has(actorRef.type)", True),
        ("has({'a': 1}.a)", True),
        ("has({'a': 1}.b)", False),
    ],
)
def test_has_on_present_parent(src: str, expected: bool) -> None:
    assert ev(src) is expected


def test_has_errors_on_missing_parent() -> None:
    # cel-go: has(a.b.c) evaluates a.b first; a missing b is "no such key" (celpy says false).
    assert "no such key: spec" in err("has(audit.requestObject.spec.replicas)")
    assert "no such key: missing" in err("has(audit.missing.x)")


def test_has_on_a_scalar_or_null_parent_is_false() -> None:
    # cel-go's presence test on a value that is not a container finds no field (no error)
    assert ev("has(audit.verb.x)") is False
    assert ev("has(audit.responseObject.status.x)") is False  # null parent
    assert ev("has(audit.responseObject.spec.replicas.x)") is False


def test_has_on_a_list_parent_errors() -> None:
    assert err("has(audit.user.groups.x)") == "unsupported index type 'string' in list"


# -- numbers: JSON numbers are doubles ----------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("audit.responseStatus.code == 201", True),
        ("audit.responseStatus.code == 201.0", True),
        ("audit.responseStatus.code != 201", False),
        ("audit.responseStatus.code >= 400", False),
        ("audit.responseStatus.code < 300", True),
        ("audit.responseStatus.code >= 200 && audit.responseStatus.code < 300", True),
        ("audit.responseStatus.code in [200, 201]", True),
        ("audit.responseStatus.code in [200u, 201u]", True),
        ("audit.responseObject.spec.replicas == 3", True),
        ("audit.responseObject.spec.replicas > 2u", True),
        ("audit.responseObject.spec.ratio < 1", True),
        ("type(audit.responseStatus.code) == double", True),
        ("type(audit.responseStatus.code) == int", False),
        ("int(audit.responseStatus.code) == 201", True),
        ("dyn(1) == 1.0", True),
        ("dyn(1u) == 1", True),
        ("1 < 1.5", True),
        ("2u > 1", True),
        ("1.0 <= 1", True),
    ],
)
def test_doubles_compare_with_int_literals(src: str, expected: bool) -> None:
    assert ev(src) is expected


def test_json_numbers_stay_doubles() -> None:
    assert same(ev("audit.responseStatus.code"), 201.0)
    assert same(ev("audit.responseStatus.code + 1.0"), 202.0)
    assert "no such overload" in err("audit.responseStatus.code + 1")  # double + int: no overload


# -- equality -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src",
    [
        "audit.responseStatus.code == '201'",
        "'201' == audit.responseStatus.code",
        "audit.verb == 1",
        "audit.verb == true",
        "audit.verb == null",
        "null == audit.verb",
        "audit.user.groups == ['system:authenticated']",
        "audit.user.groups == 'devs'",
        "audit.objectRef == {'resource': 'httpproxies'}",
        "audit.objectRef == []",
        "dyn([1, 2]) == ['1', '2']",
        "dyn([1, 2]) == [1, 2, 3]",
        "dyn({'a': 1}) == {'a': '1'}",
        "dyn({'a': 1}) == {'b': 1}",
        "dyn(true) == 1",
        "dyn(b'a') == 'a'",
    ],
)
def test_heterogeneous_equality_is_false_without_error(src: str) -> None:
    assert ev(src) is False
    assert ev(src.replace("==", "!=", 1)) is True


@pytest.mark.parametrize(
    "src",
    [
        "audit.user.groups == ['system:authenticated', 'devs']",
        "audit.responseObject.metadata.labels == {'k2': 'v2', 'k1': 'v1'}",
        "audit.responseObject.status == null",
        "[1, 2.0, 3u] == [1.0, 2, 3]",  # list(dyn): numbers compare by value
        "dyn({'a': 1}) == {'a': 1.0}",
        "{1: 'a'} == {1: 'a'}",
        "b'abc' == b'abc'",
        "[[1], [2]] == [[1], [2]]",
    ],
)
def test_structural_equality(src: str) -> None:
    assert ev(src) is True


# -- in -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("audit.verb in ['create', 'update']", True),
        ("audit.verb in ['delete']", False),
        ("'devs' in audit.user.groups", True),
        ("'ops' in audit.user.groups", False),
        ("'resource' in audit.objectRef", True),
        ("'name' in audit.objectRef", False),
        ("'a' in {'a': 1}", True),
        ("1 in {1: 'x'}", True),
        ("1.0 in dyn({1: 'x'})", True),
        ("2 in [1, 2, 3]", True),
        ("audit.responseStatus.code in dyn(['201'])", False),
        ("[] in [[]]", True),
    ],
)
def test_in_operator(src: str, expected: bool) -> None:
    assert ev(src) is expected


def test_in_on_a_non_container_errors() -> None:
    assert "no such overload" in err("'a' in audit.verb")


# -- strings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("audit.user.username.contains('@')", True),
        ("actor.contains('bob')", False),
        ("actor.contains('')", True),
        ("actor.startsWith('alice')", True),
        ("actor.startsWith('system:')", False),
        ("actor.endsWith('example.com')", True),
        ("actor.endsWith('.org')", False),
        ("actor.matches('^alice@')", True),
        ("actor.matches('example')", True),  # RE2 search, not a full match
        ("actor.matches('^example')", False),
        ("matches(actor, '[a-z]+@[a-z.]+')", True),
        ("'héllo'.matches('^h.llo$')", True),  # . matches one code point
        ("'a' + 'b' == 'ab'", True),
        ("'a' < 'b'", True),
        ("'B' < 'a'", True),
        ("'abc' >= 'abc'", True),
    ],
)
def test_string_functions(src: str, expected: bool) -> None:
    assert ev(src) is expected


def test_string_function_on_non_string_errors() -> None:
    assert "no such overload" in err("audit.responseStatus.code.contains('2')")
    assert "no such overload" in err("actor.startsWith(audit.responseStatus.code)")
    assert "no such overload" in err("audit.user.groups.endsWith('s')")


def test_invalid_regex_errors() -> None:
    with pytest.raises(CelEvalError):
        compile_expr("actor.matches(audit.verb + '[')", AUDIT_ENV).evaluate(VARS)


# -- size ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("size('héllo')", 5),  # code points, not bytes
        ("'日本語'.size()", 3),
        ("size('')", 0),
        ("size(b'h\\xc3\\xa9')", 3),  # bytes count bytes
        ("size(bytes('é'))", 2),
        ("size([1, 2, 3])", 3),
        ("[].size()", 0),
        ("size({'a': 1, 'b': 2})", 2),
        ("size(audit.user.groups)", 2),
        ("size(audit.objectRef)", 3),
        ("audit.user.username.size()", 17),
    ],
)
def test_size(src: str, expected: int) -> None:
    assert same(ev(src), expected)


def test_size_of_a_number_errors() -> None:
    assert "no such overload" in err("size(audit.responseStatus.code)")


# -- type() and type denotations ----------------------------------------------------------------
@pytest.mark.parametrize(
    "src",
    [
        "type(1) == int",
        "type(1u) == uint",
        "type(1.0) == double",
        "type('a') == string",
        "type(b'a') == bytes",
        "type(true) == bool",
        "type(null) == null_type",
        "type([]) == list",
        "type({}) == map",
        "type(audit) == map",
        "type(audit.user.groups) == list",
        "type(audit.responseObject.status) == null_type",
        "type(int) == type",
        "type(type(1)) == type",
        "type(1) != string",
        "type(dyn(1)) == int",
        "type(actor) == type('')",
    ],
)
def test_type_values(src: str) -> None:
    assert ev(src) is True


def test_type_value_result() -> None:
    assert ev("type(actor)") == TypeValue("string")
    assert ev("string") == TypeValue("string")


# -- conversions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("int(42)", 42),
        ("int(42u)", 42),
        ("int(1.9)", 1),  # truncation toward zero
        ("int(-1.9)", -1),
        ("int('-17')", -17),
        ("int('+5')", 5),
        ("int(audit.responseStatus.code)", 201),
        ("int(timestamp('1970-01-01T00:01:00Z'))", 60),
        ("uint(7)", UInt(7)),
        ("uint(7.8)", UInt(7)),
        ("uint('18446744073709551615')", UInt(2**64 - 1)),
        ("double(2)", 2.0),
        ("double(2u)", 2.0),
        ("double('1.5')", 1.5),
        ("double('1e3')", 1000.0),
        ("double('-0.25')", -0.25),
        ("string('x')", "x"),
        ("string(-12)", "-12"),
        ("string(12u)", "12"),
        ("string(true)", "true"),
        ("string(b'abc')", "abc"),
        ("string(audit.responseStatus.code)", "201"),
        ("string(201.5)", "201.5"),
        ("string(1234567.0)", "1.234567e+06"),  # Go 'g', cutoff at exponent 6
        ("string(123456.0)", "123456"),
        ("string(0.0001)", "0.0001"),
        ("string(0.00001)", "1e-05"),
        ("string(1e21)", "1e+21"),
        ("string(-0.5)", "-0.5"),
        ("string(timestamp('2024-01-15T10:30:00.5Z'))", "2024-01-15T10:30:00.5Z"),
        ("string(duration('1h30m'))", "5400s"),
        ("string(duration('1.5s'))", "1.5s"),
        ("bytes('é')", b"\xc3\xa9"),
        ("bytes(b'x')", b"x"),
        ("bool('true')", True),
        ("bool('False')", False),
        ("bool('t')", True),
        ("bool('0')", False),
        ("bool(true)", True),
        ("dyn(1)", 1),
        ("dyn('a')", "a"),
        ("dyn(audit.user.groups)", ["system:authenticated", "devs"]),
    ],
)
def test_conversions(src: str, expected: Any) -> None:
    assert same(ev(src), expected)


@pytest.mark.parametrize(
    "src, message",
    [
        # string parsing fails like Go's strconv (no spaces, digit separators or signs on uint);
        # cel-go's message wording for these is not asserted
        ("int('x')", ""),
        ("int('')", ""),
        ("int('1.5')", ""),
        ("int(' 1')", ""),  # Go's ParseInt: no surrounding spaces
        ("int('1_000')", ""),  # nor digit separators
        ("int('9223372036854775808')", ""),
        ("int(9223372036854775807u + 1u)", "integer overflow"),
        ("int(1e19)", "integer overflow"),
        ("int(-1e19)", "integer overflow"),
        ("int(-9223372036854775808.0)", "integer overflow"),  # cel-go: bound is exclusive
        ("int(double('inf'))", "integer overflow"),
        ("int(double('nan'))", "integer overflow"),
        ("uint(-1)", "unsigned integer overflow"),
        ("uint(-0.5)", "unsigned integer overflow"),
        ("uint(1.8446744073709552e19)", "unsigned integer overflow"),
        ("uint('-1')", ""),
        ("uint('+1')", ""),
        ("uint('18446744073709551616')", ""),
        ("double('x')", ""),
        ("double(' 1.5')", ""),
        ("double('1_0')", ""),
        ("bool('yes')", ""),
        ("bool('')", ""),
        ("string(b'\\xff')", "UTF-8"),
        ("int(audit.verb)", ""),
        ("int(audit.user.groups)", "no such overload"),
        ("string(audit.objectRef)", "no such overload"),
        ("string(audit.responseObject.status)", "no such overload"),
        ("bytes(audit.responseStatus.code)", "no such overload"),
        ("bool(audit.responseStatus.code)", "no such overload"),
        ("double(audit.user.groups)", "no such overload"),
    ],
)
def test_conversion_errors(src: str, message: str) -> None:
    assert message in err(src)


# -- arithmetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("7 / 2", 3),
        ("-7 / 2", -3),  # truncation toward zero (Go), not floor
        ("7 / -2", -3),
        ("-7 / -2", 3),
        ("7 % 3", 1),
        ("-7 % 3", -1),  # the sign of the dividend
        ("7 % -3", 1),
        ("-7 % -3", -1),
        ("7u / 2u", UInt(3)),
        ("7u % 4u", UInt(3)),
        ("7.0 / 2.0", 3.5),
        ("-7.0 / 2.0", -3.5),
        ("1 + 2 * 3 - 4", 3),
        ("(1 + 2) * 3", 9),
        ("-(3)", -3),
        ("--3", 3),
        ("2u * 3u", UInt(6)),
        ("10u - 3u", UInt(7)),
        ("0.1 + 0.2", 0.1 + 0.2),
        ("9223372036854775807 - 1", 2**63 - 2),
        ("-9223372036854775808", -(2**63)),
        ("-9223372036854775807 - 1", -(2**63)),
        ("18446744073709551615u", UInt(2**64 - 1)),
        ("0x10 + 1", 17),
        ("'ab' + 'cd'", "abcd"),
        ("b'ab' + b'cd'", b"abcd"),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("audit.user.groups + ['x']", ["system:authenticated", "devs", "x"]),
        ("1.0 / 0.0", math.inf),
        ("-1.0 / 0.0", -math.inf),
    ],
)
def test_arithmetic(src: str, expected: Any) -> None:
    assert same(ev(src), expected)


def test_double_division_by_zero_nan() -> None:
    assert math.isnan(ev("0.0 / 0.0"))


@pytest.mark.parametrize(
    "src, message",
    [
        ("9223372036854775807 + 1", "integer overflow"),
        ("-9223372036854775807 - 2", "integer overflow"),
        ("9223372036854775807 * 2", "integer overflow"),
        ("-(-9223372036854775807 - 1)", "integer overflow"),
        ("(-9223372036854775807 - 1) / -1", "integer overflow"),
        ("(-9223372036854775807 - 1) % -1", "integer overflow"),
        ("18446744073709551615u + 1u", "unsigned integer overflow"),
        ("0u - 1u", "unsigned integer overflow"),
        ("4294967296u * 4294967296u", "unsigned integer overflow"),
        ("1 / 0", "division by zero"),
        ("1u / 0u", "division by zero"),
        ("1 % 0", "modulus by zero"),
        ("1u % 0u", "modulus by zero"),
        ("audit.verb + 1", "no such overload"),
        ("audit.verb - 'a'", "no such overload"),
        ("audit.responseStatus.code % 2", "no such overload"),
        ("audit.responseStatus.code * 2", "no such overload"),  # double * int: no overload
        ("-audit.verb", "no such overload"),
        ("audit.verb < 1", "no such overload"),
        ("audit.verb > audit.responseStatus.code", "no such overload"),
        ("audit.user.groups < audit.user.groups", "no such overload"),
    ],
)
def test_arithmetic_errors(src: str, message: str) -> None:
    assert message in err(src)


# -- macros -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "src, expected",
    [
        ("[1, 2, 3].all(x, x > 0)", True),
        ("[1, 2, 3].all(x, x > 1)", False),
        ("[].all(x, x > 0)", True),
        ("[1, 2, 3].exists(x, x > 2)", True),
        ("[1, 2, 3].exists(x, x > 3)", False),
        ("[].exists(x, x > 0)", False),
        ("[1, 2, 3].exists_one(x, x > 2)", True),
        ("[1, 2, 3].exists_one(x, x > 1)", False),
        ("[].exists_one(x, true)", False),
        ("audit.user.groups.exists(g, g.startsWith('system:'))", True),
        ("audit.user.groups.all(g, g.startsWith('system:'))", False),
        ("audit.objectRef.all(k, k != 'name')", True),  # maps iterate over keys
        ("audit.objectRef.exists(k, audit.objectRef[k] == 'default')", True),
        ("{'a': 1}.exists_one(k, k == 'a')", True),
        ("[[1, 2], [3]].exists(l, l.all(x, x > 2))", True),
        ("[1, 2].all(x, [3, 4].all(y, y > x))", True),
        ("[1, 2].exists(x, x == 2) && [1, 2].exists(x, x == 1)", True),  # var reused in scope
    ],
)
def test_boolean_macros(src: str, expected: bool) -> None:
    assert ev(src) is expected


@pytest.mark.parametrize(
    "src, expected",
    [
        ("[1, 2, 3].map(x, x * 2)", [2, 4, 6]),
        ("[1, 2, 3].map(x, x > 1, x * 10)", [20, 30]),  # 3-arg map: filter then transform
        ("[1, 2, 3].map(x, x > 5, x)", []),
        ("[1, 2, 3].filter(x, x % 2 == 1)", [1, 3]),
        ("[].map(x, x)", []),
        ("audit.user.groups.map(g, size(g))", [20, 4]),
        ("audit.user.groups.filter(g, g != 'devs')", ["system:authenticated"]),
        ("{'a': 2}.map(k, k + '!')", ["a!"]),  # maps range over keys (order unspecified)
        ("{'b': 1, 'a': 2}.filter(k, k == 'a')", ["a"]),
        ("[1, 2].map(x, [x, x])", [[1, 1], [2, 2]]),
        ("[1, 2, 3].filter(x, x > 1).map(x, x * x)", [4, 9]),
        ("audit.user.groups.map(g, g).size()", 2),
    ],
)
def test_list_macros(src: str, expected: Any) -> None:
    assert same(ev(src), expected)


@pytest.mark.parametrize(
    "src, expected",
    [
        # an error on one element and false on another: the false decides
        ("[0, -1].all(x, 1 / x > 0)", False),
        ("[-1, 0].all(x, 1 / x > 0)", False),
        ("[dyn('a'), dyn(-1)].all(x, x > 0)", False),
        # an error on one element and true on another: the true decides
        ("[0, 1].exists(x, 1 / x > 0)", True),
        ("[1, 0].exists(x, 1 / x > 0)", True),
        ("[dyn('a'), dyn(1)].exists(x, x > 0)", True),
        ("audit.user.groups.exists(g, audit.missing == g || g == 'devs')", True),
    ],
)
def test_all_and_exists_absorb_errors(src: str, expected: bool) -> None:
    assert ev(src) is expected


@pytest.mark.parametrize(
    "src",
    [
        "[0, 1].all(x, 1 / x > 0)",  # error and true: the error stays
        "[0, -1].exists(x, 1 / x > 0)",  # error and false: the error stays
        "[0].all(x, 1 / x > 0)",
        "[0].exists(x, 1 / x > 0)",
        "[0, 1].exists_one(x, 1 / x == 1)",  # exists_one does not absorb
        "[0, 1].map(x, 1 / x)",
        "[0, 1].filter(x, 1 / x == 1)",
        "audit.verb.all(x, true)",  # not a range
        "audit.missing.exists(x, true)",
    ],
)
def test_macro_errors(src: str) -> None:
    err(src)


def test_three_arg_map_transforms_only_filtered_elements() -> None:
    assert same(ev("[1, 0].map(x, x > 0, 1 / x)"), [1])


def test_all_does_not_evaluate_after_a_false() -> None:
    # cel-go stops the loop once the result is decided: later errors are never raised
    assert ev("[-1, 0].all(x, 1 / x > 0)") is False
    assert ev("[1, 0].exists(x, 1 / x > 0)") is True


# -- literals and indexing ----------------------------------------------------------------------
def test_list_and_map_literals() -> None:
    assert same(ev("[1, 'a', true, null, 1.5]"), [1, "a", True, None, 1.5])
    assert same(ev("{'a': 1, 'b': [actor]}"), {"a": 1, "b": ["alice@example.com"]})
    assert same(ev("{1: 'x', 2u: 'y'}"), {1: "x", UInt(2): "y"})
    assert same(ev("{true: 'y'}"), {True: "y"})
    assert same(ev("{'n': {'m': audit.verb}}.n.m"), "create")
    assert same(ev("[]"), [])
    assert same(ev("{}"), {})


def test_map_literal_with_a_repeated_key_errors() -> None:
    assert "repeated key" in err("{'a': 1, 'a': 2}")


@pytest.mark.parametrize(
    "src, expected",
    [
        ("[10, 20, 30][0]", 10),
        ("[10, 20, 30][2]", 30),
        ("audit.user.groups[1]", "devs"),
        ("audit.user.groups[dyn(1u)]", "devs"),
        ("audit.user.groups[dyn(1.0)]", "devs"),
        ("audit['verb']", "create"),
        ("audit['objectRef']['resource']", "httpproxies"),
        ("audit.responseObject.metadata.labels['k1']", "v1"),
        ("{'a': 1}['a']", 1),
        ("{1: 'one'}[1]", "one"),
        ("dyn({1: 'one'})[1.0]", "one"),
        ("dyn({1: 'one'})[1u]", "one"),
        ("{true: 'yes'}[true]", "yes"),
        ("[[1, 2], [3]][0][1]", 2),
    ],
)
def test_indexing(src: str, expected: Any) -> None:
    assert same(ev(src), expected)


@pytest.mark.parametrize(
    "src, message",
    [
        # cel-go's messages (indexes are attribute qualifiers: interpreter/attributes.go)
        ("[10, 20][2]", "index out of bounds: 2"),
        ("[10, 20][-1]", "index out of bounds: -1"),
        ("audit.user.groups[5]", "index out of bounds: 5"),
        ("audit.user.groups[dyn(0.5)]", "unsupported index value 0.5 in list"),
        ("audit.user.groups[dyn('a')]", "unsupported index type 'string' in list"),
        ("audit.user.groups[audit.verb]", "unsupported index type 'string' in list"),
        ("audit['missing']", "no such key: missing"),
        ("{'a': 1}['b']", "no such key: b"),
        ("{1: 'one'}[2]", "no such key: 2"),
        ("audit.verb[0]", "no such key: 0"),
    ],
)
def test_indexing_errors(src: str, message: str) -> None:
    assert message in err(src)


# -- field access -------------------------------------------------------------------------------
def test_field_access() -> None:
    assert ev("audit.objectRef.resource") == "httpproxies"
    assert ev("audit.responseObject.spec.enabled") is True
    assert ev("audit.responseObject.status") is None
    assert ev("actorRef.name") == "alice@example.com"
    assert ev("kind") == "httpproxies"


@pytest.mark.parametrize(
    "src, message",
    [
        ("audit.objectRef.name", "no such key: name"),
        ("audit.responseObject.metadata.namespace", "no such key: namespace"),
        ("audit.requestObject.spec.replicas", "no such key: spec"),  # the first missing key
        ("audit.missing.deeper.still", "no such key: missing"),
        ("{'a': 1}.b", "no such key: b"),
    ],
)
def test_missing_key_errors(src: str, message: str) -> None:
    assert err(src) == message


def test_field_access_on_a_non_map_errors() -> None:
    # cel-go qualifies the attribute: a scalar or null has no such key, a list rejects the name
    assert err("audit.verb.name") == "no such key: name"
    assert err("audit.responseObject.status.name") == "no such key: name"
    assert err("audit.user.groups.name") == "unsupported index type 'string' in list"


def test_event_environment() -> None:
    program = compile_expr(
        "event.reason == 'Ready' && actorRef.type == 'controller' && source.cluster == ''",
        EVENT_ENV,
    )
    assert program.evaluate(EVENT_VARS) is True
    with pytest.raises(CelEvalError, match="no such key: note"):
        compile_expr("event.note", EVENT_ENV).evaluate(EVENT_VARS)


def test_missing_variable_in_activation_errors() -> None:
    with pytest.raises(CelEvalError):
        compile_expr("actor == 'x'", AUDIT_ENV).evaluate({"audit": {}})


# -- timestamps and durations -------------------------------------------------------------------
TS = "timestamp('2024-01-15T10:30:45.123Z')"  # a Monday


@pytest.mark.parametrize(
    "src, expected",
    [
        (f"{TS}.getFullYear()", 2024),
        (f"{TS}.getMonth()", 0),  # 0-based
        (f"{TS}.getDayOfMonth()", 14),  # 0-based
        (f"{TS}.getDate()", 15),  # 1-based
        (f"{TS}.getDayOfWeek()", 1),  # Sunday is 0
        (f"{TS}.getDayOfYear()", 14),
        (f"{TS}.getHours()", 10),
        (f"{TS}.getMinutes()", 30),
        (f"{TS}.getSeconds()", 45),
        (f"{TS}.getMilliseconds()", 123),
        (f"{TS}.getHours('+02:00')", 12),
        (f"{TS}.getHours('-11:00')", 23),
        (f"{TS}.getDate('-11:00')", 14),
        ("duration('1h30m').getHours()", 1),
        ("duration('1h30m').getMinutes()", 90),
        ("duration('90s').getSeconds()", 90),
        ("duration('1.5s').getMilliseconds()", 1500),
        ("int(timestamp('2024-01-15T10:30:00Z'))", 1705314600),
        ("int(duration('1.5s'))", 1_500_000_000),  # nanoseconds
    ],
)
def test_timestamp_and_duration_accessors(src: str, expected: int) -> None:
    assert same(ev(src), expected)


@pytest.mark.parametrize(
    "src",
    [
        f"{TS} + duration('1h') == timestamp('2024-01-15T11:30:45.123Z')",
        f"duration('1h') + {TS} == timestamp('2024-01-15T11:30:45.123Z')",
        f"{TS} - duration('30m45.123s') == timestamp('2024-01-15T10:00:00Z')",
        f"{TS} - timestamp('2024-01-15T10:30:44.123Z') == duration('1s')",
        f"{TS} > timestamp('2024-01-15T10:30:45Z')",
        "timestamp('2024-01-15T12:00:00+02:00') == timestamp('2024-01-15T10:00:00Z')",
        "timestamp('2024-01-15T10:00:00.123456789Z') > timestamp('2024-01-15T10:00:00Z')",
        "duration('1h') == duration('60m')",
        "duration('1h') > duration('59m59s')",
        "duration('-1.5h') == duration('0s') - duration('90m')",
        "duration('-1.5h') == -dyn(duration('90m'))",
        "duration(1500000000) == duration('1.5s')",  # int nanoseconds
        "duration('1h') - duration('30m') == duration('30m')",
        "duration('1ms') < duration('1s')",
        "duration('0') == duration('0s')",
        "timestamp(0) == timestamp('1970-01-01T00:00:00Z')",
        "audit.stage == 'ResponseComplete' && timestamp('2024-01-15T10:00:00Z').getFullYear() > 2",
    ],
)
def test_timestamp_and_duration_operations(src: str) -> None:
    assert ev(src) is True


def test_timestamp_values() -> None:
    ts = ev("timestamp('2024-01-15T12:00:00+02:00')")
    assert ts == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert ev("duration('1m30s')") == timedelta(seconds=90)


@pytest.mark.parametrize(
    "src",
    [
        "timestamp('not a time')",
        "timestamp('2024-01-15')",
        "duration('1x')",
        "duration('')",
        "duration('1')",
        "timestamp(audit.responseStatus.code)",
        "duration(audit.responseStatus.code)",
        f"{TS}.getHours('Not/AZone')",
    ],
)
def test_timestamp_and_duration_errors(src: str) -> None:
    err(src)


# -- link() -------------------------------------------------------------------------------------
def test_link_returns_text_and_collects_in_evaluation_order() -> None:
    links: list = []
    src = (
        "link(actor, actorRef) + ' created ' + "
        "link(audit.objectRef.resource, audit.objectRef) + ' ' + link('again', actorRef)"
    )
    assert ev(src, links=links) == "alice@example.com created httpproxies again"
    assert links == [
        ("alice@example.com", VARS["actorRef"]),
        ("httpproxies", AUDIT["objectRef"]),
        ("again", VARS["actorRef"]),  # no deduplication
    ]


def test_link_on_untaken_branch_records_nothing() -> None:
    links: list = []
    assert ev("true ? 'System' : link(actor, actorRef)", links=links) == "System"
    assert links == []
    assert ev("false ? 'System' : link(actor, actorRef)", links=links) == "alice@example.com"
    assert links == [("alice@example.com", VARS["actorRef"])]


def test_link_short_circuited_operands_record_nothing() -> None:
    links: list = []
    assert ev("false && link('a', actorRef) == 'a'", links=links) is False
    assert ev("true || link('a', actorRef) == 'a'", links=links) is True
    assert links == []


@pytest.mark.parametrize(
    "ref",
    ["'a string'", "null", "audit.user.groups", "[actorRef]", "audit.responseObject.status", "1"],
)
def test_link_with_a_non_map_ref_returns_text_without_link(ref: str) -> None:
    links: list = []
    assert ev(f"link('text', {ref})", links=links) == "text"
    assert links == []


def test_link_with_map_literals() -> None:
    links: list = []
    assert ev("link('x', {})", links=links) == "x"
    assert ev("link('y', {'kind': 'Pod', 'name': actor})", links=links) == "y"
    assert ev("link('z', {'kind': 'Pod', 1: 'dropped'})", links=links) == "z"
    assert links == [
        ("x", {}),  # an empty map still links
        ("y", {"kind": "Pod", "name": "alice@example.com"}),
        ("z", {"kind": "Pod"}),  # non-string keys are dropped
    ]


def test_link_in_a_match_has_no_collector() -> None:
    # A match is evaluated without a collector: link() just returns its text.
    assert ev("link(actor, actorRef) == actor") is True


def test_link_with_a_failing_argument_errors_and_records_nothing() -> None:
    links: list = []
    assert "no such key: missing" in err("link(actor, audit.missing)", links=links)
    assert "no such key: missing" in err("link(audit.missing, actorRef)", links=links)
    assert links == []


def test_link_with_a_dyn_non_string_text_is_no_such_overload() -> None:
    links: list = []
    assert "no such overload" in err("link(audit.responseStatus.code, actorRef)", links=links)
    assert links == []


def test_link_inside_a_macro() -> None:
    links: list = []
    src = "audit.user.groups.map(g, link(g, {'name': g})).size() == 2"
    assert ev(src, links=links) is True
    assert links == [
        ("system:authenticated", {"name": "system:authenticated"}),
        ("devs", {"name": "devs"}),
    ]
