"""What a file adapter's `check()` does before it reads any file: the data root is there, and the split
lists its records, counted in the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from p2pcore.api import DataReport, P2PError

from .files import missing_root

Record = TypeVar("Record")


def listed(report: DataReport, root: Path, layout: str, listing: Callable[[], Sequence[Record]],
           nothing: str) -> Sequence[Record] | None:
    """The split's records as `listing()` gives them, their number set in the report; None when there is
    nothing to scan, with the report saying why: no root (expected: `layout`), a listing refused, or no
    records (the problem `nothing`)."""
    if missing_root(report, root, layout):
        return None
    try:
        found = listing()
    except P2PError as exc:
        report.problem(exc.message)
        return None
    report.pairs = len(found)
    if not found:
        report.problem(nothing)
        return None
    return found
