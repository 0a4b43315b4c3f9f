"""SSIM and MS-SSIM through torchmetrics' functional SSIM: gaussian window (sigma 1.5, 11 taps), images
mapped from [-1, 1] to [0, 1] (data range 1), one value per image averaged over the split.

SSIM is averaged over the positions where the window lies inside the image, leaving out a 5-pixel border,
as in Wang et al. (2004) and scikit-image (torchmetrics' mean also covers the border, filtered over
reflected pixels: up to 3e-3 apart on road scenes).

MS-SSIM (Wang et al. 2003) is torchmetrics' `multiscale_structural_similarity_index_measure` with
``normalize="relu"`` (a test holds them equal): over five scales halved by 2 x 2 average pooling, the
contrast-structure terms of the first four and the SSIM of the last, with exponents 0.0448, 0.2856, 0.3001,
0.2363, 0.1333; negative terms count as zero, so an untrained generator gives 0 rather than NaN. The scales
are combined here because that function copies its exponents to the device on every call, which would
make each evaluation batch wait for the device. Its size rule is kept: sides of at least 16 * 11 = 176
pixels, checked first so that smaller images are a user error that says so.

The windows are computed in float32: variances as E[x^2] - E[x]^2 then carry errors of about 1e-4 of SSIM
(identical images score 0.99996 rather than 1), well below the digits reported; float64 would cost ten
times as much on a CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from p2p_metrics.comparison import paired_images
from p2p_metrics.split_mean import SplitMean
from p2pcore.api import Comparison, P2PError

SIGMA = 1.5
KERNEL_SIZE = 11  # the gaussian window torchmetrics derives from sigma 1.5
MARGIN = KERNEL_SIZE // 2  # border where the window reaches outside the image
BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SCALES = len(BETAS)
MS_SSIM_MIN_SIDE = (SCALES - 1) ** 2 * KERNEL_SIZE  # torchmetrics: side // (scales - 1) ** 2 > kernel - 1


STRIP_VALUES = 1 << 22  # values of one strip of rows (batch x channels x rows x width): bounds the memory


def _ssim_map(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SSIM at every position where the window lies inside these images: N x C x (H - 10) x (W - 10)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _, full = structural_similarity_index_measure(preds, target, sigma=SIGMA, kernel_size=KERNEL_SIZE,
                                                  data_range=1.0, reduction="none", return_full_image=True)
    return full[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


def ssim(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM of images in [0, 1], averaged where the window lies inside the image (as Wang et al.
    and scikit-image do: torchmetrics' own mean includes the reflect-padded border).

    Large images are scored in strips of rows, each with the window's reach above and below: a position
    inside the image sees only real pixels, so the strips' values are the whole image's, in bounded memory."""
    batch, channels, height, width = preds.shape
    rows = max(1, STRIP_VALUES // (batch * channels * width) - 2 * MARGIN)
    total = torch.zeros(batch, dtype=torch.float64, device=preds.device)
    for top in range(MARGIN, height - MARGIN, rows):  # positions top .. bottom - 1 of the interior
        bottom = min(top + rows, height - MARGIN)
        strip = slice(top - MARGIN, bottom + MARGIN)
        total += _ssim_map(preds[..., strip, :], target[..., strip, :]).double().flatten(1).sum(1)
    return (total / (channels * (height - 2 * MARGIN) * (width - 2 * MARGIN))).to(preds.dtype)


def multiscale_ssim(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image MS-SSIM of images in [0, 1], sides at least MS_SSIM_MIN_SIDE: torchmetrics' definition."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    value = torch.ones(preds.shape[0], dtype=preds.dtype, device=preds.device)
    for scale, beta in enumerate(BETAS):
        if scale:
            preds, target = F.avg_pool2d(preds, 2), F.avg_pool2d(target, 2)
        similarity, contrast = structural_similarity_index_measure(
            preds, target, sigma=SIGMA, kernel_size=KERNEL_SIZE, data_range=1.0, reduction="none",
            return_contrast_sensitivity=True)
        value = value * (similarity if scale == SCALES - 1 else contrast).clamp_min(0) ** beta
    return value


class StructuralSimilarity(SplitMean):
    """Mean over the split's images of SSIM (or MS-SSIM) of output against target."""

    def __init__(self, *, multiscale: bool, key: str) -> None:
        self.multiscale = multiscale
        self.name = "ms_ssim" if multiscale else "ssim"
        self.key = key
        super().__init__()

    def _check_size(self, batch: Comparison, images: torch.Tensor) -> None:
        height, width = images.shape[-2:]
        if self.multiscale and min(height, width) < MS_SSIM_MIN_SIDE:
            raise P2PError(f"the metric 'ms_ssim' needs images at least {MS_SSIM_MIN_SIDE} pixels on each side "
                           f"(5 scales of an 11-pixel window), but direction {batch.direction!r} gives "
                           f"{height} x {width}", key=self.key,
                           hint="evaluate larger images, or use 'ssim'")
        if min(height, width) < KERNEL_SIZE:
            raise P2PError(f"the metric 'ssim' needs images at least {KERNEL_SIZE} pixels on each side, but "
                           f"direction {batch.direction!r} gives {height} x {width}", key=self.key)

    def update(self, batch: Comparison) -> None:
        output, target = paired_images(self.name, batch)
        self._check_size(batch, output)
        preds, truth = (output.float() + 1) / 2, (target.float() + 1) / 2
        with torch.autocast(output.device.type, enabled=False):  # the same figure whatever the run's precision
            values = multiscale_ssim(preds, truth) if self.multiscale else ssim(preds, truth)
        self.add(values.double().sum(), output.shape[0])
