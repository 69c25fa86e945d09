"""Progress bars for long work (``translate`` of a large file, data generation, load runs).

A bar is tqdm's, on stderr, with rate and ETA, and only when stderr is a terminal (tqdm's
``disable=None``): piped or redirected output, CI logs and tests get no progress text at all.
tqdm is imported when a bar is made, so commands that never show one do not pay for it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

#: A bar of elapsed seconds: percentage, elapsed/total, ETA and a status (tqdm's rate would be
#: 1 s/s).
_TIME_BAR = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"
)


def progress_bar(total: float | None = None, *, desc: str, unit: str = "it", **options: Any) -> Any:
    """A tqdm bar on stderr when it is a terminal, else a disabled one (it prints nothing).

    Use it as a context manager; the bar disappears when it closes (the command prints its own
    summary line).

    Args:
        total: the amount of work (``None``: unknown, the bar shows count and rate only).
        desc: what is in progress (``translate``).
        unit: the unit of ``total`` (``B``, ``rows``, ``s``).
        options: further ``tqdm`` options (``unit_scale=True``...).
    """
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=None,
        leave=False,
        dynamic_ncols=True,
        **options,
    )


class AboveBar:
    """A binary stream sharing the terminal with ``bar``: each write clears the bar first.

    For output that goes to stderr while a bar is drawn there (``translate``'s dead letters).
    """

    def __init__(self, stream: IO[bytes], bar: Any) -> None:
        self.stream = stream
        self.bar = bar

    def write(self, data: bytes) -> int:
        """Write ``data`` on a line of its own, then draw the bar again below it."""
        self.bar.clear()
        written = self.stream.write(data)
        self.stream.flush()
        self.bar.refresh()
        return written

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()


def wait_with_progress(
    proc: subprocess.Popen[bytes],
    seconds: float,
    desc: str,
    status: Callable[[], str] | None = None,
) -> int:
    """Wait for ``proc``, expected to run ``seconds``; returns its exit status.

    On a terminal a bar counts the elapsed seconds (it stays full while the process stops) with
    the ETA and ``status()`` (the load run's records/s), redrawn twice a second.
    """
    import subprocess

    started = time.monotonic()
    with progress_bar(seconds, desc=desc, unit="s", bar_format=_TIME_BAR) as bar:
        while True:
            try:
                return proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            bar.update(min(time.monotonic() - started, seconds) - bar.n)
            text = status() if status is not None else ""
            if text:
                bar.set_postfix_str(text)
