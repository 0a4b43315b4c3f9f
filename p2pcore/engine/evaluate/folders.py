"""Scoring images made elsewhere: a folder of outputs against a folder of real images, matched by file stem,
with any metric that needs no checkpoint (`p2p eval --pred DIR --real DIR`)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from p2pcore.api.metrics import Comparison, Metric
from p2pcore.engine.build.device import resolve_device
from p2pcore.engine.evaluate.scoring import EvalResult
from p2pcore.errors import P2PError
from p2pcore.formats import IMAGE_SUFFIXES
from p2pcore.imageio import load_image, to_unit
from p2pcore.plugins import Host
from p2pcore.records import eval_key

DIRECTION = "pred"  # the one "direction" of a folder comparison, as Comparison names it


@dataclass(frozen=True)
class Matched:
    """The files of each folder paired by stem, and those of either folder without a partner."""

    pairs: list[tuple[str, dict[str, Path]]]
    unmatched: dict[str, list[Path]]


def images_by_stem(folder: Path, *, option: str) -> dict[str, Path]:
    """The image files of a folder by stem; two files of one stem (`a.png`, `a.jpg`) are ambiguous."""
    if not folder.is_dir():
        raise P2PError("not a folder", file=str(folder), key=option, hint="give a folder of images")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise P2PError(f"two images share the stem {path.stem!r}: {found[path.stem].name} and {path.name}",
                           file=str(folder), key=option, hint="keep one file per image name")
        found[path.stem] = path
    return found


def match_folders(folders: Mapping[str, Path]) -> Matched:
    """Pair the images of every folder by stem (`--pred`, `--real` and optionally `--input`)."""
    found = {option: images_by_stem(folder, option=option) for option, folder in folders.items()}
    common = sorted(set.intersection(*(set(files) for files in found.values())))
    unmatched = {option: [files[s] for s in sorted(files) if s not in common] for option, files in found.items()}
    if not common:
        raise P2PError("no image name is in every folder", file=", ".join(str(f) for f in folders.values()),
                       key="--pred", hint="outputs and real images are matched by file stem: name them alike")
    return Matched([(stem, {option: found[option][stem] for option in found}) for stem in common], unmatched)


def _read(path: Path, like: torch.Tensor | None = None) -> torch.Tensor:
    image = to_unit(load_image(path)).unsqueeze(0)
    if like is not None and image.shape[1:] != like.shape[1:]:
        raise P2PError(f"{tuple(image.shape[1:])} (channels, height, width) where its output is "
                       f"{tuple(like.shape[1:])}", file=str(path), key="--real",
                       hint="compare images of the same size and channels: resize or convert the outputs first")
    return image


def evaluate_folders(folders: Mapping[str, Path], metrics: Iterable[Any], host: Host, *,
                     device: str = "auto") -> tuple[EvalResult, Matched]:
    """Score `folders["--pred"]` against `folders["--real"]` (and `folders["--input"]`, for metrics that
    read what was translated, such as the FCN-score's label maps; the real images stand in for it otherwise).

    Every figure a metric declares is returned under its ``eval/<metric>[/<part>]`` key."""
    start = time.perf_counter()
    where = resolve_device(device, key="--device")
    matched = match_folders(folders)
    built: dict[str, tuple[Any, Metric]] = {}
    for spec in metrics:
        ref = host.resolve("metric", spec, key="--metric")
        metric = host.build("metric", ref, key=f"--metric {ref.name}")
        if isinstance(metric, nn.Module):
            metric.to(where).eval().requires_grad_(False)
        metric.reset()
        built[ref.name] = (ref, metric)
    if not built:
        raise P2PError("nothing to evaluate", key="--metric", hint="name metrics with --metric, e.g. --metric psnr")
    with torch.no_grad():
        for _, files in matched.pairs:
            output = _read(files["--pred"])
            real = _read(files["--real"], output)
            given = _read(files["--input"]) if "--input" in files else real
            comparison = Comparison(DIRECTION, given.to(where), output.to(where), real.to(where), real.to(where))
            for name, (_, metric) in built.items():
                _scored(name, metric.update, comparison)
    figures: dict[str, float | None] = {}
    better: dict[str, bool] = {}
    for name, (ref, metric) in built.items():
        values = _scored(name, metric.compute)
        for part, higher in ref.params.figures().items():
            value = float(values[part])
            figures[eval_key(name, part)] = value if math.isfinite(value) else None
            better[eval_key(name, part)] = higher
    result = EvalResult("folders", len(matched.pairs), figures, better, time.perf_counter() - start)
    result.extra = {key.lstrip("-"): str(folder) for key, folder in folders.items()}
    return result, matched


def _scored(name: str, call: Any, *args: Any) -> Any:
    """A metric's own P2PError, located at its --metric option where it names no key."""
    try:
        return call(*args)
    except P2PError as error:
        raise P2PError(error.message, file=error.file, key=error.key or f"--metric {name}", hint=error.hint,
                       details=error.details) from None
