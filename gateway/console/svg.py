"""Inline SVG charts, rendered server-side: stacked bars over time, horizontal bars, a percentile row.

Pure functions from numbers to markup (``markupsafe.Markup``); every label is escaped. No
JavaScript, no chart library, nothing fetched: they render under the console's strict CSP.

Must never: read the database or a request; the chart pages hand the numbers in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

COLOURS = {"allow": "#1f7a3a", "approve": "#d39e00", "deny": "#b42318"}
_OTHER = "#6b7280"


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
    )
    return Markup(head + "".join(body) + "</svg>")


def stacked_bars(
    buckets: Sequence[str], series: Mapping[str, Sequence[int]], label: str, width: int = 620, height: int = 240
) -> Markup:
    """One bar per bucket, stacked by series (e.g. effect); a legend on top, bucket labels below."""
    left, top, bottom = 36, 24, 30
    plot_h = height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(buckets))]
    peak = max(totals, default=0) or 1
    step = (width - left - 8) / max(len(buckets), 1)
    body = [f'<text x="2" y="{top + 8}">{peak}</text>', f'<text x="2" y="{top + plot_h}">0</text>']
    for i, name in enumerate(series):
        colour = COLOURS.get(name, _OTHER)
        body.append(f'<rect x="{left + i * 80}" y="4" width="10" height="10" fill="{colour}"/>')
        body.append(f'<text x="{left + i * 80 + 14}" y="13">{escape(name)}</text>')
    for i, bucket in enumerate(buckets):
        x, y = left + i * step, float(top + plot_h)
        for name, values in series.items():
            h = values[i] / peak * plot_h
            if h > 0:
                y -= h
                body.append(
                    f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS.get(name, _OTHER)}">'
                    f"<title>{escape(bucket)} {escape(name)}: {values[i]}</title></rect>"
                )
        if i % max(len(buckets) // 6, 1) == 0:
            body.append(f'<text x="{x:.1f}" y="{height - 10}">{escape(bucket)}</text>')
    return _svg(width, height, body, label)


def horizontal_bars(
    rows: Sequence[tuple[str, float]], label: str, unit: str = "", width: int = 620, colour: str = COLOURS["deny"]
) -> Markup:
    """One labelled bar per row, longest first as given; the value at the bar's end."""
    if not rows:
        return Markup(f'<p class="muted">{escape(label)}: nothing in this range.</p>')
    name_w, bar_h = 230, 22
    peak = max(value for _, value in rows) or 1
    body: list[str] = []
    for i, (name, value) in enumerate(rows):
        y = 4 + i * bar_h
        w = value / peak * (width - name_w - 70)
        body.append(f'<text x="0" y="{y + 14}">{escape(name[:36])}</text>')
        body.append(f'<rect x="{name_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 6}" fill="{colour}"/>')
        shown = f"{value:.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
        body.append(f'<text x="{name_w + w + 4:.1f}" y="{y + 14}">{shown}{escape(unit)}</text>')
    return _svg(width, 8 + len(rows) * bar_h, body, label)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(round(q * len(ordered), 9))))
    return ordered[rank - 1]
