"""Sample grids: one row per image, columns input | output | target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from p2pcore.atomicfile import write_atomically
from p2pcore.imageio import write_image


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Show any channel count as RGB: gray is repeated, two channels get a zero third, extras dropped."""
    c = images.shape[1]
    if c == 1:
        return images.expand(-1, 3, -1, -1)
    if c == 2:
        return torch.cat([images, torch.full_like(images[:, :1], -1.0)], dim=1)
    return images[:, :3]


def save_grid(columns: Sequence[torch.Tensor], path: Path, pad: int = 2) -> None:
    """Write N x C x H x W tensors in [-1, 1] side by side, one row per batch item (atomically: a failed
    write leaves no partial grid)."""
    cols = [to_rgb(c.detach().float().cpu()) for c in columns]
    n, _, h, w = cols[0].shape
    grid = torch.ones(3, n * (h + pad) + pad, len(cols) * (w + pad) + pad)
    for j, col in enumerate(cols):
        for i in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y:y + h, x:x + w] = col[i, :, :h, :w]
    write_atomically(path, lambda written: write_image(grid, written), what="the sample grid")
