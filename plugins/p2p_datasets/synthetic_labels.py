"""`synthetic_labels`: street scenes rendered on the fly as a label map, an instance map and a photo.

A stand-in for Cityscapes that needs no download: the maps use Cityscapes' label ids (sky 23, road 7,
sidewalk 8, building 11, vegetation 21, person 24, car 26; label_nc 35) and its instance convention
(a car's pixels hold 26000 + its number). Scene i of a split depends only on (seed, split, i).

The photo follows the labels: each class has its colour and texture (a building's wall colour follows its
height on a ramp from low brick to tall glass-grey, its windows a fixed grid; vegetation is leafy), with
mild variation (brightness within 5%, a light gradient within 3%, noise). What a label map cannot tell is
each car's and each person's own colour, which the instance encoder has as styles to learn. Cars may
touch each other, so only the instance map separates them.

`write_files(split, folder)` saves scenes in the Cityscapes release layout (``*_gtFine_labelIds.png``,
``*_gtFine_instanceIds.png``, ``*_leftImg8bit.png``) for `p2p translate` and the cityscapes_hd adapter.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from p2pcore.api import DataReport, P2PError, write_atomically

from .imagefiles import read_image, write_image
from .labelmaps import display, read_label_maps
from .synthetic import SPLITS, RenderedAdapter, RenderedScenes, ramp

SKY, ROAD, SIDEWALK, BUILDING, VEGETATION, PERSON, CAR = 23, 7, 8, 11, 21, 24, 26
CLASSES = {"sky": SKY, "road": ROAD, "sidewalk": SIDEWALK, "building": BUILDING, "vegetation": VEGETATION,
           "person": PERSON, "car": CAR}
_WALLS = ((0.55, 0.33, 0.27), (0.62, 0.52, 0.42), (0.82, 0.78, 0.66), (0.72, 0.7, 0.66), (0.45, 0.47, 0.5))
# low brick -> tall glass-grey, by height


def _hue(rng: np.random.Generator) -> np.ndarray:
    """Paint and clothing: any colour, greys common."""
    import colorsys

    sat = 0.0 if rng.random() < 0.3 else rng.uniform(0.4, 1.0)
    return np.array(colorsys.hsv_to_rgb(rng.random(), sat, rng.uniform(0.15, 0.95)), np.float32)


def render(size: int, seed: int, split: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scene `index` of `split`: label ids H x W, instance ids H x W (int32) and a photo H x W x 3 in [0, 1]."""
    rng = np.random.default_rng((seed, SPLITS[split], index, 7))
    n = size
    yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
    label = np.full((n, n), SKY, np.int32)
    inst = np.full((n, n), SKY, np.int32)
    photo = np.zeros((n, n, 3), np.float32)

    def paint(mask: np.ndarray, cls: int, colour: Any, instance: int | None = None) -> None:
        label[mask] = cls
        inst[mask] = cls if instance is None else instance
        photo[mask] = colour if np.ndim(colour) == 1 else colour[mask]

    horizon = rng.uniform(0.35, 0.55)
    sky_top, sky_low = np.array((0.3, 0.5, 0.85)), np.array((0.75, 0.85, 0.95))
    g = np.clip(yy / horizon, 0, 1)[..., None]
    paint(yy < horizon, SKY, (1 - g) * sky_top + g * sky_low)
    paint(yy >= horizon, SIDEWALK, np.array((0.68, 0.66, 0.62), np.float32) * rng.uniform(0.95, 1.05))
    vx, half = rng.uniform(0.35, 0.65), rng.uniform(0.3, 0.55)
    depth = np.clip((yy - horizon) / (1 - horizon), 0, 1)
    road = (yy >= horizon) & (np.abs(xx - vx) < half * depth)
    paint(road, ROAD, np.array((0.3, 0.3, 0.32), np.float32) * rng.uniform(0.95, 1.05))

    for _ in range(rng.integers(2, 6)):                                   # buildings on the horizon
        x0, w, h = rng.uniform(-0.1, 0.9), rng.uniform(0.1, 0.35), rng.uniform(0.1, horizon * 0.9)
        box = (xx >= x0) & (xx < x0 + w) & (yy >= horizon - h) & (yy < horizon)
        wall = ramp(_WALLS, h / (horizon * 0.9)) * rng.uniform(0.95, 1.05)
        windows = box & (((xx - x0) * 40 % 1) > 0.5) & (((yy - horizon + h) * 30 % 1) > 0.5)
        paint(box, BUILDING, wall)
        photo[windows] = (0.2, 0.24, 0.3)
    for _ in range(rng.integers(0, 4)):                                   # trees beside the road
        cx, cy, r = rng.uniform(0, 1), horizon + rng.uniform(-0.08, 0.02), rng.uniform(0.04, 0.1)
        crown = ((xx - cx) ** 2 + (yy - cy) ** 2) < r ** 2
        leaves = np.array((0.2, 0.45, 0.15), np.float32) * (1 + 0.25 * np.sin(xx * 90) * np.sin(yy * 90))[..., None]
        paint(crown, VEGETATION, leaves * rng.uniform(0.95, 1.05))

    things = [("car", rng.uniform(horizon + 0.1, 0.95)) for _ in range(rng.integers(1, 5))]
    things += [("person", rng.uniform(horizon + 0.05, 0.95)) for _ in range(rng.integers(0, 4))]
    counts = {"car": 0, "person": 0}
    for kind, yb in sorted(things, key=lambda item: item[1]):              # far to near
        s = 0.2 + 0.8 * (yb - horizon) / (1 - horizon)
        if kind == "car":
            xc = vx + half * s * rng.uniform(-0.7, 0.7)
            w, h = 0.26 * s, 0.12 * s
            body = (np.abs(xx - xc) < w / 2) & (yy > yb - h) & (yy < yb)
            cabin = (np.abs(xx - xc) < w * 0.35) & (yy > yb - h * 1.6) & (yy <= yb - h)
            paint(body | cabin, CAR, _hue(rng), CAR * 1000 + counts["car"])
            photo[cabin & (yy > yb - h * 1.45)] *= 0.45                  # glass
            counts["car"] += 1
        else:
            side = rng.choice((-1, 1))
            xc = vx + side * half * s * rng.uniform(1.05, 1.4)
            w, h = 0.04 * s, 0.22 * s
            body = (np.abs(xx - xc) < w) & (yy > yb - h) & (yy < yb)
            head = ((xx - xc) / (w * 0.9)) ** 2 + ((yy - (yb - h * 1.08)) / (h * 0.1)) ** 2 < 1
            shirt = _hue(rng)
            paint(body | head, PERSON, shirt, PERSON * 1000 + counts["person"])
            photo[head] = (0.85, 0.68, 0.55)
            counts["person"] += 1

    light = rng.uniform(0.95, 1.05) * (1 - 0.03 * xx[..., None] * rng.uniform(-1, 1))
    photo = photo * light + rng.normal(0, 0.015, photo.shape).astype(np.float32)
    return label, inst, np.clip(photo, 0, 1).astype(np.float32)


