"""The ``activity`` command line.

Each subcommand is added by a *registrar*: a function that takes the argparse sub-parsers object,
adds one sub-parser and sets its ``handler`` default to a function ``handler(args) -> int`` (the
exit code). :data:`SUBCOMMANDS` lists the registrars as ``"module:function"`` strings, so a
subcommand can live in its own module and is only imported when the parser is built. To add one,
append its registrar there.

:func:`main` is the one place that turns a failure into an exit status: a handler returns one, or
raises. A :class:`~processor.errors.ProcessorError` or an ``OSError`` (a file that cannot be read
or written, a refused connection) is a message for the user, ``activity <cmd>: error: <message>``,
exit status 1; anything else is a bug, shown as one line with its type unless ``--debug`` or
``ACTIVITY_DEBUG=1`` asks for the traceback. No traceback reaches a user otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import processor
from processor.commands.flags import add_filename, add_output
from processor.errors import ProcessorError

#: Subcommand registrars, in help order.
SUBCOMMANDS: list[str] = [
    "processor.commands.demo:register",
    "processor.commands.run:register",
    "processor.commands.reconcile:register",
    "processor.commands.ingest:register",
    "processor.commands.serve:register",
    "processor.commands.migrate:register",
    "processor.commands.kafka:register",
    "processor.commands.query:register",
    "processor.commands.query:register_audit",
    "processor.commands.query:register_events",
    "processor.commands.query:register_facets",
    "processor.commands.history:register",
    "processor.commands.watch:register",
    "processor.commands.mcp:register",
    "processor.commands.policy:register",
    "processor.commands.dlq:register",
    "processor.commands.loadtest:register",
    "processor.commands.preview:register",
    "processor.cli:register_lint",
    "processor.commands.translate:register",
    "processor.commands.bench:register",
    "processor.cli:register_version",
]

Handler = Callable[[argparse.Namespace], int]
Registrar = Callable[[Any], None]


def implementation() -> str:
    """Which implementation of the per-record hot path is active: ``native`` or ``python``.

    See :mod:`processor.native`; raises ``ExtensionMissingError`` when the extensions are
    required (``PROCESSOR_REQUIRE_EXTENSIONS=1``) and cannot be loaded.
    """
    from processor.native import implementation as active

    return active()


def _version(args: argparse.Namespace) -> int:
    info = {"version": processor.__version__, "implementation": implementation()}
    if args.output in ("json", "yaml"):
        from processor.output import dump

        sys.stdout.write(dump(info, args.output))
        return 0
    print(f"activity-processor {info['version']}")
    print(f"implementation: {info['implementation']}")
    return 0


def register_version(subparsers: Any) -> None:
    """``activity version``: print the version and the active implementation."""
    parser = subparsers.add_parser(
        "version", help="print the version and the active implementation"
    )
    add_output(
        parser,
        detail="table and wide print two lines; json and yaml an object {version, implementation}",
    )
    parser.set_defaults(handler=_version)


def _lint(args: argparse.Namespace) -> int:
    from processor.policy.lint import lint_paths

    paths = [*args.paths, *(args.filename or [])]
    if not paths:
        print(
            "activity lint: error: give the policy files or directories (PATH... or -f PATH)",
            file=sys.stderr,
        )
        return 2
    report = lint_paths(paths)
    if args.output in ("json", "yaml"):
        from processor.output import dump

        doc = {"apiVersion": "v1", "kind": "List", "items": report.findings()}
        sys.stdout.write(dump(doc, args.output))
    else:
        for line in report.lines():
            print(line)
    print(report.summary(), file=sys.stderr)
    if args.strict and report.warnings:
        return 1
    return report.exit_code


def register_lint(subparsers: Any) -> None:
    """``activity lint PATH...``: validate ActivityPolicy files and warn about dead rules."""
    parser = subparsers.add_parser(
        "lint",
        help="validate ActivityPolicy files and directories",
        description=(
            "Load ActivityPolicy YAML (directories recursively), validate it as the API server "
            "does and warn about rules that can never match. Exit status 1 on errors, 0 otherwise."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="policy file or directory")
    add_filename(
        parser,
        action="extend",
        nargs="+",
        help="policy files or directories, as PATH (may be repeated)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 on warnings as well"
    )
    add_output(
        parser,
        detail="table and wide print one finding per line, FILE:LINE:COL: POLICY: FIELD: "
        "message (the form editors read); json and yaml a List of findings",
    )
    parser.set_defaults(handler=_lint)


def _resolve(spec: str) -> Registrar:
    module_name, _, attr = spec.partition(":")
    registrar: Registrar = getattr(importlib.import_module(module_name), attr)
    return registrar


def build_parser() -> argparse.ArgumentParser:
    """The ``activity`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="activity",
        description="Activity processor: Kubernetes audit logs and Events to activity timelines.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get("ACTIVITY_DEBUG", "") not in ("", "0"),
        help="print the traceback of an unexpected error (env ACTIVITY_DEBUG=1)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for spec in SUBCOMMANDS:
        _resolve(spec)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``activity`` command.

    Args:
        argv: the arguments after the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 1 on failure, 2 on a usage error.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (argparse already printed it)
        return exc.code if isinstance(exc.code, int) else 2
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`activity query | head`): nothing to say
        _silence_stdout()
        return 1
    except (ProcessorError, OSError) as exc:
        if args.debug:
            _print_traceback()
        print(f"{command_name(args)}: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            _print_traceback()
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        print(
            f"{command_name(args)}: error: {what} (run with ACTIVITY_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


def _print_traceback() -> None:
    import traceback  # only for --debug: not on the start-up path

    traceback.print_exc()


def command_name(args: argparse.Namespace) -> str:
    """``activity query``, ``activity policy apply``...: the command that ``args`` ran.

    Nested commands keep their action in an attribute named ``<command>_command``.
    """
    parts = ["activity", args.command]
    nested = getattr(args, f"{args.command}_command", None)
    if nested:
        parts.append(nested)
    return " ".join(parts)


def describe_error(exc: BaseException) -> str:
    """The message of an expected error: ``FILE: reason`` for an ``OSError`` about a file."""
    if isinstance(exc, OSError) and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        return ": ".join([*names, exc.strerror])
    return str(exc) or type(exc).__name__


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
