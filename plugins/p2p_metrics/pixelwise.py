"""Metrics from per-pixel differences of output and target: mean absolute error and PSNR.

Sums stay float64 tensors on the batch's device, so `update` never waits for it; counts are batch shapes
(known on the host)."""

from __future__ import annotations

import torch

from p2p_metrics.comparison import paired_images
from p2pcore.api import Comparison, Metric, P2PError


class MeanAbsoluteError(Metric):
    """Mean |output - target| over every value of the split, in the images' [-1, 1] units."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, batch: Comparison) -> None:
        output, target = paired_images("l1", batch)
        diff = (output.double() - target.double()).abs().sum()
        self.total = diff if self.total is None else self.total + diff
        self.count += output.numel()

    def compute(self) -> dict[str, float]:
        if self.total is None:
            raise P2PError("the metric 'l1' saw no images", hint="the evaluation split is empty")
        return {"": float(self.total) / self.count}


def per_image_psnr(output: torch.Tensor, target: torch.Tensor, floor_mse: float) -> torch.Tensor:
    """PSNR in dB of each image pair, images in [-1, 1] mapped to [0, 1] (data range 1)."""
    diff = (output.double() - target.double()) / 2  # the map x -> (x + 1) / 2 halves differences
    mse = diff.square().flatten(1).mean(1).clamp_min(floor_mse)
    return -10 * torch.log10(mse)


class PeakSignalToNoise(Metric):
    """Mean over the split's images of each image's PSNR against its target."""

    def __init__(self, floor_mse: float) -> None:
        self.floor_mse = floor_mse
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def update(self, batch: Comparison) -> None:
        output, target = paired_images("psnr", batch)
        psnr = per_image_psnr(output, target, self.floor_mse).sum()
        self.total = psnr if self.total is None else self.total + psnr
        self.count += output.shape[0]

    def compute(self) -> dict[str, float]:
        if self.total is None:
            raise P2PError("the metric 'psnr' saw no images", hint="the evaluation split is empty")
        return {"": float(self.total) / self.count}
