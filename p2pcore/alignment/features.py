"""What the image-based estimate compares: the images' gradient structure, which a thermal and a colour
camera share (edges of objects) while their intensities do not, over a pyramid of scales.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from p2pcore.alignment.geometry import Size
from p2pcore.errors import P2PError


def grey(image: torch.Tensor, which: str, name: str) -> torch.Tensor:
    """One channel (the mean of the channels) of a C x H x W image, as float32, 1 x H x W."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise P2PError(f"pair {name}: expected image {which} as a C x H x W tensor, got {shape}",
                       hint="pass (a, b) tensors as read by p2pcore.api.read_image")
    return image.float().mean(dim=0, keepdim=True)


def _gaussian(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    return kernel / kernel.sum()


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur of N x 1 x H x W images, edges mirrored."""
    kernel = _gaussian(sigma, images.device)
    pad = len(kernel) // 2
    if min(images.shape[-2:]) <= pad:
        return images
    out = F.conv2d(F.pad(images, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1))


def gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (x, y) of N x 1 x H x W images, edges mirrored."""
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return gx, gy


def structure(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """The gradient magnitude of the images smoothed by `sigma` pixels, each image scaled to unit
    contrast, square-root compressed so that a few strong edges (hot objects) do not outweigh the rest."""
    flat = images.flatten(1)
    spread = flat.std(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    gx, gy = gradients(blur((images - flat.mean(dim=1).view(-1, 1, 1, 1)) / spread, sigma))
    return (gx * gx + gy * gy + 1e-6).sqrt().sqrt()


def resize(images: torch.Tensor, size: Size) -> torch.Tensor:
    """N x C x H x W images resized to (width, height), antialiased when shrinking."""
    width, height = size
    if images.shape[-1] == width and images.shape[-2] == height:
        return images
    return F.interpolate(images, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def texture(images: torch.Tensor) -> torch.Tensor:
    """Each image's contrast (standard deviation of its values at about 64 pixels across): 0 for a flat one."""
    height, width = images.shape[-2:]
    factor = min(1.0, 64 / max(height, width))
    small = resize(images, (max(2, round(width * factor)), max(2, round(height * factor))))
    return small.flatten(1).std(dim=1)


@dataclass
class Level:
    """One scale of the pyramid: the features of a (N x C x P, P = a's pixels at this scale, flattened),
    their positions in a's centred frame (P x 3, homogeneous, float64), and the features of b (N x C x h x w)."""

    feats_a: torch.Tensor
    points_a: torch.Tensor
    feats_b: torch.Tensor
    size_a: Size
    size_b: Size

    def subset(self, index: torch.Tensor) -> Level:
        return Level(self.feats_a[index], self.points_a, self.feats_b[index], self.size_a, self.size_b)


def finest_factor(size_a: Size, density: float, max_side: int) -> float:
    """a's resolution factor at the finest level: a and b at about the coarser camera's pixel size (`density`
    is b's pixels per a pixel), and a at most `max_side` pixels across."""
    return min(1.0, density, max_side / max(size_a))


def level_sizes(size_a: Size, size_b: Size, density: float, factor: float) -> tuple[Size, Size]:
    """The sizes of a and b at `factor` times a's resolution, b resampled to about a's pixel size."""
    (wa, ha), (wb, hb) = size_a, size_b
    return ((max(4, round(wa * factor)), max(4, round(ha * factor))),
            (max(4, round(wb * factor / density)), max(4, round(hb * factor / density))))


def make_level(grey_a: torch.Tensor, grey_b: torch.Tensor, size_a: Size, size_b: Size, frame_a: torch.Tensor,
               density: float, factor: float, sigma: float) -> Level:
    """The features at `factor` times a's resolution (and b's, resampled to about the same pixel size:
    `density` is b's pixels per a pixel)."""
    (wa, ha) = size_a
    level_a, level_b = level_sizes(size_a, size_b, density, factor)
    feats_a = structure(resize(grey_a, level_a), sigma)
    feats_b = structure(resize(grey_b, level_b), sigma)
    xs = (torch.arange(level_a[0], dtype=torch.float64, device=grey_a.device) + 0.5) * (wa / level_a[0])
    ys = (torch.arange(level_a[1], dtype=torch.float64, device=grey_a.device) + 0.5) * (ha / level_a[1])
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    pixels = torch.stack([grid_x.flatten(), grid_y.flatten(), torch.ones_like(grid_x.flatten())], dim=1)
    return Level(feats_a.flatten(2), pixels @ frame_a.T, feats_b, level_a, level_b)


def pyramid(grey_a: torch.Tensor, grey_b: torch.Tensor, size_a: Size, size_b: Size, frame_a: torch.Tensor,
            density: float, *, max_side: int, min_side: int, sigma: float) -> list[Level]:
    """The levels, coarsest first. `density` is b's pixels per a pixel at the start: a and b are resampled to
    about the same pixel size (the coarser camera's, or `max_side` across a at the finest level), halving
    the resolution per level while a stays `min_side` pixels across or more."""
    longest = max(size_a)
    factor = finest_factor(size_a, density, max_side)
    levels = [make_level(grey_a, grey_b, size_a, size_b, frame_a, density, factor, sigma)]
    while longest * factor / 2 >= min_side:
        factor /= 2
        levels.append(make_level(grey_a, grey_b, size_a, size_b, frame_a, density, factor, sigma))
    return levels[::-1]
