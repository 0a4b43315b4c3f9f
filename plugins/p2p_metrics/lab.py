"""sRGB to CIE L*a*b* in torch, so colour statistics are computed on the device: sRGB is linearised,
mapped to XYZ under the D65 illuminant (2 degree observer) and then to Lab with the CIE 1976 formulas."""

from __future__ import annotations

import torch

# Linear sRGB -> XYZ, D65 (IEC 61966-2-1 primaries).
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
              (0.212671, 0.715160, 0.072169),
              (0.019334, 0.119193, 0.950227))
D65_WHITE = (0.95047, 1.0, 1.08883)
DELTA = 6 / 29  # CIE: below DELTA ** 3 the cube root is replaced by a line meeting it with the same slope


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve of values in [0, 1]."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).pow(2.4))


def linear_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W linear RGB to XYZ (Python-number coefficients: no host-to-device copy per batch)."""
    r, g, b = rgb.unbind(1)
    return torch.stack([cr * r + cg * g + cb * b for cr, cg, cb in RGB_TO_XYZ], dim=1)


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W XYZ to L in [0, 100], a and b (roughly -128 .. 127 for sRGB colours)."""
    fx, fy, fz = (_f(t / white) for t, white in zip(xyz.unbind(1), D65_WHITE, strict=True))
    return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=1)


def _f(t: torch.Tensor) -> torch.Tensor:
    """CIE's cube root with its linear part near black."""
    return torch.where(t > DELTA ** 3, t.clamp_min(DELTA ** 3).pow(1 / 3), t / (3 * DELTA ** 2) + 4 / 29)


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W sRGB images in [-1, 1] to CIE Lab (float32 at least), values outside [-1, 1] clipped."""
    dtype = torch.promote_types(images.dtype, torch.float32)
    rgb = ((images.to(dtype) + 1) / 2).clamp(0, 1)
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(rgb)))
