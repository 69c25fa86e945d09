"""``activity translate``: replay JSON lines of audit events / Events through the policies.

Reads one record per line (an audit Event, an audit EventList or a Kubernetes Event, detected per
line), writes one Activity JSON per line, writes dead-letter records to ``--dead-letter`` (or
stderr) and goes on, and ends with a one-line summary on stderr. Memory stays bounded: lines are
streamed and output is flushed per chunk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from processor.commands.argtypes import positive_int
from processor.commands.flags import add_filename

if TYPE_CHECKING:
    from processor.translate import Output, Translator

_CHUNK = 1000
#: :data:`processor.translate.DEFAULT_MAX_RECORD_BYTES` (not imported: the parser is built
#: without the translator; a test keeps the two equal)
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "translate",
        help="replay JSON lines of audit events / Events through policies (offline)",
        description="Translate JSON lines (audit Events, audit EventLists, Kubernetes Events) "
        "into Activity JSON lines with the given policies. On a terminal, stderr shows a "
        "progress bar (bytes of the input, rate, ETA).",
    )
    add_filename(
        parser,
        "--policies",
        dest="policies",
        nargs="+",
        required=True,
        help="ActivityPolicy files or directories",
    )
    parser.add_argument("--input", default="-", help="input JSON lines file (default: stdin)")
    parser.add_argument("--output", default="-", help="activities file (default: stdout)")
    parser.add_argument(
        "--dead-letter",
        default=None,
        metavar="FILE",
        help="dead-letter records file (default: stderr)",
    )
    parser.add_argument(
        "--all-stages",
        action="store_true",
        help="translate every audit stage, not only ResponseComplete",
    )
    parser.add_argument(
        "--max-record-bytes",
        type=positive_int,
        default=DEFAULT_MAX_RECORD_BYTES,
        metavar="N",
        help=f"dead-letter larger records unread (default: {DEFAULT_MAX_RECORD_BYTES} bytes)",
    )
    parser.set_defaults(handler=_handle)


class LineReader:
    """The non-blank lines of a binary stream, stripped; counts the bytes read so far."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.bytes_read += len(line)
            line = line.strip()
            if line:
                yield line


def _handle(args: argparse.Namespace) -> int:
    from processor.errors import PolicyErrors
    from processor.policy.compile import load_engine
    from processor.progress import AboveBar, progress_bar
    from processor.translate import Translator

    try:
        engine = load_engine(args.policies, args.all_stages)
    except PolicyErrors as exc:
        for error in exc.errors:
            print(error.with_excerpt(str(error)), file=sys.stderr)
        return 1
    translator = Translator(engine, args.max_record_bytes)
    with contextlib.ExitStack() as stack:
        try:
            src = _open(stack, "--input", args.input, "rb", sys.stdin.buffer)
            dst = _open(stack, "--output", args.output, "wb", sys.stdout.buffer)
            dlq = _open(stack, "--dead-letter", args.dead_letter or "-", "wb", sys.stderr.buffer)
        except OSError as exc:
            print(f"activity translate: {exc}", file=sys.stderr)
            return 1
        reader = LineReader(src)
        bar = stack.enter_context(
            progress_bar(
                _remaining(src), desc="translate", unit="B", unit_scale=True, unit_divisor=1024
            )
        )
        # without --dead-letter, dead letters and the bar share stderr
        letters: Writer = dlq if args.dead_letter else AboveBar(dlq, bar)

        def advance() -> None:
            bar.update(reader.bytes_read - bar.n)

        totals = run(translator, iter(reader), dst, letters, on_chunk=advance)
    print(totals, file=sys.stderr)
    return 0


def _remaining(stream: IO[bytes]) -> int | None:
    """Bytes left to read in ``stream`` when it is a regular file (else ``None``: unknown)."""
    try:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        return None


def _open(
    stack: contextlib.ExitStack, flag: str, path: str, mode: str, std: IO[bytes]
) -> IO[bytes]:
    """Open the file of ``flag`` (``-``: ``std``); the error names the flag, the file and why."""
    if path == "-":
        return std
    try:
        return stack.enter_context(open(path, mode))
    except OSError as exc:
        action = "read" if "r" in mode else "write"
        reason = exc.strerror or str(exc)
        parent = Path(path).parent
        if "w" in mode and isinstance(exc, FileNotFoundError) and not parent.is_dir():
            reason = f"the directory {parent} does not exist; create it or pick another path"
        raise OSError(f"cannot {action} {flag} {path}: {reason}") from None


class Totals:
    """Counters of a translate run, printed as the closing summary line."""

    def __init__(self) -> None:
        self.records = self.activities = self.no_match = self.skipped = self.errors = 0
        self.started = time.perf_counter()
        self.elapsed = 0.0

    def add(self, out: Output) -> None:
        """Take the counters of ``out`` (activities are counted as they are flushed)."""
        self.records += out.records
        self.no_match += out.no_match
        self.skipped += out.skipped
        self.errors += out.errors

    def __str__(self) -> str:
        rate = self.records / self.elapsed if self.elapsed > 0 else 0.0
        return (
            f"records={self.records} activities={self.activities} "
            f"no_match={self.no_match} skipped={self.skipped} errors={self.errors} "
            f"elapsed={self.elapsed:.2f}s records/s={rate:.0f}"
        )


class Writer(Protocol):
    """Where activities and dead letters go: a binary stream."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


def run(
    translator: Translator,
    lines: Iterator[bytes],
    dst: Writer,
    dlq: Writer,
    on_chunk: Callable[[], None] | None = None,
) -> Totals:
    """Translate every line, writing activities and dead letters in chunks.

    Args:
        translator: the translator of the policies.
        lines: the input records, one per item.
        dst: where activity JSON lines go.
        dlq: where dead-letter JSON lines go.
        on_chunk: called after each chunk is written (progress).
    """
    from processor.translate import Output

    totals = Totals()
    out = Output()
    pending = 0
    for line in lines:
        translator.translate(line, out)
        pending += 1
        if pending >= _CHUNK:
            totals.activities += _flush(out, dst, dlq)
            pending = 0
            if on_chunk is not None:
                on_chunk()
    totals.activities += _flush(out, dst, dlq)
    if on_chunk is not None:
        on_chunk()
    totals.add(out)
    totals.elapsed = time.perf_counter() - totals.started
    return totals


def _flush(out: Output, dst: Writer, dlq: Writer) -> int:
    import orjson

    written = len(out.activities)
    if out.activities:
        dst.write(b"".join(a.data + b"\n" for a in out.activities))
        dst.flush()
    if out.dead_letters:
        dlq.write(b"".join(orjson.dumps(d) + b"\n" for d in out.dead_letters))
        dlq.flush()
    out.clear()
    return written
