"""U-Net generator of pix2pix (Isola et al. 2017, section 3.2.1 and appendix 6.1.1).

Ck is Convolution-Norm-ReLU with k filters, CDk the same with Dropout(0.5) after the norm; convolutions
are 4x4 with stride 2. For depth 8 (256x256 inputs, 1x1 bottleneck):

    encoder  C64-C128-C256-C512-C512-C512-C512-C512       (LeakyReLU 0.2, no norm on C64)
    decoder  CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128 (channels after concatenating the skip)

then a convolution to the output channels and Tanh. As in the public pix2pix code the innermost encoder
layer has no norm (with batch size 1 a batch norm would zero the 1x1 code), the innermost decoder layer
has one, dropout sits on the (depth - 5) ngf*8 decoder layers next to the innermost, and every
convolution keeps its bias only where the norm asks for it, except the last one, which always has one.

Level i of the network (0 = outermost) is `down[i]` and its mirror `up[i]`: `up[i]` reads the
concatenation [down[i] output, up[i + 1] output] and restores the resolution of `down[i]`'s input.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from p2p_generators.taps import Stage, TapChain, identity
from p2pcore.api import Tap


def level_channels(ngf: int, depth: int) -> list[int]:
    """Filters after each encoder layer: ngf, 2ngf, 4ngf, then 8ngf for the rest (C64-C128-C256-C512...)."""
    return [ngf * min(2 ** i, 8) for i in range(depth)]


def down_block(in_channels: int, out_channels: int, norm, *, outermost: bool,
               with_norm: bool) -> nn.Sequential:
    """LeakyReLU(0.2) - Conv 4x4 stride 2 - Norm; the outermost layer reads the image directly."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if not outermost:
        layers["act"] = nn.LeakyReLU(0.2)
    layers["conv"] = nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=norm.conv_bias)
    if with_norm:
        layers["norm"] = norm(out_channels)
    return nn.Sequential(layers)


def up_block(in_channels: int, out_channels: int, norm, *, outermost: bool, dropout: float,
             upsample: str) -> nn.Sequential:
    """ReLU - 2x upsampling convolution - Norm - Dropout; the outermost ends in Tanh instead of a norm."""
    bias = True if outermost else norm.conv_bias
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["act"] = nn.ReLU()
    if upsample == "transposed":
        layers["conv"] = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)
    elif upsample == "resize_conv":
        layers["resize"] = nn.Upsample(scale_factor=2, mode="nearest")
        layers["conv"] = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=bias)
    else:
        raise ValueError(f"unknown upsample {upsample!r}; use 'transposed' or 'resize_conv'")
    if outermost:
        layers["tanh"] = nn.Tanh()
    else:
        layers["norm"] = norm(out_channels)
        if dropout > 0:
            layers["dropout"] = nn.Dropout(dropout)
    return nn.Sequential(layers)


def has_dropout(level: int, depth: int) -> bool:
    """The (depth - 5) ngf*8 levels next to the innermost: levels 4 .. depth - 2 (CD512 x 3 at depth 8)."""
    return 4 <= level < depth - 1


def encoder_stages(net: nn.Module, in_channels: int, ngf: int) -> list[tuple[Tap, Stage]]:
    """input, then down1 .. down<depth>: the encoder layers' outputs (the last one the bottleneck)."""
    channels = level_channels(ngf, len(net.down))
    return [(Tap("input", in_channels), identity),
            *((Tap(f"down{i + 1}", channels[i], 2 ** (i + 1)), down) for i, down in enumerate(net.down))]


class MirroredLevels(TapChain, nn.Module):
    """What the U-Net and the encoder-decoder share: `depth` levels, each a down block (`down[i]`) and its
    mirror (`up[i]`), inputs whose sides are multiples of 2**depth, and the encoder's outputs as taps."""

    down: nn.ModuleList
    up: nn.ModuleList

    def __init__(self, in_channels: int, ngf: int, depth: int, *, what: str) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"{what} needs depth >= 1")
        self.depth = depth
        self.size_multiple = 2 ** depth
        self.in_channels, self.ngf = in_channels, ngf

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks whose activations `train.activation_checkpointing` recomputes in the backward pass."""
        return [*self.down, *self.up]

    def tap_stages(self) -> list[tuple[Tap, Stage]]:
        return encoder_stages(self, self.in_channels, self.ngf)


class UNetGenerator(MirroredLevels):
    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 8, ngf: int = 64, norm,
                 dropout: float = 0.5, upsample: str = "transposed") -> None:
        super().__init__(in_channels, ngf, depth, what="a U-Net")
        channels = level_channels(ngf, depth)
        innermost = depth - 1

        self.down = nn.ModuleList(
            down_block(in_channels if i == 0 else channels[i - 1], channels[i], norm,
                       outermost=i == 0, with_norm=0 < i < innermost)
            for i in range(depth))
        # up[i] reads the innermost code alone at the bottom, else [skip, upsampled]: twice the filters
        self.up = nn.ModuleList(
            up_block(channels[i] if i == innermost else 2 * channels[i],
                     out_channels if i == 0 else channels[i - 1], norm,
                     outermost=i == 0, dropout=dropout if has_dropout(i, depth) else 0.0, upsample=upsample)
            for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        y = self.up[-1](skips.pop())
        for level in reversed(range(self.depth - 1)):
            y = self.up[level](torch.cat([skips[level], y], dim=1))
        return y
