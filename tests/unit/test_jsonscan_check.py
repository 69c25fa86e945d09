"""The scanner's validation of a container (``_native/check_simd.h``) in each of its forms (AVX2,
SSE2, the byte loop) against the twin's (``processor/records/jsonscan.py``, the specification),
byte for byte at every offset of a 64-byte block, and against orjson: a value accepted is one
orjson parses, a value orjson refuses is refused."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.records import jsonscan as twin
from tests.unit.parity import implementation

native = implementation("native").jsonscan
LEVELS = native.check_levels()

# What goes inside a string: escapes, control bytes, UTF-8 good and bad (overlong, surrogates,
# beyond U+10FFFF, stray continuation bytes, truncated sequences).
IN_STRING = [
    b'"',
    b"\\",
    b'\\"',
    b"\\\\",
    b"\\/",
    b"\\n",
    b"\\b",
    b"\\u00e9",
    b"\\u00E9",
    b"\\ud800",
    b"\\uDFFF",
    b"\\ue000",
    b"\\u12",
    b"\\u12g4",
    b"\\x",
    b"\\'",
    b"\x00",
    b"\x1f",
    b"\t",
    b"\n",
    b"\x7f",
    b" ",
    b"{}[]:,",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xf4\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xe0\xa0\x80",
    b"\xf0\x80\x80\xaf",
    b"\xf0\x90\x80\x80",
    b"\xed\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xee\x80\x80",
    b"\x80",
    b"\xbf",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xc3\x28",
    b"\xe2\x28\xa1",
    b"\xff",
    b"\xfe",
]
# What goes between values: whitespace, stray bytes, literals and numbers good and doubtful.
OUTSIDE = [
    b" ",
    b"\n",
    b"\r\t",
    b"\x01",
    b"\x0b",
    b"\x80",
    b"\xc3\xa9",
    b"\\",
    b"tru",
    b"true",
    b"nul",
    b"null",
    b"false",
    b"falsey",
    b"01",
    b"-0",
    b"-",
    b"1.",
    b"1.5",
    b"1e5",
    b"1E5",
    b"-1.25",
    b"123456789012345",
    b"1234567890123456",
    b"0.12345678901234",
    b'"a"',
    b'"a""b"',
    b"{}",
    b"[]",
    b'{"a":1}',
    b"[1,]",
    b"{,}",
    b"::",
    b",",
]


def agree(buf: bytes, depth: int = 0) -> int:
    """Every native form gives the twin's answer; that answer."""
    want = twin.check_value(buf, 0, depth)
    got = [native.check_value(buf, 0, depth, level) for level in LEVELS]
    assert got == [want] * len(LEVELS), (buf, depth)
    return want


def padded(prefix: int) -> Iterator[bytes]:
    """Container openings whose string starts ``prefix`` bytes further on (shifting the blocks)."""
    yield b"[" + b" " * prefix
    yield b'{"' + b"k" * prefix + b'":'


def test_forms_available() -> None:
    assert LEVELS[0] == 0 and sorted(LEVELS) == LEVELS


@pytest.mark.parametrize("piece", IN_STRING, ids=repr)
def test_a_string_byte_at_every_offset(piece: bytes) -> None:
    for offset in range(71):
        for head in padded(offset % 3):
            close = b"]" if head[0:1] == b"[" else b"}"
            body = b"a" * offset + piece + b"b" * 5
            agree(head + b'"' + body + b'"' + close)
            agree(head + b'"' + body + b'"' + close + b'x\x00"\xff')  # garbage after the end
            agree(head + b'"' + b"a" * offset + piece)  # the input ends inside the string
            agree(head + b'"' + b"a" * offset + piece + b'"')  # ends after the string


@pytest.mark.parametrize("piece", OUTSIDE, ids=repr)
def test_a_value_byte_at_every_offset(piece: bytes) -> None:
    for count in range(36):
        items = b"1," * count
        agree(b"[" + items + piece + b"]")
        agree(b"[" + items + piece + b",2]")
        agree(b"[" + items + b"2," + piece + b"]")
        agree(b'{"' + b"k" * count + b'":' + piece + b"}")
        agree(b"[" + items + piece)  # truncated


def test_the_end_in_each_block_position() -> None:
    for size in range(140):
        doc = b'["' + b"x" * size + b'"]'
        assert agree(doc) == len(doc)
        assert agree(doc + b" trailing, \x00 \xff \\ bytes") == len(doc)
        assert agree(doc[:-1]) == -1


def test_escapes_across_block_edges() -> None:
    for size in range(130):
        for run in (1, 2, 3, 4):
            agree(b'["' + b"x" * size + b"\\" * run + b'"]')
            agree(b'["' + b"x" * size + b"\\" * run + b'""]')
            agree(b'["' + b"x" * size + b"\\u00" + b'"]')


def test_nesting_depth() -> None:
    for depth_param in (0, 1, 2, 150):
        for nested in (1, 49, 50, 51, 198, 199, 200, 201, 255, 256, 300):
            agree(b"[" * nested + b"]" * nested, depth_param)
            agree(b'{"a":' * nested + b"1" + b"}" * nested, depth_param)


def test_pretty_printed_documents() -> None:
    value = {"a": [1, 2.5, None, True, {"b": "é\t", "c": []}], "d": {"e": "\u2028"}, "f": ""}
    doc = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    assert agree(doc) == len(doc)
    assert agree(json.dumps(value, indent="\t", ensure_ascii=True).encode()) > 0


def orjson_accepts(buf: bytes) -> bool:
    try:
        orjson.loads(buf)
    except orjson.JSONDecodeError:
        return False
    return True


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**18), 10**18)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
BYTES = st.sampled_from(IN_STRING + OUTSIDE)


@settings(max_examples=400, deadline=None)
@given(
    value=st.lists(JSON, max_size=4) | st.dictionaries(st.text(max_size=8), JSON, max_size=5),
    ascii_only=st.booleans(),
    indent=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3), BYTES), max_size=3),
)
def test_generated_and_mutated_documents(
    value: Any, ascii_only: bool, indent: bool, edits: list[tuple[int, int, bytes]]
) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only, indent=2 if indent else None).encode()
    for at, cut, piece in edits:
        at %= len(doc) + 1
        doc = doc[:at] + piece + doc[at + cut :]
    if not doc or doc[0] not in b"[{":
        return
    end = agree(doc)
    if end == len(doc):
        assert orjson_accepts(doc)
    if end > 0 and not orjson_accepts(doc[:end]):
        pytest.fail(f"accepted what orjson refuses: {doc[:end]!r}")
    if not edits and not indent:
        assert end == len(doc) or not orjson_accepts(doc) or _doubtful(doc)


def _doubtful(doc: bytes) -> bool:
    """Input orjson reads that the scanner leaves to the full decode (see jsonscan's docstring):
    an exponent, a surrogate escape, a number of more than MAX_DIGITS digits (strings that look
    like one only make the exemption wider)."""
    numbers = re.findall(rb"-?[0-9]+(?:\.[0-9]+)?", doc)
    return (
        re.search(rb"[0-9][eE]", doc) is not None
        or re.search(rb"\\u[dD][89a-fA-F]", doc) is not None
        or any(len(re.sub(rb"[^0-9]", b"", m)) > twin.MAX_DIGITS for m in numbers)
    )


@settings(max_examples=300, deadline=None)
@given(doc=st.binary(min_size=1, max_size=150).map(lambda b: b"[" + b))
def test_arbitrary_bytes(doc: bytes) -> None:
    end = agree(doc)
    if end > 0:
        assert orjson_accepts(doc[:end])
