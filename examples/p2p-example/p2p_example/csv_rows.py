"""Reading a pairs listing: rows of (a, b, split) with paths resolved against the CSV's folder. Pure Python,
so a malformed listing is reported before anything heavy is imported."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from p2pcore.api import P2PError

LAYOUT = "a CSV whose header names columns a and b (and optionally split): a,b,split / x/1.png,y/1.png,train"


@dataclass(frozen=True)
class Row:
    line: int
    a: Path
    b: Path
    split: str


def read_rows(file: str | Path) -> list[Row]:
    """Every row of the listing; a missing file, a missing column or an empty cell is a P2PError naming
    the file and the line."""
    path = Path(file)
    if not path.is_file():
        raise P2PError(f"the pairs listing does not exist: {path}", file=str(path), key="data.file",
                       hint=f"expected {LAYOUT}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"a", "b"} - set(reader.fieldnames or ())
        if missing:
            raise P2PError(f"the listing has no column {' or '.join(sorted(missing))} (its header: "
                           f"{','.join(reader.fieldnames or ()) or 'empty'})", file=str(path), key="data.file",
                           hint=f"expected {LAYOUT}")
        rows = []
        for record in reader:
            a, b = ((record.get(k) or "").strip() for k in ("a", "b"))
            if not a or not b:
                raise P2PError(f"line {reader.line_num}: the {'a' if not a else 'b'} cell is empty", file=str(path),
                               hint="every row names both images of its pair")
            split = (record.get("split") or "").strip() or "train"
            rows.append(Row(reader.line_num, path.parent / a, path.parent / b, split))
    return rows
