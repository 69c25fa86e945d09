"""Type stub of the native CEL plans; the twin is ``processor/cel/plan.py``."""

from typing import Any

from processor.cel import ast

LINKS: str

class Plan:
    def __call__(self, a: dict[str, Any], /) -> Any: ...

def compile_plan(node: ast.Node) -> Plan: ...
