"""A self-contained SVG line chart (no scripts, no external resources) for the run reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["line_chart"]

#: Line colours, cycled (Grafana's classic palette).
COLOURS = ("#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 320, 70, 110, 30, 40


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]], title: str, unit: str = ""
) -> str:
    """An ``<svg>`` with one polyline per series of (x seconds, y) points, axes and a legend.

    x is shown relative to the earliest point; y from 0 to the largest value.
    """
    points = [p for values in series.values() for p in values]
    x0 = min((x for x, _ in points), default=0.0)
    x1 = max((x for x, _ in points), default=1.0)
    top = max((y for _, y in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = (x1 - x0) or 1.0

    def xy(x: float, y: float) -> str:
        return f"{LEFT + (x - x0) / span * plot_w:.1f},{TOP + plot_h - y / top * plot_h:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="{LEFT}" y="18" font-size="13">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#ccc"/>',
    ]
    for i in range(5):  # y grid and labels: 0, 1/4 .. top
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{value:,.0f}</text>")  # fmt: skip
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 10}">0 s</text>')
    parts.append(f'<text x="{LEFT + plot_w}" y="{HEIGHT - 10}" text-anchor="end">{span:.0f} s'
                 f"</text>")  # fmt: skip
    if unit:
        parts.append(f'<text x="{LEFT}" y="{TOP - 4}" fill="#666">{escape(unit)}</text>')
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = " ".join(xy(x, y) for x, y in values)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                     f'points="{line}"/>')  # fmt: skip
        ly = TOP + 14 * i + 8
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{ly - 8}" width="10" height="10" '
                     f'fill="{colour}"/>')  # fmt: skip
        parts.append(f'<text x="{WIDTH - RIGHT + 24}" y="{ly + 1}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
