"""Stored values to [-1, 1] under a :class:`Normalization` rule, and channel counts matched
(alpha dropped, grey repeated, RGB to luma). torch is imported inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from p2pcore.errors import P2PError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True)
class Normalization:
    """How stored values map to [-1, 1].

    * ``full_range``: the full range of the sample type (0..255, 0..65535; int32 samples use
      0..65535; float samples are taken to lie in [0, 1]).
    * ``fixed``: ``min`` maps to -1 and ``max`` to 1, in stored units; values outside are clipped.
    * ``percentile``: per image, the ``low`` and ``high`` percentiles (over all its channels)
      map to -1 and 1; values outside are clipped. A constant image maps to 0.
    """

    mode: Literal["full_range", "fixed", "percentile"] = "full_range"
    min: float | None = None
    max: float | None = None
    low: float = 1.0
    high: float = 99.0

    def __post_init__(self) -> None:
        if self.mode == "fixed" and (self.min is None or self.max is None or self.max <= self.min):
            raise ValueError("fixed normalisation needs min < max")
        if self.mode == "percentile" and not 0 <= self.low < self.high <= 100:
            raise ValueError("percentile normalisation needs 0 <= low < high <= 100")


FULL_RANGE = Normalization()


_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's "L" conversion


def match_channels(image: torch.Tensor, channels: int, path: str = "") -> torch.Tensor:
    """Give a C x H x W image `channels` channels.

    Equal counts pass through; alpha is dropped (2 -> 1, 4 -> 3); grey is repeated to 3
    channels; RGB becomes luma for 1 channel (rounded back to the stored integer type).
    Anything else raises :class:`P2PError`.
    """
    import torch

    have = image.shape[0]
    if have == channels:
        return image
    if have in (2, 4) and channels in (have - 1, 1, 3):
        image, have = image[: have - 1], have - 1
        if have == channels:
            return image
    if have == 1 and channels == 3:
        return image.expand(3, -1, -1).contiguous()
    if have == 3 and channels == 1:
        weights = torch.tensor(_LUMA, dtype=torch.float32).view(3, 1, 1)
        luma = (image.to(torch.float32) * weights).sum(0, keepdim=True)
        if image.dtype.is_floating_point:
            return luma
        return luma.round_().clamp_(0, full_scale(image.dtype)).to(image.dtype)
    raise P2PError(f"image has {have} channels, expected {channels}", file=path or None,
                   hint="set the side's `channels` in the recipe to match the files")


def full_scale(dtype: Any) -> float:
    """The stored value that stands for full scale under ``full_range`` normalisation."""
    import torch

    if dtype == torch.uint8:
        return 255.0
    if dtype in (torch.uint16, torch.int32, torch.int16):
        return 65535.0
    return 1.0


def to_unit(image: torch.Tensor, normalization: Normalization | None = None) -> torch.Tensor:
    """Map stored values to float32 in [-1, 1] (see :class:`Normalization`)."""
    import torch

    rule = normalization or FULL_RANGE
    x = image.to(torch.float32)
    if rule.mode == "full_range":
        scale = full_scale(image.dtype)
        x = x.mul_(2.0 / scale).sub_(1.0)
        return x.clamp_(-1.0, 1.0) if image.dtype != torch.uint8 and image.dtype != torch.uint16 else x
    if rule.mode == "fixed":
        lo, hi = float(rule.min), float(rule.max)  # type: ignore[arg-type]
    else:
        flat = x.reshape(-1)
        if flat.numel() > 1 << 22:  # quantile is exact enough on a regular subsample
            flat = flat[:: flat.numel() // (1 << 22) + 1]
        q = torch.quantile(flat, torch.tensor([rule.low / 100, rule.high / 100]))
        lo, hi = float(q[0]), float(q[1])
        if hi <= lo:
            return torch.zeros_like(x)
    return x.sub_(lo).mul_(2.0 / (hi - lo)).sub_(1.0).clamp_(-1.0, 1.0)
