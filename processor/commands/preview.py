"""``activity preview``: evaluate one policy against sample inputs (PolicyPreview)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from processor.commands.flags import add_filename, add_output
from processor.commands.query import add_connection
from processor.errors import PolicyError, PolicyErrors

if TYPE_CHECKING:
    import yaml


def register(subparsers: Any) -> None:
    """``activity preview -f MANIFEST``, ``-f POLICY --input RECORDS`` or ``-f POLICY
    --auto-fetch``."""
    parser = subparsers.add_parser(
        "preview",
        help="run a policy over sample audit events / Events and show the activities",
        description="Evaluate an ActivityPolicy against sample inputs. Give a PolicyPreview "
        "manifest with -f, or an ActivityPolicy file with -f and an input file with --input "
        "(JSON or YAML: one record, a list of records, an audit EventList, or JSON lines). "
        "Inputs are routed as the processor routes them: an input it would not evaluate (an "
        "audit stage other than ResponseComplete, another resource) is shown as skipped, with "
        "the reason. A manifest with spec.autoFetch previews the policy on recent audit logs "
        "and Events of its kind read from the store (--clickhouse-url).",
    )
    add_filename(
        parser,
        help="PolicyPreview manifest; with --input or --auto-fetch, an ActivityPolicy file",
    )
    parser.add_argument(
        "--policy", metavar="PATH", help="ActivityPolicy file (with --input or --auto-fetch)"
    )
    parser.add_argument("--input", metavar="PATH", help="records to test (with -f POLICY)")
    parser.add_argument(
        "--auto-fetch",
        action="store_true",
        help="with -f POLICY: preview on recent stored records of its kind (spec.autoFetch)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="--auto-fetch: records per source (1-50; 10)"
    )
    parser.add_argument(
        "--time-range", default=None, help="--auto-fetch: how far back, e.g. 7d (24h)"
    )
    parser.add_argument(
        "--sources", choices=("audit", "events", "both"), default=None, help="--auto-fetch (both)"
    )
    parser.add_argument(
        "--all-stages",
        action="store_true",
        help="evaluate audit events of every stage, not only ResponseComplete",
    )
    parser.add_argument(
        "--tenant-type", default="", help="autoFetch: read this tenant's records only"
    )
    parser.add_argument("--tenant-name", default="", help="autoFetch: the tenant's name")
    add_connection(parser)
    add_output(
        parser,
        extra=("text",),
        detail="table, wide and text print one line per input (matched rule and summary, "
        "error, or why it was skipped); json and yaml the PolicyPreview with its status",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from processor.output import dump
    from processor.preview import PreviewError, load_manifest
    from processor.query.errors import QueryError
    from processor.sink import SinkError

    try:
        if args.filename and args.policy:
            raise _Usage("use either -f FILE or --policy FILE, not both")
        if args.input and args.auto_fetch:
            raise _Usage("use either --input RECORDS or --auto-fetch, not both")
        fetch_flags = (args.limit, args.time_range, args.sources)
        if not args.auto_fetch and any(f is not None for f in fetch_flags):
            raise _Usage("--limit, --time-range and --sources go with --auto-fetch")
        quick = args.input or args.auto_fetch
        policy = args.policy or (args.filename if quick else None)
        if policy:
            if not quick:
                raise _Usage("--policy needs --input with the records to test, or --auto-fetch")
            # the manifest is built here: its errors are the inputs' (no file position)
            text, file = _manifest_from_files(policy, args.input, _auto_fetch(args)), ""
        elif args.filename:
            text, file = _read(args.filename)
        else:
            raise _Usage(
                "give a PolicyPreview manifest with -f FILE, or a policy with -f POLICY --input "
                "RECORDS or -f POLICY --auto-fetch"
            )
        manifest, loaded = load_manifest(text, file)
    except _Usage as exc:
        print(f"activity preview: {exc}", file=sys.stderr)
        return 2
    except PolicyErrors as exc:
        for error in exc.errors:
            print(describe(error), file=sys.stderr)
        return 1
    except PolicyError as exc:
        print(describe(exc), file=sys.stderr)
        return 1
    try:
        result = _run(manifest, loaded, args)
    except (PreviewError, QueryError, SinkError) as exc:
        print(f"activity preview: error: {exc}", file=sys.stderr)
        return 1
    if args.output in ("json", "yaml"):
        sys.stdout.write(dump(result, args.output))
    else:
        sys.stdout.write(render_text(result))
    return 0


class _Usage(Exception):
    pass


def _run(manifest: dict[str, Any], policy: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The preview; with ``spec.autoFetch`` on the store of ``--clickhouse-url``."""
    from processor.preview import run_preview

    if manifest["spec"].get("autoFetch") is None:
        return run_preview(manifest, policy, all_stages=args.all_stages)
    from processor.commands.query import open_backend
    from processor.preview_fetch import Scope

    backend = open_backend(args)
    try:
        scope = Scope(args.tenant_type, args.tenant_name)
        return run_preview(
            manifest, policy, all_stages=args.all_stages, backend=backend, scope=scope
        )
    finally:
        backend.close()


def describe(error: PolicyError) -> str:
    """``FILE:LINE:COL: field.path: message`` (the parts that are known), as ``lint`` prints."""
    if not error.file:
        return error.with_excerpt(error.field_message())
    return error.with_excerpt(f"{error.location()}: {error.field_message()}")


def _read(path: str) -> tuple[str, str]:
    name = "<stdin>" if path == "-" else path
    try:
        return (sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")), name
    except OSError as exc:
        raise PolicyError(f"cannot read file: {exc.strerror or exc}", file=name) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"cannot read file: not UTF-8 text ({exc.reason})", file=name) from None


