"""Decode only what policies read: an audit event from its scanned members, bodies pruned.

The specification the fast path's typed decode (:mod:`processor.records.typed`) is tested
against (``tests/unit/test_native_typed.py``), and the fast path's decoder before it.
:func:`processor.records.jsonscan.scan_document` (or its native twin) has validated the payload
and located its top-level members; here the small fields are decoded by orjson and normalised by
:func:`processor.records.decode_audit` itself (so errors and normalisation are the twin's), and
the large ``requestObject`` / ``responseObject`` bodies are materialised only as far as the loaded
policies read them (:func:`processor.cel.needs.body_needs`). For every expression those policies
contain, the result evaluates exactly like the full decode.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson

from processor.cel.needs import BODIES, Need
from processor.records.audit import decode_audit

__all__ = ["decode_audit_split"]


def decode_audit_split(
    buf: bytes,
    obj: dict[str, Any],
    spans: dict[str, tuple[int, int]],
    needs: dict[str, Need],
    scan: ModuleType,
    decode: Callable[..., dict[str, Any]] = decode_audit,
) -> dict[str, Any]:
    """:func:`processor.records.decode_audit` of a split event, bodies pruned to ``needs``.

    Args:
        buf: the payload bytes.
        obj: the event parsed without its bodies (each an empty object), from
            ``scan.split_document``/``split_object``; it is changed.
        spans: where the bodies' values are in ``buf``.
        needs: per body, what the policies read (absent: nothing).
        scan: the scanner module (native or twin).
        decode: :func:`decode_audit` or its Cython-compiled twin.

    Raises:
        RecordError: as :func:`decode_audit` (bodies never fail to decode).
    """
    audit = decode(obj, copy=False)
    for body in BODIES:
        span = spans.get(body)
        if span is None:
            continue
        s, e = span
        need = needs.get(body)
        if need is None or (e - s == 4 and buf[s:e] == b"null"):
            audit.pop(body, None)
        else:
            audit[body] = scan.prune(buf, s, e, need, orjson.loads)
    return audit
