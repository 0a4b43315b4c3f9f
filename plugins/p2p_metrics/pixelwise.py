"""Metrics from per-pixel differences of output and target: mean absolute error and PSNR."""

from __future__ import annotations

import torch

from p2p_metrics.comparison import paired_images
from p2p_metrics.split_mean import SplitMean
from p2pcore.api import Comparison


class MeanAbsoluteError(SplitMean):
    """Mean |output - target| over every value of the split, in the images' [-1, 1] units."""

    name = "l1"

    def update(self, batch: Comparison) -> None:
        output, target = paired_images(self.name, batch)
        self.add((output.double() - target.double()).abs().sum(), output.numel())


def per_image_psnr(output: torch.Tensor, target: torch.Tensor, floor_mse: float) -> torch.Tensor:
    """PSNR in dB of each image pair, images in [-1, 1] mapped to [0, 1] (data range 1)."""
    diff = (output.double() - target.double()) / 2  # the map x -> (x + 1) / 2 halves differences
    mse = diff.square().flatten(1).mean(1).clamp_min(floor_mse)
    return -10 * torch.log10(mse)


class PeakSignalToNoise(SplitMean):
    """Mean over the split's images of each image's PSNR against its target."""

    name = "psnr"

    def __init__(self, floor_mse: float) -> None:
        self.floor_mse = floor_mse
        super().__init__()

    def update(self, batch: Comparison) -> None:
        output, target = paired_images(self.name, batch)
        self.add(per_image_psnr(output, target, self.floor_mse).sum(), output.shape[0])
