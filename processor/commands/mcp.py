"""``activity mcp``: the MCP server for AI assistants (stdio or streamable HTTP, docs/mcp.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.argtypes import int_between
from processor.commands.query import add_connection


def register(subparsers: Any) -> None:
    """``activity mcp [--transport stdio|http] [--host H --port P --path /mcp]``."""
    parser = subparsers.add_parser(
        "mcp",
        help="MCP server: the activity, audit-log and Event tools for AI assistants",
        description="Serve upstream's activity MCP tools (query_audit_logs, query_activities, "
        "query_events, facets, find_failed_operations, get_resource_history, summaries, "
        "timeline, compare_activity_periods, preview_activity_policy) over the store of "
        "--clickhouse-url. stdio (default) for an assistant that starts the command; http for "
        "the streamable HTTP transport at http://HOST:PORT/mcp. See docs/mcp.md.",
    )
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="http: listen address (127.0.0.1)")
    parser.add_argument(
        "--port", type=int_between(1, 65535), default=8000, help="http: port (8000)"
    )
    parser.add_argument("--path", default="/mcp", help="http: endpoint path (/mcp)")
    parser.add_argument(
        "--tenant-type", default="", help="serve one tenant's records only (with --tenant-name)"
    )
    parser.add_argument("--tenant-name", default="", help="the tenant's name")
    add_connection(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    import anyio

    from processor.commands.query import open_backend
    from processor.mcp.server import build_server
    from processor.mcp.tools import Store

    if args.tenant_name and not args.tenant_type:
        print("activity mcp: error: --tenant-name needs --tenant-type", file=sys.stderr)
        return 2
    backend = open_backend(args)
    try:
        server = build_server(Store(backend, args.tenant_type, args.tenant_name))
        if args.transport == "stdio":
            anyio.run(server.run_stdio_async)
        else:
            print(
                f"activity mcp: streamable HTTP at http://{args.host}:{args.port}{args.path}",
                file=sys.stderr,
                flush=True,
            )
            anyio.run(lambda: _serve_http(server, args))
    except KeyboardInterrupt:
        return 0
    finally:
        backend.close()
    return 0


async def _serve_http(server: Any, args: argparse.Namespace) -> None:
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=args.path, host=args.host)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    await uvicorn.Server(config).serve()
