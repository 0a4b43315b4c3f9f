"""The `csv_pairs` adapter (torch): items from the rows of a CSV listing, `check` for `p2p data check`, and
file I/O for `p2p translate`. Everything it reads from p2p comes through `p2pcore.api`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from p2pcore.api import (
    DataReport,
    Normalization,
    P2PError,
    finish_image,
    jitter,
    load_image,
    make_jitter,
    prepare_image,
    probe_image,
    read_image,
    write_image,
)

from .csv_rows import Row, read_rows
from .dataset import CSVPairsParams

FULL_RANGE = Normalization()


class PairItems(Dataset):
    """One item per row: both images loaded, checked to be the same size, jittered alike."""

    def __init__(self, rows: list[Row], channels: tuple[int, int], transform: Any) -> None:
        self.rows = rows
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        a = prepare_image(load_image(row.a, self.channels[0]), FULL_RANGE)
        b = prepare_image(load_image(row.b, self.channels[1]), FULL_RANGE)
        if a.shape[-2:] != b.shape[-2:]:
            raise P2PError(f"line {row.line}: the pair differs in size ({a.shape[-1]}x{a.shape[-2]} and "
                           f"{b.shape[-1]}x{b.shape[-2]})", file=str(row.a), hint="pairs must be pixel-aligned")
        a, b = jitter(self.transform, [a, b])
        return {"a": finish_image(a), "b": finish_image(b), "name": row.a.stem, "skipped": 0}


class CSVPairs:
    """Built without touching the disk: the listing is read when a split is asked for."""

    def __init__(self, params: CSVPairsParams) -> None:
        self.params = params
        self.a_channels = params.a_channels
        self.b_channels = params.b_channels

    def rows(self, split: str) -> list[Row]:
        rows = [row for row in read_rows(self.params.file) if row.split == split]
        if not rows:
            raise P2PError(f"the listing has no rows of split {split!r}", file=self.params.file, key="data.file",
                           hint=f"give some rows split = {split} in the `split` column")
        return rows

    def dataset(self, split: str, *, train: bool) -> PairItems:
        p = self.params
        transform = make_jitter(p.preprocess, load_size=p.load_size, crop_size=p.crop_size, flip=p.flip, train=train)
        return PairItems(self.rows(split), (self.a_channels, self.b_channels), transform)

    def read_input(self, path: str | Path, side: str = "a") -> torch.Tensor:
        return read_image(path, self.a_channels if side == "a" else self.b_channels)

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        write_image(image, path)

    def check(self, split: str = "train", *, deep: bool = False) -> DataReport:
        """Every listed file exists and is readable (headers, or decoded with `deep`), and each pair's two
        images are the same size."""
        report = DataReport("csv_pairs", split, self.params.file, deep=deep)
        try:
            rows = self.rows(split)
        except P2PError as exc:
            report.problem(exc.message)
            return report.finish()
        report.pairs = len(rows)
        sizes: set[tuple[int, int]] = set()
        for row in rows:
            found = [_size(path, deep, report, row.line) for path in (row.a, row.b)]
            if None not in found and found[0] != found[1]:
                report.problem(f"line {row.line}: {row.a.name} is {'x'.join(map(str, found[0]))} but {row.b.name} "
                               f"is {'x'.join(map(str, found[1]))}; pairs must be pixel-aligned",
                               kind="pairs that differ in size")
            sizes.update(s for s in found if s is not None)
        report.facts["sizes"] = ", ".join("x".join(map(str, s)) for s in sorted(sizes)[:4]) + \
            (" ..." if len(sizes) > 4 else "")
        return report.finish()


def _size(path: Path, deep: bool, report: DataReport, line: int) -> tuple[int, int] | None:
    """Width and height of one listed file, or None after reporting why it cannot be used."""
    if not path.is_file():
        report.problem(f"line {line}: {path} does not exist", kind="missing files")
        return None
    try:
        if deep:
            image = load_image(path)
            return int(image.shape[-1]), int(image.shape[-2])
        info = probe_image(path)
        return info.width, info.height
    except P2PError as exc:
        report.problem(f"line {line}: {path}: {exc.message}", kind="unreadable files")
        return None
