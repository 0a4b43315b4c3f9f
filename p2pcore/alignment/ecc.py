"""The score and its optimiser: the enhanced correlation coefficient (ECC, a zero-mean normalised
cross-correlation) between a's features and b's features sampled where a transform puts a's pixels, and
Gauss-Newton steps on the model's parameters that raise its mean over the pairs.

Maximising the mean correlation is minimising the summed squared distance between each pair's centred,
unit-norm feature vectors (2 - 2 rho per pair); that least-squares problem is solved by Gauss-Newton with an
adaptive damping (Levenberg-Marquardt), from the features' spatial derivatives sampled with ``grid_sample``
and the analytic derivative of the projective map. Every pixel of every pair enters each step at once.

Transforms act in the centred frames of :func:`~p2pcore.alignment.geometry.frame` (a's to b's), where all
parameters have a like scale. All models are linear in their parameters: G = base + D p.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from p2pcore.alignment.features import Level, gradients
from p2pcore.alignment.geometry import Size

MIN_OVERLAP = 0.15  # the least fraction of a's image that must fall inside b's


def _basis(model: str, pixel_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(base, D): G.flatten() = base + D @ p for the model's parameters p (D is 9 x n)."""
    base = np.zeros(9)
    base[8] = 1.0
    if model == "translation":  # the pixel scale is kept: b's pixels per a pixel stay 1
        base[0] = base[4] = pixel_ratio
        cells = [[(2, 1.0)], [(5, 1.0)]]
    elif model == "similarity":
        cells = [[(0, 1.0), (4, 1.0)], [(1, -1.0), (3, 1.0)], [(2, 1.0)], [(5, 1.0)]]
    else:
        cells = [[(i, 1.0)] for i in range(6 if model == "affine" else 8)]
    d = np.zeros((9, len(cells)))
    for column, entries in enumerate(cells):
        for index, value in entries:
            d[index, column] = value
    return base, d


def to_params(model: str, g: np.ndarray, pixel_ratio: float) -> np.ndarray:
    """The model's parameters nearest to the transform `g` (least squares over its entries)."""
    base, d = _basis(model, pixel_ratio)
    return np.linalg.lstsq(d, (g / g[2, 2]).flatten() - base, rcond=None)[0]


def to_matrix(model: str, p: np.ndarray, pixel_ratio: float) -> np.ndarray:
    """The transform (3 x 3, in the centred frames) of the model's parameters `p`."""
    base, d = _basis(model, pixel_ratio)
    return (base + d @ p).reshape(3, 3)


