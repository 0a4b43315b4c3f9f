"""Translating an image as overlapping tiles, so memory is bounded by the tile size, not the image's.

The image is padded to the generator's size multiple as an untiled pass pads it, and cut into
SIZE x SIZE tiles whose starts are multiples of that multiple: a stride-2 network then samples every
tile on the same grid as the whole image, so away from tile borders a fully convolutional generator
gives what it gives untiled. Tiles step by the largest multiple that keeps at least `overlap` pixels
shared by neighbours; the last row and column are aligned to the padded image's edge. Each tile's
output is weighted by a window rising as a raised cosine over the shared pixels at its inner sides
(flat at the image's edges); the weights are divided by their sum, so a constant image stays constant
and no seam steps. Windows and their sums are separable, so no full-size weight map is ever built.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from p2pcore.errors import P2PError

Forward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Tiling:
    """SIZE x SIZE tiles sharing at least `overlap` pixels, for a generator of size multiple `multiple`."""

    size: int
    overlap: int
    multiple: int

    @classmethod
    def checked(cls, size: int, overlap: int | None, multiple: int) -> Tiling:
        """Validate the user's --tile/--overlap against the generator; overlap defaults to SIZE/8."""
        if size <= 0 or size % multiple:
            valid = max(multiple, round(size / multiple) * multiple)
            raise P2PError(f"--tile {size} is not a positive multiple of {multiple}, the generator's size multiple",
                           key="--tile", hint=f"use a multiple of {multiple}, e.g. --tile {valid}")
        overlap = size // 8 if overlap is None else overlap
        if not 0 <= overlap < size / 2:
            raise P2PError(f"--overlap {overlap} must be at least 0 and less than half the tile ({size / 2:g})",
                           key="--overlap", hint=f"e.g. --overlap {size // 8}")
        if size - overlap < multiple:
            raise P2PError(f"--tile {size} leaves no room for an overlap: tiles start at multiples of {multiple}, "
                           "the generator's size multiple", key="--tile",
                           hint=f"use --tile {2 * multiple} or more, or --overlap 0")
        return cls(size, overlap, multiple)

    @staticmethod
    def needs_tile(size: int | None, overlap: int | None) -> None:
        """Refuse --overlap without --tile: checkable before the generator (and its size multiple) is opened."""
        if size is None and overlap is not None:
            raise P2PError("--overlap needs --tile", key="--overlap", hint="add --tile SIZE, e.g. --tile 512")

    @classmethod
    def asked(cls, size: int | None, overlap: int | None, multiple: int) -> Tiling | None:
        """The tiling a command's --tile and --overlap ask for (None without --tile): translate's and eval's."""
        cls.needs_tile(size, overlap)
        return None if size is None else cls.checked(size, overlap, multiple)

    def describe(self) -> str:
        """The tiling in words, for a summary."""
        return f"{self.size} px tiles sharing at least {self.overlap} px"

    @property
    def step(self) -> int:
        """Distance between tile starts: the largest multiple of `multiple` keeping `overlap` shared."""
        return (self.size - self.overlap) // self.multiple * self.multiple

    @property
    def ramp(self) -> int:
        """Length of the blending ramp at a tile's inner sides: the pixels neighbours share."""
        return min(self.size - self.step, self.size // 2)

    def fits(self, height: int, width: int) -> bool:
        """Whether one tile holds the whole (padded) image, so tiling would change nothing."""
        return round_up(height, self.multiple) <= self.size and round_up(width, self.multiple) <= self.size


def round_up(length: int, multiple: int) -> int:
    """`length` rounded up to a multiple of `multiple` (a generator's size multiple)."""
    return -(-length // multiple) * multiple


def tile_starts(length: int, size: int, step: int) -> list[int]:
    """Tile starts along a side of `length` (already a multiple of the generator's): 0, step, 2 step, ...
    and the last tile ending at the edge; 1 + ceil((length - size) / step) tiles, or one if it fits."""
    if length <= size:
        return [0]
    count = 1 + math.ceil((length - size) / step)
    return [i * step for i in range(count - 1)] + [length - size]


def _window(length: int, starts: list[int], size: int, ramp: int) -> list[torch.Tensor]:
    """Per tile along one side, its weights divided by the sum of all tiles' weights at each pixel."""
    span = min(size, length)
    rise = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp, dtype=torch.float64) + 0.5) / ramp) if ramp else None
    windows, total = [], torch.zeros(length, dtype=torch.float64)
    for start in starts:
        w = torch.ones(span, dtype=torch.float64)
        if rise is not None and start > 0:
            w[:ramp] = rise
        if rise is not None and start + span < length:
            w[span - ramp:] = w[span - ramp:] * rise.flip(0)
        total[start:start + span] += w
        windows.append(w)
    return [(w / total[s:s + span]).float() for w, s in zip(windows, starts, strict=True)]


def _pad(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad C x H x W at the bottom and right as the untiled pass does (reflection where it can)."""
    pad_h, pad_w = height - image.shape[-2], width - image.shape[-1]
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < image.shape[-2] and pad_w < image.shape[-1] else "replicate"
    return F.pad(image.unsqueeze(0), (0, pad_w, 0, pad_h), mode=mode)[0]


def translate_tiled(image: torch.Tensor, forward: Forward, tiling: Tiling,
                    per_forward: Callable[[], int]) -> torch.Tensor:
    """Translate C x H x W through `forward` (N x C x h x w -> N x C' x h x w) tile by tile, `per_forward()`
    tiles at a time (asked before each pass), and blend the tiles into C' x H x W on the device `forward`
    gives its results on."""
    height, width = image.shape[-2:]
    padded_h, padded_w = round_up(height, tiling.multiple), round_up(width, tiling.multiple)
    padded = _pad(image, padded_h, padded_w)
    span_h, span_w = min(tiling.size, padded_h), min(tiling.size, padded_w)
    rows, cols = (tile_starts(padded_h, tiling.size, tiling.step), tile_starts(padded_w, tiling.size, tiling.step))
    row_w = _window(padded_h, rows, tiling.size, tiling.ramp)
    col_w = _window(padded_w, cols, tiling.size, tiling.ramp)
    tiles = [(i, j) for i in range(len(rows)) for j in range(len(cols))]
    out: torch.Tensor | None = None
    done = 0
    while done < len(tiles):
        group = tiles[done:done + max(1, per_forward())]
        batch = torch.stack([padded[:, rows[i]:rows[i] + span_h, cols[j]:cols[j] + span_w] for i, j in group])
        result = forward(batch).float()
        if out is None:
            out = torch.zeros(result.shape[1], padded_h, padded_w, device=result.device)
            row_w, col_w = [w.to(result.device) for w in row_w], [w.to(result.device) for w in col_w]
        for (i, j), tile in zip(group, result, strict=True):
            out[:, rows[i]:rows[i] + span_h, cols[j]:cols[j] + span_w] += tile * (row_w[i][:, None] * col_w[j][None, :])
        done += len(group)
    return out[:, :height, :width]
