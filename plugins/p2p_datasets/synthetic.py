"""`synthetic_thermal`: outdoor scenes rendered on the fly as a thermal image and a colour photo.

Scene i of a split depends only on (seed, split, i). Each scene has a sky, ground, a road running
to a vanishing point with a sidewalk and lane markings, buildings with windows, trees, vehicles
and people, painted far to near. Every surface has a colour and a temperature, and the colour
follows from the class and the temperature, so a model can learn thermal -> colour in minutes:

* each class has its own band of temperatures, coldest to hottest: sky (0.02-0.24; clouds and overcast
  warmer), dark window glass, vegetation, ground (watered grass to dry earth), building walls, sidewalk
  and asphalt (warmer with the sun), lit windows, vehicle paint, clothing, skin, engines and exhausts;
* within its band a surface's temperature picks its colour on the class's ramp (`ramp`): white to
  black paint (dark paint soaks up more sun), pale plaster to dark brick, blue sky to overcast grey;
* the stated variation about that colour is mild: brightness with a standard deviation of
  `VARIATION` (0.03 of full scale), a tint of a third of it, a global level within 3%, pixel noise 0.01.

The thermal image then gets the optics and sensor of a microbolometer: blur, a per-column fixed
pattern offset, a mild gain (automatic gain control, within 3%) and noise. The
colour image gets a slight blur and noise. Painting uses numpy masks over coordinate
grids restricted to each object's bounding box; the only Python loops are over objects.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from p2pcore.api import DataReport, P2PError

from .imagefiles import ImageFormats, read_image, write_image

SPLITS = {"train": 0, "test": 1}

# Each class's colour is a ramp over a material parameter u in [0, 1] that also sets its temperature (darker
# paint and brick soak up more sun; dry ground is warmer than watered grass; lit windows are warm): a colour
# follows from the class (the shape in the thermal image) and the temperature (its level there).
_SKY_TOP = ((0.20, 0.40, 0.82), (0.52, 0.55, 0.60))       # clear -> overcast (clouds hold heat: warmer)
_SKY_LOW = ((0.70, 0.80, 0.95), (0.78, 0.80, 0.82))
_GROUND = ((0.22, 0.46, 0.16), (0.38, 0.45, 0.20), (0.58, 0.50, 0.32))       # watered grass -> dry earth
_WALL = ((0.88, 0.88, 0.84), (0.78, 0.68, 0.52), (0.60, 0.32, 0.24))                          # plaster -> brick
_LEAVES = ((0.12, 0.34, 0.12), (0.24, 0.46, 0.14), (0.52, 0.54, 0.16))       # shaded -> sunlit, drying
_PAINT = ((0.92, 0.92, 0.90), (0.66, 0.68, 0.70), (0.16, 0.32, 0.70), (0.76, 0.12, 0.10), (0.08, 0.08, 0.09))
_CLOTH = ((0.90, 0.88, 0.82), (0.90, 0.72, 0.20), (0.20, 0.56, 0.30), (0.70, 0.14, 0.18), (0.14, 0.20, 0.44),
          (0.10, 0.10, 0.10))
_SKIN = ((0.96, 0.80, 0.69), (0.78, 0.60, 0.45), (0.45, 0.31, 0.22))
VARIATION = 0.03        # standard deviation of a surface's brightness about its ramp (its tint: a third of it)


def ramp(stops: tuple[tuple[float, float, float], ...], u: float) -> np.ndarray:
    """The colour at u in [0, 1] of a piecewise-linear ramp through `stops`."""
    pos = min(max(u, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    t = pos - i
    return ((1 - t) * np.asarray(stops[i], np.float32) + t * np.asarray(stops[i + 1], np.float32)).astype(np.float32)


class Canvas:
    """A colour image and a temperature map painted together, with coordinate grids in [0, 1]."""

    def __init__(self, size: int) -> None:
        self.n = size
        self.rgb = np.zeros((size, size, 3), np.float32)
        self.temp = np.zeros((size, size), np.float32)
        self.coords = (np.arange(size, dtype=np.float32) + 0.5) / size

    def region(self, y0: float, y1: float, x0: float, x1: float) -> tuple[Any, Any, np.ndarray, np.ndarray] | None:
        """Pixel slices covering [y0, y1) x [x0, x1) and that box's coordinates (column, row)."""
        n = self.n
        r0, r1 = max(0, int(math.floor(y0 * n))), min(n, int(math.ceil(y1 * n)))
        c0, c1 = max(0, int(math.floor(x0 * n))), min(n, int(math.ceil(x1 * n)))
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1), self.coords[r0:r1, None], self.coords[None, c0:c1]

    def paint(self, sy: slice, sx: slice, mask: np.ndarray | None, colour: Any, temp: Any) -> None:
        """Set colour and temperature where `mask` holds (everywhere in the box when None)."""
        if mask is None:
            self.rgb[sy, sx] = colour
            self.temp[sy, sx] = temp
            return
        self.rgb[sy, sx][mask] = colour if np.ndim(colour) == 1 else colour[mask]
        self.temp[sy, sx][mask] = temp if np.ndim(temp) == 0 else temp[mask]

    def rect(self, y0: float, y1: float, x0: float, x1: float, colour: Any, temp: float) -> None:
        box = self.region(y0, y1, x0, x1)
        if box:
            self.paint(box[0], box[1], None, colour, temp)

    def ellipse(self, cy: float, cx: float, ry: float, rx: float, colour: Any, temp: float) -> None:
        box = self.region(cy - ry, cy + ry, cx - rx, cx + rx)
        if box:
            sy, sx, yy, xx = box
            mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
            self.paint(sy, sx, mask, colour, temp)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the first two axes (a loop over the few kernel taps)."""
    if sigma <= 0.1:
        return image
    radius = max(1, int(math.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    n = image.shape[0]
    for axis in (0, 1):
        pad = [(radius, radius) if a == axis else (0, 0) for a in range(image.ndim)]
        padded = np.pad(image, pad, mode="edge")
        out = np.zeros_like(image)
        for k, w in enumerate(taps):
            out += w * (padded[k:k + n] if axis == 0 else padded[:, k:k + image.shape[1]])
        image = out
    return image


def _jitter(rng: np.random.Generator, colour: Any, amount: float = VARIATION) -> np.ndarray:
    shift = rng.normal(0, amount) + rng.normal(0, amount / 3, 3)
    return np.clip(np.asarray(colour, np.float32) + shift, 0, 1).astype(np.float32)


def _material(rng: np.random.Generator, stops: tuple[tuple[float, float, float], ...], cold: float, hot: float
              ) -> tuple[np.ndarray, float]:
    """A surface of a class: its colour on the class's ramp (mildly varied) and the temperature that goes with it."""
    u = float(rng.random())
    return _jitter(rng, ramp(stops, u)), cold + (hot - cold) * u


