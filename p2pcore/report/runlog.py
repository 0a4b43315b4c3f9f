"""metrics.jsonl as plottable series, read through :mod:`p2pcore.records` while a run may still be appending
to it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from p2pcore.records import EPOCH, NOT_FIGURES, NUMBER_TYPES, STEP, is_number, read_records

Point = tuple[float, float]
MAX_POINTS = 1000

__all__ = ["MAX_POINTS", "Point", "RunLog", "downsample", "is_number", "read_log"]


@dataclass
class RunLog:
    """Every numeric key of the log as (epoch, value) points in log order, and where the run has got to."""

    series: dict[str, list[Point]] = field(default_factory=dict)
    step: int | None = None
    epoch: float | None = None
    lines: int = 0
    unreadable: int = 0


def read_log(path: Path) -> RunLog:
    """The log's series; a missing file is an empty log, and lines that do not parse (the one a running
    trainer is writing, or one cut short by a crash) are counted and skipped."""
    read = read_records(path)
    log = RunLog(lines=len(read.records), unreadable=read.unreadable)
    series = log.series
    for record in read.records:
        log.epoch = float(record[EPOCH])
        if is_number(record.get(STEP)):
            log.step = int(record[STEP])
        for key, value in record.items():
            if type(value) in NUMBER_TYPES and key not in NOT_FIGURES and math.isfinite(value):
                series.setdefault(key, []).append((log.epoch, float(value)))
    return log


def downsample(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most `limit` points: the first, the last and each bucket's lowest and highest, so a spike
    (a diverging step) still shows on a plot of a long run."""
    if len(points) <= limit:
        return points
    inner = points[1:-1]
    buckets = max(1, (limit - 2) // 2)
    kept: list[Point] = [points[0]]
    for b in range(buckets):
        chunk = inner[b * len(inner) // buckets:(b + 1) * len(inner) // buckets]
        if not chunk:
            continue
        values = [p[1] for p in chunk]
        low, high = values.index(min(values)), values.index(max(values))
        kept.extend(chunk[i] for i in sorted({low, high}))
    kept.append(points[-1])
    return kept
