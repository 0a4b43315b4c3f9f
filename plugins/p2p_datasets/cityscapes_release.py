"""`cityscapes_hd`: the Cityscapes release read as it is unpacked, for pix2pixHD (label maps -> photos).

Layout (gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip unpacked side by side under `root`)::

    root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      label ids 0..33, 8-bit
    root/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   instance ids, 16-bit
    root/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png     the photo, 8-bit RGB

with <split> train (2975 images), val (500) and test (whose labels are not public). The training split is
train, the test split (sample grids) val. An item's `label` holds the label ids and, with `instances`,
the instance ids (Cityscapes: label id * 1000 + number for objects, the label id elsewhere); `b` is the
photo. The colour-coded ``*_gtFine_color.png`` and the polygon files are not read.

`p2p translate` reads ``*_gtFine_labelIds.png`` files, each with the ``*_gtFine_instanceIds.png`` beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, same_size
from .imagefiles import load_image, probe_image, to_unit, write_image
from .labelmaps import display, instance_file, read_label_maps

LABEL_SUFFIX = "_gtFine_labelIds.png"
PHOTO_SUFFIX = "_leftImg8bit.png"


class CityscapesRelease(FileAdapter):
    kind = "cityscapes_hd"
    b_channels = 3

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.a_channels = 2 if params.instances else 1
        self.channels = {"label": self.a_channels}

    display = staticmethod(display)

    def _split_dir(self, split: str) -> str:
        if split == "train":
            return "train"
        if split == "test":
            return self.params.test_split
        raise P2PError(f"cityscapes_hd has no split {split!r}", hint='splits are "train" and "test"')

    def _pairs(self, split: str) -> list[tuple[Path, Path]]:
        """(label map, photo) paths of a split, by the release's names; the photo may be missing."""
        root = Path(self.params.root)
        folder = root / "gtFine" / self._split_dir(split)
        if not folder.is_dir():
            raise P2PError(f"no gtFine/{self._split_dir(split)} folder under the data root", file=str(folder),
                           key="data.root", hint="unpack gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
                                                 "into data.root: it then holds gtFine/ and leftImg8bit/")
        labels = sorted(folder.glob(f"*/*{LABEL_SUFFIX}"))
        photos = root / "leftImg8bit" / self._split_dir(split)
        return [(label, photos / label.parent.name / (label.name[: -len(LABEL_SUFFIX)] + PHOTO_SUFFIX))
                for label in labels]

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        pairs = self._pairs(split)
        return pairs, [label.name[: -len(LABEL_SUFFIX)] for label, _ in pairs]

    def load(self, record: tuple[Path, Path], transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        label_file, photo_file = record
        maps = read_label_maps(label_file, instances=self.params.instances)
        photo = prepare_image(load_image(photo_file, 3), self.rule)
        same_size(label_file, maps, photo_file, photo)
        photo, maps = jitter(transform, [photo], [maps.to(torch.int64)])
        return {"label": maps.to(torch.float32), "b": finish_image(photo), "label_file": str(label_file)}

    def read_input(self, path: str | Path, side: str = "label") -> torch.Tensor:
        """A label map (with its instance map beside it), or a photo, at native size."""
        if side == "label":
            return read_label_maps(path, instances=self.params.instances)
        return to_unit(load_image(path, 3), self.rule)

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        write_image(image, path, bits=self.params.output_bits)

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        try:
            pairs = self._pairs(split)
        except P2PError as exc:
            report.problem(f"{exc.message}: {exc.file}")
            return
        if not pairs:
            report.problem(f"no *{LABEL_SUFFIX} files in gtFine/{self._split_dir(split)}/<city>/")
        report.facts["label"] = f"{len(pairs)} label maps" + (" with instance maps" if self.params.instances else "")
        for label_file, photo_file in pairs:
            files = [label_file, photo_file] + ([instance_file(label_file)] if self.params.instances else [])
            missing = [f for f in files if not f.is_file()]
            if missing:
                report.problem(f"{missing[0]}: missing (for {label_file.name})", kind="missing files")
                continue
            try:
                infos = [probe_image(f) for f in files]
            except P2PError as exc:
                report.problem(f"{exc.file}: {exc.message}", kind="unreadable files")
                continue
            sizes = {(i.width, i.height) for i in infos}
            if len(sizes) > 1:
                report.problem(f"{label_file.name}: label map, photo and instance map differ in size",
                               kind="size mismatches")
            elif infos[0].channels != 1:
                report.problem(f"{label_file.name}: a label map must have one channel (label ids)",
                               kind="not label ids")
            if deep:
                try:
                    self.load((label_file, photo_file), None, False)
                except P2PError as exc:
                    report.problem(f"{exc.file}: {exc.message}", kind="unreadable files")
                    continue
            report.pairs += 1
