"""The `pix2pixhd_folders` adapter: label maps, instance maps and photos in pix2pixHD's folders, paired by stem.

The layout and the item's keys are described in hd_folders.py, beside the parameters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from p2pcore.api import DataReport, P2PError

from .base import FileAdapter, same_size
from .files import Listing, describe_side, list_images, missing_root, record_errors, relative, scan, size_warnings
from .hd_folders import INSTANCE_DIR, LABEL_DIR, PHOTO_DIR, HDFoldersParams
from .imagefiles import IMAGE_SUFFIXES, ImageInfo, load_image, to_unit, write_image
from .labelmaps import display

EXACT_IDS = 2 ** 24  # float32 holds every integer below this exactly
LAYOUT = "<root>/{split}_label/NAME.png (label ids), <root>/{split}_img/NAME.* (photos) and, with instances, " \
         "<root>/{split}_inst/NAME.png (instance ids)"


@dataclass(frozen=True)
class Record:
    """The files of one image: its label map, its instance map (None without instances) and its photo."""

    label: Path
    instances: Path | None
    photo: Path | None


@dataclass
class Split:
    """The listings of a split's folders; a folder that is not there has no listing."""

    labels: Listing
    instances: Listing | None
    photos: Listing | None

    def stems(self, *, photos: bool = True) -> list[str]:
        """The label maps that have every partner the adapter reads (with `photos` false: the photo may be
        missing, as when translating)."""
        stems = set(self.labels.by_stem)
        if self.instances is not None:
            stems &= set(self.instances.by_stem)
        if photos:
            stems &= set(self.photos.by_stem) if self.photos is not None else set()
        return sorted(stems)

    def records(self, stems: list[str]) -> list[Record]:
        return [Record(self.labels.by_stem[s], self.instances.by_stem[s] if self.instances else None,
                       self.photos.by_stem.get(s) if self.photos else None) for s in stems]


def read_ids(path: Path, what: str) -> torch.Tensor:
    """A 1-channel image of integer ids as int64 1 x H x W."""
    raw = load_image(path)
    if raw.shape[0] != 1 or raw.dtype.is_floating_point:
        kind = "floating-point" if raw.dtype.is_floating_point else f"{raw.shape[0]}-channel"
        raise P2PError(f"a {what} must be a 1-channel image of integer ids, this one is {kind}", file=str(path),
                       hint=f"store {what}s as 8- or 16-bit grey PNG (instance maps also 32-bit TIFF), not in "
                            "colour")
    return raw.to(torch.int64)


def read_maps(label_file: Path, instance_file: Path | None) -> torch.Tensor:
    """A label map (and its instance map) as int64 ids, 1 (2) x H x W. Instance ids that float32 could not
    hold exactly are renumbered in order of value: the same pixels still share an instance."""
    maps = [read_ids(label_file, "label map")]
    if instance_file is not None:
        instances = read_ids(instance_file, "instance map")
        if instances.shape != maps[0].shape:
            raise P2PError(f"the instance map is {instances.shape[-1]}x{instances.shape[-2]} but its label map "
                           f"{maps[0].shape[-1]}x{maps[0].shape[-2]}", file=str(instance_file),
                           hint="label and instance maps of an image must have the same size")
        if int(instances.max()) >= EXACT_IDS or int(instances.min()) < 0:
            instances = torch.unique(instances, return_inverse=True)[1].reshape(instances.shape)
        maps.append(instances)
    return torch.cat(maps)


def find_stem(folder: Path, stem: str, suffix: str) -> Path | None:
    """The image file of `folder` named `stem` (the same suffix first, then any image suffix)."""
    same = folder / (stem + suffix)
    if same.is_file():
        return same
    if folder.is_dir():
        for path in sorted(folder.glob(f"{stem}.*")):
            if path.stem == stem and path.suffix.lower() in IMAGE_SUFFIXES:
                return path
    return None


