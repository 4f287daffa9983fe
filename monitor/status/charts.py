"""Charts drawn on the server as inline SVG: no script library, no external asset.

Each chart is a ``<figure class="chart" data-chart=ID data-points=N>``; ``N`` counts the values
drawn, so a browser test (and a person) can tell an empty chart from a broken one. Times are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from markupsafe import Markup, escape

__all__ = ["Band", "Line", "Marker", "bars", "heatmap", "time_chart"]

WIDTH, HEIGHT = 640, 210
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 14, 30
PALETTE = ["#3656d6", "#d9730d", "#0f9d58", "#a142f4", "#b3261e", "#00838f"]


@dataclass
class Line:
    """One series: ``points`` are (time, value); ``None`` values leave a gap."""

    label: str
    points: list[tuple[datetime, float | None]]
    color: str = ""
    dashed: bool = False


@dataclass
class Band:
    """A shaded interval over time: (time, lower, upper)."""

    label: str
    points: list[tuple[datetime, float, float]]
    color: str = "#3656d6"


@dataclass
class Marker:
    """A vertical mark at ``at`` (a decision), with a short label and a tooltip."""

    at: datetime
    label: str
    title: str = ""
    color: str = "#121826"


@dataclass
class _Scale:
    t0: float
    t1: float
    y0: float
    y1: float
    extra: dict[str, float] = field(default_factory=dict)

    def x(self, t: datetime) -> float:
        span = (self.t1 - self.t0) or 1.0
        return LEFT + (t.timestamp() - self.t0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (v - self.y0) / span * (HEIGHT - TOP - BOTTOM)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.3g}"


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * step:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _figure(chart_id: str, title: str, points: int, body: str, legend: str, note: str) -> Markup:
    empty = (
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
        f"{escape(note)}</text>"
        if points == 0
        else ""
    )
    return Markup(
        f'<figure class="chart" data-chart="{escape(chart_id)}" data-points="{points}">'
        f"<figcaption>{escape(title)}</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"{body}{empty}</svg>{legend}</figure>"
    )


def _legend(items: Sequence[tuple[str, str, bool]]) -> str:
    spans = "".join(
        f'<span><i style="background:{c}{";opacity:.35" if faint else ""}"></i>{escape(label)}'
        "</span>"
        for label, c, faint in items
    )
    return f'<div class="legend">{spans}</div>' if spans else ""


def time_chart(
    chart_id: str,
    title: str,
    lines: Sequence[Line],
    *,
    bands: Sequence[Band] = (),
    markers: Sequence[Marker] = (),
    hlines: Sequence[tuple[float, str]] = (),
    y_min: float | None = None,
    y_max: float | None = None,
    percent: bool = False,
    empty: str = "no data yet",
) -> Markup:
    """Lines (and shaded bands) over time, with horizontal reference lines and decision marks."""
    times = [t for line in lines for t, v in line.points if v is not None]
    times += [t for band in bands for t, _, _ in band.points] + [m.at for m in markers]
    values = [v for line in lines for _, v in line.points if v is not None]
    values += [x for band in bands for _, lo, hi in band.points for x in (lo, hi)]
    values += [y for y, _ in hlines]
    points = sum(1 for line in lines for _, v in line.points if v is not None)
    points += sum(len(b.points) for b in bands)
    if not times or not values:
        return _figure(chart_id, title, 0, "", "", empty)
    finite = [v for v in values if math.isfinite(v)]
    lo = y_min if y_min is not None else min(finite)
    hi = y_max if y_max is not None else max(finite)
    if hi == lo:
        lo, hi = (lo, lo + 1) if y_min is not None else (lo - 1, hi + 1)
    pad = (hi - lo) * 0.05
    lo = lo if y_min is not None else lo - pad
    hi = hi if y_max is not None else hi + pad
    t0, t1 = min(times).timestamp(), max(times).timestamp()
    if t1 == t0:
        t0, t1 = t0 - 60, t1 + 60
    scale = _Scale(t0, t1, lo, hi)
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}"/>'
    ]
    for tick in _nice_ticks(lo, hi):
        y = scale.y(tick)
        text = f"{tick:.0%}" if percent else _fmt(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    for i in range(5):
        ts = t0 + (t1 - t0) * i / 4
        x = scale.x(datetime.fromtimestamp(ts, tz=min(times).tzinfo))
        label = datetime.fromtimestamp(ts, tz=min(times).tzinfo).strftime("%H:%M")
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">'
            f"{label}</text>"
        )
    legend: list[tuple[str, str, bool]] = []
    for band in bands:
        ordered = sorted(band.points)
        upper = " ".join(f"{scale.x(t):.1f},{scale.y(h):.1f}" for t, _, h in ordered)
        lower = " ".join(f"{scale.x(t):.1f},{scale.y(lo_):.1f}" for t, lo_, _ in reversed(ordered))
        parts.append(
            f'<polygon class="band" fill="{band.color}" fill-opacity="0.18" '
            f'points="{upper} {lower}"><title>{escape(band.label)}</title></polygon>'
        )
        legend.append((band.label, band.color, True))
    for y_value, label in hlines:
        y = scale.y(y_value)
        parts.append(
            f'<line class="ref" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="ref-label" x="{WIDTH - RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for i, line in enumerate(lines):
        color = line.color or PALETTE[i % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for t, v in sorted(line.points, key=lambda p: p[0]):
            if v is None or not math.isfinite(v):
                segments.append([])
                continue
            segments[-1].append(f"{scale.x(t):.1f},{scale.y(v):.1f}")
        dash = ' stroke-dasharray="5 4"' if line.dashed else ""
        for seg in segments:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            elif seg:
                parts.append(
                    f'<polyline class="series" stroke="{color}"{dash} points="{" ".join(seg)}">'
                    f"<title>{escape(line.label)}</title></polyline>"
                )
        legend.append((line.label, color, False))
    for marker in markers:
        x = scale.x(marker.at)
        tooltip = escape(marker.title or marker.label)
        parts.append(
            f'<g class="marker"><line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="{marker.color}"/><text x="{x + 3:.1f}" y="{TOP + 10}">'
            f"{escape(marker.label)}</text><title>{tooltip}</title></g>"
        )
    return _figure(chart_id, title, points, "".join(parts), _legend(legend), empty)


def _heat(value: float) -> str:
    """White (no evidence) to deep red (strong evidence of drift)."""
    share = max(0.0, min(1.0, value))
    r, g, b = 255, int(255 - 190 * share), int(255 - 200 * share)
    return f"rgb({r},{g},{b})"


def heatmap(
    chart_id: str,
    title: str,
    features: Sequence[str],
    times: Sequence[datetime],
    cells: dict[tuple[str, datetime], tuple[float | None, bool]],
    *,
    link: str = "",
    empty: str = "not evaluated yet",
) -> Markup:
    """Features (rows) by evaluation time (columns); colour: -log10 of the adjusted p-value
    (capped at 10), a dark outline where the feature drifted. Feature names are links to
    ``link`` + feature (the histogram), when given."""
    if not features or not times:
        return _figure(chart_id, title, 0, "", "", empty)
    row_h = max(12, min(22, (HEIGHT * 2) // max(1, len(features))))
    label_w = 150
    height = TOP + row_h * len(features) + BOTTOM
    col_w = (WIDTH - label_w - RIGHT) / len(times)
    parts = []
    points = 0
    for r, name in enumerate(features):
        y = TOP + r * row_h
        text = escape(name if len(name) <= 22 else name[:21] + "…")
        text_tag = f'<text x="{label_w - 6}" y="{y + row_h * 0.7}" text-anchor="end">'
        label = (
            f'<a href="#" class="feature" data-feature="{escape(name)}" '
            f'data-src="{escape(link)}{escape(quote(name, safe=""))}">{text_tag}{text}'
            f"<title>{escape(name)}: show histograms</title></text></a>"
            if link
            else f"{text_tag}{text}</text>"
        )
        parts.append(label)
        for c, at in enumerate(times):
            p, drifted = cells.get((name, at), (None, False))
            if p is None:
                continue
            points += 1
            strength = min(10.0, -math.log10(max(p, 1e-300))) / 10
            outline = ' stroke="#121826" stroke-width="1.5"' if drifted else ""
            parts.append(
                f'<rect x="{label_w + c * col_w:.1f}" y="{y}" width="{max(col_w - 1, 1):.1f}" '
                f'height="{row_h - 2}" fill="{_heat(strength)}"{outline}>'
                f"<title>{escape(name)} at {at:%H:%M}: adjusted p {p:.3g}"
                f"{', drifted' if drifted else ''}</title></rect>"
            )
    for i in sorted({0, len(times) // 2, len(times) - 1}):
        x = label_w + (i + 0.5) * col_w
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{height - 10}" text-anchor="middle">'
            f"{times[i]:%H:%M}</text>"
        )
    body = "".join(parts)
    legend = (
        '<div class="legend"><span><i style="background:rgb(255,255,255);border:1px solid #ccc">'
        '</i>p ≈ 1</span><span><i style="background:rgb(255,65,55)"></i>p ≤ 1e-10</span>'
        '<span><i style="background:#fff;border:2px solid #121826"></i>drifted</span></div>'
    )
    return Markup(
        f'<figure class="chart" data-chart="{escape(chart_id)}" data-points="{points}">'
        f"<figcaption>{escape(title)}</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
        f"{body}</svg>{legend}</figure>"
    )


def bars(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    groups: Sequence[tuple[str, Sequence[float], str]],
    *,
    empty: str = "no data",
) -> Markup:
    """Grouped bars (shares): one group per label, one bar per series (reference, current)."""
    points = sum(1 for _, values, _ in groups for v in values if v)
    if not labels or points == 0:
        return _figure(chart_id, title, 0, "", "", empty)
    top = max(max(values) for _, values, _ in groups) or 1.0
    scale = _Scale(0, 1, 0, top * 1.1)
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    width = slot * 0.8 / len(groups)
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}"/>'
    ]
    for tick in _nice_ticks(0, top * 1.1):
        y = scale.y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    for i, label in enumerate(labels):
        x0 = LEFT + i * slot + slot * 0.1
        for g, (name, values, color) in enumerate(groups):
            v = values[i]
            y = scale.y(v)
            parts.append(
                f'<rect x="{x0 + g * width:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{HEIGHT - BOTTOM - y:.1f}" fill="{color}">'
                f"<title>{escape(name)} {escape(label)}: {v:.1%}</title></rect>"
            )
        if len(labels) <= 12 or i % max(1, len(labels) // 8) == 0:
            text = escape(label if len(label) <= 12 else label[:11] + "…")
            parts.append(
                f'<text class="tick" x="{x0 + slot * 0.4:.1f}" y="{HEIGHT - 12}" '
                f'text-anchor="middle">{text}</text>'
            )
    legend = _legend([(name, color, False) for name, _, color in groups])
    return _figure(chart_id, title, points, "".join(parts), legend, empty)
