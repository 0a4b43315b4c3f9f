"""Which series share a plot: figures on one scale together, so no curve flattens another.

Series are first sorted by what they are: each side's unweighted terms (the generator side's first); a side's
total, a weighted sum on another scale, unless the side has a single term; each `[eval]` metric, with its
parts and directions; then sample L1, learning rates and the skip counters. Within such a group, series share
a plot only when their ranges are comparable (:func:`comparable`), so a term that moves by 0.1 is not drawn
flat beside one that moves by 1. A series equal to another at every point (a single-term side's total) is
drawn dashed over it rather than hidden beneath it, and series that never change (the skip counters, a
constant learning rate) are folded into one short strip instead of a plot each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from p2pcore.records import EVAL, LR, SAMPLES, SEPARATOR, TOTAL, is_term, log_directions, parse_key
from p2pcore.report.runlog import Point
from p2pcore.report.units import common_title

SHARE = 0.15
"""Each changing series on a plot spans at least this fraction of the plot's value range."""
CONSTANT_TITLE = "unchanged throughout"


@dataclass
class Chart:
    """One plot: its series in log order, the y-axis title, and which series repeat another (`same`).
    A `constant` chart is the short strip of series that never change."""

    title: str
    series: dict[str, list[Point]] = field(default_factory=dict)
    y_label: str = ""
    same: dict[str, str] = field(default_factory=dict)
    constant: bool = False


def directions(keys: list[str]) -> set[str]:
    """Direction names in `samples/<direction>/l1` keys, and any `a2b`-like name after `eval/`."""
    return log_directions(keys)


def chart_of(key: str, known_directions: set[str], single_term_sides: set[str]) -> tuple[int, str]:
    """(display order, title) of the group a series belongs to."""
    head, name, _, _ = parse_key(key, known_directions)
    if head == EVAL and SEPARATOR in key:
        return 3, f"eval: {name}"
    if head == SAMPLES:
        return 4, "sample grid L1 (epoch end)"
    if head == LR:
        return 5, "learning rate"
    if head.startswith("skipped_"):
        return 6, "skipped files and steps"
    order = 1 if head == "G" else 2
    if name == TOTAL and head not in single_term_sides:
        return order, f"{head}/total (weighted sum of the terms)"
    if name:
        return order, f"{head} losses"
    return 7, "other"


def short_name(key: str, known_directions: set[str], directed: bool = True) -> str:
    """A series' name within its group, for a plot that shows some of the group: the part of an eval figure
    (``L``, or ``overall`` for the metric's own figure) after its direction when the group holds several
    (`directed`), a side's term, else the key."""
    head, name, part, direction = parse_key(key, known_directions)
    if head == EVAL:
        return SEPARATOR.join(x for x in (direction if directed else "", part) if x) or "overall"
    if head == SAMPLES:
        return direction or key
    return name or key


def value_range(points: list[Point]) -> tuple[float, float]:
    values = [p[1] for p in points]
    return min(values), max(values)


def is_constant(points: list[Point]) -> bool:
    """Two points or more, all of one value: a line with nothing to read but that value."""
    return len(points) > 1 and len({p[1] for p in points}) == 1


def comparable(ranges: list[tuple[float, float, bool]]) -> bool:
    """Whether series of these (low, high, changing) ranges may share one y axis: each changing series
    spans at least :data:`SHARE` of their joint range. A single point or a constant series cannot be
    flattened, so only the changing ones constrain."""
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return all(r[1] - r[0] >= SHARE * (high - low) for r in ranges if r[2])


def split(series: Mapping[str, list[Point]]) -> list[tuple[list[str], dict[str, str]]]:
    """The series of one group as plots: (keys, repeats) each, where `repeats` maps a series equal to an
    earlier one at every point to that one. Each series joins the first plot it is comparable with."""
    plots: list[tuple[list[str], dict[str, str]]] = []
    ranges: dict[str, tuple[float, float, bool]] = {}
    for key, points in series.items():
        twin = next((k for k in ranges if series[k] == points), None)
        if twin is not None:
            plot = next(p for p in plots if twin in p[0])
            plot[0].append(key)
            plot[1][key] = plot[1].get(twin, twin)
            continue
        ranges[key] = (*value_range(points), len(points) > 1 and not is_constant(points))
        for keys, _ in plots:
            if comparable([ranges[k] for k in keys if k in ranges] + [ranges[key]]):
                keys.append(key)
                break
        else:
            plots.append(([key], {}))
    return plots


def group(series: Mapping[str, list[Point]]) -> list[Chart]:
    """The plots, in display order, each with its series in log order; the strip of unchanging series last."""
    known = directions(list(series))
    terms: dict[str, int] = {}
    for key in series:
        if is_term(key):
            side = parse_key(key).group
            terms[side] = terms.get(side, 0) + 1
    single = {side for side, count in terms.items() if count == 1}
    groups: dict[tuple[int, str], dict[str, list[Point]]] = {}
    for key, points in series.items():
        if points:
            groups.setdefault(chart_of(key, known, single), {})[key] = points
    charts: list[Chart] = []
    strip = Chart(CONSTANT_TITLE, y_label="value", constant=True)
    for slot in sorted(groups):
        members = groups[slot]
        plots = split(members)
        for keys, same in plots:
            if all(is_constant(members[k]) for k in keys):
                strip.series.update((k, members[k]) for k in keys)
                continue
            own = [k for k in keys if k not in same]
            directed = len({parse_key(k, known).direction for k in members}) > 1
            names = ", ".join(short_name(k, known, directed) for k in own)
            title = slot[1] if len(plots) == 1 else f"{slot[1]} ({names})"
            charts.append(Chart(title, {k: members[k] for k in keys}, common_title(own, known), same))
    if strip.series:
        charts.append(strip)
    return charts
