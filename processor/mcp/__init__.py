"""``activity mcp``: upstream's MCP tools over the store (docs/mcp.md).

:mod:`processor.mcp.tools` holds the tools as plain functions of a store and their arguments;
:mod:`processor.mcp.server` puts them on the official SDK's ``MCPServer``.
"""
