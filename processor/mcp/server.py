"""The MCP server: the tools of :mod:`processor.mcp.tools` on the official Python SDK's
``MCPServer``, over stdio or streamable HTTP (docs/mcp.md).

Each tool answers pretty-printed JSON text, as upstream's do; a bad argument or a failed query is
an ``isError`` result ``Query failed: <message>`` (upstream's wording), never a traceback.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from processor.errors import PolicyError, PolicyErrors, ProcessorError
from processor.mcp import tools
from processor.mcp.tools import Store

NAME = "activity"
VERSION = "1.0.0"

#: tool name -> description (the function of :mod:`processor.mcp.tools` of the same name).
TOOLS = {
    "query_audit_logs": "Search stored Kubernetes audit logs in a time window with a CEL filter "
    "(fields: verb, user.username, objectRef.resource/name/namespace/apiGroup, "
    "responseStatus.code...). Times: RFC3339 or now-<N><s|m|h|d|w>.",
    "get_audit_log_facets": "Top values with counts of audit-log fields (verb, user.username, "
    "objectRef.resource, objectRef.namespace, responseStatus.code...).",
    "query_activities": "Search activities (human-readable change summaries) by change source "
    "(human|system), actor, resource kind, API group, words in the summary or a CEL filter.",
    "get_activity_facets": "Top values with counts of activity fields (spec.actor.name, "
    "spec.resource.kind, spec.changeSource...).",
    "find_failed_operations": "Audit-logged requests that failed (status code range), by user, "
    "resource or verb, with counts per status code.",
    "get_resource_history": "The activities of one resource, oldest first, by UID or by name "
    "(with kind, apiGroup, namespace).",
    "get_user_activity_summary": "What one user did in a window: counts by change source, "
    "resource kind and day.",
    "get_activity_timeline": "Activity counts per hour or day in a window, with the peak.",
    "summarize_recent_activity": "Totals, top actors and resource kinds and the latest "
    "summaries of a window.",
    "compare_activity_periods": "Compare two windows: totals, change in percent, new actors, "
    "resource kinds that increased or decreased.",
    "preview_activity_policy": "Run an ActivityPolicy spec over sample audit events / Events "
    "(inputs: [{type: audit, audit: {...}} | {type: event, event: {...}}] or raw records) or "
    "over recent stored records (autoFetch: {limit, timeRange, sources}).",
    "query_events": "Search stored Kubernetes Events by namespace, regarding kind and name, "
    "reason, type and reporting component.",
    "get_event_facets": "Top values with counts of Event fields (regarding.kind, reason, type, "
    "source.component, namespace...).",
}


def build_server(store: Store) -> MCPServer:
    """An ``MCPServer`` named ``activity`` with every tool reading ``store``."""
    server: MCPServer = MCPServer(NAME, version=VERSION, log_level="WARNING")
    for name, description in TOOLS.items():
        server.add_tool(
            _bind(getattr(tools, name), store),
            name=name,
            description=description,
            structured_output=False,
        )
    return server


def _bind(fn: Callable[..., dict[str, Any]], store: Store) -> Callable[..., str]:
    """``fn`` without its ``store`` parameter, answering JSON text; errors become ToolErrors."""
    signature = inspect.signature(fn, eval_str=True)
    params = [p for p in signature.parameters.values() if p.name != "store"]

    def tool(**kwargs: Any) -> str:
        try:
            result = fn(store, **kwargs)
        except PolicyErrors as exc:
            problems = "; ".join(e.field_message() for e in exc.errors)
            raise ToolError(f"Query failed: {problems}") from None
        except PolicyError as exc:
            raise ToolError(f"Query failed: {exc.field_message()}") from None
        except (ProcessorError, ValueError) as exc:  # QueryError, SinkError, bad arguments
            raise ToolError(f"Query failed: {exc}") from None
        return orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()

    tool.__name__ = fn.__name__
    tool.__signature__ = signature.replace(parameters=params, return_annotation=str)  # type: ignore[attr-defined]
    return tool
