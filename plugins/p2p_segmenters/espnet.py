"""ESPNet (Mehta et al., ECCV 2018): a light segmenter built from efficient spatial pyramid (ESP) modules.

An ESP module reduces its input with a convolution to n channels, runs K = 5 parallel 3x3 convolutions
dilated 1, 2, 4, 8 and 16 on the reduction, adds the dilated outputs hierarchically (each sum includes the
less dilated ones, which removes gridding artefacts), concatenates them and normalises. The dilation-1
branch gets the channels left over when the output width is not a multiple of 5.

Encoder (ESPNet-C with input reinforcement; p = alpha_2 = 2, q = alpha_3 = 8):
  level 1 (1/2): 3x3 stride-2 conv 3 -> 16, concatenated with the image average-pooled to 1/2 (19);
  level 2 (1/4): a strided ESP module to 64, p residual ESP modules, concatenated with the strided module's
  output and the image pooled to 1/4 (131);
  level 3 (1/8): a strided ESP module to 128, q residual ESP modules, concatenated with the strided
  module's output (256); a 1x1 conv gives the class scores at 1/8.
Decoder: the 1/8 scores are upsampled (2x2 transposed conv) and joined with a 1x1 projection of the level-2
features; an ESP module fuses the two and they are upsampled to 1/2, joined with the 16 channels of the first
conv by a 3x3 conv, and a last transposed conv gives the scores at full resolution. Every activation is a PReLU, every
batch norm has eps 1e-3, convolutions have no bias.

The attribute names mirror the published state_dict (``encoder.level2.0.d4.conv.weight``), so its weights
load without renaming. Sides that are not multiples of 8 are padded (edge pixels repeated) and cropped back.

The published Cityscapes weights expect BGR 0..255 values standardised with the training set's per-channel
mean and deviation and then divided by 255 (as the authors' loader does); :class:`ESPNetSegmenter` does that.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import load_weights, read_weights

EPS = 1e-3
DILATIONS = (1, 2, 4, 8, 16)
BGR_MEAN = (72.39, 82.91, 73.16)     # Cityscapes statistics of the published weights, on 0..255 BGR values
BGR_STD = (45.32, 46.15, 44.91)
STRIDE = 8                          # three stride-2 stages


class Conv(nn.Module):
    """A bias-free convolution keeping the size (stride 1) or halving it (stride 2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2 * dilation,
                              dilation=dilation, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class NormAct(nn.Module):
    """Batch norm then PReLU (the paper's BR)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, eps=EPS)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class ConvNormAct(nn.Module):
    """Convolution, batch norm, PReLU (the paper's CBR)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=EPS)
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SpatialPyramid(nn.Module):
    """Reduce (`c1`), five dilated branches, hierarchical sums, concatenation. Subclasses normalise."""

    def __init__(self, c_in: int, c_out: int, *, reduce_kernel: int, stride: int) -> None:
        super().__init__()
        n = c_out // len(DILATIONS)
        first = c_out - n * (len(DILATIONS) - 1)
        self.c1 = Conv(c_in, n, reduce_kernel, stride)
        self.d1 = Conv(n, first, 3, dilation=1)
        self.d2 = Conv(n, n, 3, dilation=2)
        self.d4 = Conv(n, n, 3, dilation=4)
        self.d8 = Conv(n, n, 3, dilation=8)
        self.d16 = Conv(n, n, 3, dilation=16)

    def pyramid(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.c1(x)
        parts = [self.d1(reduced)]
        total = None
        for branch in (self.d2, self.d4, self.d8, self.d16):
            y = branch(reduced)
            total = y if total is None else total + y
            parts.append(total)
        return torch.cat(parts, 1)


class StridedESP(SpatialPyramid):
    """ESP module halving the size: a 3x3 stride-2 reduction, no residual."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(c_in, c_out, reduce_kernel=3, stride=2)
        self.bn = nn.BatchNorm2d(c_out, eps=EPS)
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pyramid(x)))


class ESP(SpatialPyramid):
    """ESP module with a 1x1 reduction, residual when input and output widths agree."""

    def __init__(self, c_in: int, c_out: int, *, residual: bool = True) -> None:
        super().__init__(c_in, c_out, reduce_kernel=1, stride=1)
        self.residual = residual
        self.bn = NormAct(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pyramid(x)
        return self.bn(x + y if self.residual else y)


def pool_half(x: torch.Tensor, times: int) -> torch.Tensor:
    """The input reinforcement: the image average-pooled (3x3, stride 2) `times` times."""
    for _ in range(times):
        x = F.avg_pool2d(x, 3, stride=2, padding=1)
    return x


class Encoder(nn.Module):
    """ESPNet-C: returns the level-1 conv's output, the level-2 features and the 1/8 class scores."""

    def __init__(self, classes: int, p: int, q: int) -> None:
        super().__init__()
        self.level1 = ConvNormAct(3, 16, 3, stride=2)
        self.b1 = NormAct(16 + 3)
        self.level2_0 = StridedESP(16 + 3, 64)
        self.level2 = nn.ModuleList(ESP(64, 64) for _ in range(p))
        self.b2 = NormAct(64 + 64 + 3)
        self.level3_0 = StridedESP(64 + 64 + 3, 128)
        self.level3 = nn.ModuleList(ESP(128, 128) for _ in range(q))
        self.b3 = NormAct(256)
        self.classifier = Conv(256, classes, 1)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f1 = self.level1(image)
        down2 = self.level2_0(self.b1(torch.cat([f1, pool_half(image, 1)], 1)))
        x = down2
        for module in self.level2:
            x = module(x)
        f2 = self.b2(torch.cat([x, down2, pool_half(image, 2)], 1))
        down3 = self.level3_0(f2)
        x = down3
        for module in self.level3:
            x = module(x)
        f3 = self.b3(torch.cat([down3, x], 1))
        return f1, f2, self.classifier(f3)


def up2(channels: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(channels, channels, 2, stride=2, bias=False)


class ESPNet(nn.Module):
    """ESPNet with its decoder: preprocessed image -> class scores at the (padded) input resolution."""

    def __init__(self, classes: int = 20, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.encoder = Encoder(classes, p, q)
        self.level3_C = Conv(64 + 64 + 3, classes, 1)
        self.br = nn.BatchNorm2d(classes, eps=EPS)
        self.conv = ConvNormAct(16 + classes, classes, 3)
        self.up_l3 = nn.Sequential(up2(classes))
        self.combine_l2_l3 = nn.Sequential(NormAct(2 * classes), ESP(2 * classes, classes, residual=False))
        self.up_l2 = nn.Sequential(up2(classes), NormAct(classes))
        self.classifier = up2(classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f1, f2, coarse = self.encoder(image)
        quarter = torch.cat([self.level3_C(f2), self.up_l3(self.br(coarse))], 1)
        half = self.up_l2(self.combine_l2_l3(quarter))
        return self.classifier(self.conv(torch.cat([half, f1], 1)))


class ESPNetSegmenter(nn.Module):
    """The `segmenter` contract around ESPNet: RGB in [-1, 1] in, scores of the named classes out.

    Images are resized (bilinear) to `size` before segmentation, when given, and the scores back to the
    input's size: the weights were trained on 2:1 Cityscapes frames and fail on the 1:1 squeezed 256x256
    pix2pix photos. The network's outputs beyond `classes` are dropped: the published Cityscapes weights have
    a 20th "other" output trained on unlabelled pixels, which the FCN-score never predicts since every scored
    pixel belongs to one of the 19 classes."""

    def __init__(self, net: ESPNet, classes: tuple[str, ...], palette: tuple[tuple[int, int, int], ...], *,
                 size: tuple[int, int] | None = None, ignore_index: int = -1) -> None:
        super().__init__()
        self.net = net
        self.classes = classes
        self.palette = palette
        self.size = size
        self.ignore_index = ignore_index
        self.register_buffer("mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(BGR_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> ESPNetSegmenter:
        return super().train(False)  # a fixed measure: batch norms always on their running statistics

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """RGB [-1, 1] -> the weights' input: BGR 0..255, standardised per channel, then divided by 255."""
        bgr = (images.flip(1) + 1) * 127.5
        return (bgr - self.mean.to(bgr.dtype)) / self.std.to(bgr.dtype) / 255

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = tuple(images.shape[-2:])
        x = self.preprocess(images)
        if self.size is not None and size != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        scores = self.net(x)[:, :len(self.classes), :height, :width]
        if scores.shape[-2:] != size:
            scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
        return scores


WEIGHTS_HINT = ("give the path of the ESPNet Cityscapes weights (p = 2, q = 8; a .pth state_dict such as "
                "espnet_p_2_q_8.pth from the ESPNet authors' pretrained/decoder folder); p2p never downloads "
                "weights")


def load_espnet(path: Path, *, key: str, p: int = 2, q: int = 8) -> ESPNet:
    """ESPNet with the weights of `path`, frozen; every key and shape must match (no partial loads)."""
    state = read_weights(path, what="ESPNet", key=key, hint=WEIGHTS_HINT)
    net = ESPNet(classes=20, p=p, q=q)
    load_weights(net, state, what=f"ESPNet (p = {p}, q = {q})", file=str(path), key=key, hint=WEIGHTS_HINT,
                 optional=("num_batches_tracked",), refuse_extra=True)
    return net.requires_grad_(False).eval()
