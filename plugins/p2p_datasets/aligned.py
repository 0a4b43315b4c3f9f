"""`aligned`: the pix2pix "AB" layout, each file holding A on the left half and B on the right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, folder_of
from .files import describe_side, list_images, missing_root, record_errors, relative, scan, size_warnings
from .imagefiles import load_image, match_channels
from .params import AlignedParams


def halves(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Left and right halves of a C x H x W image (an odd last column is dropped)."""
    half = image.shape[-1] // 2
    return image[..., :half], image[..., half:2 * half]


class SideBySide(FileAdapter):
    """Adapters whose files hold two images side by side, one file per pair, in root/<split>/."""

    def layout(self) -> str:
        return ("<root>/train/NAME.jpg and <root>/test/NAME.jpg (or <root>/val/), each file holding the two "
                "images of a pair side by side, left half | right half")

    def folder(self, split: str) -> Path:
        root = Path(self.params.root)
        base = folder_of(root, split, fallback=False)
        if base is None:
            if not root.is_dir():
                raise P2PError(f"data root {root} does not exist", key="data.root",
                               hint=f"expected {self.layout()}")
            also = f" or {root}/val/" if split == "test" else ""
            raise P2PError(f"no {split} split: expected {root}/{split}/{also}", key="data.root",
                           hint=f"layout: {self.layout()}")
        return base

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        listing = list_images(self.folder(split))
        paths = list(listing.by_stem.values())
        return paths, [p.stem for p in paths]

    def file_channels(self) -> int:
        return max(self.a_channels, self.b_channels)

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        if missing_root(report, root, self.layout()):
            return
        try:
            base = self.folder(split)
        except P2PError as exc:
            report.problem(exc.message)
            return
        report.root = str(base)
        listing = list_images(base)
        for stem, paths in listing.duplicates.items():
            report.warn(f"{', '.join(relative(p, base) for p in paths)}: several files share the name {stem!r}; "
                        "only the first is used")
        if listing.ignored:
            report.warn(f"{len(listing.ignored)} file(s) that are not images are ignored, e.g. {listing.ignored[0]}")
        paths = list(listing.by_stem.values())
        report.pairs = len(paths)
        if not paths:
            report.problem(f"no images in {base}/; expected {self.layout()}")
            return
        infos = record_errors(report, scan(paths, deep=deep), base)
        for path, info in infos.items():
            if info.width < 2:
                report.problem(f"{relative(path, base)}: {info.width} px wide, too narrow to hold two halves",
                               kind="images too narrow to split")
            elif info.width % 2:
                report.warn(f"{relative(path, base)}: odd width {info.width}; the last column is dropped")
        describe_side(report, "files", infos, root=base, channels=self.file_channels(),
                      normalize=getattr(self.params, "normalize", None))
        if infos:
            one = next(iter(infos.values()))
            report.facts["pair"] = f"halves of {one.width // 2} x {one.height} px (first file)"
        halves_info = [type(i)(i.width // 2, i.height, i.channels, i.bits, i.sample, i.format)
                       for i in infos.values()]
        size_warnings(report, halves_info, self.params, "halves")


class Aligned(SideBySide):
    """Side-by-side A|B files; `direction` BtoA makes the right half the input.

    ``read_input`` (used by ``p2p translate``) takes a plain image of the input side, not an A|B file.
    """

    kind = "aligned"

    def __init__(self, params: AlignedParams) -> None:
        super().__init__(params)
        self.a_channels = params.a_channels
        self.b_channels = params.b_channels

    def load(self, record: Path, transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        same = self.a_channels == self.b_channels
        raw = load_image(record, self.a_channels if same else None)
        if raw.shape[-1] < 2:
            raise P2PError("the image is too narrow to hold two halves", file=str(record),
                           hint="aligned files hold A and B side by side")
        left, right = halves(raw)
        a, b = (left, right) if self.params.direction == "AtoB" else (right, left)
        if not same:
            a = match_channels(a, self.a_channels, str(record))
            b = match_channels(b, self.b_channels, str(record))
        a, b = jitter(transform, [prepare_image(a, self.rule), prepare_image(b, self.rule)])
        return {"a": finish_image(a), "b": finish_image(b)}
