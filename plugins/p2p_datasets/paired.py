"""`paired_folders`: two folders of images paired by file name, pixel-aligned or registered by an `align`
block (a warped onto b's grid and both cropped to the common field of view before the jitter)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, load_pair
from .files import (
    describe_side,
    in_holdout,
    list_images,
    missing_root,
    record_errors,
    relative,
    scan,
    size_warnings,
    split_dir,
)
from .imagefiles import load_image, to_unit
from .params import PairedFoldersParams

if TYPE_CHECKING:
    import torch

    from p2pcore.api import Alignment


class RawPairs(Sequence):
    """A split's pairs (a, b) at native size, in [-1, 1], no alignment applied: read one at a time, as
    `p2p data register` estimates the registration from them."""

    def __init__(self, adapter: FileAdapter, records: Sequence[tuple[Path, Path]]) -> None:
        self.adapter, self.records = adapter, list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        path_a, path_b = self.records[index]
        return self.adapter.read_raw(path_a, "a"), self.adapter.read_raw(path_b, "b")


def load_registered(record: tuple[Path, Path], transform: Any, channels: tuple[int, int], rule: Any,
                    alignment: Alignment | None) -> dict[str, Any]:
    """A pair as a jittered item; with an alignment, a warped onto b's grid and both cropped to the common
    field of view first."""
    if alignment is None:
        return load_pair(record, transform, channels, rule)
    from p2pcore.api import finish_image, jitter

    path_a, path_b = record
    a, b = to_unit(load_image(path_a, channels[0]), rule), to_unit(load_image(path_b, channels[1]), rule)
    try:
        a, b = alignment.apply(a, b)
    except P2PError as exc:
        raise exc.with_location(file=str(path_a)) from None
    a, b = jitter(transform, [a, b])
    return {"a": finish_image(a), "b": finish_image(b)}


def check_registered(report: DataReport, alignment: Alignment, pairs: list[tuple[Path, Path]], infos: dict,
                     base: Path) -> None:
    """Each pair's sizes against the ones the alignment holds for; the common field of view as a fact."""
    for path_a, path_b in pairs:
        for path, want, side in ((path_a, alignment.size_a, "a"), (path_b, alignment.size_b, "b")):
            info = infos.get(path)
            if info and (info.width, info.height) != want:
                report.problem(f"{relative(path, base)} is {info.width}x{info.height} but data.align holds for "
                               f"{side} images of {want[0]}x{want[1]}; register the pairs again "
                               "(`p2p data register RECIPE --write --overwrite`)",
                               kind="pairs of another size than the alignment's")
    try:
        x0, y0, x1, y1 = alignment.common_box()
    except P2PError as exc:
        report.problem(f"data.align: {exc.message}")
        return
    report.facts["aligned"] = (f"{alignment.model}, a ({alignment.size_a[0]}x{alignment.size_a[1]}) onto b "
                               f"({alignment.size_b[0]}x{alignment.size_b[1]})")
    report.facts["common field of view"] = f"{x1 - x0}x{y1 - y0} (x {x0}..{x1}, y {y0}..{y1} of b)"


class RegisteredAdapter(FileAdapter):
    """A file adapter of image pairs from two cameras, with the registration of its params' `align` block
    applied to items and to the files `read_input` reads."""

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.alignment: Alignment | None = params.alignment()

    def load(self, record: tuple[Path, Path], transform: Any, train: bool) -> dict[str, Any]:
        return load_registered(record, transform, (self.a_channels, self.b_channels), self.rule, self.alignment)

    def read_raw(self, path: str | Path, side: str = "a") -> torch.Tensor:
        """An image of one side at native size, normalised, without the alignment."""
        return super().read_input(path, side)

    def read_input(self, path: str | Path, side: str = "a") -> torch.Tensor:
        """As in training: with an alignment, a is warped onto b's grid, and either side cropped to the
        common field of view."""
        image = self.read_raw(path, side)
        if self.alignment is None:
            return image
        x0, y0, x1, y1 = self.alignment.common_box()
        size = (int(image.shape[-1]), int(image.shape[-2]))
        want = self.alignment.size_a if side == "a" else self.alignment.size_b
        if size != want:
            raise P2PError(f"the image is {size[0]}x{size[1]}, data.align holds for {side} images of "
                           f"{want[0]}x{want[1]}", file=str(path), hint="the alignment holds for one rig's image "
                           "sizes: register the pairs again (`p2p data register RECIPE`) if the images changed")
        image = self.alignment.warp(image) if side == "a" else image
        return image[..., y0:y1, x0:x1]

    def raw_pairs(self, split: str) -> tuple[RawPairs, list[str]]:
        """The split's pairs at native size without the alignment (for `p2p data register`), and names."""
        records, names = self.records(split)
        return RawPairs(self, records), names


