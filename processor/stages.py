"""The audit stages the processor translates by default.

Only ``ResponseComplete`` carries the response, and the other stages of one request would repeat
its activity (``docs/design.md#d4``); ``--stages`` (the worker), ``--all-stages``
(``activity translate``, ``activity preview``) change it.
"""

from __future__ import annotations

from typing import Final

DEFAULT_STAGES: Final[tuple[str, ...]] = ("ResponseComplete",)
