"""Type stub of the native summary templates; the twin is ``processor/policy/template.py``."""

from typing import Any

from processor.cel import Environment, Program
from processor.native import Implementation

class SummaryTemplate:
    text: str
    errors: list[str]
    static: bool
    def __init__(self, text: str, env: Environment, impl: Implementation | None = None) -> None: ...
    @property
    def valid(self) -> bool: ...
    def programs(self) -> list[Program]: ...
    def render(self, variables: dict[str, Any], links: list[Any] | None = None) -> str: ...
