"""``activity query``, ``activity facets``, ``activity audit query``, ``activity events query``.

List queries over the stored activities, audit logs and Kubernetes Events (ClickHouse or chDB),
newest first, with a CEL ``--filter`` (events: ``--field-selector``), a time window, tenant scope
and continue tokens; ``facets`` prints the top values of fields. See ``docs/query.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from processor.commands.argtypes import int_between, non_negative_int
from processor.commands.flags import add_output
from processor.query.errors import QueryError
from processor.query.tables import ACTIVITIES, AUDIT_LOGS, K8S_EVENTS, TABLES, Table

if TYPE_CHECKING:
    from processor.query.service import QueryRequest
    from processor.query.tokenkeys import TokenKeys

#: :data:`processor.query.service.DEFAULT_LIMIT` and ``MAX_LIMIT`` (not imported: the parser is
#: built without the query service; a test keeps them equal)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def add_connection(parser: argparse.ArgumentParser) -> None:
    """``--clickhouse-url`` (env ``ACTIVITY_CLICKHOUSE_URL``; default chDB in the data dir)."""
    parser.add_argument(
        "--clickhouse-url",
        default=None,
        metavar="URL",
        help="chdb:///DIR or clickhouse://user:pw@host:9000/audit (env ACTIVITY_CLICKHOUSE_URL; "
        "default chdb in $ACTIVITY_DATA_DIR or ~/.local/share/activity)",
    )


def open_backend(args: argparse.Namespace) -> Any:
    """Open the sink named by ``--clickhouse-url`` / the environment / the default, read-only.

    A chDB store that does not exist is not created: ``NoStoreError`` says where none was found
    (at the default location, also how to keep the demo's data or make a store).
    """
    from processor.sink import open_sink
    from processor.sink.chdb import NoStoreError
    from processor.sink.factory import default_clickhouse_url

    given = args.clickhouse_url or os.environ.get("ACTIVITY_CLICKHOUSE_URL") or ""
    url = given or default_clickhouse_url()
    options: dict[str, Any] = {"create": False} if url.startswith("chdb:") else {}
    sink = open_sink(url, **options)
    try:
        sink.open()
    except NoStoreError as exc:
        sink.close()
        if given:
            raise
        raise NoStoreError(f"{exc}, the default location. {NO_DEFAULT_STORE}") from None
    except BaseException:
        sink.close()
        raise
    return sink


#: What to do when the default location holds no store (typically: right after the demo).
NO_DEFAULT_STORE = (
    "`activity demo` deletes its data when it exits: `activity demo --keep` (or --data-dir DIR) "
    "keeps it and prints the --clickhouse-url that reads it; to create a new, empty store here, "
    "run `activity migrate`"
)


def _add_window(parser: argparse.ArgumentParser, start: str) -> None:
    parser.add_argument("--start", default=start, help=f"RFC3339 or now-<N><s|m|h|d|w> ({start})")
    parser.add_argument("--end", default="now", help="exclusive end (now)")
    parser.add_argument(
        "--max-window",
        default="",
        help="longest allowed window, <N><s|m|h|d|w> (default 30d; events 60d)",
    )


def _add_scope(parser: argparse.ArgumentParser, actor: bool = True) -> None:
    parser.add_argument("--tenant-type", default="", help="Organization, Project, User, platform")
    parser.add_argument("--tenant-name", default="", help="tenant name (with --tenant-type)")
    if actor:
        parser.add_argument("--actor", default="", help="only records of this actor / user")


def add_query_flags(parser: argparse.ArgumentParser, table: Table) -> None:
    """The flags shared by the three list commands."""
    if table is K8S_EVENTS:
        parser.add_argument("--field-selector", default="", help="k=v,k2!=v2 (event fields)")
        parser.add_argument("-n", "--namespace", default="", help="event namespace")
    parser.add_argument("--filter", default="", help="CEL filter (see docs/query.md)")
    if table is ACTIVITIES:
        parser.add_argument("--search", default="", help="any of these words in the summary")
    _add_window(parser, "now-7d" if table is ACTIVITIES else "now-24h")
    _add_scope(parser, actor=table is not K8S_EVENTS)
    parser.add_argument(
        "--limit",
        type=int_between(0, MAX_LIMIT),
        default=DEFAULT_LIMIT,
        help=f"rows per page (1-{MAX_LIMIT}; 0 = {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--continue",
        dest="continue_token",
        default="",
        metavar="TOKEN",
        help="the next page: the token the previous page printed (same filter and window)",
    )
    parser.add_argument(
        "--token-key-file",
        default=None,
        metavar="PATH",
        help="continue-token signing keys, one per line, the first signs (env "
        "ACTIVITY_TOKEN_KEY_FILE, or ACTIVITY_TOKEN_KEYS=new,old; default token-keys in the "
        "data dir, created on first use)",
    )
    parser.add_argument("--all-pages", action="store_true", help="follow continue tokens")
    add_output(parser)
    parser.add_argument("--no-headers", action="store_true", help="table output without headers")
    add_connection(parser)
    parser.set_defaults(handler=_handle_query, table_name=table.name)


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m``... as nanoseconds; ``""`` is 0 (``QueryError`` if invalid)."""
    from processor.query.timeparse import duration_ns

    if not text:
        return 0
    ns = duration_ns(text)
    if ns <= 0:
        raise QueryError(f"invalid duration {text!r} (use <N><s|m|h|d|w>, e.g. 30d)")
    return ns


def token_keys(args: argparse.Namespace) -> TokenKeys:
    """The continue-token keys: flag, environment, else ``<data dir>/token-keys`` (created)."""
    from processor.query.tokenkeys import DEFAULT_FILE_NAME, load_keys
    from processor.sink.factory import default_data_dir

    default = default_data_dir() / DEFAULT_FILE_NAME
    return load_keys(getattr(args, "token_key_file", None), os.environ, default)


def request_from(args: argparse.Namespace) -> QueryRequest:
    """The :class:`QueryRequest` described by parsed flags."""
    from processor.query.service import QueryRequest

    table = TABLES[args.table_name]
    return QueryRequest(
        table,
        filter=args.filter,
        selector=getattr(args, "field_selector", ""),
        search=getattr(args, "search", ""),
        start=args.start,
        end=args.end,
        limit=args.limit,
        continue_token=getattr(args, "continue_token", ""),
        tenant_type=args.tenant_type,
        tenant_name=args.tenant_name,
        actor=getattr(args, "actor", ""),
        namespace=getattr(args, "namespace", ""),
        max_window_ns=parse_duration(args.max_window),
    )


def _handle_query(args: argparse.Namespace) -> int:
    from processor.sink import SinkError

    if args.all_pages and args.continue_token:
        print("error: --all-pages and --continue are mutually exclusive", file=sys.stderr)
        return 2
    try:
        request = request_from(args)
        backend = open_backend(args)  # first: no store, no key file created either
        try:
            return _print_pages(backend, request, args, token_keys(args))
        finally:
            backend.close()
    except (QueryError, SinkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _print_pages(
    backend: Any, request: QueryRequest, args: argparse.Namespace, keys: TokenKeys
) -> int:
    from processor.query.output import print_items
    from processor.query.service import iter_pages, run_query

    table = request.table.name
    if not args.all_pages:
        page = run_query(backend, request, keys=keys)
        print_items(table, page.items, args.output, headers=not args.no_headers)
        if page.continue_token:
            print(
                f"More results available. Use --continue '{page.continue_token}' for the next "
                "page, or --all-pages.",
                file=sys.stderr,
            )
        elif not page.items:
            print(f"No {request.table.noun} found.", file=sys.stderr)
        return 0
    collected: list[dict[str, Any]] = []
    total = 0
    for number, page in enumerate(iter_pages(backend, request, keys=keys)):
        total += len(page.items)
        if args.output in ("json", "yaml"):
            collected += page.items
        else:
            headers = number == 0 and not args.no_headers
            print_items(table, page.items, args.output, headers=headers)
    if args.output in ("json", "yaml"):
        print_items(table, collected, args.output)
    print(f"Showing {total} results.", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """``activity query``: list stored activities."""
    parser = subparsers.add_parser(
        "query",
        help="query stored activities (CEL filter, time window, pages)",
        description="List stored activities newest first. Filter fields: "
        + ACTIVITIES.field_list(),
    )
    add_query_flags(parser, ACTIVITIES)


def _nested(subparsers: Any, name: str, help_text: str, table: Table) -> None:
    parser = subparsers.add_parser(name, help=help_text)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
    query = sub.add_parser(
        "query",
        help=f"query stored {table.noun}",
        description=f"List stored {table.noun} newest first."
        + (f" Filter fields: {table.field_list()}" if table.fields else ""),
    )
    add_query_flags(query, table)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def register_audit(subparsers: Any) -> None:
    """``activity audit query``: list stored audit logs."""
    _nested(subparsers, "audit", "stored Kubernetes audit logs", AUDIT_LOGS)


def register_events(subparsers: Any) -> None:
    """``activity events query``: list stored Kubernetes Events."""
    _nested(subparsers, "events", "stored Kubernetes Events", K8S_EVENTS)


def register_facets(subparsers: Any) -> None:
    """``activity facets FIELD...``: top values of fields with counts."""
    parser = subparsers.add_parser(
        "facets",
        help="top values of fields with counts (filter autocomplete)",
        description="Top values with counts. Activity fields: "
        + ", ".join(ACTIVITIES.facets)
        + "; audit fields: "
        + ", ".join(AUDIT_LOGS.facets)
        + "; event fields: "
        + ", ".join(K8S_EVENTS.facets),
    )
    parser.add_argument("fields", nargs="+", metavar="FIELD")
    parser.add_argument("--source", choices=("activities", "audit", "events"), default="activities")
    parser.add_argument("--filter", default="", help="CEL filter (activities, audit)")
    _add_window(parser, "now-7d")
    _add_scope(parser)
    parser.add_argument(
        "--limit", type=non_negative_int, default=20, help="values per field (max 100)"
    )
    add_output(
        parser,
        detail="table and wide (the same columns) for people; json or yaml, values and counts "
        "per field, for programs",
    )
    add_connection(parser)
    parser.set_defaults(handler=_handle_facets)


_SOURCES = {"activities": ACTIVITIES, "audit": AUDIT_LOGS, "events": K8S_EVENTS}


def _handle_facets(args: argparse.Namespace) -> int:
    from processor.output import dump
    from processor.query.facets import facets
    from processor.query.output import format_rows
    from processor.query.service import QueryRequest
    from processor.sink import SinkError

    table = _SOURCES[args.source]
    try:
        request = QueryRequest(
            table,
            filter=args.filter,
            start=args.start,
            end=args.end,
            tenant_type=args.tenant_type,
            tenant_name=args.tenant_name,
            actor=args.actor if table.actor_column else "",
            max_window_ns=parse_duration(args.max_window),
        )
        backend = open_backend(args)
        try:
            result = facets(backend, request, args.fields, args.limit)
        finally:
            backend.close()
    except (QueryError, SinkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output in ("json", "yaml"):
        doc = {f.field: [{"value": v, "count": c} for v, c in f.values] for f in result}
        sys.stdout.write(dump(doc, args.output))
        return 0
    for number, facet in enumerate(result):
        if number:
            print()
        print(f"FIELD: {facet.field}")
        rows = [["VALUE", "COUNT"]] + [[v or '""', str(c)] for v, c in facet.values]
        print("\n".join(format_rows(rows)) if facet.values else "(no values)")
    return 0
