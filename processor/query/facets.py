"""Facets: the top values of a field with their counts (filter autocomplete,
docs/design.md#storage-query-3-5).

One query per field, in request order, over the same window, scope and filter as a list query;
duplicates left by redelivery are collapsed with ``FINAL`` so counts are exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from processor.query.errors import QueryError
from processor.query.service import Backend, QueryRequest, build
from processor.query.sql import DATABASE

DEFAULT_VALUES = 20
MAX_VALUES = 100
MAX_FACETS = 10


@dataclass(frozen=True)
class Facet:
    """The top values of one field, most frequent first (ties by value)."""

    field: str
    values: list[tuple[str, int]]


def facets(
    backend: Backend,
    request: QueryRequest,
    fields: list[str],
    limit: int = DEFAULT_VALUES,
    now_ns: int | None = None,
) -> list[Facet]:
    """Top values of each of ``fields`` for the rows ``request`` selects (limit/token ignored).

    Raises:
        QueryError: no field, too many fields, an unknown field, or an invalid request.
    """
    table = request.table
    if not fields:
        raise QueryError("provide at least one facet field")
    if len(fields) > MAX_FACETS:
        raise QueryError(f"at most {MAX_FACETS} facets per query")
    unknown = [f for f in fields if f not in table.facets]
    if unknown:
        raise QueryError(
            f"unsupported facet field {unknown[0]!r} for {table.noun}. Supported fields: "
            + ", ".join(sorted(table.facets))
        )
    if limit < 0:
        raise QueryError("facet limit must be non-negative")
    limit = min(limit or DEFAULT_VALUES, MAX_VALUES)
    now = time.time_ns() if now_ns is None else now_ns
    database = getattr(backend, "database", DATABASE)
    plan = build(replace(request, limit=0, continue_token=""), now, database)
    result = []
    for name in fields:
        column = table.facets[name].name
        where = plan.select.where_sql()
        if name.startswith("related."):
            where += f" AND {column} != ''"
        sql = (
            f"SELECT toString({column}) AS value, count() AS count "
            f"FROM {plan.select.database}.{table.name} FINAL{where} "
            f"GROUP BY value ORDER BY count DESC, value ASC LIMIT {int(limit)}"
        )
        rows: list[dict[str, Any]] = backend.query(sql, plan.select.params.values)
        result.append(Facet(name, [(str(r["value"]), int(r["count"])) for r in rows]))
    return result
