"""The naive baseline of ``activity bench``: cel-python's own interpreted runner.

Each record is decoded with the standard ``json`` module and converted with ``celpy.json_to_cel``;
each candidate rule's match is evaluated by celpy's runner until one is true, and that rule's
summary blocks are evaluated too. Routing uses the engine's index, as any design would, so the
baseline pays only for what a straightforward cel-python processor must do.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from processor.engine import Engine
from processor.policy.template import find_blocks
from processor.records import classify_record, involved_object

__all__ = ["NaiveRunner"]


class NaiveRunner:
    """Evaluates the engine's policies with celpy, compiling each expression once."""

    def __init__(self, engine: Engine) -> None:
        import celpy

        self.celpy = celpy
        self.env = celpy.Environment()
        self.engine = engine
        self._programs: dict[str, Any] = {}

    def _program(self, source: str) -> Any:
        prog = self._programs.get(source)
        if prog is None:
            try:
                prog = self.env.program(self.env.compile(source))
            except Exception:  # celpy rejects some valid CEL: a non-match
                prog = False
            self._programs[source] = prog
        return prog

    def _true(self, source: str, activation: dict) -> bool:
        prog = self._program(source)
        if prog is False:
            return False
        try:
            result = prog.evaluate(activation)
        except Exception:  # an evaluation error is a non-match here
            return False
        return isinstance(result, self.celpy.celtypes.BoolType) and bool(result)

    def _render(self, summary: str, activation: dict) -> None:
        for block in find_blocks(summary):
            prog = self._program(block.expression)
            if prog is not False:
                with contextlib.suppress(Exception):
                    prog.evaluate(activation)

    def translate(self, line: bytes) -> None:
        """Translate one JSON line (audit event, EventList or Kubernetes Event)."""
        obj = json.loads(line)
        kind = classify_record(obj)
        if kind == "audit_list":
            for item in obj.get("items") or ():
                self._audit(item)
        elif kind == "audit":
            self._audit(obj)
        elif kind == "event":
            self._event(obj)

    def _audit(self, obj: Any) -> None:
        ref = obj.get("objectRef") if type(obj) is dict else None
        if type(ref) is not dict or obj.get("stage") != "ResponseComplete":
            return
        key = f"{ref.get('apiGroup', '')}/{ref.get('resource', '')}"
        policies = self.engine.audit_index.get(key)
        if not policies:
            return
        to_cel = self.celpy.json_to_cel
        username = (obj.get("user") or {}).get("username", "")
        activation = {"audit": to_cel(obj), "actor": to_cel(username), "kind": to_cel("")}
        for cp in policies:
            for crule in cp.audit_rules:
                if self._true(crule.rule.match, activation):
                    self._render(crule.rule.summary, activation)
                    return

    def _event(self, obj: Any) -> None:
        found = involved_object(obj)
        if found is None:
            return
        policies = self.engine.event_index.get(f"{found[0]}/{found[1]}")
        if not policies:
            return
        activation = {"event": self.celpy.json_to_cel(obj)}
        for cp in policies:
            for crule in cp.event_rules:
                if self._true(crule.rule.match, activation):
                    self._render(crule.rule.summary, activation)
                    return

    def seconds(self, lines: Sequence[bytes]) -> float:
        """Seconds to translate every line of ``lines``."""
        started = time.perf_counter()
        for line in lines:
            self.translate(line)
        return time.perf_counter() - started