def _auto_fetch(args: argparse.Namespace) -> dict[str, Any] | None:
    """``spec.autoFetch`` from --auto-fetch and its flags (None without --auto-fetch)."""
    if not args.auto_fetch:
        return None
    given = {"limit": args.limit, "timeRange": args.time_range, "sources": args.sources}
    return {k: v for k, v in given.items() if v is not None}


def _manifest_from_files(
    policy_path: str, input_path: str | None, auto_fetch: dict[str, Any] | None = None
) -> str:
    import orjson

    from processor.policy.loader import load_file
    from processor.policy.validate import validate_policy
    from processor.preview import API_VERSION, KIND

    loaded = load_file(policy_path)
    if loaded.errors:
        raise PolicyErrors(loaded.errors)
    if len(loaded.policies) != 1:
        raise PolicyError(
            f"expected one ActivityPolicy in the file, found {len(loaded.policies)}",
            file=policy_path,
        )
    problems = validate_policy(loaded.policies[0])  # located in the policy's own file
    if problems:
        raise PolicyErrors(problems)
    spec = dict(loaded.policies[0].raw.get("spec") or {})
    preview: dict[str, Any] = {"policy": spec}
    if input_path:
        text, _ = _read(input_path)
        preview["inputs"] = [{"type": t, t: r} for t, r in _records(text, input_path)]
    if auto_fetch is not None:
        preview["autoFetch"] = auto_fetch
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": loaded.policies[0].name or "preview"},
        "spec": preview,
    }
    return orjson.dumps(manifest).decode()


def _records(text: str, path: str) -> list[tuple[str, Any]]:
    import yaml

    from processor.records import classify_record

    try:
        data = yaml.safe_load(text)
        docs = data if isinstance(data, list) else [data]
    except yaml.YAMLError as exc:
        docs = _json_lines(text, path, exc)
    out: list[tuple[str, Any]] = []
    for number, doc in enumerate(docs):
        kind = classify_record(doc)
        if kind == "audit_list":
            out.extend(("audit", item) for item in doc.get("items") or [])
        elif kind in ("audit", "event"):
            out.append(("audit" if kind == "audit" else "event", doc))
        else:
            raise PolicyError(
                f"record {number} is neither an audit event, an audit EventList nor a "
                "Kubernetes Event",
                file=path,
            )
    if not out:
        raise PolicyError("no records found", file=path)
    return out


def _json_lines(text: str, path: str, yaml_error: yaml.YAMLError) -> list[Any]:
    """The records of a file that is not YAML: JSON lines, else the YAML error, located."""
    import orjson

    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if lines and not lines[0][1].lstrip().startswith("{"):  # not JSON lines: YAML is at fault
        mark = getattr(yaml_error, "problem_mark", None)
        problem = getattr(yaml_error, "problem", None) or "syntax error"
        raise PolicyError(
            f"invalid YAML: {problem}; fix the YAML syntax at this position",
            file=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
    docs = []
    for number, line in lines:
        try:
            docs.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise PolicyError(
                f"line {number} is not JSON ({exc.msg}); JSON lines hold one record per line",
                file=path,
                line=number,
                column=exc.colno,
            ) from None
    return docs


def render_text(result: dict[str, Any]) -> str:
    """One line per input: which rule matched and the summary, the error, or why it was skipped.

    Inputs autoFetch read are named first (``[audit <time> <user> <verb> <resource>...]``).
    """
    status = result["status"]
    activities = iter(status["activities"])
    fetched = status.get("fetchedInputs")
    if result["spec"].get("autoFetch") is not None and not fetched:
        return "no audit logs or Events of this policy's kind found in the autoFetch window\n"
    lines = []
    for r in status["results"]:
        head = f"input {r['inputIndex']}: "
        if fetched:
            head = f"input {r['inputIndex']} [{describe_input(fetched[r['inputIndex']])}]: "
        if r.get("matched"):
            activity = next(activities)
            rule = f"{r['matchedRuleType']} rule {r['matchedRuleIndex']} ({r['matchedRuleName']})"
            lines.append(f"{head}matched {rule}: {activity['spec']['summary']}")
            for link in activity["spec"].get("links") or []:
                res = link["resource"]
                lines.append(
                    f"    link {link['marker']!r} -> {res.get('kind', '')} "
                    f"{res.get('namespace', '') + '/' if res.get('namespace') else ''}"
                    f"{res.get('name', '')}"
                )
        elif r.get("skipped"):
            lines.append(f"{head}skipped: {r['skipped']}")
        elif r.get("error"):
            lines.append(f"{head}error: {r['error']}")
        else:
            lines.append(f"{head}no rule matched")
    return "\n".join(lines) + "\n"


def describe_input(item: dict[str, Any]) -> str:
    """A fetched input in a few words: time, who, what, which object."""
    from processor.query.output import safe

    record = item.get(item.get("type", "")) or {}
    if not isinstance(record, dict):
        return str(item.get("type", ""))
    if item.get("type") == "audit":
        ref = record.get("objectRef") or {}
        words = [
            "audit",
            record.get("requestReceivedTimestamp", ""),
            (record.get("user") or {}).get("username", ""),
            record.get("verb", ""),
            "/".join(p for p in (ref.get(k) for k in ("resource", "namespace", "name")) if p),
        ]
    else:
        about = record.get("regarding") or record.get("involvedObject") or {}
        words = [
            "event",
            record.get("eventTime") or record.get("lastTimestamp") or "",
            record.get("type", ""),
            record.get("reason", ""),
            "/".join(p for p in (about.get(k) for k in ("kind", "namespace", "name")) if p),
        ]
    return safe(" ".join(str(w) for w in words if w))
