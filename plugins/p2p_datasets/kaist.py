"""`kaist`: the KAIST multispectral pedestrian benchmark, thermal (lwir) -> visible.

Layout: ``<root>/setXX/VYYY/lwir/I00000.jpg`` and ``<root>/setXX/VYYY/visible/I00000.jpg``; frames
are paired by name within each video (an `align` block registers the two cameras). The pix2pix paper
trains on set00-set05 and tests on set06-set11. KAIST stores its thermal frames as 3-channel JPEGs with
equal channels; with the default ``a_channels = 1`` they are read as one channel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p2pcore.api import DataReport, P2PError

from .files import describe_side, list_images, record_errors, relative, scan, size_warnings
from .listing import listed
from .paired import RegisteredAdapter, check_registered
from .params import KaistParams

THERMAL, VISIBLE = "lwir", "visible"


class Kaist(RegisteredAdapter):
    """Thermal/visible frame pairs of the chosen KAIST sets."""

    kind = "kaist"

    def __init__(self, params: KaistParams) -> None:
        super().__init__(params)
        self.a_channels = params.a_channels
        self.b_channels = params.b_channels

    def layout(self) -> str:
        return f"<root>/set00/V000/{THERMAL}/I00000.jpg and <root>/set00/V000/{VISIBLE}/I00000.jpg"

    def sets(self, split: str) -> list[str]:
        if split == "train":
            return list(self.params.train_sets)
        if split in ("test", "val"):
            return list(self.params.test_sets)
        raise P2PError(f"unknown split {split!r}", hint='splits are "train" and "test"')

    def videos(self, split: str, report: DataReport | None = None) -> list[tuple[str, Path]]:
        """(set name, video folder) of a split; missing sets are problems in `report` (if given)."""
        root = Path(self.params.root)
        out = []
        for name in self.sets(split):
            folder = root / name
            if not folder.is_dir():
                if report is not None:
                    report.problem(f"{name}/ not found under {root} ({split} sets: {', '.join(self.sets(split))})",
                                   kind="missing sets")
                continue
            out += [(name, v) for v in sorted(p for p in folder.iterdir() if p.is_dir())]
        return out

    def pairs(self, split: str, report: DataReport | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
        root = Path(self.params.root)
        records, names = [], []
        for set_name, video in self.videos(split, report):
            if not (video / THERMAL).is_dir() or not (video / VISIBLE).is_dir():
                if report is not None:
                    report.problem(f"{relative(video, root)}/: needs {THERMAL}/ and {VISIBLE}/ folders",
                                   kind="videos without both folders")
                continue
            thermal, visible = list_images(video / THERMAL), list_images(video / VISIBLE)
            if report is not None:
                for own, other, other_dir in ((thermal, visible, VISIBLE), (visible, thermal, THERMAL)):
                    for stem in sorted(set(own.by_stem) - set(other.by_stem)):
                        report.problem(f"{relative(own.by_stem[stem], root)}: no partner in {other_dir}/",
                                       kind="frames without a partner")
            stems = sorted(set(thermal.by_stem) & set(visible.by_stem))[:: self.params.step]
            records += [(thermal.by_stem[s], visible.by_stem[s]) for s in stems]
            names += [f"{set_name}_{video.name}_{s}" for s in stems]
        return records, names

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        root = Path(self.params.root)
        if not root.is_dir():
            raise P2PError(f"data root {root} does not exist", key="data.root", hint=f"expected {self.layout()}")
        records, names = self.pairs(split)
        if not records:
            raise P2PError(f"no {split} frames under {root} in sets {', '.join(self.sets(split))}",
                           key="data.root", hint=f"expected {self.layout()}")
        return records, names

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        records = listed(report, root, self.layout(), lambda: self.pairs(split, report)[0],
                         f"no {split} frames found; expected {self.layout()}")
        if records is None:
            return
        infos = record_errors(report, scan([p for pair in records for p in pair], deep=deep), root)
        if self.alignment is not None:
            check_registered(report, self.alignment, records, infos, root)
        for path_a, path_b in records if self.alignment is None else ():
            ia, ib = infos.get(path_a), infos.get(path_b)
            if ia and ib and (ia.width, ia.height) != (ib.width, ib.height):
                report.problem(f"{relative(path_a, root)} is {ia.width}x{ia.height} but {relative(path_b, root)} "
                               f"is {ib.width}x{ib.height}", kind="pairs that differ in size")
        describe_side(report, f"A: {THERMAL}/", {p: infos[p] for p, _ in records if p in infos}, root=root,
                      channels=self.a_channels, normalize=self.params.normalize)
        describe_side(report, f"B: {VISIBLE}/", {p: infos[p] for _, p in records if p in infos}, root=root,
                      channels=self.b_channels, normalize=self.params.normalize)
        size_warnings(report, [infos[p] for p, _ in records if p in infos], self.params, "frames")
        report.facts["sets"] = ", ".join(self.sets(split)) + (f" (every {self.params.step}th frame)"
                                                                if self.params.step > 1 else "")