class Scorer:
    """Correlations of the pairs at one pyramid level under transforms of a's centred frame into b's."""

    def __init__(self, level: Level, size_b: Size) -> None:
        self.level = level
        device = level.feats_a.device
        width, height = size_b
        half = max(width, height) / 2
        # b's centred frame -> grid_sample's [-1, 1] coordinates -> the level's pixels
        self.to_grid = torch.tensor([half / (width / 2), half / (height / 2)], dtype=torch.float64, device=device)
        self.pixels = torch.tensor([level.size_b[0] / 2, level.size_b[1] / 2], dtype=torch.float64, device=device)
        self.channels = level.feats_a.shape[1]
        self._maps: torch.Tensor | None = None

    def _place(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For transforms g (K x 3 x 3): a's pixels in b's centred frame (K x P x 2), their projective
        depth (K x P), grid coordinates (K x P x 2, float32) and soft weights (K x P: 1 inside b, 0 outside;
        what bilinear sampling of an all-ones b with zero padding gives)."""
        mapped = torch.einsum("pj,kij->kpi", self.level.points_a, g)
        depth = mapped[..., 2]
        valid = depth > 1e-6
        depth = torch.where(valid, depth, torch.ones_like(depth))
        xy = mapped[..., :2] / depth[..., None]
        uv = xy * self.to_grid
        weight = ((1 - uv.abs()) * self.pixels + 0.5).clamp(0, 1).prod(dim=-1) * valid
        uv = torch.where(valid[..., None], uv, torch.full_like(uv, -3.0))
        return xy, depth, uv.float(), weight.float()

    def _sample(self, maps: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
        """maps (N x C x h x w) at uv (K x P x 2): N x C x K x P."""
        return F.grid_sample(maps, uv[None].expand(len(maps), -1, -1, -1), mode="bilinear",
                             padding_mode="zeros", align_corners=False)

    def __call__(self, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(correlations K x N, overlaps K: the fraction of a's pixels inside b) for transforms g (K x 3 x 3)."""
        _, _, uv, weight = self._place(g)
        feats_a = self.level.feats_a[:, :, None]  # N x C x 1 x P
        sampled = self._sample(self.level.feats_b, uv)
        weight = weight[None, None]
        total = weight.sum(dim=-1, keepdim=True).clamp_min(1e-6)
        da = feats_a - (feats_a * weight).sum(-1, keepdim=True) / total
        db = sampled - (sampled * weight).sum(-1, keepdim=True) / total
        cov = (weight * da * db).sum(dim=(1, 3))
        var_a = (weight * da * da).sum(dim=(1, 3))
        var_b = (weight * db * db).sum(dim=(1, 3))
        return (cov / (var_a * var_b + 1e-12).sqrt()).T, weight[0, 0].mean(dim=-1)

    def mean(self, g: np.ndarray) -> tuple[float, float]:
        """(mean correlation over the pairs, overlap) for one transform."""
        correlation, overlap = self(torch.tensor(g[None], device=self.level.feats_a.device))
        return float(correlation.mean()), float(overlap[0])

    @staticmethod
    def _unit(x: torch.Tensor, weight: torch.Tensor, total: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair's features (N x C x P) centred and scaled to unit weighted norm, and the norms (N)."""
        x = x - (x * weight).sum(-1, keepdim=True) / total
        length = (weight * x * x).sum(dim=(1, 2)).sqrt() + 1e-12
        return x / length[:, None, None], length

    def system(self, g: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Gauss-Newton normal equations (H, gradient) at `g` for parameters of Jacobian `d` (9 x n).

        Per pair, the residual is r = a - b (both centred and of unit weighted norm) and the Jacobian of b is
        (J - m - b s^T) / |b|: J the derivative of the sampled values, m its weighted mean, s = <b, J>. The
        sums over pixels are taken as matrix products with the P x n derivatives of the map, so no
        N x C x P x n tensor is ever formed.
        """
        if self._maps is None:  # b's features and their derivatives, sampled together
            fx, fy = gradients(self.level.feats_b)
            self._maps = torch.cat([self.level.feats_b, fx, fy], dim=1)
        device = self.level.feats_a.device
        xy, depth, uv, weight = (t[0] for t in self._place(torch.tensor(g[None], device=device)))
        q = self.level.points_a / depth[:, None]  # P x 3: d(x, y)/d(the rows of g)
        d_t = torch.tensor(d, device=device)
        dx = torch.cat([q, torch.zeros_like(q), -xy[:, :1] * q], dim=1) @ d_t  # P x n
        dy = torch.cat([torch.zeros_like(q), q, -xy[:, 1:] * q], dim=1) @ d_t
        sampled = self._sample(self._maps, uv[None])[:, :, 0].double()  # N x 3C x P
        c = self.channels
        scale = self.pixels * self.to_grid
        value, grad_x, grad_y = sampled[:, :c], sampled[:, c:2 * c] * scale[0], sampled[:, 2 * c:] * scale[1]
        weight = weight.double()
        total = weight.sum().clamp_min(1e-6)
        a, _ = self._unit(self.level.feats_a.double(), weight, total)
        b, norm = self._unit(value, weight, total)
        inverse = (1 / norm)[:, None, None]
        wx, wy = weight * grad_x * inverse, weight * grad_y * inverse  # N x C x P
        gx, gy = grad_x * inverse, grad_y * inverse
        sxx, sxy, syy = (wx * gx).sum((0, 1)), (wx * gy).sum((0, 1)), (wy * gy).sum((0, 1))  # P
        cross = dx.T @ (sxy[:, None] * dy)
        hessian = dx.T @ (sxx[:, None] * dx) + cross + cross.T + dy.T @ (syy[:, None] * dy)
        mean = (wx @ dx + wy @ dy) / total  # N x C x n
        along = ((wx * b) @ dx + (wy * b) @ dy).sum(1)  # N x n
        hessian -= total * torch.einsum("nci,ncj->ij", mean, mean) + along.T @ along
        residual = a - b
        correlation = (weight * a * b).sum((1, 2))
        gradient = ((wx * residual) @ dx + (wy * residual) @ dy).sum(1) - along * (correlation - 1)[:, None]
        return hessian.cpu().numpy(), gradient.sum(0).cpu().numpy()


def optimise(scorer: Scorer, g: np.ndarray, model: str, pixel_ratio: float, *, iterations: int,
             tolerance: float) -> np.ndarray:
    """Damped Gauss-Newton on the model's parameters from `g`, each step kept only if the mean correlation
    rises with a's image still on b's; stops when a step moves a's corners less than `tolerance` (in b's
    centred frame) or after `iterations` steps."""
    base, d = _basis(model, pixel_ratio)
    params = to_params(model, g, pixel_ratio)
    current = to_matrix(model, params, pixel_ratio)
    score, _ = scorer.mean(current)
    damping = 1e-3
    corners = np.array([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0]])
    for _ in range(iterations):
        hessian, gradient = scorer.system(current, d)
        moved = False
        for _ in range(8):
            damped = hessian + damping * np.diag(np.diag(hessian).clip(min=1e-12))
            try:
                step = np.linalg.solve(damped, gradient)
            except np.linalg.LinAlgError:
                damping *= 10
                continue
            trial = to_matrix(model, params + step, pixel_ratio)
            trial_score, overlap = scorer.mean(trial)
            if np.isfinite(trial_score) and trial_score >= score and overlap >= MIN_OVERLAP:
                before, after = corners @ current.T, corners @ trial.T
                shift = np.abs(before[:, :2] / before[:, 2:] - after[:, :2] / after[:, 2:]).max()
                params, current, score = params + step, trial, trial_score
                damping = max(damping / 4, 1e-6)
                moved = True
                break
            damping *= 8
        if not moved or shift < tolerance:
            break
    return current
