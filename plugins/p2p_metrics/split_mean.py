"""The accumulator of metrics that are a mean over the split (L1, PSNR, SSIM): a float64 sum kept as a
tensor on the batch's device, so `update` never waits for it, and a count known from batch shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcore.api import Metric, P2PError

if TYPE_CHECKING:  # pragma: no cover
    import torch


class SplitMean(Metric):
    """Subclasses set `name` and call `add(sum, count)` from `update`; `compute` gives sum / count."""

    name: str

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, total: torch.Tensor, count: int) -> None:
        """Add a batch's float64 sum (summed in float64: a float32 sum loses digits) over `count` items."""
        self.total = total if self.total is None else self.total + total
        self.count += count

    def compute(self) -> dict[str, float]:
        if self.total is None:
            raise P2PError(f"the metric {self.name!r} saw no images", hint="the evaluation split is empty")
        return {"": float(self.total) / self.count}
