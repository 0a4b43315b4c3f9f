"""An alignment from the images themselves: the transform that best correlates a's gradient structure with
b's, summed over many pairs of one rig.

The score is the enhanced correlation coefficient (zero-mean normalised cross-correlation) between the
gradient-magnitude maps of a warped onto b and of b, over the pixels they share. Edges are where a thermal
and a colour camera agree, while their intensities need not (a hot road can be dark in colour), and a
correlation is blind to each map's gain and offset. The model's parameters are optimised by Gauss-Newton
through ``grid_sample`` warps (:mod:`~p2pcore.alignment.ecc`), coarse to fine over an image pyramid, from
a's corners on b's corners, after a coarse search over scale and shift, so that cameras of different fields
of view are found; the search's best few starts are fitted through the coarse levels and the best goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from p2pcore.alignment.ecc import MIN_OVERLAP, Scorer, optimise
from p2pcore.alignment.features import Level, finest_factor, grey, level_sizes, make_level, pyramid, resize, texture
from p2pcore.alignment.geometry import MODELS, Size, check_model, frame, initial_matrix, local_scale, overlap_fraction
from p2pcore.alignment.transform import Alignment
from p2pcore.errors import P2PError

_FLAT = 1e-3  # an image whose values vary less than this (standard deviation) has no structure to align
_SEARCH_PAIRS = 8
_STARTS = 4  # the best distinct starts of the coarse search that are fitted further
_MIN_SIDE = 24  # pixels across a at the coarsest level, at least
_SEARCH_SIDE = 24  # pixels across a where the coarse search runs


def _stage(model: str, level: int, levels: int) -> str:
    """The model fitted at pyramid level `level` of `levels` (0 coarsest): fewer unknowns first (a
    similarity, then an affine), as the coarse levels cannot resolve perspective and would let it wander."""
    order = list(MODELS)
    if level == levels - 1:
        return model
    limit = order.index("similarity") if level == 0 else order.index("affine") if level == 1 else len(order)
    return order[min(order.index(model), limit)]


def _search(scorer: Scorer, g0: np.ndarray, model: str, scale_range: float, shift: float,
            starts: int) -> list[np.ndarray]:
    """The best `starts` distinct starts over a grid of scales (about a's centre) and shifts, at the
    coarsest level (several, since a coarse level can rank a wrong start first)."""
    steps = max(1, round(np.log2(scale_range) * 8))
    scales = 2.0 ** (np.arange(-steps, steps + 1) / 8) if model != "translation" else np.ones(1)
    step = 2.0 / max(scorer.level.size_b)  # one of b's pixels at this level, in b's centred frame
    offsets = np.arange(-np.floor(shift / step), np.floor(shift / step) + 1) * step
    s, dx, dy = (a.ravel() for a in np.meshgrid(scales, offsets, offsets, indexing="ij"))
    g = np.repeat(g0[None], len(s), axis=0)
    g[:, :2, :2] *= s[:, None, None]
    g[:, 0, 2] += dx
    g[:, 1, 2] += dy
    scores = []
    with torch.no_grad():
        for chunk in torch.tensor(g, device=scorer.level.feats_a.device).split(384):
            correlation, overlap = scorer(chunk)
            scores.append(torch.where(overlap >= MIN_OVERLAP, correlation.mean(dim=1), torch.full_like(overlap, -9)))
    order = torch.cat(scores).argsort(descending=True).cpu().numpy()
    corners = np.array([[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1.0]])
    chosen: list[int] = []
    for index in order[: 50 * starts]:  # distinct: a's corners at least 3 coarse pixels apart
        placed = corners @ g[index].T
        if all(np.abs(placed - corners @ g[other].T).max() > 3 * step for other in chosen):
            chosen.append(int(index))
            if len(chosen) == starts:
                break
    return [g[index] for index in chosen]


def _fit(levels: list[Level], g: np.ndarray, model: str, size_b: Size, pixel_ratio: float, *,
         staged: bool, first: int = 0, total: int = 0) -> np.ndarray:
    """`g` refined level by level, from `first` to the last of `levels` (of a pyramid of `total` levels, when
    only its coarse part is given): to a tenth of a pixel, a hundredth at the finest."""
    for index in range(first, len(levels)):
        stage = _stage(model, index, total or len(levels)) if staged else model
        pixel = 2.0 / max(levels[index].size_b)  # one of b's pixels at this level, in b's centred frame
        finest = index == (total or len(levels)) - 1
        g = optimise(Scorer(levels[index], size_b), g, stage, pixel_ratio, iterations=30,
                     tolerance=(0.01 if finest else 0.1) * pixel)
    return g


def _size_of(image: torch.Tensor) -> Size:
    return int(image.shape[-1]), int(image.shape[-2])


def _pair(pairs: Sequence[Any], index: int, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    pair = pairs[index]
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(image, torch.Tensor) and image.dim() == 3 for image in pair)):
        raise P2PError(f"pair {name}: expected an (a, b) pair of C x H x W tensors",
                       hint="pass (a, b) tensors as read by p2pcore.api.read_image")
    return pair[0], pair[1]


class _Pairs:
    """The pairs used, read one at a time (a lazy sequence, such as a dataset, is read only where used) and
    kept only as grey images at the finest working size: a's and b's sizes, the start and b's pixels per
    a pixel there, the grey images (N x 1 x H x W), the names of the pairs kept and of the flat ones."""

    def __init__(self, pairs: Sequence[Any], names: Sequence[str] | None, *, model: str, max_pairs: int,
                 max_side: int, initial: Alignment | None, device: str | torch.device | None) -> None:
        count = len(pairs)
        if not count:
            raise P2PError("no image pairs to align", hint="give pairs (a, b) of one camera rig")
        all_names = [str(n) for n in names] if names is not None else [str(i + 1) for i in range(count)]
        if len(all_names) != count:
            raise P2PError(f"{len(all_names)} names for {count} pairs")
        # evenly spread over the sequence: a recording drifts over the scene
        used = np.linspace(0, count - 1, min(count, max_pairs)).round().astype(int).tolist()
        a, b = _pair(pairs, used[0], all_names[used[0]])
        self.size_a, self.size_b = _size_of(a), _size_of(b)
        self.device = torch.device(device) if device is not None else a.device
        self.start = self._start(model, initial)
        self.density = local_scale(self.start, self.size_a)
        working = level_sizes(self.size_a, self.size_b, self.density,
                              finest_factor(self.size_a, self.density, max_side))
        greys: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index in used:
            name = all_names[index]
            a, b = (a, b) if index == used[0] else _pair(pairs, index, name)
            if _size_of(a) != self.size_a or _size_of(b) != self.size_b:
                raise P2PError(f"pair {name}: a is {_size_of(a)[0]}x{_size_of(a)[1]} and b {_size_of(b)[0]}x"
                               f"{_size_of(b)[1]}, the first pair's a is {self.size_a[0]}x{self.size_a[1]} "
                               f"and b {self.size_b[0]}x{self.size_b[1]}",
                               hint="one rig, one size per camera: register each camera pairing separately")
            with torch.no_grad():
                greys.append(tuple(resize(grey(image, which, name).to(self.device)[None], size)[0]
                                   for image, which, size in ((a, "a", working[0]), (b, "b", working[1]))))
        with torch.no_grad():
            grey_a, grey_b = torch.stack([g[0] for g in greys]), torch.stack([g[1] for g in greys])
            flat = ((texture(grey_a) < _FLAT) | (texture(grey_b) < _FLAT)).tolist()
        self.skipped = [all_names[i] for i, f in zip(used, flat, strict=True) if f]
        if len(self.skipped) == len(used):
            raise P2PError(f"none of the {len(used)} pairs has texture to align (flat images): the alignment "
                           "cannot be estimated, any result could not be trusted",
                           details=[f"flat: {', '.join(self.skipped[:8])}" + (" ..." if len(used) > 8 else "")],
                           hint="register from pairs that show a scene with edges (not a lens cap or a blank "
                                "wall), or give point pairs with --points")
        keep = [i for i, f in enumerate(flat) if not f]
        self.names = [all_names[used[i]] for i in keep]
        self.grey_a, self.grey_b = grey_a[keep], grey_b[keep]

    def _start(self, model: str, initial: Alignment | None) -> np.ndarray:
        if initial is None:
            return initial_matrix(model, self.size_a, self.size_b)
        if initial.size_a != self.size_a or initial.size_b != self.size_b:
            raise P2PError("the initial alignment is for other image sizes",
                           hint=f"it maps {initial.size_a} onto {initial.size_b}; the pairs are {self.size_a} "
                                f"and {self.size_b}")
        if overlap_fraction(initial.matrix, self.size_a, self.size_b) < MIN_OVERLAP:
            raise P2PError("the images do not overlap under the initial alignment: it puts a's image (almost) "
                           "outside b's", hint="check the initial alignment (or the point pairs it came from)")
        return initial.matrix


def _best_start(pairs: _Pairs, levels: list[Level], g0: np.ndarray, model: str, pixel_ratio: float,
                frame_a: np.ndarray, scale_range: float, shift: float) -> tuple[np.ndarray, int]:
    """The start found by the coarse search, fitted through the coarse levels, and the next level's index."""
    few = slice(0, _SEARCH_PAIRS)
    with torch.no_grad():
        coarse = make_level(pairs.grey_a[few], pairs.grey_b[few], pairs.size_a, pairs.size_b,
                            torch.tensor(frame_a, device=pairs.device), pairs.density,
                            _SEARCH_SIDE / max(pairs.size_a), sigma=1.0)
    starts = _search(Scorer(coarse, pairs.size_b), g0, model, scale_range, shift, _STARTS)
    first = min(len(levels) - 1, 2)  # each start fitted through the coarse levels, the best goes on
    fitted = [_fit(levels[:first], start, model, pairs.size_b, pixel_ratio, staged=True, total=len(levels))
              for start in starts]
    with torch.no_grad():
        scores = Scorer(levels[first], pairs.size_b)(torch.tensor(np.stack(fitted), device=pairs.device))[0]
    return fitted[int(scores.mean(dim=1).argmax())], first


def estimate_alignment(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], *, model: str = "homography",
                       names: Sequence[str] | None = None, initial: Alignment | None = None, max_pairs: int = 32,
                       max_side: int = 640, search: bool = True, search_scale: float = 2.0,
                       search_shift: float = 0.5, min_correlation: float = 0.1, stability: bool = True,
                       device: str | torch.device | None = None) -> Alignment:
    """The `model` transform mapping a's pixel grid onto b's, from pairs (a, b) of one camera rig: a and b
    C x H x W float tensors (any channels, any value range), every a of one size and every b of one size.
    `pairs` may be a lazy sequence (``len`` and indexing): only the pairs used are read, one at a time.

    Starts from `initial` or from a's corners on b's corners, searches scales within `search_scale` times
    and shifts within `search_shift` (a quarter of b's longer side at 0.5) at a coarse level, then refines
    coarse to fine up to `max_side` pixels across a. At most `max_pairs` pairs, evenly spread, are used;
    pairs without texture are skipped (their `names` listed as ``skipped``).

    The residual: ``correlation`` (mean over pairs at the estimate, 1 for identical edge maps, about 0 for
    unrelated ones), ``correlation_start`` (at the start), ``per_pair``, ``worst_pair`` and
    ``stability_px``, the root mean square distance between where a's corners land under estimates from
    two halves of the pairs (in b's pixels; absent for a single pair).

    Raises a P2PError when no pair has texture, when the estimate correlates less than `min_correlation`
    (it cannot be trusted) and when the images do not overlap.
    """
    model = check_model(model)
    used = _Pairs(pairs, names, model=model, max_pairs=max_pairs, max_side=max_side, initial=initial,
                  device=device)
    size_a, size_b, device = used.size_a, used.size_b, used.device
    frame_a, frame_b = frame(size_a), frame(size_b)
    g0 = frame_b @ used.start @ np.linalg.inv(frame_a)
    g0 = g0 / g0[2, 2]
    pixel_ratio = frame_b[0, 0] / frame_a[0, 0]
    with torch.no_grad():
        levels = pyramid(used.grey_a, used.grey_b, size_a, size_b, torch.tensor(frame_a, device=device),
                         used.density, max_side=max_side, min_side=_MIN_SIDE, sigma=1.0)
    g, first = g0, 0
    if search and initial is None:
        g, first = _best_start(used, levels, g0, model, pixel_ratio, frame_a, search_scale, search_shift)
    g = _fit(levels, g, model, size_b, pixel_ratio, staged=initial is None, first=first)

    def to_pixels(g: np.ndarray) -> np.ndarray:
        return np.linalg.inv(frame_b) @ g @ frame_a

    with torch.no_grad():
        corr, overlap = Scorer(levels[-1], size_b)(torch.tensor(np.stack([g0, g]), device=device))
    per_pair = corr[1].tolist()
    if float(overlap[1]) < MIN_OVERLAP:
        raise P2PError(f"the images do not overlap: the best estimate puts only {float(overlap[1]):.0%} of a's "
                       "image inside b's", hint="the two cameras must see a common part of the scene; if they "
                       "do, give point pairs with --points (or an initial alignment)")
    alignment = Alignment(to_pixels(g), size_a, size_b, model)
    alignment.common_box()  # a P2PError when the common field of view is empty
    mean = float(np.mean(per_pair))
    if mean < min_correlation:
        raise P2PError(f"the estimate cannot be trusted: the pairs' edges correlate only {mean:.3f} at the "
                       f"best alignment found (below {min_correlation})",
                       details=[f"pair {n}: {c:.3f}" for n, c in list(zip(used.names, per_pair, strict=True))[:8]],
                       hint="the pairs show too little common structure (flat, noisy or unrelated images); use "
                            "pairs with clear edges, or give point pairs with --points")
    stable = None
    if stability and len(used.names) >= 2:
        halves = [_fit([level.subset(torch.arange(i, len(used.names), 2, device=device)) for level in levels], g,
                       model, size_b, pixel_ratio, staged=False, first=max(0, len(levels) - 2)) for i in (0, 1)]
        one, two = (Alignment(to_pixels(h), size_a, size_b, model) for h in halves)
        stable = round(float(np.sqrt(np.mean(one.corner_distances(two) ** 2))), 3)
    worst = int(np.argmin(per_pair))
    residual = {"method": "ecc-gradient", "pairs": len(used.names), "correlation": round(mean, 4),
                "correlation_start": round(float(corr[0].mean()), 4),
                "per_pair": [round(c, 4) for c in per_pair], "worst_pair": used.names[worst],
                "worst_correlation": round(per_pair[worst], 4), "stability_px": stable, "skipped": used.skipped}
    return Alignment(alignment.matrix, size_a, size_b, model, residual)
