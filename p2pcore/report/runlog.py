"""metrics.jsonl as plottable series, read while a run may still be appending to it."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

Point = tuple[float, float]
NOT_SERIES = frozenset({"step", "epoch", "time"})
MAX_POINTS = 1000
NUMBER_TYPES = (int, float)


@dataclass
class RunLog:
    """Every numeric key of the log as (epoch, value) points in log order, and where the run has got to."""

    series: dict[str, list[Point]] = field(default_factory=dict)
    step: int | None = None
    epoch: float | None = None
    lines: int = 0
    unreadable: int = 0


def is_number(value: object) -> bool:
    """A finite int or float (JSON booleans are ints in Python, and are not figures)."""
    return type(value) in NUMBER_TYPES and math.isfinite(value)  # type: ignore[arg-type]


def _records(lines: list[bytes]) -> Iterator[object]:
    """Each line parsed, or None where it does not parse. All lines at once first (one call of the
    decoder, fast on a long log), then one by one when a line is damaged."""
    try:
        yield from json.loads(b"[" + b",".join(lines) + b"]")
        return
    except ValueError:
        pass
    for line in lines:
        try:
            yield json.loads(line)
        except ValueError:
            yield None


def read_log(path: Path) -> RunLog:
    """The log's series; a missing file is an empty log, and lines that do not parse (the one a running
    trainer is writing, or one cut short by a crash) are counted and skipped."""
    log = RunLog()
    try:
        data = path.read_bytes()
    except OSError:
        return log
    lines = [line for line in data.splitlines() if line.strip()]
    series = log.series
    # the last line is often being written: parsed on its own, so it cannot spoil the fast path
    for record in itertools.chain(_records(lines[:-1]), _records(lines[-1:])):
        epoch = record.get("epoch") if isinstance(record, dict) else None
        if not is_number(epoch):
            log.unreadable += 1
            continue
        log.lines += 1
        log.epoch = float(epoch)
        if is_number(record.get("step")):
            log.step = int(record["step"])
        for key, value in record.items():
            if type(value) in NUMBER_TYPES and key not in NOT_SERIES and math.isfinite(value):
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