class SyntheticLabelScenes(RenderedScenes):
    """Label and instance maps with the photo they describe."""

    def item(self, index: int) -> dict[str, Any]:
        label, inst, photo = render(self.params.size, self.params.seed, self.split, index)
        maps = [label] + ([inst] if self.params.instances else [])
        ids, b = self.mirrored(torch.from_numpy(np.stack(maps)).to(torch.float32),
                               torch.from_numpy(photo).permute(2, 0, 1).mul(2).sub_(1))
        name = f"{self.split}_{index:05d}"
        return {"label": ids, "b": b, "name": name, "label_file": f"scene {name}", "skipped": 0}


class SyntheticLabels(RenderedAdapter):
    """Label (and instance) maps -> photos, rendered on demand: no files."""

    kind = "synthetic_labels"
    scenes = SyntheticLabelScenes
    b_channels = 3

    def __init__(self, params: Any) -> None:
        super().__init__(params)
        self.a_channels = 2 if params.instances else 1
        self.channels = {"label": self.a_channels}

    display = staticmethod(display)

    def read_input(self, path: str | Path, side: str = "label") -> torch.Tensor:
        """A label map file (with its instance map beside it), or a photo."""
        if side == "label":
            return read_label_maps(path, instances=self.params.instances)
        return read_image(path, self.b_channels)

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        write_image(image, path, bits=8)

    def write_files(self, split: str, folder: str | Path, count: int | None = None) -> list[Path]:
        """Save the first `count` scenes of a split in the Cityscapes release layout; returns the label files."""
        from PIL import Image

        folder = Path(folder)
        written = []
        for i in range(min(count or self.count(split), self.count(split))):
            label, inst, photo = render(self.params.size, self.params.seed, split, i)
            city = folder / "gtFine" / split / "synthetic"
            leftimg = folder / "leftImg8bit" / split / "synthetic"
            stem = f"synthetic_{i:06d}_000019"
            for array, path in ((label.astype(np.uint8), city / f"{stem}_gtFine_labelIds.png"),
                                (inst.astype(np.uint16), city / f"{stem}_gtFine_instanceIds.png"),
                                ((photo * 255).round().astype(np.uint8), leftimg / f"{stem}_leftImg8bit.png")):
                write_atomically(path, Image.fromarray(array).save, what="the scene")
            written.append(city / f"{stem}_gtFine_labelIds.png")
        return written

    def check(self, split: str = "train", *, deep: bool = False) -> DataReport:
        report = DataReport(self.kind, split, "(rendered, no files)", deep=deep)
        try:
            report.pairs = self.count(split)
        except P2PError as exc:
            report.problem(exc.message)
            return report
        size = self.params.size
        maps = "label and instance maps" if self.params.instances else "label maps"
        report.facts["label"] = f"{report.pairs} {maps}, Cityscapes ids, {size} x {size} px"
        report.facts["B: photo"] = f"{report.pairs} photos, 3 ch, {size} x {size} px"
        if deep:
            data = self.dataset(split, train=False)
            for i in range(len(data)):
                item = data[i]
                if not math.isfinite(float(item["b"].abs().max())) or item["b"].abs().max() > 1:
                    report.problem(f"scene {item['name']}: the photo is outside [-1, 1]")
        return report.finish()
