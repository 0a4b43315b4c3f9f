"""Line plots as inline SVG: axes with round tick values and titles, grid lines and a legend, in a few
kilobytes, so the report needs no plotting library and no script to draw; and the short strip of series
that never change, one row each."""

from __future__ import annotations

import math
from html import escape

from p2pcore.report.charts import Chart
from p2pcore.report.numbers import figure
from p2pcore.report.runlog import Point, downsample

WIDTH = 560
PLOT_HEIGHT = 210
LEFT, RIGHT, BOTTOM = 74, 14, 34
STRIP_ROW = 22
STRIP_LABEL = 260
CHAR = 6.6
"""About the width of a character of the 12 px labels, in the plot's units."""
DASH = "5 4"
LEGEND_ROW = 16
MARKERS_UP_TO = 40
PALETTE = ("#1f5fae", "#d1491c", "#2b8a3e", "#8a3fb8", "#b8860b", "#0f8a8a", "#c2185b", "#5d6d7e",
           "#6b8e23", "#7a4a2a")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values (1, 2, 2.5 or 5 times a power of ten apart) covering [low, high]."""
    if not high > low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [i * step for i in range(first, last + 1)]


def tick_labels(ticks: list[float]) -> list[str]:
    """Tick values in one style per axis: as many decimals as the spacing needs, or scientific notation
    (with as many digits as keep the labels apart) for tiny spacings and huge values."""
    step = ticks[1] - ticks[0]
    if max(abs(t) for t in ticks) >= 1e6 or step < 1e-6:
        for digits in range(6):
            labels = ["0" if t == 0 else f"{t:.{digits}e}" for t in ticks]
            if len(set(labels)) == len(labels):
                break
        return labels
    decimals = next((d for d in range(10) if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6), 10)
    labels = [f"{t:.{decimals}f}" for t in ticks]
    return [text.lstrip("-") if float(text) == 0 else text for text in labels]


def _legend(labels: list[str], dashed: set[int]) -> tuple[str, int]:
    """Legend entries laid out in rows above the plot; the markup and the height it takes."""
    items, x, row = [], LEFT, 0
    for i, label in enumerate(labels):
        width = 22 + CHAR * len(label) + 14
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        y = 12 + row * LEGEND_ROW
        colour = PALETTE[i % len(PALETTE)]
        dash = f' stroke-dasharray="{DASH}"' if i in dashed else ""
        items.append(f'<line x1="{x:.0f}" y1="{y - 4}" x2="{x + 16:.0f}" y2="{y - 4}" stroke="{colour}" '
                     f'stroke-width="2.5"{dash}/><text x="{x + 22:.0f}" y="{y}">{escape(label)}</text>')
        x += width
    return "".join(items), 12 + (row + 1) * LEGEND_ROW


def _path(key: str, points: list[Point], d: str, colour: str, x_label: str, dashed: bool = False) -> str:
    """One series' line, its last value in a tooltip."""
    last_x, last_y = points[-1]
    dash = f' stroke-dasharray="{DASH}"' if dashed else ""
    value = figure(last_y, key)
    return (f'<path class="series" data-series="{escape(key)}" d="{d}" stroke="{colour}"{dash}>'
            f'<title>{escape(key)}: {value} at {x_label} {last_x:g}</title></path>')


def render(chart: Chart, x_label: str = "epoch") -> str:
    """The chart as an `<svg>` element; one `<path>` per series (plus dots where there are few points); a
    series that repeats another is dashed over it and says so in the legend."""
    if chart.constant:
        return render_constant(chart, x_label)
    series = {key: downsample(points) for key, points in chart.series.items() if points}
    labels = [f"{key} (= {chart.same[key]})" if key in chart.same else key for key in series]
    legend, top = _legend(labels, {i for i, key in enumerate(series) if key in chart.same})
    height = top + PLOT_HEIGHT + BOTTOM
    xs = [p[0] for points in series.values() for p in points] or [0.0]
    ys = [p[1] for points in series.values() for p in points] or [0.0]
    x_ticks = nice_ticks(min(xs), max(xs), 6)
    y_ticks = nice_ticks(min(ys), max(ys), 5)
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w = WIDTH - LEFT - RIGHT

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return top + PLOT_HEIGHT - (y - y0) / (y1 - y0) * PLOT_HEIGHT

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(chart.title)}" '
           f'xmlns="http://www.w3.org/2000/svg">', legend, '<g class="grid">']
    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{sy(y):.1f}" x2="{WIDTH - RIGHT}" y2="{sy(y):.1f}"/>')
    for x in x_ticks:
        out.append(f'<line x1="{sx(x):.1f}" y1="{top}" x2="{sx(x):.1f}" y2="{top + PLOT_HEIGHT}"/>')
    out.append('</g><g class="axis">')
    out.append(f'<line x1="{LEFT}" y1="{top + PLOT_HEIGHT}" x2="{WIDTH - RIGHT}" y2="{top + PLOT_HEIGHT}"/>'
               f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{top + PLOT_HEIGHT}"/>')
    for y, label in zip(y_ticks, tick_labels(y_ticks), strict=True):
        out.append(f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{label}</text>')
    for x, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
        out.append(f'<text x="{sx(x):.1f}" y="{top + PLOT_HEIGHT + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle">{x_label}</text>')
    middle = top + PLOT_HEIGHT / 2
    out.append(f'<text class="y-title" x="14" y="{middle:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {middle:.1f})">{escape(chart.y_label)}</text></g>')
    for i, (key, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        d = "M" + "L".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        out.append(_path(key, chart.series[key], d, colour, x_label, key in chart.same))
        if len(points) <= MARKERS_UP_TO and key not in chart.same:
            out.append(f'<g fill="{colour}">' + "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5"/>'
                                                       for x, y in points) + "</g>")
    out.append("</svg>")
    return "".join(out)


def render_constant(chart: Chart, x_label: str = "epoch") -> str:
    """Series that never change, one short row each: the name, a flat line over the epochs it was logged
    at and its value, on a shared epoch axis."""
    series = {key: downsample(points) for key, points in chart.series.items() if points}
    xs = [p[0] for points in series.values() for p in points] or [0.0]
    x_ticks = nice_ticks(min(xs), max(xs), 6)
    x0, x1 = x_ticks[0], x_ticks[-1]
    left = min(STRIP_LABEL, 16 + max(CHAR * len(key) for key in series)) if series else STRIP_LABEL
    right = WIDTH - RIGHT - 80
    height = 8 + len(series) * STRIP_ROW + BOTTOM

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    out = [f'<svg class="chart strip" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="{escape(chart.title)}" xmlns="http://www.w3.org/2000/svg"><g class="axis">']
    bottom = 8 + len(series) * STRIP_ROW
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    for x, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
        out.append(f'<text x="{sx(x):.1f}" y="{bottom + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 4}" text-anchor="middle">{x_label}</text></g>')
    for i, (key, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        y = 8 + i * STRIP_ROW + STRIP_ROW / 2
        value = figure(points[-1][1], key)
        d = "M" + "L".join(f"{sx(x):.1f},{y:.1f}" for x, _ in points)
        name = key if CHAR * len(key) <= left - 10 else key[:int((left - 10) / CHAR) - 1] + "…"
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}<title>{escape(key)}'
                   '</title></text>'
                   + _path(key, chart.series[key], d, colour, x_label)
                   + f'<text class="value" x="{right + 8}" y="{y + 4:.1f}">= {value}</text>')
    out.append("</svg>")
    return "".join(out)
