"""`paired_folders`: two folders of pixel-aligned images, paired by file name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from .params import PairedFoldersParams


class PairedFolders(FileAdapter):
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

    def load(self, record: tuple[Path, Path], transform: Any, train: bool) -> dict[str, Any]:
        return load_pair(record, transform, (self.a_channels, self.b_channels), self.rule)

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
        for path_a, path_b in pairs:
            ia, ib = infos.get(path_a), infos.get(path_b)
            if ia and ib and (ia.width, ia.height) != (ib.width, ib.height):
                report.problem(f"{relative(path_a, base)} is {ia.width}x{ia.height} but "
                               f"{relative(path_b, base)} is {ib.width}x{ib.height}; pairs must be pixel-aligned",
                               kind="pairs that differ in size")
        a_infos = {p: infos[p] for p, _ in pairs if p in infos}
        b_infos = {p: infos[p] for _, p in pairs if p in infos}
        describe_side(report, f"A: {a_dir}/", a_infos, root=base, channels=self.a_channels,
                      normalize=self.params.normalize)
        describe_side(report, f"B: {b_dir}/", b_infos, root=base, channels=self.b_channels,
                      normalize=self.params.normalize)
        size_warnings(report, a_infos.values(), self.params, "pairs")
        if split == "train" and base == root and self.params.test_holdout > 0:
            report.facts["holdout"] = f"{self.params.test_holdout:.0%} of pairs kept for the test split"
