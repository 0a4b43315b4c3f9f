"""Test-time sizes: the size a generator sees, and the way back to each input's own size.

Models are mostly trained on downscaled images, so the reference implementations resize at test time
as training did: to a square `load_size` (pix2pix tests at load_size = crop_size) or to a width,
`scale_width`, the aspect kept (pix2pixHD tests at 1024 wide). The model size's sides are multiples of
the generator's size multiple, so nothing is padded: an asked side must be one, a side derived from the
aspect is rounded to the nearest. The output goes back to the input's size unless the model's is kept.

Images are resampled bicubic (antialiased when shrinking, clamped to [-1, 1]); label maps (image keys
the dataset adapter declares beyond ``a`` and ``b``, such as pix2pixHD's ``label`` ids) nearest, so ids
stay ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from p2pcore.errors import P2PError

FILTERS = "bicubic for images, nearest for label maps"


@dataclass(frozen=True)
class Sizing:
    """What a generator of size multiple `multiple` is given: a square `load_size`, a width `scale_width`
    (aspect kept), or the input's own size (both None); `keep_model_size` leaves outputs at that size."""

    load_size: int | None = None
    scale_width: int | None = None
    keep_model_size: bool = False
    multiple: int = 1

    @classmethod
    def checked(cls, *, load_size: int | None, scale_width: int | None, keep_model_size: bool = False,
                multiple: int = 1, keys: tuple[str, str] = ("--load-size", "--scale-width")) -> Sizing:
        """Validate sizes asked for (`keys` name them: options or recipe keys) against the generator."""
        if load_size is not None and scale_width is not None:
            raise P2PError(f"{keys[0]} and {keys[1]} are two ways to size the input: give one",
                           key=keys[0], hint=f"{keys[0]} N resizes to N x N, {keys[1]} W keeps the aspect")
        for key, side in zip(keys, (load_size, scale_width), strict=True):
            if side is None:
                continue
            if side <= 0 or side % multiple:
                valid = max(multiple, round(side / multiple) * multiple)
                raise P2PError(f"{key} {side} is not a positive multiple of {multiple}, the generator's size "
                               "multiple", key=key, hint=f"use a multiple of {multiple}, e.g. {key} {valid}")
        return cls(load_size, scale_width, keep_model_size, multiple)

    @property
    def resizes(self) -> bool:
        return self.load_size is not None or self.scale_width is not None

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the generator is given for an input of `height` x `width`."""
        if self.load_size is not None:
            return self.load_size, self.load_size
        if self.scale_width is not None:
            side = round(height * self.scale_width / width / self.multiple) * self.multiple
            return max(self.multiple, side), self.scale_width
        return height, width

    def describe(self) -> str:
        """The rule in words, for a command's summary."""
        if not self.resizes:
            return "each image at its own size"
        model = (f"{self.load_size} x {self.load_size}" if self.load_size is not None
                 else f"{self.scale_width} wide, aspect kept")
        back = "outputs kept at that size" if self.keep_model_size else "outputs resized back to each input's size"
        return f"model size {model}, {back} ({FILTERS})"


def resize(image: torch.Tensor, size: tuple[int, int], *, nearest: bool) -> torch.Tensor:
    """C x H x W or N x C x H x W to `size` (height, width): nearest (label maps), else bicubic clamped to
    [-1, 1] and antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batch = image if image.dim() == 4 else image.unsqueeze(0)
    if nearest:
        out = F.interpolate(batch.float(), size=size, mode="nearest-exact").to(batch.dtype)
    else:
        out = F.interpolate(batch.float(), size=size, mode="bicubic", align_corners=False,
                            antialias=True).clamp_(-1.0, 1.0)
    return out if image.dim() == 4 else out[0]


def label_keys(adapter: Any) -> frozenset[str]:
    """The image keys of an adapter that hold label maps: those it declares beyond ``a`` and ``b`` in its
    optional `channels` mapping (pix2pixHD's ``label`` and instance ids)."""
    declared = getattr(adapter, "channels", None)
    return frozenset(key for key in declared if key not in ("a", "b")) if isinstance(declared, Mapping) \
        else frozenset()
