"""Frechet distance between Gaussian fits of the features of two image sets (Heusel et al. 2017):

    d^2 = |mu_1 - mu_2|^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2))

Feature sums and sums of outer products are accumulated in float64 on the device, so the split is seen
once and `update` never syncs. The trace of the matrix square root is computed as the sum of square roots
of the eigenvalues of the symmetric S_1^(1/2) S_2 S_1^(1/2), which has the same eigenvalues as S_1 S_2 but
is positive semi-definite: no complex parts, and singular covariances (fewer images than features) are
fine."""

from __future__ import annotations

import math

import torch
from torch import nn

from p2p_metrics.comparison import unpaired_images
from p2p_metrics.features import FeatureNetwork
from p2pcore.api import Comparison, Metric


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix (rounding's negative eigenvalues as 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Squared Frechet distance between N(mu1, cov1) and N(mu2, cov2), in float64."""
    mu1, cov1, mu2, cov2 = (t.double() for t in (mu1, cov1, mu2, cov2))
    root = psd_sqrt(cov1)
    middle = root @ cov2 @ root
    middle = (middle + middle.T) / 2
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt)


class FeatureMoments:
    """Count, sum and sum of outer products of feature vectors, float64 on their device."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.outer: torch.Tensor | None = None

    def add(self, features: torch.Tensor) -> None:
        f = features.double()
        if self.sum is None or self.outer is None:
            self.sum = f.sum(0)
            self.outer = f.T @ f
        else:
            self.sum += f.sum(0)
            self.outer.addmm_(f.T, f)
        self.count += f.shape[0]

    def gaussian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (unbiased) covariance, on the CPU."""
        assert self.sum is not None and self.outer is not None
        mean = self.sum.cpu() / self.count
        cov = (self.outer.cpu() - self.count * torch.outer(mean, mean)) / (self.count - 1)
        return mean, cov


class FrechetDistance(nn.Module, Metric):
    """Frechet distance between the features of the split's outputs and of its real images."""

    def __init__(self, network: FeatureNetwork) -> None:
        super().__init__()
        self.network = network
        self.reset()

    def train(self, mode: bool = True) -> FrechetDistance:
        return super().train(False)

    def reset(self) -> None:
        self.outputs = FeatureMoments()
        self.reals = FeatureMoments()

    @torch.no_grad()
    def update(self, batch: Comparison) -> None:
        output, real = unpaired_images("frechet_distance", batch)
        with torch.autocast(output.device.type, enabled=False):  # float32 features whatever the run's precision
            self.outputs.add(self.network(output))
            self.reals.add(self.network(real))

    def compute(self) -> dict[str, float]:
        """The distance; NaN (undefined, logged as n/a) while either set has fewer than 2 images: a rehearsal
        on one batch must not fail a run whose whole split is large enough."""
        if min(self.outputs.count, self.reals.count) < 2:
            return {"": math.nan}
        return {"": frechet_distance(*self.outputs.gaussian(), *self.reals.gaussian())}
