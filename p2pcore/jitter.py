"""Joint random jitter: one call resizes, crops and mirrors every image of an item the same way.

Offered to dataset adapters, built-in and third-party alike, through :mod:`p2pcore.api`
(`make_jitter`, `jitter`, `prepare_image`, `finish_image`), which imports this module, and torch, only
when one of them is first used.

Images travel as ``tv_tensors.Image`` (resampled with the recipe's interpolation) and label maps
as ``tv_tensors.Mask`` (always nearest), through a ``torchvision.transforms.v2`` pipeline built
once per dataset. 8-bit images stay ``uint8`` through resizing (torchvision's fast path) and are
scaled to [-1, 1] afterwards; other images are scaled first and resized as floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from p2pcore.api.data import Preprocess
from p2pcore.imageio import Normalization, to_unit

_INTERPOLATION = {"bicubic": v2.InterpolationMode.BICUBIC, "bilinear": v2.InterpolationMode.BILINEAR}


def _common_size(flat_inputs: list[Any]) -> tuple[int, int]:
    sizes = {tuple(F.get_size(x)) for x in flat_inputs if isinstance(x, tv_tensors.Image | tv_tensors.Mask)}
    if len(sizes) != 1:
        raise ValueError(f"images of one item differ in size: {sorted(sizes)}")
    return sizes.pop()  # type: ignore[return-value]


class ScaleWidth(v2.Transform):
    """Resize so the width becomes `width`, keeping the aspect ratio; both sides are then raised
    (still keeping the aspect ratio) until they reach `min_side`."""

    def __init__(self, width: int, min_side: int = 1, interpolation: Any = v2.InterpolationMode.BICUBIC):
        super().__init__()
        self.width = width
        self.min_side = min_side
        self.interpolation = interpolation

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _common_size(flat_inputs)
        factor = max(self.width / w, self.min_side / h)
        return {"size": [max(self.min_side, round(h * factor)), max(self.min_side, round(w * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], interpolation=self.interpolation,
                                 antialias=True)


class AtLeast(v2.Transform):
    """Enlarge (keeping the aspect ratio) only images smaller than `side` on some side."""

    def __init__(self, side: int, interpolation: Any = v2.InterpolationMode.BICUBIC):
        super().__init__()
        self.side = side
        self.interpolation = interpolation

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = _common_size(flat_inputs)
        factor = max(1.0, self.side / h, self.side / w)
        return {"size": None if factor == 1.0 else [max(self.side, round(h * factor)),
                                                    max(self.side, round(w * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if params["size"] is None:
            return inpt
        return self._call_kernel(F.resize, inpt, params["size"], interpolation=self.interpolation,
                                 antialias=True)


def make_jitter(preprocess: str, *, load_size: int, crop_size: int, flip: bool, train: bool,
                interpolation: str = "bicubic", test_crop: bool = False) -> v2.Compose | None:
    """The pipeline a recipe's preprocessing asks for (`preprocess` is one of :data:`p2pcore.api.Preprocess`);
    crops are random and images mirrored at random (with `flip`) only when `train`. None: nothing to do.

    Without `train` (test splits: evaluation, sample grids) the whole image is kept, as the reference test
    does: ``resize_and_crop`` resizes to crop_size x crop_size (load_size = crop_size), ``scale_width_and_crop``
    scales the width to load_size as training does, ``crop`` keeps the native size; `test_crop` crops them
    (centred) as training does instead."""
    mode, load, crop = preprocess, load_size, crop_size
    if mode not in get_args(Preprocess):
        raise ValueError(f"preprocess must be one of {', '.join(get_args(Preprocess))}, got {mode!r}")
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {interpolation!r}")
    interp = _INTERPOLATION[interpolation]
    cropped = mode in ("resize_and_crop", "scale_width_and_crop", "crop") and (train or test_crop)
    steps: list[v2.Transform] = []
    if mode == "resize_and_crop":
        side = load if cropped else crop
        steps.append(v2.Resize([side, side], interpolation=interp, antialias=True))
    elif mode in ("scale_width", "scale_width_and_crop"):
        steps.append(ScaleWidth(load, crop if cropped else 1, interp))
    elif mode == "crop":
        steps.append(AtLeast(crop, interp))
    if cropped:
        steps.append(v2.RandomCrop(crop) if train else v2.CenterCrop(crop))
    if train and flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps) if steps else None


def prepare_image(raw: torch.Tensor, rule: Normalization) -> torch.Tensor:
    """Before jitter, a decoded image (``load_image``): 8-bit full-range images stay uint8 (fast resizing),
    others become [-1, 1] by `rule`."""
    if raw.dtype == torch.uint8 and rule.mode == "full_range":
        return raw
    return to_unit(raw, rule)


def finish_image(image: torch.Tensor) -> torch.Tensor:
    """After jitter: float32 in [-1, 1], what a batch item holds."""
    if image.dtype == torch.uint8:
        return image.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
    return image.clamp_(-1.0, 1.0)


def jitter(transform: v2.Compose | None, images: Sequence[torch.Tensor],
           masks: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
    """Apply one pipeline (`make_jitter`) to all images and masks of an item together: the same crop and the
    same flip, so pairs stay aligned; masks (label maps) are resampled nearest."""
    if transform is None:
        return [*images, *masks]
    wrapped = [tv_tensors.Image(x) for x in images] + [tv_tensors.Mask(m) for m in masks]
    out = transform(*wrapped)
    if len(wrapped) == 1:
        out = (out,)
    return [o.as_subclass(torch.Tensor) for o in out]
