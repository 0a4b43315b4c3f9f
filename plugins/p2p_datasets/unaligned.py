"""`unaligned`: two unpaired domains (CycleGAN): root/trainA, root/trainB, root/testA, root/testB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter
from .files import describe_side, list_images, missing_root, record_errors, scan, size_warnings
from .imagefiles import load_image
from .params import UnalignedParams


class Unaligned(FileAdapter):
    """Item i is A[i] with a random B when training (B[i mod |B|] otherwise); a split has as many
    items as its larger domain, the smaller one repeating. Each side is jittered on its own."""

    kind = "unaligned"

    def __init__(self, params: UnalignedParams) -> None:
        super().__init__(params)
        self.a_channels = params.a_channels
        self.b_channels = params.b_channels

    def layout(self) -> str:
        a, b = self.params.a_dir, self.params.b_dir
        return (f"<root>/{a.format(split='train')}/, <root>/{b.format(split='train')}/, "
                f"<root>/{a.format(split='test')}/ and <root>/{b.format(split='test')}/ (test may be val), "
                "any file names")

    def folders(self, split: str) -> tuple[Path, Path]:
        root = Path(self.params.root)
        for name in [split] + (["val"] if split == "test" else []):
            a, b = root / self.params.a_dir.format(split=name), root / self.params.b_dir.format(split=name)
            if a.is_dir() and b.is_dir():
                return a, b
        if not root.is_dir():
            raise P2PError(f"data root {root} does not exist", key="data.root", hint=f"expected {self.layout()}")
        raise P2PError(f"no {split} split: expected {root / self.params.a_dir.format(split=split)}/ and "
                       f"{root / self.params.b_dir.format(split=split)}/", key="data.root",
                       hint=f"layout: {self.layout()}")

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        dir_a, dir_b = self.folders(split)
        side_a = list(list_images(dir_a).by_stem.values())
        side_b = tuple(list_images(dir_b).by_stem.values())
        if not side_a or not side_b:
            empty = dir_a if not side_a else dir_b
            raise P2PError(f"no images in {empty}", key="data.root", hint=f"layout: {self.layout()}")
        n = max(len(side_a), len(side_b))
        records = [(side_a[i % len(side_a)], side_b, i % len(side_b)) for i in range(n)]
        return records, [side_a[i % len(side_a)].stem for i in range(n)]

    def load(self, record: tuple[Path, tuple[Path, ...], int], transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        path_a, side_b, j = record
        if train:
            j = int(torch.randint(len(side_b), ()))
        a = prepare_image(load_image(path_a, self.a_channels), self.rule)
        b = prepare_image(load_image(side_b[j], self.b_channels), self.rule)
        (a,) = jitter(transform, [a])
        (b,) = jitter(transform, [b])
        return {"a": finish_image(a), "b": finish_image(b), "name_b": side_b[j].stem}

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        if missing_root(report, root, self.layout()):
            return
        try:
            dir_a, dir_b = self.folders(split)
        except P2PError as exc:
            report.problem(exc.message)
            return
        counts = []
        for label, folder, channels in (("A", dir_a, self.a_channels), ("B", dir_b, self.b_channels)):
            listing = list_images(folder)
            if listing.ignored:
                report.warn(f"{folder.name}/: {len(listing.ignored)} file(s) that are not images are ignored, "
                            f"e.g. {listing.ignored[0]}")
            paths = list(listing.by_stem.values())
            if not paths:
                report.problem(f"no images in {folder}; expected {self.layout()}")
            infos = record_errors(report, scan(paths, deep=deep), root)
            describe_side(report, f"{label}: {folder.name}/", infos, root=root, channels=channels,
                          normalize=self.params.normalize)
            size_warnings(report, infos.values(), self.params, folder.name)
            counts.append(len(paths))
        report.pairs = max(counts) if all(counts) else 0
