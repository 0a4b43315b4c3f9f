"""`single`: one folder of input images, for inference; items have no target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, folder_of
from .files import describe_side, list_images, missing_root, record_errors, scan, size_warnings
from .imagefiles import load_image
from .params import SingleParams


class Single(FileAdapter):
    """Images of root/<split>/ (or root/) as ``{"a", "name", "skipped"}`` items."""

    kind = "single"

    def __init__(self, params: SingleParams) -> None:
        super().__init__(params)
        self.a_channels = params.channels
        self.b_channels = params.out_channels

    def layout(self) -> str:
        return "<root>/NAME.png (or <root>/<split>/NAME.png), any file names"

    def folder(self, split: str) -> Path:
        if not self.params.root:
            raise P2PError("the single adapter has no root, so it has no dataset", key="data.root",
                           hint="set data.root to a folder of images, or give files to p2p translate")
        root = Path(self.params.root)
        base = folder_of(root, split, fallback=False) or (root if root.is_dir() else None)
        if base is None:
            raise P2PError(f"data root {root} does not exist", key="data.root", hint=f"expected {self.layout()}")
        return base

    def records(self, split: str) -> tuple[list[Any], list[str]]:
        paths = list(list_images(self.folder(split)).by_stem.values())
        return paths, [p.stem for p in paths]

    def load(self, record: Path, transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        (a,) = jitter(transform, [prepare_image(load_image(record, self.a_channels), self.rule)])
        return {"a": finish_image(a)}

    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        if not self.params.root:
            report.warn("no root is set: this adapter only converts the files given to p2p translate")
            return
        root = Path(self.params.root)
        if missing_root(report, root, self.layout()):
            return
        base = self.folder(split)
        report.root = str(base)
        paths = list(list_images(base).by_stem.values())
        if not paths:
            report.problem(f"no images in {base}; expected {self.layout()}")
        infos = record_errors(report, scan(paths, deep=deep), base)
        describe_side(report, f"A: {base.name}/", infos, root=base, channels=self.a_channels,
                      normalize=self.params.normalize)
        size_warnings(report, infos.values(), self.params, "images")
        report.pairs = len(paths)
