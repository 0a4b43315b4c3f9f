"""pix2pix's colourfulness measure (Isola et al. 2017, section 4.3): how well the distribution of colours
of all outputs matches that of all real images. Per channel of CIE Lab, histograms over the whole split
are normalised to sum 1 and compared by intersection, sum(min(p, q)): 1 for identical distributions,
0 for disjoint ones.

Counts are added on the device with `index_add_` (no `bincount`, which asks the device for its maximum)."""

from __future__ import annotations

import torch

from p2p_metrics.comparison import unpaired_images
from p2p_metrics.lab import rgb_to_lab
from p2pcore.api import Comparison, Metric, P2PError

CHANNELS = ("L", "a", "b")
RANGES = ((0.0, 100.0), (-128.0, 127.0), (-128.0, 127.0))  # fixed edges: histograms of any split compare


def lab_bin_indices(lab: torch.Tensor, bins: int) -> torch.Tensor:
    """Flat indices channel * bins + bin of every value of N x 3 x H x W Lab images; values outside a
    channel's range count in its first or last bin."""
    index = [((channel - low) * (bins / (high - low))).floor().clamp(0, bins - 1) + i * bins
             for i, (channel, (low, high)) in enumerate(zip(lab.unbind(1), RANGES, strict=True))]
    return torch.stack(index, dim=1).long().flatten()


def intersection(counts: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Per channel, sum(min(p, q)) of two 3 x bins count tables normalised to sum 1."""
    p = counts / counts.sum(1, keepdim=True)
    q = other / other.sum(1, keepdim=True)
    return torch.minimum(p, q).sum(1)


class LabHistogramIntersection(Metric):
    """Histogram intersection of the Lab channels of the split's outputs and real images."""

    def __init__(self, bins: int) -> None:
        self.bins = bins
        self.reset()

    def reset(self) -> None:
        self.outputs: torch.Tensor | None = None
        self.reals: torch.Tensor | None = None

    def _count(self, table: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor:
        if table is None:
            table = torch.zeros(3 * self.bins, dtype=torch.float64, device=images.device)
        index = lab_bin_indices(rgb_to_lab(images), self.bins)
        return table.index_add_(0, index, torch.ones(index.shape, dtype=table.dtype, device=table.device))

    def update(self, batch: Comparison) -> None:
        output, real = unpaired_images("lab_histogram_intersection", batch)
        if output.shape[1] != 3:
            raise P2PError(f"the metric 'lab_histogram_intersection' compares colours, but direction "
                           f"{batch.direction!r} gives {output.shape[1]}-channel images",
                           hint="the metric needs colour (3-channel RGB) images; remove it for this task")
        self.outputs = self._count(self.outputs, output)
        self.reals = self._count(self.reals, real)

    def compute(self) -> dict[str, float]:
        if self.outputs is None or self.reals is None:
            raise P2PError("the metric 'lab_histogram_intersection' saw no images",
                           hint="the evaluation split is empty")
        per_channel = intersection(self.outputs.view(3, self.bins), self.reals.view(3, self.bins)).tolist()
        return {"": sum(per_channel) / 3, **dict(zip(CHANNELS, per_channel, strict=True))}