def render(size: int, seed: int, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene `index` of `split`: a thermal image H x W and a colour image H x W x 3, both in [0, 1]."""
    rng = np.random.default_rng((seed, SPLITS[split], index))
    cv = Canvas(size)
    x = cv.coords[None, :]
    sun = rng.uniform(0.0, 1.0)                       # how much the sun has heated the asphalt
    horizon = rng.uniform(0.3, 0.5)
    vx = rng.uniform(0.3, 0.7)                        # vanishing point of the road
    road_half = rng.uniform(0.3, 0.6)                 # road half-width at the bottom edge

    # sky: a vertical gradient, colder straight up; overcast skies and clouds are warmer and greyer
    cloudiness = rng.uniform(0.0, 1.0)
    sky_box = cv.region(0, horizon, 0, 1)
    if sky_box:
        sy, sx, yy, _ = sky_box
        g = np.clip(yy / horizon, 0, 1)[..., None]
        top, low = _jitter(rng, ramp(_SKY_TOP, cloudiness)), _jitter(rng, ramp(_SKY_LOW, cloudiness))
        cv.rgb[sy, sx] = (1 - g) * top + g * low
        cv.temp[sy, sx] = 0.02 + 0.03 * np.clip(yy / horizon, 0, 1) ** 2 + 0.14 * cloudiness
        for _ in range(rng.integers(0, 4) if cloudiness < 0.7 else 0):
            cy, cx = rng.uniform(0.05, horizon * 0.8), rng.uniform(0, 1)
            ry, rx = rng.uniform(0.03, 0.08), rng.uniform(0.08, 0.25)
            a = np.clip(1 - ((yy - cy) / ry) ** 2 - ((x - cx) / rx) ** 2, 0, 1) ** 0.5 * 0.85
            cv.rgb[sy, sx] = cv.rgb[sy, sx] * (1 - a[..., None]) + a[..., None] * 0.95
            cv.temp[sy, sx] += 0.05 * a

    # ground with coarse texture seen alike in both images (clumps are warmer and lighter)
    ground_box = cv.region(horizon, 1, 0, 1)
    asphalt = np.array((0.27, 0.27, 0.29), np.float32)
    if ground_box:
        sy, sx, yy, xx = ground_box
        cell = max(2, size // 12)
        cells = -(-size // cell)
        coarse = rng.normal(0, 1, (cells, cells)).astype(np.float32)
        texture = _blur(np.kron(coarse, np.ones((cell, cell), np.float32))[:size, :size], cell * 0.4)[sy, sx]
        base, ground_temp = _material(rng, _GROUND, 0.26, 0.38)
        cv.rgb[sy, sx] = base * (1 + 0.08 * texture[..., None])
        cv.temp[sy, sx] = ground_temp + 0.015 * texture

        # road, sidewalks and dashed centre line in perspective
        dyy = np.clip((yy - horizon) / (1 - horizon), 1e-3, 1)
        half = road_half * dyy
        off = np.abs(xx - vx)
        walk = (off >= half) & (off < half * 1.3)
        road = off < half
        road_temp = 0.56 + 0.08 * sun
        cv.paint(sy, sx, walk, _jitter(rng, (0.66, 0.64, 0.60)), road_temp - 0.04)
        asphalt = _jitter(rng, asphalt)
        cv.paint(sy, sx, road, asphalt[None, None] * (1 + 0.06 * texture[..., None]), road_temp + 0.01 * texture)
        dashes = (off < 0.012 * dyy + 0.002) & (np.sin(2.2 / dyy) > 0.2)
        cv.paint(sy, sx, dashes, np.array((0.92, 0.92, 0.88), np.float32), road_temp - 0.06)

    def half_width(yb: float) -> float:
        return road_half * max(1e-3, (yb - horizon) / (1 - horizon))

    # buildings along the horizon, windows on a grid: lit windows are warm, dark glass reflects the cold sky
    for _ in range(rng.integers(2, 7)):
        x0, w = rng.uniform(-0.1, 0.95), rng.uniform(0.08, 0.3)
        h = rng.uniform(0.08, horizon * 0.9)
        y0, y1 = horizon - h, horizon + rng.uniform(0.0, 0.03)
        wall, wall_temp = _material(rng, _WALL, 0.38, 0.54)
        box = cv.region(y0, y1, x0, x0 + w)
        if not box:
            continue
        sy, sx, yy, xx = box
        cv.paint(sy, sx, None, wall, wall_temp)
        cols, rows = rng.integers(2, 5), rng.integers(2, 6)
        fx = ((xx - x0) / w * cols) % 1
        fy = ((yy - y0) / h * rows) % 1
        windows = (fx > 0.25) & (fx < 0.75) & (fy > 0.3) & (fy < 0.75) & (yy < horizon - 0.01)
        lit = rng.random() < 0.3
        glass = np.array((0.92, 0.82, 0.45) if lit else (0.16, 0.2, 0.28), np.float32)
        cv.paint(sy, sx, windows, _jitter(rng, glass), wall_temp + (0.12 if lit else -0.1))

    # trees, vehicles and people stand on the ground; paint them far to near
    things = [("tree", rng.uniform(horizon + 0.03, 0.95)) for _ in range(rng.integers(0, 5))]
    things += [("vehicle", rng.uniform(horizon + 0.08, 0.98)) for _ in range(rng.integers(0, 4))]
    things += [("person", rng.uniform(horizon + 0.05, 0.98)) for _ in range(rng.integers(0, 5))]
    for kind, yb in sorted(things, key=lambda item: item[1]):
        s = 0.15 + 0.85 * (yb - horizon) / (1 - horizon)          # perspective scale
        hw = half_width(yb)
        if kind == "tree":
            xc = vx + rng.choice((-1, 1)) * hw * rng.uniform(1.35, 2.6)
            th, tw, r = 0.14 * s, 0.018 * s, rng.uniform(0.06, 0.11) * s
            cv.rect(yb - th, yb, xc - tw, xc + tw, _jitter(rng, (0.35, 0.25, 0.15)), 0.34)
            leaves, leaf_temp = _material(rng, _LEAVES, 0.18, 0.27)
            cv.ellipse(yb - th - r * 0.7, xc, r, r * rng.uniform(0.8, 1.2), leaves, leaf_temp)
        elif kind == "vehicle":
            xc = vx + hw * rng.uniform(-0.75, 0.75)
            w, h = rng.uniform(0.22, 0.3) * s, rng.uniform(0.1, 0.14) * s
            facing = rng.random() < 0.5                              # towards the camera: engine in front
            body, body_temp = _material(rng, _PAINT, 0.68, 0.82)
            cv.rect(yb - 0.01 * s, yb + 0.012 * s, xc - w * 0.55, xc + w * 0.55, asphalt * 0.5,
                    0.5)                                             # shadow: shaded, cooler road
            cv.rect(yb - h, yb - 0.02 * s, xc - w / 2, xc + w / 2, body, body_temp)
            cv.rect(yb - h * 1.6, yb - h + 0.002, xc - w * 0.38, xc + w * 0.38, body, body_temp)
            cv.rect(yb - h * 1.5, yb - h * 1.02, xc - w * 0.33, xc + w * 0.33,
                    np.array((0.12, 0.14, 0.18), np.float32), 0.2)      # glass reflects the cold sky
            for side in (-1, 1):
                cv.rect(yb - 0.035 * s, yb, xc + side * w * 0.42 - 0.025 * s, xc + side * w * 0.42 + 0.025 * s,
                        np.array((0.06, 0.06, 0.06), np.float32), 0.88)   # tyres and brakes
                lamp = (0.95, 0.95, 0.85) if facing else (0.8, 0.1, 0.08)
                cv.rect(yb - h * 0.8, yb - h * 0.6, xc + side * w * 0.36 - 0.02 * s,
                        xc + side * w * 0.36 + 0.02 * s, np.array(lamp, np.float32), body_temp + 0.05)
            if facing:
                cv.rect(yb - h * 0.55, yb - 0.03 * s, xc - w * 0.25, xc + w * 0.25, body * 0.6, 0.93)
            else:
                ex = xc + rng.choice((-1, 1)) * w * 0.3
                cv.ellipse(yb - 0.025 * s, ex, 0.012 * s, 0.02 * s, np.array((0.1, 0.1, 0.1), np.float32), 0.98)
        else:
            side = rng.choice((-1, 1))
            xc = vx + side * hw * rng.uniform(1.05, 1.5) if rng.random() < 0.8 else vx + hw * rng.uniform(-1, 1)
            h, w = rng.uniform(0.2, 0.26) * s, 0.035 * s
            (trousers, trousers_temp), (shirt, shirt_temp) = (_material(rng, _CLOTH, 0.84, 0.92) for _ in "ts")
            for leg in (-1, 1):
                cv.rect(yb - h * 0.45, yb, xc + leg * w * 0.5 - w * 0.38, xc + leg * w * 0.5 + w * 0.38,
                        trousers, trousers_temp)
            cv.rect(yb - h * 0.85, yb - h * 0.42, xc - w, xc + w, shirt, shirt_temp)
            skin, skin_temp = _material(rng, _SKIN, 0.95, 0.99)
            cv.ellipse(yb - h * 0.93, xc, h * 0.09, h * 0.075, skin, skin_temp)

    # sensors: thermal blur, column pattern, a mild gain/offset and noise; colour: slight blur, level and noise
    px = size / 64
    thermal = _blur(cv.temp, 0.9 * px)
    thermal = thermal + rng.normal(0, 0.004, (1, size)).astype(np.float32)
    thermal = thermal * rng.uniform(0.97, 1.03)
    thermal = thermal + rng.normal(0, 0.01, thermal.shape).astype(np.float32)
    colour = _blur(cv.rgb, 0.45 * px) * rng.uniform(0.97, 1.03)
    colour = colour + rng.normal(0, 0.01, colour.shape).astype(np.float32)
    return np.clip(thermal, 0, 1).astype(np.float32), np.clip(colour, 0, 1).astype(np.float32)


class RenderedScenes(Dataset):
    """Items rendered on demand from (seed, split, index); when training, the images of an item are
    mirrored together at random. Subclasses render one item in `item`."""

    def __init__(self, params: Any, split: str, count: int, train: bool) -> None:
        self.params = params
        self.split = split
        self.count = count
        self.train = train

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.count <= index < self.count:
            raise IndexError(index)
        return self.item(index % self.count)

    def item(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def mirrored(self, *images: torch.Tensor) -> list[torch.Tensor]:
        if self.train and self.params.flip and torch.rand(()) < 0.5:
            return [image.flip(-1).contiguous() for image in images]
        return [image.contiguous() for image in images]


class SyntheticScenes(RenderedScenes):
    """Thermal and colour renderings of one scene (or, unpaired, of two)."""

    def item(self, index: int) -> dict[str, Any]:
        thermal, colour = render(self.params.size, self.params.seed, self.split, index)
        if not self.params.paired and self.count > 1:  # the colour of another scene: no pairing to learn from
            other = int(torch.randint(self.count - 1, ())) if self.train else 0
            _, colour = render(self.params.size, self.params.seed, self.split, (index + 1 + other) % self.count)
        a, b = self.mirrored(torch.from_numpy(thermal)[None].mul_(2).sub_(1),
                             torch.from_numpy(colour).permute(2, 0, 1).mul(2).sub_(1))
        return {"a": a, "b": b, "name": f"{self.split}_{index:05d}", "skipped": 0}


class RenderedAdapter(ImageFormats):
    """An adapter whose scenes are rendered on demand (no files): a train and a test split of the sizes its
    parameters give, each scene made by the `scenes` dataset class."""

    kind: str
    scenes: type[RenderedScenes]

    def __init__(self, params: Any) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.params.size}, seed={self.params.seed})"

    def count(self, split: str) -> int:
        if split not in SPLITS:
            raise P2PError(f"{self.kind} has no split {split!r}", hint='splits are "train" and "test"')
        return self.params.train_count if split == "train" else self.params.test_count

    def dataset(self, split: str, *, train: bool) -> RenderedScenes:
        return self.scenes(self.params, split, self.count(split), train)


class SyntheticThermal(RenderedAdapter):
    """Thermal (1 channel) -> colour (3 channels) scenes rendered on demand: no files."""

    kind = "synthetic_thermal"
    scenes = SyntheticScenes
    a_channels = 1
    b_channels = 3

    def render(self, split: str, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene `index` of `split` as (thermal 1 x S x S, colour 3 x S x S) in [-1, 1], unflipped."""
        item = self.dataset(split, train=False)[index]
        return item["a"], item["b"]

    def read_input(self, path: str | Path, side: str = "a") -> torch.Tensor:
        return read_image(path, self.a_channels if side == "a" else self.b_channels)

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        write_image(image, path, bits=self.params.output_bits)

    def check(self, split: str = "train", *, deep: bool = False) -> DataReport:
        report = DataReport(self.kind, split, "(rendered, no files)", deep=deep)
        try:
            report.pairs = self.count(split)
        except P2PError as exc:
            report.problem(exc.message)
            return report
        size = self.params.size
        report.facts["A: thermal"] = f"{report.pairs} scenes, 1 ch, {size} x {size} px"
        report.facts["B: colour"] = f"{report.pairs} scenes, 3 ch, {size} x {size} px"
        if deep:
            data = self.dataset(split, train=False)
            for i in range(len(data)):
                item = data[i]
                for side in ("a", "b"):
                    if not torch.isfinite(item[side]).all() or item[side].abs().max() > 1:
                        report.problem(f"scene {item['name']}: side {side} is outside [-1, 1]")
        return report.finish()
