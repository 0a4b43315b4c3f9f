"""Which series share a plot: figures on one scale together, so no curve flattens another.

Each side's unweighted terms share a plot (the generator side's first); a side's total, a weighted sum
on another scale, gets its own unless the side has a single term; each `[eval]` metric gets one, with
its parts and directions; then sample L1, learning rates and the skip counters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from p2pcore.report.runlog import Point

DIRECTION = re.compile(r"[a-z]+2[a-z]+")


@dataclass
class Chart:
    title: str
    series: dict[str, list[Point]] = field(default_factory=dict)


def directions(keys: list[str]) -> set[str]:
    """Direction names in `samples/<direction>/l1` keys, and any `a2b`-like name after `eval/`."""
    found = {key.split("/")[1] for key in keys if key.startswith("samples/") and key.count("/") == 2}
    found |= {key.split("/")[1] for key in keys
              if key.startswith("eval/") and key.count("/") >= 2 and DIRECTION.fullmatch(key.split("/")[1])}
    return found


def chart_of(key: str, known_directions: set[str], single_term_sides: set[str]) -> tuple[int, str]:
    """(display order, title) of the plot a series belongs to."""
    parts = key.split("/")
    head = parts[0]
    if head == "eval" and len(parts) > 1:
        metric = parts[2] if len(parts) > 2 and parts[1] in known_directions else parts[1]
        return 3, f"eval: {metric}"
    if head == "samples":
        return 4, "sample grid L1 (epoch end)"
    if head == "lr":
        return 5, "learning rate"
    if key.startswith("skipped_"):
        return 6, "skipped files and steps"
    order = 1 if head == "G" else 2
    if len(parts) == 2 and parts[1] == "total" and head not in single_term_sides:
        return order, f"{head}/total (weighted sum of the terms)"
    if len(parts) >= 2:
        return order, f"{head} losses"
    return 7, "other"


def group(series: Mapping[str, list[Point]]) -> list[Chart]:
    """The plots, in display order, each with its series in log order."""
    known = directions(list(series))
    terms: dict[str, int] = {}
    for key in series:
        if key.count("/") and key.split("/")[0] not in ("eval", "samples", "lr") and not key.endswith("/total"):
            terms[key.split("/")[0]] = terms.get(key.split("/")[0], 0) + 1
    single = {side for side, count in terms.items() if count == 1}
    charts: dict[tuple[int, str], Chart] = {}
    for key, points in series.items():
        slot = chart_of(key, known, single)
        charts.setdefault(slot, Chart(slot[1])).series[key] = points
    return [charts[slot] for slot in sorted(charts)]
