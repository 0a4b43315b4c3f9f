"""Plane geometry of a camera pair: the transform models, the normalised frames the estimators work in,
mapping points, and the common field of view. NumPy only, so a recipe's alignment can be checked without torch.

Pixel coordinates are continuous: an image of width W and height H spans x in [0, W] (to the right) and
y in [0, H] (down), so pixel (column c, row r) has its centre at (c + 0.5, r + 0.5). This is the
convention of ``grid_sample(align_corners=False)`` and of Pillow's transforms.
"""

from __future__ import annotations

import numpy as np

from p2pcore.errors import P2PError, did_you_mean

Size = tuple[int, int]
"""An image's (width, height) in pixels."""

# Model name -> (free parameters, point pairs needed). Ordered from the fewest degrees of freedom.
MODELS: dict[str, tuple[int, int]] = {
    "translation": (2, 1),
    "similarity": (4, 2),
    "affine": (6, 3),
    "homography": (8, 4),
}


def check_model(model: object, *, file: str | None = None, key: str | None = None) -> str:
    """`model` if it names a known transform model, else a P2PError listing them."""
    if model in MODELS:
        return str(model)
    guess = did_you_mean(str(model), MODELS)
    raise P2PError(f"unknown alignment model {model!r}", file=file, key=key,
                   hint=(f"did you mean {guess!r}? " if guess else "") + f"one of: {', '.join(MODELS)}")


def frame(size: Size) -> np.ndarray:
    """The 3x3 map from an image's pixel coordinates to its centred frame, where the longer side spans
    [-1, 1] and both axes keep one scale (so a similarity stays a similarity)."""
    width, height = size
    half = max(width, height) / 2.0
    return np.array([[1 / half, 0, -width / 2 / half], [0, 1 / half, -height / 2 / half], [0, 0, 1]])


def corners(size: Size) -> np.ndarray:
    """The image's four corners (4 x 2: top-left, top-right, bottom-right, bottom-left) in pixel coordinates."""
    width, height = size
    return np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` (N x 2) mapped by the 3x3 projective `matrix`."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    mapped = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ np.asarray(matrix, np.float64).T
    return mapped[:, :2] / mapped[:, 2:]


def initial_matrix(model: str, size_a: Size, size_b: Size) -> np.ndarray:
    """The starting guess: a's corners onto b's corners (translation and similarity, which cannot stretch:
    a's centre onto b's centre, at the pixel scale of no change or of equal area)."""
    (wa, ha), (wb, hb) = size_a, size_b
    if model in ("homography", "affine"):
        return np.diag([wb / wa, hb / ha, 1.0])
    scale = 1.0 if model == "translation" else float(np.sqrt(wb * hb / (wa * ha)))
    return np.array([[scale, 0, wb / 2 - scale * wa / 2], [0, scale, hb / 2 - scale * ha / 2], [0, 0, 1]])


def local_scale(matrix: np.ndarray, size_a: Size) -> float:
    """How many of b's pixels one of a's pixels spans (the square root of the area ratio at a's centre)."""
    centre = np.array([size_a[0] / 2, size_a[1] / 2])
    step = 0.5
    probe = np.array([centre, centre + [step, 0], centre + [0, step]])
    x0, x1, y1 = map_points(matrix, probe)
    (ux, uy), (vx, vy) = x1 - x0, y1 - x0
    return float(np.sqrt(abs(ux * vy - uy * vx)) / step)


def keeps_a_whole(matrix: np.ndarray, size_a: Size) -> bool:
    """True when no point of a's image maps to infinity (its image in b is a convex quadrilateral)."""
    homogeneous = np.concatenate([corners(size_a), np.ones((4, 1))], axis=1) @ np.asarray(matrix).T
    w = homogeneous[:, 2]
    return bool(np.all(w > 1e-9) or np.all(w < -1e-9))


def _row_extents(quad: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The leftmost and rightmost x of the convex polygon `quad` (K x 2, in order) on each horizontal line
    y in `ys` (+inf and -inf where the line misses it)."""
    start, end = quad, np.roll(quad, -1, axis=0)
    dy = end[:, 1] - start[:, 1]
    flat = np.abs(dy) < 1e-12
    t = (ys[:, None] - start[None, :, 1]) / np.where(flat, 1.0, dy)[None, :]
    x = start[None, :, 0] + t * (end - start)[None, :, 0]
    hit = (t >= -1e-9) & (t <= 1 + 1e-9) & ~flat[None, :]
    left = np.where(hit, x, np.inf).min(axis=1)
    right = np.where(hit, x, -np.inf).max(axis=1)
    return left, right


def largest_box(quad: np.ndarray, size_b: Size) -> tuple[int, int, int, int] | None:
    """The largest axis-aligned box (x0, y0, x1, y1) of whole pixels of b's grid inside the convex polygon
    `quad`, or None when there is none.

    The polygon's left edge is a convex function of y and its right edge a concave one, so the widest box
    spanning rows y0..y1 is bounded by those two rows alone: every pair of rows is scored at once.
    """
    width, height = size_b
    lines = np.arange(height + 1, dtype=np.float64)
    left, right = _row_extents(np.asarray(quad, np.float64), lines)
    left = np.maximum(np.maximum(left[:-1], left[1:]), 0.0)  # a pixel row spans two lines
    right = np.minimum(np.minimum(right[:-1], right[1:]), float(width))
    missed = ~(np.isfinite(left) & np.isfinite(right))  # rows the polygon does not reach: no span
    left = np.where(missed, width + 1.0, np.ceil(np.where(missed, 0.0, left) - 1e-6))
    right = np.where(missed, -1.0, np.floor(np.where(missed, 0.0, right) + 1e-6))
    spans = np.minimum(right[:, None], right[None, :]) - np.maximum(left[:, None], left[None, :])
    rows = np.arange(height)
    tall = rows[None, :] - rows[:, None] + 1
    area = np.where((tall > 0) & (spans > 0), spans * tall, 0.0)
    if area.max(initial=0.0) <= 0:
        return None
    top, bottom = np.unravel_index(int(np.argmax(area)), area.shape)
    x0 = int(max(left[top], left[bottom]))
    x1 = int(min(right[top], right[bottom]))
    return x0, int(top), x1, int(bottom) + 1


def overlap_fraction(matrix: np.ndarray, size_a: Size, size_b: Size, samples: int = 64) -> float:
    """The fraction of a's image that lands inside b's (sampled on a `samples` x `samples` grid)."""
    steps = (np.arange(samples) + 0.5) / samples
    grid = np.stack(np.meshgrid(steps * size_a[0], steps * size_a[1]), axis=-1).reshape(-1, 2)
    homogeneous = np.concatenate([grid, np.ones((len(grid), 1))], axis=1) @ np.asarray(matrix).T
    w = homogeneous[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = homogeneous[:, 0] / w, homogeneous[:, 1] / w
    inside = (w > 0) & (x >= 0) & (x <= size_b[0]) & (y >= 0) & (y <= size_b[1])
    return float(inside.mean())
