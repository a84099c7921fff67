"""Charts drawn on the server as SVG, so the page and the PDF show the same picture.

Hand-written rather than a library: pygal (the well-kept Python SVG charting library, 3.1 in the
local registry) writes its colours and fonts into a ``<style>`` element and adds ``<script>``
tags for tooltips; the portal's Content-Security-Policy (``style-src 'self'``, no inline
script) blocks both when the SVG is inlined in a page, and turning them off leaves little of
the library. Bar and line charts with labels need only a few rectangles, a polyline and text,
so they are drawn here with presentation attributes alone (``fill=``, ``font-family=``), which
both browsers under the CSP and WeasyPrint render. Every text is escaped; the font family names
Noto Sans CJK SC first so Chinese labels draw in the PDF too.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr  # nosec B406  # writes XML, parses none

FONT = "'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', sans-serif"
INK, GRID, BAR, LINE = "#1f2933", "#d9dee3", "#2f6fb0", "#c2410c"


def _num(value) -> float:
    return float(value or 0)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    return f"{value:,}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _text(x, y, body, *, anchor="start", size=11, fill=INK, extra="") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
            f'text-anchor="{anchor}"{extra}>{escape(str(body))}</text>')


def _open(width: int, height: int, title: str) -> list[str]:
    return [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title)} '
             f'font-family="{FONT}" class="chart">'),
            f"<title>{escape(title)}</title>"]


def bar_chart(title: str, items: Sequence[tuple[str, object]], *, width: int = 640,
              unit: str = "") -> str:
    """Horizontal bars, one per ``(label, value)``, longest scale at the largest value."""
    label_w, row_h, top = 180, 22, 30
    height = top + row_h * max(1, len(items)) + 10
    out = _open(width, height, title)
    out.append(_text(0, 16, title, size=13, extra=' font-weight="bold"'))
    top_value = _nice_max(max((_num(v) for _l, v in items), default=0))
    span = width - label_w - 90
    if not items:
        out.append(_text(label_w, top + 14, "–"))
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        length = span * _num(value) / top_value
        shown = label if len(label) <= 24 else label[:23] + "…"
        out.append(_text(label_w - 6, y + 14, shown, anchor="end"))
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{length:.1f}" height="{row_h - 6}" '
                   f'fill="{BAR}"/>')
        out.append(_text(label_w + length + 4, y + 14, _fmt(value) + unit))
    out.append("</svg>")
    return "".join(out)


def line_chart(title: str, points: Sequence[tuple[str, object]], *, width: int = 640,
               height: int = 220, unit: str = "") -> str:
    """A line over ``(label, value)`` points in order; a missing value (None) breaks the line."""
    left, right, top, bottom = 50, 16, 30, 36
    out = _open(width, height, title)
    out.append(_text(0, 16, title, size=13, extra=' font-weight="bold"'))
    top_value = _nice_max(max((_num(v) for _l, v in points if v is not None), default=0))
    plot_w, plot_h = width - left - right, height - top - bottom
    for k in range(5):
        y = top + plot_h * k / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(_text(left - 4, y + 4, _fmt(round(top_value * (4 - k) / 4, 2)),
                         anchor="end", size=10))
    step = plot_w / max(1, len(points) - 1) if len(points) > 1 else 0
    segment: list[str] = []
    segments = [segment]
    for i, (label, value) in enumerate(points):
        x = left + (step * i if len(points) > 1 else plot_w / 2)
        out.append(_text(x, height - bottom + 16, label, anchor="middle", size=10))
        if value is None:
            segment = []
            segments.append(segment)
            continue
        y = top + plot_h * (1 - _num(value) / top_value)
        segment.append(f"{x:.1f},{y:.1f}")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{LINE}"/>')
        out.append(_text(x, y - 6, _fmt(value) + unit, anchor="middle", size=10))
    for seg in segments:
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{LINE}" '
                       f'stroke-width="2"/>')
    out.append("</svg>")
    return "".join(out)
