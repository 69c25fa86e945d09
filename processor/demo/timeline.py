"""The demo's timeline: stored activities, oldest first, as a terminal table."""

from __future__ import annotations

import shutil
from typing import Any

#: Every stored activity once (FINAL collapses redelivered duplicates), oldest first.
TIMELINE_SQL = """
SELECT
    formatDateTime(timestamp, '%H:%i:%S') AS time,
    origin_type AS origin,
    actor_name AS actor,
    resource_kind AS kind,
    summary
FROM audit.activities FINAL
ORDER BY timestamp, origin_id
"""

COLUMNS = ("time", "origin", "actor", "kind", "summary")


def format_timeline(rows: list[dict[str, Any]], width: int | None = None) -> str:
    """Rows of :data:`TIMELINE_SQL` as an aligned table.

    Args:
        rows: the timeline rows.
        width: cut summaries to fit this many columns; None = the terminal's width, 0 = never cut.
    """
    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    cells = [[str(row.get(c, "")) for c in COLUMNS] for row in rows]
    header = [c.upper() for c in COLUMNS]
    widths = [max([len(header[i])] + [len(r[i]) for r in cells]) for i in range(len(COLUMNS) - 1)]
    room = max(width - sum(widths) - 2 * len(widths), 30) if width else 1 << 30
    lines = []
    for row in [header, *cells]:
        summary = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + summary
        )
    return "\n".join(lines)
