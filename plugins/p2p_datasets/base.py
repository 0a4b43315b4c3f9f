"""What the file-based adapters share: the item dataset with corrupt-file skipping, and side I/O."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from p2pcore.api import DataReport, P2PError

from .imagefiles import ImageFormats, Normalization, load_image, to_unit, write_image
from .params import Jitter


def normalization(params: Any) -> Normalization:
    """The imageio rule for a recipe's `normalize` value."""
    rule = getattr(params, "normalize", None)
    if rule is None or rule.mode == "full_range":
        return Normalization()
    if rule.mode == "fixed":
        return Normalization("fixed", min=rule.min, max=rule.max)
    return Normalization("percentile", low=rule.low, high=rule.high)


class Items(Dataset):
    """Items of a file-based adapter: ``adapter.load(record, transform, train)`` makes one.

    A file that cannot be used raises :class:`P2PError`. With `skip_corrupt`, that file's record
    is reported once (a warning naming the file), remembered, and the next record is used; the
    item's ``skipped`` counts the records passed over. Without it, the error propagates.
    """

    def __init__(self, adapter: Any, records: Sequence[Any], names: Sequence[str], *, train: bool,
                 skip_corrupt: bool) -> None:
        self.adapter = adapter
        self.records = list(records)
        self.names = list(names)
        self.train = train
        self.skip_corrupt = skip_corrupt
        self.transform = None
        p = adapter.params
        if isinstance(p, Jitter):
            from p2pcore.api import make_jitter  # torchvision is imported only when data is loaded

            self.transform = make_jitter(p.preprocess, load_size=p.load_size, crop_size=p.crop_size, flip=p.flip,
                                         train=train, interpolation=p.interpolation, test_crop=p.test_crop)
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(index)
        i, skipped = index % n, 0
        while True:
            if i not in self.bad:
                try:
                    item = self.adapter.load(self.records[i], self.transform, self.train)
                    break
                except P2PError as exc:
                    if not self.skip_corrupt:
                        raise
                    self.bad.add(i)
                    warnings.warn(f"skipping {exc.file or self.names[i]}: {exc.message}", stacklevel=2)
            skipped += 1
            if skipped >= n:
                raise P2PError(f"every one of the {n} items of this split is unreadable",
                               hint="run `p2p data check RECIPE --deep` to list the files")
            i = (i + 1) % n
        item["name"] = self.names[i]
        item["skipped"] = skipped
        return item


class FileAdapter(ImageFormats):
    """Base of the adapters that read files: reads inputs and writes outputs like training does."""

    kind = ""

    def __init__(self, params: Any) -> None:
        self.params = params
        self.rule = normalization(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(a_channels={self.a_channels}, b_channels={self.b_channels})"

    # -- the adapter contract ----------------------------------------------------------------
    def dataset(self, split: str, *, train: bool) -> Items:
        records, names = self.records(split)
        return Items(self, records, names, train=train, skip_corrupt=self.params.skip_corrupt)

    def read_input(self, path: str | Path, side: str = "a") -> torch.Tensor:
        """An image of one side ("a" or "b") at native size, converted and normalised as in training."""
        return to_unit(load_image(path, self.a_channels if side == "a" else self.b_channels), self.rule)

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        """An image of either side as a file with `output_bits` bits per sample; 1 channel stays 1."""
        write_image(image, path, bits=self.params.output_bits)

    def check(self, split: str = "train", *, deep: bool = False) -> DataReport:
        report = DataReport(self.kind, split, str(self.params.root), deep=deep)
        self.scan(report, split, deep)
        return report.finish()

    # -- for subclasses ----------------------------------------------------------------------
    a_channels: int
    b_channels: int

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        raise NotImplementedError

    def load(self, record: Any, transform: Any, train: bool) -> dict[str, Any]:
        raise NotImplementedError

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        raise NotImplementedError


def same_size(path_a: Path, a: torch.Tensor, path_b: Path, b: torch.Tensor) -> None:
    if a.shape[-2:] != b.shape[-2:]:
        raise P2PError(f"the two images of this pair differ in size: {a.shape[-1]}x{a.shape[-2]} and "
                       f"{b.shape[-1]}x{b.shape[-2]} ({path_b})", file=str(path_a),
                       hint="pairs must be pixel-aligned; resize or remove one of them")


def load_pair(record: tuple[Path, Path], transform: Any, channels: tuple[int, int], rule: Any) -> dict[str, Any]:
    """Two aligned files as a jittered item: the same crop and flip for both."""
    from p2pcore.api import finish_image, jitter, prepare_image

    path_a, path_b = record
    a = prepare_image(load_image(path_a, channels[0]), rule)
    b = prepare_image(load_image(path_b, channels[1]), rule)
    same_size(path_a, a, path_b, b)
    a, b = jitter(transform, [a, b])
    return {"a": finish_image(a), "b": finish_image(b)}


def folder_of(root: Path, split: str, *, fallback: bool) -> Path | None:
    """root/<split> (root/val for "test"), else root itself for "train" when `fallback`."""
    for base in [root / split] + ([root / "val"] if split == "test" else []):
        if base.is_dir():
            return base
    return root if fallback and split == "train" and root.is_dir() else None
