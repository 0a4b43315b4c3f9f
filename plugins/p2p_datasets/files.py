"""Finding image files, and scanning them for `check()`: headers only, or full decodes."""

from __future__ import annotations

import os
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from p2pcore.api import DataReport, P2PError

from .imagefiles import IMAGE_SUFFIXES, ImageInfo, load_image, probe_image
from .params import Jitter

IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass
class Listing:
    """Image files of one folder by stem, and what did not fit that picture."""

    folder: Path
    by_stem: dict[str, Path] = field(default_factory=dict)
    duplicates: dict[str, list[Path]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def list_images(folder: Path) -> Listing:
    """Image files directly inside `folder`, keyed by file name without extension."""
    listing = Listing(folder)
    with os.scandir(folder) as entries:
        names = sorted((e.name for e in entries if e.is_file()), key=str)
    for name in names:
        if name.startswith(".") or name.lower() in IGNORED_NAMES:
            continue
        path = folder / name
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            listing.ignored.append(name)
            continue
        stem = path.stem
        if stem in listing.by_stem:
            listing.duplicates.setdefault(stem, [listing.by_stem[stem]]).append(path)
        else:
            listing.by_stem[stem] = path
    return listing


def split_dir(root: Path, split: str, *markers: str) -> Path | None:
    """The folder of a split: root/<split> (root/val for "test"), or root itself for "train".

    A candidate counts when every marker sub-folder exists in it (or, without markers, when it
    exists at all).
    """
    def fits(base: Path) -> bool:
        return all((base / m).is_dir() for m in markers) if markers else base.is_dir()

    candidates = [root / split] + ([root / "val"] if split == "test" else [])
    for base in candidates:
        if fits(base):
            return base
    if split == "train" and markers and fits(root):
        return root
    return None


def in_holdout(stem: str, fraction: float) -> bool:
    """Whether a file falls in the held-out test fraction: a stable hash of its name decides."""
    return fraction > 0 and zlib.crc32(stem.encode()) % 10_000 < fraction * 10_000


def relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def scan(paths: Iterable[Path], *, deep: bool) -> dict[Path, ImageInfo | P2PError]:
    """Probe (or, with `deep`, fully decode) files in a few threads; failures become P2PErrors."""
    def one(path: Path) -> ImageInfo | P2PError:
        try:
            info = probe_image(path)
            if deep:
                load_image(path)
            return info
        except P2PError as exc:
            return exc

    paths = list(paths)
    workers = min(8, os.cpu_count() or 1, max(1, len(paths) // 16))
    if workers <= 1:
        return {p: one(p) for p in paths}
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(paths, pool.map(one, paths), strict=True))


def convertible(have: int, want: int) -> bool:
    """Whether :func:`p2pcore.imageio.match_channels` turns `have` channels into `want`."""
    if have == want:
        return True
    if have in (2, 4):
        have -= 1
        if have == want:
            return True
    return (have, want) in ((1, 3), (3, 1))


def _span(values: Sequence[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}..{hi}"


def describe_side(report: DataReport, label: str, infos: dict[Path, ImageInfo], *, root: Path,
                  channels: int, normalize: object = None) -> None:
    """Facts, warnings and problems about one side's files: channels, bit depths, sizes."""
    if not infos:
        return
    by_channels = Counter(i.channels for i in infos.values())
    by_depth = Counter(i.depth for i in infos.values())
    widths = [i.width for i in infos.values()]
    heights = [i.height for i in infos.values()]
    ch = ", ".join(f"{c} ch" for c in sorted(by_channels))
    depth = ", ".join(sorted(by_depth))
    report.facts[label] = (f"{len(infos)} files, {ch} (read as {channels}), {depth}, "
                           f"{_span(widths)} x {_span(heights)} px")
    for have in sorted(by_channels):
        if have == channels:
            continue
        files = [relative(p, root) for p, i in infos.items() if i.channels == have]
        if convertible(have, channels):
            how = "luma" if channels == 1 and have >= 3 else "alpha dropped" if have in (2, 4) else "repeated"
            report.warn(f"{label}: {len(files)} file(s) with {have} channel(s) are read as {channels} ({how}), "
                        f"e.g. {files[0]}")
        else:
            for name in files:
                report.problem(f"{name}: has {have} channels, the recipe expects {channels}",
                               kind=f"files with {have} channels in {label}")
    if len(by_depth) > 1:
        common = by_depth.most_common(1)[0][0]
        odd = [relative(p, root) for p, i in infos.items() if i.depth != common]
        report.warn(f"{label}: mixed bit depths ({depth}); {len(odd)} file(s) differ from the usual {common}, "
                    f"e.g. {odd[0]}")
    if "float" in depth and getattr(normalize, "mode", "full_range") == "full_range":
        report.warn(f"{label}: float images are taken to lie in [0, 1] under normalize = \"full_range\"; "
                    "set a fixed or percentile window if they do not")


def record_errors(report: DataReport, results: dict[Path, ImageInfo | P2PError], root: Path) -> dict[
        Path, ImageInfo]:
    """Turn failed scans into problem lines; return the infos of the files that passed."""
    good = {}
    for path, result in results.items():
        if isinstance(result, P2PError):
            report.problem(f"{relative(path, root)}: {result.message}", kind="unreadable files")
        else:
            good[path] = result
    return good


def size_warnings(report: DataReport, infos: Iterable[ImageInfo], params: Jitter, label: str) -> None:
    """Warn when the preprocessing will have to enlarge images or cannot batch them."""
    infos = list(infos)
    if not infos:
        return
    mode, crop = params.preprocess, params.crop_size
    if mode == "crop":
        small = sum(1 for i in infos if i.width < crop or i.height < crop)
        if small:
            report.warn(f"{label}: {small} image(s) are smaller than crop_size {crop} and will be enlarged")
    if mode in ("none", "scale_width") and len({(i.width / i.height) if mode == "scale_width" else
                                                (i.width, i.height) for i in infos}) > 1:
        report.warn(f"{label}: image sizes differ and preprocess = {mode!r} keeps them, so batches need "
                    "batch_size = 1 (or a cropping preprocess)")


def missing_root(report: DataReport, root: Path, layout: str) -> bool:
    """Add the problem line for a missing root; return whether it was missing."""
    if str(root) in ("", ".") and not root.is_dir():
        report.problem(f"no data root is set; expected {layout}")
        return True
    if not root.is_dir():
        report.problem(f"data root {root} does not exist; expected {layout}")
        return True
    return False
