"""Which series share a plot: figures on one scale together, so no curve flattens another.

Each side's unweighted terms share a plot (the generator side's first); a side's total, a weighted sum
on another scale, gets its own unless the side has a single term; each `[eval]` metric gets one, with
its parts and directions; then sample L1, learning rates and the skip counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from p2pcore.records import EVAL, LR, SAMPLES, SEPARATOR, TOTAL, is_term, log_directions, parse_key
from p2pcore.report.runlog import Point


@dataclass
class Chart:
    title: str
    series: dict[str, list[Point]] = field(default_factory=dict)


def directions(keys: list[str]) -> set[str]:
    """Direction names in `samples/<direction>/l1` keys, and any `a2b`-like name after `eval/`."""
    return log_directions(keys)


def chart_of(key: str, known_directions: set[str], single_term_sides: set[str]) -> tuple[int, str]:
    """(display order, title) of the plot a series belongs to."""
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


def group(series: Mapping[str, list[Point]]) -> list[Chart]:
    """The plots, in display order, each with its series in log order."""
    known = directions(list(series))
    terms: dict[str, int] = {}
    for key in series:
        if is_term(key):
            side = parse_key(key).group
            terms[side] = terms.get(side, 0) + 1
    single = {side for side, count in terms.items() if count == 1}
    charts: dict[tuple[int, str], Chart] = {}
    for key, points in series.items():
        slot = chart_of(key, known, single)
        charts.setdefault(slot, Chart(slot[1])).series[key] = points
    return [charts[slot] for slot in sorted(charts)]
