"""CEL filter -> SQL: every operator and field, rejected constructs, and a structure fuzz test."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.query.errors import FilterError
from processor.query.filter import compile_filter
from processor.query.params import Params, escape_text, quote_text
from processor.query.selectors import compile_selector
from processor.query.sql import render
from processor.query.tables import ACTIVITIES, AUDIT_LOGS, K8S_EVENTS, TABLES, Table


def sql(source: str, table: Table = ACTIVITIES) -> tuple[str, dict[str, str]]:
    expr = compile_filter(source, table)
    assert expr is not None
    params = Params()
    return render(expr, params), params.values


@pytest.mark.parametrize(
    ("source", "expected", "values"),
    [
        ("spec.actor.name == 'a'", "(actor_name = {p0:String})", {"p0": "a"}),
        ("spec.actor.name != 'a'", "(actor_name != {p0:String})", {"p0": "a"}),
        ("spec.actor.name < 'a'", "(actor_name < {p0:String})", {"p0": "a"}),
        ("spec.actor.name <= 'a'", "(actor_name <= {p0:String})", {"p0": "a"}),
        ("spec.actor.name > 'a'", "(actor_name > {p0:String})", {"p0": "a"}),
        ("spec.actor.name >= 'a'", "(actor_name >= {p0:String})", {"p0": "a"}),
        ("'a' == spec.actor.name", "({p0:String} = actor_name)", {"p0": "a"}),
        (
            "spec.actor.name == 'a' && spec.changeSource == 'human'",
            "((actor_name = {p0:String}) AND (change_source = {p1:String}))",
            {"p0": "a", "p1": "human"},
        ),
        (
            "spec.actor.name == 'a' || !(spec.changeSource == 'human')",
            "((actor_name = {p0:String}) OR (NOT (change_source = {p1:String})))",
            {"p0": "a", "p1": "human"},
        ),
        (
            "spec.resource.kind in ['Pod', 'Deployment']",
            "(resource_kind IN {p0:Array(String)})",
            {"p0": "['Pod','Deployment']"},
        ),
        ("spec.resource.kind in []", "0", {}),
        ("spec.summary.startsWith('x')", "startsWith(summary, {p0:String})", {"p0": "x"}),
        ("spec.summary.endsWith('x')", "endsWith(summary, {p0:String})", {"p0": "x"}),
        ("spec.summary.contains('x')", "(position(summary, {p0:String}) > 0)", {"p0": "x"}),
        ("true", "1", {}),
        ("!false", "(NOT 0)", {}),
        (
            "metadata.creationTimestamp >= timestamp('2026-01-01T00:00:00.123456789+01:00')",
            "(timestamp >= {p0:DateTime64(9, 'UTC')})",
            {"p0": "2025-12-31 23:00:00.123456789"},
        ),
    ],
)
def test_operators(source: str, expected: str, values: dict[str, str]) -> None:
    assert sql(source) == (expected, values)


def test_audit_numbers_uuids_times() -> None:
    assert sql("responseStatus.code >= 400", AUDIT_LOGS) == (
        "(status_code >= {p0:Int64})",
        {"p0": "400"},
    )
    assert sql("responseStatus.code in [200, 201.5, -1]", AUDIT_LOGS) == (
        "(status_code IN {p0:Array(Float64)})",
        {"p0": "[200,201.5,-1]"},
    )
    assert sql("responseStatus.code < 5u", AUDIT_LOGS)[1] == {"p0": "5"}
    uid = "0b9b1a9c-1f4e-4c4b-9c1e-1a2b3c4d5e6f"
    assert sql(f"auditID == '{uid}'", AUDIT_LOGS) == ("(audit_id = {p0:UUID})", {"p0": uid})
    assert sql(f"auditID in ['{uid}']", AUDIT_LOGS)[0] == "(audit_id IN {p0:Array(UUID)})"
    assert sql("auditID.startsWith('0b9b')", AUDIT_LOGS)[0] == (
        "startsWith(toString(audit_id), {p0:String})"
    )
    assert sql("requestReceivedTimestamp < timestamp('2026-01-01T00:00:00Z')", AUDIT_LOGS)[0] == (
        "(timestamp < {p0:DateTime64(9, 'UTC')})"
    )


@pytest.mark.parametrize("table", list(TABLES.values()), ids=list(TABLES))
def test_every_field(table: Table) -> None:
    for path, column in table.fields.items():
        literal = {
            "string": "'v'",
            "uuid": "'0b9b1a9c-1f4e-4c4b-9c1e-1a2b3c4d5e6f'",
            "int": "1",
            "time": "timestamp('2026-01-01T00:00:00Z')",
        }[column.kind]
        text, _ = sql(f"{path} == {literal}", table)
        assert text.startswith(f"({column.name} = {{p0:")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("spec.summary.matches('a.*')", "function matches()"),
        ("size(spec.summary) > 1", "function size()"),
        ("int(spec.actor.name) == 1", "function int()"),
        ("string(1) == spec.actor.name", "function string()"),
        ("duration('1h') == duration('1h')", "function duration()"),
        ("spec.actor.name + 'x' == 'ax'", "operator '+'"),
        ("1 - 1 == 0", "operator '-'"),
        ("1 * 1 == 1", "operator '*'"),
        ("1 / 1 == 1", "operator '/'"),
        ("1 % 1 == 0", "operator '%'"),
        ("-spec.actor.name == 'a'", "unary minus"),
        ("(true ? 'a' : 'b') == spec.actor.name", "conditional operator"),
        ("spec['actor'] == 'a'", "index operator"),
        ("{'a': 1} == {'a': 1}", "map literal"),
        ("['a'] == ['a']", "list literal outside 'in'"),
        ("has(spec.actor)", "has() macro"),
        ("[1].exists(x, x == 1)", "exists() macro"),
        ("[1].all(x, x == 1)", "all() macro"),
        ("[1].exists_one(x, x == 1)", "exists_one() macro"),
        ("[1].map(x, x) == [1]", "map() macro"),
        ("[1].filter(x, x == 1) == [1]", "filter() macro"),
        ("spec.actor.name == null", "null_type literal"),
        ("spec.actor.name == b'a'", "bytes literal"),
        ("spec.actor.name in spec.actor.uid", "must be a list literal"),
        ("spec.actor.name in [spec.actor.uid]", "must be literals"),
        ("spec.actor.name == 1", "cannot compare spec.actor.name (string) with a int literal"),
        ("spec.actor.name == true", "bool literal can only stand alone"),
        ("spec.actor.name", "not a condition"),
        ("'a'", "not a condition"),
        ("spec.actor.email == 'a'", "'spec.actor.email' is not available"),
        ("spec.foo.bar == 'a'", "'spec.foo.bar' is not available"),
        ("spec == 'a'", "must be accessed with dot notation"),
        ("metadata.creationTimestamp > '2024-01-01'", "cannot compare"),
        ("metadata.creationTimestamp > timestamp('yesterday')", "invalid RFC3339"),
        ("metadata.creationTimestamp > timestamp(spec.summary)", "one RFC3339 string literal"),
        ("spec.summary.contains(spec.actor.name)", "must be a string literal"),
        ("spec.summary.startsWith('a', 'b')", "takes the form"),
        ("spec.actor.name ==", "invalid filter"),
        ("Foo{a: 1}", "invalid filter"),
    ],
)
def test_rejected(source: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        compile_filter(source, ACTIVITIES)
    assert message in str(err.value)
    if "not supported" in str(err.value):
        assert "Supported: field paths" in str(err.value)


def test_audit_rejections() -> None:
    with pytest.raises(FilterError, match="compared with a UUID"):
        compile_filter("auditID == 'nope'", AUDIT_LOGS)
    with pytest.raises(FilterError, match="operator < is not supported on auditID"):
        compile_filter("auditID < '0b9b1a9c-1f4e-4c4b-9c1e-1a2b3c4d5e6f'", AUDIT_LOGS)
    with pytest.raises(FilterError, match="needs a string, got int"):
        compile_filter("responseStatus.code.startsWith('4')", AUDIT_LOGS)
    with pytest.raises(FilterError, match="Available fields: auditID, verb"):
        compile_filter("user.groups == 'x'", AUDIT_LOGS)


def test_empty_filter_and_limits() -> None:
    assert compile_filter("", ACTIVITIES) is None
    assert compile_filter("  \n", ACTIVITIES) is None
    deep = " || ".join(["spec.actor.name == 'a'"] * 800)
    with pytest.raises(FilterError, match=r"nested too deeply|more than"):
        compile_filter(deep, ACTIVITIES)
    wide = "spec.actor.name in [" + ", ".join(["'a'"] * 2100) + "]"
    with pytest.raises(FilterError, match="more than 2000 terms"):
        compile_filter(wide, ACTIVITIES)
    assert compile_filter(" || ".join(["spec.actor.name == 'a'"] * 50), ACTIVITIES) is not None


def test_field_selectors() -> None:
    expr = compile_selector("type=Warning, regarding.kind==Pod,reason!=Started", K8S_EVENTS)
    assert expr is not None
    params = Params()
    assert render(expr, params) == (
        "(((type = {p0:String}) AND (regarding_kind = {p1:String})) AND (reason != {p2:String}))"
    )
    assert params.values == {"p0": "Warning", "p1": "Pod", "p2": "Started"}
    assert compile_selector(" ", K8S_EVENTS) is None
    with pytest.raises(FilterError, match=r"unsupported field selector: foo\. Supported"):
        compile_selector("foo=bar", K8S_EVENTS)
    with pytest.raises(FilterError, match="expected field=value"):
        compile_selector("type", K8S_EVENTS)


def test_param_encoding() -> None:
    assert escape_text("a\\b\tc\nd'e") == "a\\\\b\\tc\\nd'e"
    assert quote_text("it's\\") == "'it\\'s\\\\'"


# --- fuzz: no filter text can change the SQL structure --------------------------------------


def cel_quote(text: str) -> str:
    """A CEL double-quoted string literal for any text."""
    out = []
    for ch in text:
        if ch.isalnum() or (ch.isprintable() and ch not in "\\\"'" and ord(ch) < 0x7F):
            out.append(ch)
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


TEMPLATES = [
    "spec.actor.name == {0}",
    "spec.resource.kind in [{0}, {1}] && spec.changeSource != {1}",
    "!spec.summary.contains({0}) || spec.actor.uid.endsWith({1})",
    "spec.resource.name.startsWith({0}) && metadata.name >= {1}",
]
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(template=st.sampled_from(TEMPLATES), a=_TEXT, b=_TEXT)
def test_values_never_change_structure(template: str, a: str, b: str) -> None:
    baseline, _ = sql(template.format('"x"', '"y"'))
    text, values = sql(template.format(cel_quote(a), cel_quote(b)))
    assert text == baseline
    assert a not in text or a in baseline or not a.strip()
    encoded = {escape_text(a), escape_text(b), quote_text(a), quote_text(b)}
    assert any(enc in v for v in values.values() for enc in encoded)


_ALLOWED_WORDS = {c.name for t in TABLES.values() for c in t.fields.values()} | {
    "AND",
    "OR",
    "NOT",
    "IN",
    "position",
    "startsWith",
    "endsWith",
    "toString",
}
_TOKEN = re.compile(
    r"\s+|[(),]|=|!=|<=|>=|<|>|\b[01]\b|[A-Za-z_]+"
    r"|\{p\d+:(?:String|Int64|Float64|UUID|DateTime64\(9, 'UTC'\)"
    r"|Array\((?:String|Int64|Float64|UUID|DateTime64\(9, 'UTC'\))\))\}"
)
_PIECES = st.sampled_from(
    [
        "spec.actor.name",
        "spec.summary",
        "metadata.name",
        "spec.resource.kind",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        "!",
        "(",
        ")",
        "in",
        "[",
        "]",
        ",",
        "'a'",
        '"b"',
        "1",
        "-2",
        "2.5",
        "true",
        ".contains(",
        ".startsWith(",
        ".endsWith(",
        "timestamp(",
        ")",
        "'2026-01-01T00:00:00Z'",
        "'; DROP TABLE audit.activities; --",
        "' OR 1=1 --",
        '"\\" OR 1 --"',
        "`",
        "{p0:String}",
        "/*",
        "*/",
        "\\",
        "size(",
        "?",
        ":",
    ]
)


def _check_tokens(source: str) -> None:
    try:
        expr = compile_filter(source, ACTIVITIES)
    except FilterError:
        return
    if expr is None:
        return
    params = Params()
    text = render(expr, params)
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None, f"unexpected SQL at {pos}: {text!r}"
        word = m.group(0)
        if word[0].isalpha() or word[0] == "_":
            assert word in _ALLOWED_WORDS, word
        pos = m.end()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=14).map(" ".join))
def test_random_filters_only_produce_whitelisted_sql(source: str) -> None:
    _check_tokens(source)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_only_produces_whitelisted_sql(source: str) -> None:
    _check_tokens(source)
