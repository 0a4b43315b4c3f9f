"""An alignment from point pairs a person picked: the same scene point in a and in b, by least squares
(a homography by the normalised direct linear transform), with the residual in pixels per point.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from p2pcore.alignment.geometry import MODELS, Size, check_model
from p2pcore.alignment.transform import Alignment
from p2pcore.errors import P2PError

_RANK_TOLERANCE = 1e-9  # relative singular value below which a system counts as rank-deficient
_EDGE_TOLERANCE = 1.0  # pixels a point may lie outside its image (clicks on the border)


def _points(values: Any, which: str, file: str | None) -> np.ndarray:
    try:
        points = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise P2PError(f"the points of {which} are not numbers", file=file, key=f"points_{which}",
                       hint="give (x, y) pairs of pixel coordinates") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise P2PError(f"expected the points of {which} as N (x, y) pairs, got shape {points.shape}", file=file,
                       key=f"points_{which}", hint="one (x, y) pair per point")
    if not np.all(np.isfinite(points)):
        raise P2PError(f"the points of {which} include a value that is not finite", file=file,
                       key=f"points_{which}")
    return points


def _check_inside(points: np.ndarray, size: Size, which: str, file: str | None) -> None:
    width, height = size
    outside = ((points[:, 0] < -_EDGE_TOLERANCE) | (points[:, 0] > width + _EDGE_TOLERANCE)
               | (points[:, 1] < -_EDGE_TOLERANCE) | (points[:, 1] > height + _EDGE_TOLERANCE))
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise P2PError(f"point {i + 1} of {which}, ({points[i, 0]:g}, {points[i, 1]:g}), lies outside {which}'s "
                       f"{width}x{height} image", file=file, key=f"points_{which}",
                       hint="points are (x, y) pixel coordinates: x to the right, y down, from the top-left corner")


def _normaliser(points: np.ndarray) -> np.ndarray:
    """Hartley's conditioning: the centroid to the origin, the mean distance from it to sqrt(2)."""
    centre = points.mean(axis=0)
    spread = np.linalg.norm(points - centre, axis=1).mean()
    scale = np.sqrt(2) / spread if spread > 0 else 1.0
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ matrix.T
    return mapped[:, :2] / mapped[:, 2:]


def _degenerate(model: str, file: str | None, why: str) -> P2PError:
    need = {"translation": "one point", "similarity": "two distinct points", "affine": "three points not on one line",
            "homography": "four points, no three of them on one line"}[model]
    return P2PError(f"the point pairs are degenerate for a {model}: {why}", file=file,
                    hint=f"a {model} needs at least {need}; pick points spread over the whole image "
                         "(corners of buildings, road markings), not along one line")


def _rank_deficient(design: np.ndarray, unknowns: int) -> bool:
    singular = np.linalg.svd(design, compute_uv=False)
    return len(singular) < unknowns or singular[unknowns - 1] < _RANK_TOLERANCE * singular[0]


def _solve(model: str, a: np.ndarray, b: np.ndarray, file: str | None) -> np.ndarray:
    """The model's matrix mapping the conditioned points `a` onto the conditioned points `b`."""
    n = len(a)
    x, y = a[:, 0], a[:, 1]
    one, zero = np.ones(n), np.zeros(n)
    if model == "translation":
        t = (b - a).mean(axis=0)
        return np.array([[1, 0, t[0]], [0, 1, t[1]], [0, 0, 1.0]])
    if model == "similarity":  # x' = p x - q y + tx, y' = q x + p y + ty
        design = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
        if _rank_deficient(design, 4):
            raise _degenerate(model, file, "the points coincide")
        p, q, tx, ty = np.linalg.lstsq(design, np.concatenate([b[:, 0], b[:, 1]]), rcond=None)[0]
        return np.array([[p, -q, tx], [q, p, ty], [0, 0, 1.0]])
    for points, which in ((a, "a"), (b, "b")):
        centred = points - points.mean(axis=0)
        if np.linalg.svd(centred, compute_uv=False)[-1] < 1e-6 * np.sqrt(n):
            raise _degenerate(model, file, f"the points of {which} lie on one line")
    if model == "affine":
        design = np.stack([x, y, one], 1)
        solution = np.linalg.lstsq(design, b, rcond=None)[0]
        return np.concatenate([solution.T, [[0, 0, 1.0]]])
    rows = [np.stack([x, y, one, zero, zero, zero, -b[:, 0] * x, -b[:, 0] * y, -b[:, 0]], 1),
            np.stack([zero, zero, zero, x, y, one, -b[:, 1] * x, -b[:, 1] * y, -b[:, 1]], 1)]
    design = np.concatenate(rows)
    _, singular, vt = np.linalg.svd(design)
    if len(singular) < 8 or singular[7] < _RANK_TOLERANCE * singular[0]:
        raise _degenerate(model, file, "they do not pin down one homography (too many on one line)")
    matrix = vt[-1].reshape(3, 3)
    if abs(np.linalg.det(matrix)) < 1e-6 * np.linalg.norm(matrix) ** 3:
        raise _degenerate(model, file, "three of them lie on one line")
    return matrix / matrix[2, 2] if abs(matrix[2, 2]) > 1e-12 else matrix


