"""`cityscapes_labels`: photo -> label map, with colour-coded labels decoded to Cityscapes train IDs.

The label half of each file is colour-coded (and, in the pix2pix files, JPEG-compressed), so each
pixel takes the train ID of the nearest palette colour. With `ignore_colors`, the colours of the
classes Cityscapes does not train on are in the palette too and give 255 (ignore).

On the network side, a label map is one channel: train ID k (0..18) is the level
``-1 + 2k/19`` and ignore (255) is 1, twenty evenly spaced levels in [-1, 1]; :func:`decode_labels`
rounds a network output back to IDs. Items also carry ``"label"``: the H x W int64 ID map, for
metrics.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from p2pcore.api import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, CITYSCAPES_VOID_COLOURS, P2PError

from .aligned import SideBySide, halves
from .imagefiles import load_image, write_image, write_suffixes
from .params import CityscapesLabelsParams

IGNORE = 255
NUM_CLASSES = len(CITYSCAPES_CLASSES)
TRAIN_COLORS = CITYSCAPES_COLOURS
OTHER_COLORS = CITYSCAPES_VOID_COLOURS  # map to IGNORE
_LEVELS = NUM_CLASSES  # IDs 0..18 and ignore: 20 levels, 19 steps across [-1, 1]


@functools.cache
def _palette(ignore_colors: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    colors = TRAIN_COLORS + (OTHER_COLORS if ignore_colors else ())
    palette = torch.tensor(colors, dtype=torch.float32)
    ids = torch.tensor(list(range(NUM_CLASSES)) + [IGNORE] * (len(colors) - NUM_CLASSES), dtype=torch.uint8)
    return palette.T.contiguous(), (palette * palette).sum(1), ids


_CELL = 8                                   # the colour cube in cells of 8 x 8 x 8 values
_CELL_REACH = 3.5 * 3 ** 0.5                # farthest a colour in a cell lies from the cell's centre


@functools.cache
def _cells(ignore_colors: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per cell: the ID of the colour nearest its centre, and whether every colour of the cell has
    that same nearest colour (true when the two nearest palette colours are more than twice the
    cell's reach apart in distance from the centre)."""
    palette_t, norms, ids = _palette(ignore_colors)
    steps = torch.arange(256 // _CELL, dtype=torch.float32) * _CELL + (_CELL - 1) / 2
    centres = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    distance = ((centres * centres).sum(1, keepdim=True) + norms - 2 * centres @ palette_t).clamp(min=0).sqrt()
    nearest = distance.topk(2, dim=1, largest=False)
    settled = nearest.values[:, 1] - nearest.values[:, 0] > 2 * _CELL_REACH
    return ids[nearest.indices[:, 0]], settled


def colors_to_ids(rgb: torch.Tensor, *, ignore_colors: bool = True) -> torch.Tensor:
    """A 3 x H x W colour-coded label image (0..255) to an H x W uint8 train-ID map (255 = ignore):
    each pixel takes the ID of the nearest palette colour (Euclidean distance in RGB).

    A lookup over cells of the colour cube settles most pixels; those in cells near a boundary
    between two palette colours are measured exactly.
    """
    if rgb.dtype != torch.uint8:
        rgb = rgb.to(torch.float32).round().clamp(0, 255).to(torch.uint8)
    cell_ids, settled = _cells(ignore_colors)
    side = 256 // _CELL
    q = rgb.reshape(3, -1).to(torch.int64) // _CELL
    cell = (q[0] * side + q[1]) * side + q[2]
    out = cell_ids[cell]
    open_ = ~settled[cell]
    if open_.any():
        palette_t, norms, ids = _palette(ignore_colors)
        pixels = rgb.reshape(3, -1)[:, open_].to(torch.float32).T
        distance = norms - 2 * (pixels @ palette_t)   # |x - p|^2 less |x|^2, which leaves the argmin unchanged
        out[open_] = ids[distance.argmin(1)]
    return out.reshape(rgb.shape[-2:])


def encode_labels(ids: torch.Tensor) -> torch.Tensor:
    """Train IDs (255 = ignore) to levels in [-1, 1], same shape, float32."""
    k = ids.to(torch.int64).clamp(max=NUM_CLASSES)
    k = torch.where(ids.to(torch.int64) == IGNORE, NUM_CLASSES, k)
    return k.to(torch.float32).mul_(2.0 / _LEVELS).sub_(1.0)


def decode_labels(levels: torch.Tensor) -> torch.Tensor:
    """Network outputs in [-1, 1] (any shape, usually N x 1 x H x W) to int64 train IDs (255 = ignore)."""
    k = ((levels.detach().to(torch.float32) + 1.0) * (_LEVELS / 2.0)).round_().clamp_(0, NUM_CLASSES).long()
    return torch.where(k == NUM_CLASSES, IGNORE, k)


def colorize(ids: torch.Tensor) -> torch.Tensor:
    """H x W train IDs to a 3 x H x W uint8 colour-coded label image (ignore is black)."""
    lut = torch.zeros(256, 3, dtype=torch.uint8)
    lut[:NUM_CLASSES] = torch.tensor(TRAIN_COLORS, dtype=torch.uint8)
    return lut[ids.to(torch.int64).clamp(0, 255)].permute(2, 0, 1).contiguous()


class CityscapesLabels(SideBySide):
    """Side-by-side photo|label files (as pix2pix's cityscapes): photo (3 ch) -> label map (1 ch)."""

    kind = "cityscapes_labels"
    a_channels = 3
    b_channels = 1
    num_classes = NUM_CLASSES
    ignore_index = IGNORE

    def __init__(self, params: CityscapesLabelsParams) -> None:
        super().__init__(params)

    def file_channels(self) -> int:
        return 3

    def labels_of(self, rgb: torch.Tensor) -> torch.Tensor:
        """Colour-coded labels (3 x H x W, 0..255) to a uint8 ID map H x W."""
        return colors_to_ids(rgb, ignore_colors=self.params.ignore_colors)

    decode = staticmethod(decode_labels)
    encode = staticmethod(encode_labels)
    colorize = staticmethod(colorize)

    def load(self, record: Path, transform: Any, train: bool) -> dict[str, Any]:
        from p2pcore.api import finish_image, jitter, prepare_image

        raw = load_image(record, 3)
        if raw.shape[-1] < 2:
            raise P2PError("the image is too narrow to hold two halves", file=str(record),
                           hint="cityscapes files hold the photo and the label map side by side")
        left, right = halves(raw)
        photo, coded = (left, right) if self.params.photo_side == "left" else (right, left)
        if coded.dtype != torch.uint8:
            coded = (coded.to(torch.float32) * (255.0 / 65535.0)).round_()
        ids = self.labels_of(coded)
        photo, ids = jitter(transform, [prepare_image(photo, self.rule)], [ids[None]])
        label = ids[0].to(torch.int64)
        return {"a": finish_image(photo), "b": encode_labels(label)[None], "label": label}

    def output_suffixes(self, key: str) -> tuple[str, ...]:
        """Label maps (b) only in lossless 8-bit formats: JPEG or WebP would blur the IDs and colours."""
        if key == "a":
            return super().output_suffixes(key)
        return tuple(s for s in write_suffixes(8) if s not in (".jpg", ".jpeg", ".webp"))

    def write_output(self, image: torch.Tensor, path: str | Path, side: str = "b") -> None:
        """Write the decoded label map: colour-coded RGB, or 8-bit train IDs (`write_as`); photos as they are."""
        if side == "a":
            return super().write_output(image, path, side)
        ids = decode_labels(image)[0] if image.dim() == 3 else decode_labels(image)
        if self.params.write_as == "color":
            out = colorize(ids).to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
        else:
            out = ids[None].to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
        write_image(out, path, bits=8)
