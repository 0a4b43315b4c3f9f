"""The alignment of a camera pair: the matrix mapping a's pixels onto b's, kept in a recipe's
``[data.align]`` block and applied to each pair (warp a onto b's grid, crop both to the common field of view).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from p2pcore.alignment.geometry import Size, check_model, corners, keeps_a_whole, largest_box, local_scale, map_points
from p2pcore.errors import P2PError, did_you_mean

if TYPE_CHECKING:
    import torch

TABLE_KEYS = ("model", "matrix", "size_a", "size_b", "residual")
DEFAULT_KEY = "data.align"


def _key(prefix: str | None, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _size(value: Any, *, file: str | None, key: str) -> Size:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in value)):
        raise P2PError(f"expected [width, height] in pixels, got {value!r}", file=file, key=key,
                       hint="two positive whole numbers, e.g. [640, 512]")
    return int(value[0]), int(value[1])


def _matrix(value: Any, *, file: str | None, key: str) -> np.ndarray:
    rows_ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(
        isinstance(row, (list, tuple)) and len(row) == 3 for row in value)
    numbers_ok = rows_ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                 for row in value for v in row)
    if not numbers_ok:
        raise P2PError("expected a 3x3 matrix as 3 lists of 3 finite numbers", file=file, key=key,
                       hint="write it with `p2p data register`, e.g. [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], "
                            "[0.0, 0.0, 1.0]]")
    return np.array(value, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Alignment:
    """The projective map from a's pixel coordinates (x, y, 1) to b's, for images of `size_a` and `size_b`
    (width, height). Coordinates are continuous: pixel (c, r) has its centre at (c + 0.5, r + 0.5).

    `residual` holds the figures its estimate reported (plain numbers and lists, TOML-able).
    """

    matrix: np.ndarray
    size_a: Size
    size_b: Size
    model: str = "homography"
    residual: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("size_a", "size_b"):
            object.__setattr__(self, name, _size(tuple(getattr(self, name)), file=None, key=name))
        matrix = np.asarray(self.matrix, dtype=np.float64)
        if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
            raise P2PError("an alignment matrix must be 3x3 and finite", key="matrix")
        det = np.linalg.det(matrix)
        if abs(det) < 1e-12 * max(1.0, np.abs(matrix).max() ** 3):
            raise P2PError("the alignment matrix is singular: it collapses a's image to a line or a point",
                           key="matrix", hint="estimate it again from more or better spread points or pairs")
        if not keeps_a_whole(matrix, self.size_a):
            raise P2PError("the alignment maps part of a's image beyond the horizon (to infinity)",
                           key="matrix", hint="the estimate is wrong: check the point pairs (x, y order) "
                                              "or estimate it from the images")
        matrix = matrix / matrix[2, 2] if abs(matrix[2, 2]) > 1e-12 else matrix
        if np.concatenate([corners(self.size_a), np.ones((4, 1))], axis=1).dot(matrix[2]).min() < 0:
            matrix = -matrix
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "model", check_model(self.model, key="model"))

    # -- points ----------------------------------------------------------------------------------------

    def map(self, points: Any) -> np.ndarray:
        """Points of a's image (N x 2) in b's pixel coordinates."""
        return map_points(self.matrix, points)

    def corners(self) -> np.ndarray:
        """a's four corners (top-left, top-right, bottom-right, bottom-left) in b's pixel coordinates."""
        return self.map(corners(self.size_a))

    def corner_distances(self, other: Alignment) -> np.ndarray:
        """How far apart (in b's pixels) the two alignments put each of a's four corners."""
        return np.linalg.norm(self.corners() - other.corners(), axis=1)

    def scale(self) -> float:
        """b's pixels per a pixel at a's centre."""
        return local_scale(self.matrix, self.size_a)

    def inverse_matrix(self) -> np.ndarray:
        """The map from b's pixel coordinates back to a's."""
        return np.linalg.inv(self.matrix)

    # -- the recipe's [data.align] block ---------------------------------------------------------------

    def to_table(self) -> dict[str, Any]:
        """Plain data for a recipe's ``[data.align]`` block (TOML-able: no None anywhere)."""
        return {"model": self.model,
                "matrix": [[float(v) for v in row] for row in self.matrix],
                "size_a": list(self.size_a), "size_b": list(self.size_b),
                "residual": {k: v for k, v in self.residual.items() if v is not None}}

    @classmethod
    def from_table(cls, table: Any, *, file: str | None = None, key: str | None = DEFAULT_KEY) -> Alignment:
        """The alignment a ``[data.align]`` block describes; a P2PError naming the file and key otherwise."""
        if not isinstance(table, dict):
            raise P2PError("expected a table with model, matrix, size_a and size_b", file=file, key=key)
        for name in table:
            if name not in TABLE_KEYS:
                guess = did_you_mean(name, TABLE_KEYS)
                raise P2PError(f"unknown key {name!r}", file=file, key=_key(key, name),
                               hint=(f"did you mean {guess!r}? " if guess else "") + f"known: {', '.join(TABLE_KEYS)}")
        for name in ("matrix", "size_a", "size_b"):
            if name not in table:
                raise P2PError(f"missing {name!r}", file=file, key=_key(key, name),
                               hint="write the block with `p2p data register RECIPE`")
        model = check_model(table.get("model", "homography"), file=file, key=_key(key, "model"))
        residual = table.get("residual", {})
        if not isinstance(residual, dict):
            raise P2PError("expected a table of figures", file=file, key=_key(key, "residual"))
        matrix = _matrix(table["matrix"], file=file, key=_key(key, "matrix"))
        size_a = _size(table["size_a"], file=file, key=_key(key, "size_a"))
        size_b = _size(table["size_b"], file=file, key=_key(key, "size_b"))
        try:
            return cls(matrix, size_a, size_b, model, dict(residual))
        except P2PError as exc:
            raise exc.with_location(file=file, key_prefix=key) from None

    # -- images ----------------------------------------------------------------------------------------

    def common_box(self) -> tuple[int, int, int, int]:
        """The largest axis-aligned box (x0, y0, x1, y1; x1 and y1 exclusive) of whole pixels of b's grid
        that warped a covers: the common field of view."""
        box = largest_box(self.corners(), self.size_b)
        if box is None or box[2] - box[0] < 2 or box[3] - box[1] < 2:
            c = np.round(self.corners(), 1).tolist()
            raise P2PError("the two images do not overlap: a's image lands outside b's",
                           details=[f"a's corners in b's pixels: {c}; b is {self.size_b[0]}x{self.size_b[1]}"],
                           hint="the cameras must see a common part of the scene; check the alignment "
                                "(or the point pairs it came from)")
        return box

    def _check(self, image: torch.Tensor, size: Size, which: str) -> None:
        if image.dim() not in (3, 4):
            raise P2PError(f"expected the {which} image as C x H x W (or N x C x H x W), got shape "
                           f"{tuple(image.shape)}")
        got = (int(image.shape[-1]), int(image.shape[-2]))
        if got != size:
            raise P2PError(f"the {which} image is {got[0]}x{got[1]}, the alignment is for {size[0]}x{size[1]}",
                           hint="the alignment holds for one rig's image sizes: register the pairs again "
                                "(`p2p data register`) if the images changed")

    def warp(self, a: torch.Tensor, *, fill: float = 0.0) -> torch.Tensor:
        """a (C x H x W or N x C x H x W, a's size) resampled onto b's pixel grid, bilinearly; where a does
        not reach, `fill`. a is first smoothed to b's pixel size where b's pixels are coarser (no aliasing)."""
        import torch
        import torch.nn.functional as F

        self._check(a, self.size_a, "a")
        batch = a if a.dim() == 4 else a[None]
        source = batch.float()
        matrix = self.matrix
        scale = self.scale()
        if scale < 0.67:  # b's pixels are coarser: downscale a to about b's density before sampling
            width, height = (max(1, round(n * scale)) for n in self.size_a)
            source = F.interpolate(source, size=(height, width), mode="bilinear", antialias=True,
                                   align_corners=False)
            matrix = matrix @ np.diag([self.size_a[0] / width, self.size_a[1] / height, 1.0])
        height_a, width_a = source.shape[-2:]
        wb, hb = self.size_b
        ys, xs = np.meshgrid(np.arange(hb) + 0.5, np.arange(wb) + 0.5, indexing="ij")
        points = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ np.linalg.inv(matrix).T
        w = points[..., 2]
        safe = np.where(np.abs(w) < 1e-12, 1e-12, w)
        x, y = points[..., 0] / safe, points[..., 1] / safe
        inside = (w > 0) & (x >= 0) & (x <= width_a) & (y >= 0) & (y <= height_a)
        grid = np.stack([np.where(inside, 2 * x / width_a - 1, -2.0), np.where(inside, 2 * y / height_a - 1, -2.0)],
                        axis=-1)
        grid_t = torch.as_tensor(grid, dtype=torch.float32, device=source.device)[None].expand(len(source), -1, -1, -1)
        out = F.grid_sample(source, grid_t, mode="bilinear", padding_mode="border", align_corners=False)
        out = torch.where(torch.as_tensor(inside, device=source.device)[None, None], out,
                          torch.full_like(out, float(fill)))
        out = out.to(a.dtype) if a.is_floating_point() else out
        return out if a.dim() == 4 else out[0]

    def apply(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a warped onto b's grid, b), both cropped to the common field of view."""
        self._check(b, self.size_b, "b")
        x0, y0, x1, y1 = self.common_box()
        return self.warp(a)[..., y0:y1, x0:x1], b[..., y0:y1, x0:x1]

    def describe(self) -> list[str]:
        """Lines for a person: the model, where a's corners land in b, the common box and the residual."""
        x0, y0, x1, y1 = self.common_box()
        lines = [f"{self.model} from a ({self.size_a[0]}x{self.size_a[1]}) to b ({self.size_b[0]}x{self.size_b[1]}),"
                 f" {self.scale():.3f} b pixels per a pixel",
                 "a's corners in b: " + ", ".join(f"({x:.1f}, {y:.1f})" for x, y in self.corners()),
                 f"common field of view: x {x0}..{x1}, y {y0}..{y1} of b ({x1 - x0}x{y1 - y0})"]
        lines += [f"{name}: {value}" for name, value in self.residual.items()
                  if not isinstance(value, list)]
        return lines