def estimate_from_points(points_a: Any, points_b: Any, *, size_a: Size, size_b: Size,
                         model: str = "homography", file: str | None = None) -> Alignment:
    """The `model` transform that maps `points_a` (N x 2 pixel coordinates in a, x right, y down) onto
    `points_b` (the same scene points in b) by least squares: a homography needs 4 pairs, an affine 3,
    a similarity 2, a translation 1; more pairs average the clicking error out and measure it.

    The residual holds, in b's pixels, each point's distance from where the transform puts it
    (``per_point_px``), their root mean square (``rms_px``) and maximum (``max_px``), and ``redundancy``,
    the equations beyond the unknowns (0: the points are matched exactly and the figures say nothing).
    `file` names the points' file in errors.
    """
    model = check_model(model, file=file, key="model")
    a, b = _points(points_a, "a", file), _points(points_b, "b", file)
    if len(a) != len(b):
        raise P2PError(f"{len(a)} points in a but {len(b)} in b", file=file,
                       hint="give each point as a pair: its position in a and in b")
    dof, needed = MODELS[model]
    if len(a) < needed:
        raise P2PError(f"a {model} needs at least {needed} point pairs, got {len(a)}", file=file,
                       hint=f"add point pairs ({needed + 2} or more, spread over the image, measure the error), "
                            "or choose a model with fewer unknowns: " + ", ".join(
                                f"{m} ({n})" for m, (_, n) in MODELS.items() if n <= max(len(a), 1)))
    _check_inside(a, size_a, "a", file)
    _check_inside(b, size_b, "b", file)
    if model == "translation":
        norm_a = norm_b = np.eye(3)
    elif model == "similarity":  # one isotropic conditioning for both keeps the solution a similarity
        norm_a = norm_b = _normaliser(np.concatenate([a, b]))
    else:
        norm_a, norm_b = _normaliser(a), _normaliser(b)
    solved = _solve(model, _apply(norm_a, a), _apply(norm_b, b), file)
    matrix = np.linalg.inv(norm_b) @ solved @ norm_a
    try:
        alignment = Alignment(matrix, size_a, size_b, model)
    except P2PError as exc:
        raise _degenerate(model, file, exc.message) from None
    errors = np.linalg.norm(alignment.map(a) - b, axis=1)
    residual = {"method": "points", "points": len(a), "redundancy": 2 * len(a) - dof,
                "rms_px": round(float(np.sqrt(np.mean(errors ** 2))), 4), "max_px": round(float(errors.max()), 4),
                "per_point_px": [round(float(e), 4) for e in errors]}
    return Alignment(alignment.matrix, size_a, size_b, model, residual)


def read_points(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Point pairs from a text file: one pair a line, ``xa ya xb yb`` (commas or spaces between),
    ``#`` starts a comment. Returns (points_a, points_b), each N x 2."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise P2PError("points file not found", file=str(path), hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise P2PError(f"cannot read the points file: {exc}", file=str(path)) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = [f for f in re.split(r"[,\s;]+", line.split("#", 1)[0].strip()) if f]
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            values = []
        if len(values) != 4 or not all(np.isfinite(values)):
            raise P2PError(f"expected four numbers, xa ya xb yb, got {line.strip()!r}", file=str(path),
                           key=f"line {number}", hint="one point pair a line: its x, y in a, then its x, y in b")
        rows.append(values)
    if not rows:
        raise P2PError("the points file holds no point pairs", file=str(path),
                       hint="one point pair a line: xa ya xb yb")
    table = np.array(rows)
    return table[:, :2], table[:, 2:]
