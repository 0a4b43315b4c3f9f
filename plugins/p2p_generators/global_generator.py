"""Global generator G1 of pix2pixHD (Wang et al. 2018, section 3.2 and appendix).

Notation as in CycleGAN: c7s1-k is a 7x7 Convolution-Norm-ReLU with k filters and stride 1, dk a 3x3
Convolution-Norm-ReLU with stride 2, Rk a residual block of two 3x3 convolutions, uk a 3x3
fractionally-strided Convolution-Norm-ReLU with stride 1/2. With the reference's defaults (ngf 64, four
downsamplings, nine blocks):

    c7s1-64, d128, d256, d512, d1024, R1024 x 9, u512, u256, u128, u64, c7s1-3 (then Tanh)

Padding is by reflection; with instance norm (no affine parameters) every convolution keeps its bias.

The network is `features` (everything up to u64: the front-end, the residual blocks and the back-end)
followed by `tail` (c7s1-3 and Tanh). A local enhancer builds on `features` alone: its enhancer adds
G1's last feature map to its own, so a trained G1 is moved into one with
``[init] load = { "generator.global_net" = "generator.features" }``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from p2p_generators.resnet import ResidualBlock, conv_norm_relu, upsampling
from p2p_generators.taps import Stage, TapChain, identity
from p2pcore.api import Tap


def output_layer(in_channels: int, out_channels: int, padding: str) -> nn.Sequential:
    """c7s1-out without norm, then Tanh: the last layer of every pix2pixHD generator."""
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, out_channels, 7, padding=3, padding_mode=padding),
                                     tanh=nn.Tanh()))


class GlobalFeatures(nn.Module):
    """G1 without its output layer: c7s1-ngf, d x n_downsample, R x n_blocks, u x n_downsample."""

    def __init__(self, in_channels: int, *, ngf: int = 64, n_downsample: int = 4, n_blocks: int = 9, norm,
                 padding: str = "reflect") -> None:
        super().__init__()
        bias = norm.conv_bias
        self.in_channels, self.out_channels = in_channels, ngf
        # c7s1-64
        self.head = conv_norm_relu(nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode=padding, bias=bias),
                                   norm, ngf)
        # d128, d256, d512, d1024
        self.down = nn.Sequential(*(
            conv_norm_relu(nn.Conv2d(ngf * 2 ** i, ngf * 2 ** (i + 1), 3, stride=2, padding=1, bias=bias),
                           norm, ngf * 2 ** (i + 1))
            for i in range(n_downsample)))
        # R1024 x 9
        width = ngf * 2 ** n_downsample
        self.blocks = nn.Sequential(*(ResidualBlock(width, norm, dropout=0.0, padding=padding)
                                      for _ in range(n_blocks)))
        # u512, u256, u128, u64
        self.up = nn.Sequential(*(
            conv_norm_relu(upsampling(ngf * 2 ** i, ngf * 2 ** (i - 1), bias, "transposed"), norm, ngf * 2 ** (i - 1))
            for i in range(n_downsample, 0, -1)))

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks whose activations `train.activation_checkpointing` recomputes in the backward pass."""
        return [self.head, *self.down, *self.blocks, *self.up]

    def encoder_stages(self) -> list[tuple[Tap, Stage]]:
        """input, head (c7s1-64), down1 .. down<n> (d128 ..), res1 .. res<n> (the residual blocks)."""
        ngf, downs = self.out_channels, len(self.down)
        return [(Tap("input", self.in_channels), identity), (Tap("head", ngf), self.head),
                *((Tap(f"down{i + 1}", ngf * 2 ** (i + 1), 2 ** (i + 1)), d) for i, d in enumerate(self.down)),
                *((Tap(f"res{i}", ngf * 2 ** downs, 2 ** downs), b) for i, b in enumerate(self.blocks, start=1))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.blocks(self.down(self.head(x))))


class GlobalGenerator(TapChain, nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, ngf: int = 64, n_downsample: int = 4,
                 n_blocks: int = 9, norm, padding: str = "reflect") -> None:
        super().__init__()
        # the residual blocks work at 1/2**n_downsample and their 3x3 reflection needs maps of 2x2 or more
        self.size_multiple = 2 ** (n_downsample + 1)
        self.features = GlobalFeatures(in_channels, ngf=ngf, n_downsample=n_downsample, n_blocks=n_blocks,
                                       norm=norm, padding=padding)
        # c7s1-3, then Tanh
        self.tail = output_layer(ngf, out_channels, padding)

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks whose activations `train.activation_checkpointing` recomputes in the backward pass."""
        return self.features.checkpoint_segments()

    def tap_stages(self) -> list[tuple[Tap, Stage]]:
        return self.features.encoder_stages()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.features(x))