class HDFolders(FileAdapter):
    kind = "pix2pixhd_folders"
    b_channels = 3

    def __init__(self, params: HDFoldersParams) -> None:
        super().__init__(params)
        self.a_channels = 2 if params.instances else 1
        self.channels = {"label": self.a_channels}

    display = staticmethod(display)

    def _folder(self, template: str, split: str) -> Path:
        if split not in ("train", "test"):
            raise P2PError(f"pix2pixhd_folders has no split {split!r}", hint='splits are "train" and "test"')
        return Path(self.params.root) / template.format(split=split)

    def _split(self, split: str) -> Split:
        """The listings of a split's folders; a missing label folder (or instance folder) is an error."""
        labels = self._folder(LABEL_DIR, split)
        if not labels.is_dir():
            raise P2PError(f"no {labels.name}/ folder under the data root", file=str(labels), key="data.root",
                           hint=f"expected {LAYOUT.format(split=split)}")
        instances = self._folder(INSTANCE_DIR, split) if self.params.instances else None
        if instances is not None and not instances.is_dir():
            raise P2PError(f"no {instances.name}/ folder of instance maps under the data root", file=str(instances),
                           key="data.instances", hint="add the instance maps, or set data.instances = false to "
                                                      "train on label maps alone")
        photos = self._folder(PHOTO_DIR, split)
        return Split(list_images(labels), list_images(instances) if instances is not None else None,
                     list_images(photos) if photos.is_dir() else None)

    # -- contract ------------------------------------------------------------------------------------
    def records(self, split: str) -> tuple[list[Any], list[str]]:
        found = self._split(split)
        if found.photos is None:
            photos = self._folder(PHOTO_DIR, split)
            raise P2PError(f"no {photos.name}/ folder of photos under the data root", file=str(photos),
                           key="data.root", hint="training and scoring read the photos; p2p translate reads label "
                                                 "maps without them")
        stems = found.stems()
        return found.records(stems), stems

    def load(self, record: Record, transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        maps = read_maps(record.label, record.instances)
        photo = prepare_image(load_image(record.photo, 3), self.rule)
        same_size(record.label, maps, record.photo, photo)
        photo, maps = jitter(transform, [photo], [maps])
        return {"label": maps.to(torch.float32), "b": finish_image(photo), "label_file": str(record.label)}

    def read_input(self, path: str | Path, side: str = "label") -> torch.Tensor:
        """A label map with the instance map of the same name in the ``*_inst/`` folder beside its ``*_label/``
        folder (as training reads them), or a photo; at native size."""
        path = Path(path)
        if side != "label":
            return to_unit(load_image(path, 3), self.rule)
        return read_maps(path, self.instance_file(path) if self.params.instances else None).to(torch.float32)

    def instance_file(self, label_file: Path) -> Path:
        """Where the instance map of a label map lies: <x>_inst/ beside <x>_label/, under the same stem."""
        folder = label_file.parent
        if not folder.name.endswith("_label"):
            raise P2PError("cannot tell where this label map's instance map is: its folder's name does not end "
                           "in _label", file=str(label_file),
                           hint="keep label maps in a <name>_label/ folder and their instance maps, named alike, in "
                                "<name>_inst/ beside it, as the training data is laid out")
        instances = folder.with_name(folder.name[: -len("_label")] + "_inst")
        found = find_stem(instances, label_file.stem, label_file.suffix)
        if found is None:
            raise P2PError(f"the instance map of this label map is missing from {instances.name}/",
                           file=str(instances / (label_file.stem + label_file.suffix)),
                           hint="instance maps are read from the <name>_inst/ folder beside <name>_label/, under the "
                                "label map's name; the model was trained with data.instances = true")
        return found

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        write_image(image, path, bits=self.params.output_bits)

    # -- check ---------------------------------------------------------------------------------------
    def scan(self, report: DataReport, split: str, deep: bool) -> None:
        root = Path(self.params.root)
        if missing_root(report, root, LAYOUT.format(split=split)):
            return
        try:
            found = self._split(split)
        except P2PError as exc:
            report.problem(f"{exc.message}: {exc.file}" + (f" ({exc.hint})" if exc.key == "data.instances" else ""))
            return
        folders = {"label": found.labels, "inst": found.instances, "img": found.photos}
        for listing in (x for x in folders.values() if x is not None):
            name = listing.folder.name
            for stem, paths in listing.duplicates.items():
                report.problem(f"{', '.join(relative(p, root) for p in paths)}: several files share the name "
                               f"{stem!r}; files are paired by name", kind=f"duplicate names in {name}/")
            if listing.ignored:
                report.warn(f"{name}/: {len(listing.ignored)} file(s) that are not images are ignored, "
                            f"e.g. {listing.ignored[0]}")
        self._partners(report, split, found, root)
        records = found.records(found.stems(photos=split == "train"))
        if not records and not report.problems:
            report.problem(f"no label maps in {found.labels.folder}; expected {LAYOUT.format(split=split)}")
        files = [p for r in records for p in (r.label, r.instances, r.photo) if p is not None]
        infos = record_errors(report, scan(files, deep=deep), root)
        fit = self._fit(report, records, infos, root)
        report.pairs = sum(r.photo is not None for r in fit)
        self._describe(report, records, infos, root)
        if deep:
            self._label_values(report, fit, root)
        else:
            report.facts["label values"] = "read with --deep"

    def _partners(self, report: DataReport, split: str, found: Split, root: Path) -> None:
        """Files without the partners they need: photos and instance maps of every label map, label maps of
        every photo and instance map. The test split may lack photos: its label maps can still be translated."""
        labels = set(found.labels.by_stem)
        label_dir = found.labels.folder.name
        if found.photos is None:
            photos = self._folder(PHOTO_DIR, split).name
            if split == "train":
                report.problem(f"no {photos}/ folder of photos under the data root; expected "
                               f"{LAYOUT.format(split=split)}")
            else:
                report.warn(f"no {photos}/ folder: the label maps can be translated (p2p translate) but not "
                            "scored or shown in sample grids")
        for other in (found.instances, found.photos):
            if other is None:
                continue
            name = other.folder.name
            lacking = sorted(labels - set(other.by_stem))
            if other is found.photos and split == "test" and lacking:
                report.warn(f"{len(lacking)} label map(s) have no photo in {name}/ (they can be translated but "
                            f"not scored), e.g. {relative(found.labels.by_stem[lacking[0]], root)}")
            else:
                for stem in lacking:
                    report.problem(f"{relative(found.labels.by_stem[stem], root)}: no partner in {name}/ (files are "
                                   "paired by name without extension)", kind=f"label maps without a partner in {name}/")
            for stem in sorted(set(other.by_stem) - labels):
                report.problem(f"{relative(other.by_stem[stem], root)}: no label map in {label_dir}/ (files are "
                               "paired by name without extension)", kind=f"files in {name}/ without a label map")

    @staticmethod
    def _fit(report: DataReport, records: list[Record], infos: dict[Path, ImageInfo], root: Path) -> list[Record]:
        """Label and instance maps that are not 1-channel integer images, and images whose files differ in
        size; returns the images whose files all fit."""
        fit = []
        for record in records:
            files = [p for p in (record.label, record.instances, record.photo) if p is not None]
            if any(p not in infos for p in files):
                continue
            good = True
            for path, what in ((record.label, "label map"), (record.instances, "instance map")):
                info = infos.get(path) if path is not None else None
                if info is not None and (info.channels != 1 or info.sample == "float"):
                    kind = f"{info.depth}" if info.sample == "float" else f"{info.channels}-channel"
                    report.problem(f"{relative(path, root)}: a {what} must be a 1-channel image of integer ids, "
                                   f"this one is {kind}", kind=f"{what}s that are not ids")
                    good = False
            sizes = {(infos[p].width, infos[p].height) for p in files}
            if len(sizes) > 1:
                shown = ", ".join(f"{relative(p, root)} {infos[p].width}x{infos[p].height}" for p in files)
                report.problem(f"the files of {record.label.stem!r} differ in size: {shown}; they must be "
                               "pixel-aligned", kind="size mismatches")
                good = False
            if good:
                fit.append(record)
        return fit

    def _describe(self, report: DataReport, records: list[Record], infos: dict[Path, ImageInfo], root: Path) -> None:
        """Facts per folder: counts, bit depths and sizes; the photos as paired_folders describes a side."""
        for key, what in (("label", "label maps"), ("instances", "instance maps")):
            seen = [infos[p] for p in (getattr(r, key) for r in records) if p is not None and p in infos]
            if seen:
                depths = Counter(i.depth for i in seen)
                report.facts[what] = f"{len(seen)} files, " + ", ".join(f"{n} {d}" for d, n in sorted(depths.items()))
        photos = {r.photo: infos[r.photo] for r in records if r.photo is not None and r.photo in infos}
        if photos:
            describe_side(report, "photos", photos, root=root, channels=3, normalize=self.params.normalize)
            size_warnings(report, photos.values(), self.params, "photos")

    def _label_values(self, report: DataReport, records: list[Record], root: Path) -> None:
        """Every label map's ids against 0..label_nc-1 (and the ignore id); the ids seen, as a fact."""
        label_nc, ignore = self.params.label_nc, self.params.ignore_index
        seen: set[int] = set()
        for record in records:
            try:
                ids = read_ids(record.label, "label map").unique()
            except P2PError as exc:
                report.problem(f"{relative(record.label, root)}: {exc.message}", kind="unreadable files")
                continue
            values = set(ids.tolist())
            seen |= values
            if label_nc is None:
                continue
            bad = sorted(v for v in values if not (0 <= v < label_nc or v == ignore))
            if bad:
                shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
                report.problem(f"{relative(record.label, root)}: label ids {shown} outside 0..{label_nc - 1} "
                               f"(data.label_nc = {label_nc})" + ("" if ignore is None else f" and not the ignore "
                                                                  f"id {ignore}"), kind="label ids out of range")
        if seen:
            report.facts["label ids"] = f"{len(seen)} ids, {min(seen)}..{max(seen)}" + (
                "" if label_nc is not None else " (set data.label_nc to check them)")