class PairedFolders(RegisteredAdapter):
    """Pairs root/<a.dir>/NAME.* with root/<b.dir>/NAME.* (or the same under root/<split>/)."""

    kind = "paired_folders"

    def __init__(self, params: PairedFoldersParams) -> None:
        super().__init__(params)
        self.a_channels = params.a.channels
        self.b_channels = params.b.channels

    def layout(self) -> str:
        a, b = self.params.a.dir, self.params.b.dir
        return (f"<root>/{a}/NAME.png and <root>/{b}/NAME.png with matching names (extensions may differ), "
                f"or <root>/train/{{{a},{b}}}/ and <root>/test/{{{a},{b}}}/")

    def _base(self, split: str) -> tuple[Path, bool]:
        """The folder holding this split's side folders, and whether the hash holdout applies."""
        root = Path(self.params.root)
        a, b = self.params.a.dir, self.params.b.dir
        base = split_dir(root, split, a, b)
        if base is not None:
            holdout = base == root and self.params.test_holdout > 0
            return base, holdout
        if split == "test" and self.params.test_holdout > 0 and (root / a).is_dir() and (root / b).is_dir():
            return root, True
        if not root.is_dir():
            raise P2PError(f"data root {root} does not exist", key="data.root", hint=f"expected {self.layout()}")
        where = f"{root}/{split}/{a}/ and {root}/{split}/{b}/"
        extra = f" (or {root}/{a}/ and {root}/{b}/)" if split == "train" else \
            " (or set data.test_holdout to hold out part of the training pairs)" if split == "test" else ""
        raise P2PError(f"no {split} split: expected {where}{extra}", key="data.root",
                       hint=f"layout: {self.layout()}")

    def _pairs(self, split: str) -> tuple[Path, list[tuple[Path, Path]], Any, Any]:
        base, holdout = self._base(split)
        side_a = list_images(base / self.params.a.dir)
        side_b = list_images(base / self.params.b.dir)
        stems = sorted(set(side_a.by_stem) & set(side_b.by_stem))
        if holdout:
            want_test = split == "test"
            stems = [s for s in stems if in_holdout(s, self.params.test_holdout) == want_test]
        return base, [(side_a.by_stem[s], side_b.by_stem[s]) for s in stems], side_a, side_b

    # -- contract ----------------------------------------------------------------------------
    def records(self, split: str) -> tuple[list[Any], list[str]]:
        _, pairs, _, _ = self._pairs(split)
        return pairs, [a.stem for a, _ in pairs]

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        if missing_root(report, root, self.layout()):
            return
        try:
            base, pairs, side_a, side_b = self._pairs(split)
        except P2PError as exc:
            report.problem(exc.message)
            return
        report.root = str(base)
        a_dir, b_dir = self.params.a.dir, self.params.b.dir
        for listing, dir_name in ((side_a, a_dir), (side_b, b_dir)):
            for stem, paths in listing.duplicates.items():
                names = ", ".join(relative(p, base) for p in paths)
                report.problem(f"{names}: several files share the name {stem!r}; pairs are matched by name",
                               kind=f"duplicate names in {dir_name}/")
            if listing.ignored:
                report.warn(f"{dir_name}/: {len(listing.ignored)} file(s) that are not images are ignored, "
                            f"e.g. {listing.ignored[0]}")
        for own, other, own_dir, other_dir in ((side_a, side_b, a_dir, b_dir), (side_b, side_a, b_dir, a_dir)):
            for stem in sorted(set(own.by_stem) - set(other.by_stem)):
                report.problem(f"{relative(own.by_stem[stem], base)}: no partner in {other_dir}/ "
                               f"(pairs are matched by file name without extension)",
                               kind=f"files in {own_dir}/ without a partner")
        if not pairs and not report.problems:
            report.problem(f"no image pairs in {base}/{a_dir}/ and {base}/{b_dir}/; expected {self.layout()}")
        report.pairs = len(pairs)
        results = scan([p for pair in pairs for p in pair], deep=deep)
        infos = record_errors(report, results, base)
        for path_a, path_b in pairs if self.alignment is None else ():
            ia, ib = infos.get(path_a), infos.get(path_b)
            if ia and ib and (ia.width, ia.height) != (ib.width, ib.height):
                report.problem(f"{relative(path_a, base)} is {ia.width}x{ia.height} but "
                               f"{relative(path_b, base)} is {ib.width}x{ib.height}; pairs must be pixel-aligned (two "
                               "cameras of one rig: `p2p data register RECIPE --write` registers them)",
                               kind="pairs that differ in size")
        if self.alignment is not None:
            check_registered(report, self.alignment, pairs, infos, base)
        a_infos = {p: infos[p] for p, _ in pairs if p in infos}
        b_infos = {p: infos[p] for _, p in pairs if p in infos}
        describe_side(report, f"A: {a_dir}/", a_infos, root=base, channels=self.a_channels,
                      normalize=self.params.normalize)
        describe_side(report, f"B: {b_dir}/", b_infos, root=base, channels=self.b_channels,
                      normalize=self.params.normalize)
        size_warnings(report, a_infos.values(), self.params, "pairs")
        if split == "train" and base == root and self.params.test_holdout > 0:
            report.facts["holdout"] = f"{self.params.test_holdout:.0%} of pairs kept for the test split"
