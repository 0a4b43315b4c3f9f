"""ResNet generator of CycleGAN (Zhu et al. 2017, appendix 7.2), after Johnson et al.'s transfer network.

c7sk-k is a 7x7 Convolution-Norm-ReLU with k filters and stride 1, dk a 3x3 Convolution-Norm-ReLU with
stride 2, Rk a residual block of two 3x3 convolutions with k filters, uk a 3x3 fractionally-strided
Convolution-Norm-ReLU with stride 1/2. With 9 blocks (256x256 images):

    c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3 (then Tanh)

Padding is by reflection. Convolutions keep their bias where the norm asks for it (instance norm
without affine parameters: yes; batch norm: no); the last convolution always has one.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from p2p_generators.taps import Stage, TapChain, identity
from p2pcore.api import Tap


def conv_norm_relu(conv: nn.Module, norm, channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(conv=conv, norm=norm(channels), act=nn.ReLU(inplace=True)))


class ResidualBlock(nn.Sequential):
    """Rk: x + Norm(Conv3x3(Dropout(ReLU(Norm(Conv3x3(x))))))."""

    def __init__(self, channels: int, norm, *, dropout: float, padding: str) -> None:
        def conv3x3() -> nn.Conv2d:
            return nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding, bias=norm.conv_bias)

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv1"] = conv3x3()
        layers["norm1"] = norm(channels)
        layers["act"] = nn.ReLU(inplace=True)
        if dropout > 0:
            layers["dropout"] = nn.Dropout(dropout)
        layers["conv2"] = conv3x3()
        layers["norm2"] = norm(channels)
        super().__init__(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


def upsampling(in_channels: int, out_channels: int, bias: bool, upsample: str) -> nn.Module:
    if upsample == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1,
                                  bias=bias)
    if upsample == "resize_conv":
        return nn.Sequential(OrderedDict(resize=nn.Upsample(scale_factor=2, mode="nearest"),
                                         conv=nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)))
    raise ValueError(f"unknown upsample {upsample!r}; use 'transposed' or 'resize_conv'")


class ResNetGenerator(TapChain, nn.Module):
    size_multiple = 4

    def __init__(self, in_channels: int, out_channels: int, *, n_blocks: int = 9, ngf: int = 64, norm,
                 dropout: float = 0.0, padding: str = "reflect", upsample: str = "transposed") -> None:
        super().__init__()
        bias = norm.conv_bias
        self.in_channels, self.ngf = in_channels, ngf
        # c7s1-64
        self.head = conv_norm_relu(nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode=padding, bias=bias),
                                   norm, ngf)
        # d128, d256
        self.down = nn.Sequential(
            conv_norm_relu(nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1, bias=bias), norm, 2 * ngf),
            conv_norm_relu(nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1, bias=bias), norm, 4 * ngf))
        # R256 x n_blocks
        self.blocks = nn.Sequential(*(ResidualBlock(4 * ngf, norm, dropout=dropout, padding=padding)
                                      for _ in range(n_blocks)))
        # u128, u64
        self.up = nn.Sequential(
            conv_norm_relu(upsampling(4 * ngf, 2 * ngf, bias, upsample), norm, 2 * ngf),
            conv_norm_relu(upsampling(2 * ngf, ngf, bias, upsample), norm, ngf))
        # c7s1-out, then Tanh
        self.tail = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode=padding), tanh=nn.Tanh()))

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks whose activations `train.activation_checkpointing` recomputes in the backward pass."""
        return [self.head, *self.down, *self.blocks, *self.up]

    def tap_stages(self) -> list[tuple[Tap, Stage]]:
        """input, head (c7s1-64), down1 (d128), down2 (d256), res1 .. resN (R256): the encoder CUT taps."""
        width = 4 * self.ngf
        return [(Tap("input", self.in_channels), identity), (Tap("head", self.ngf), self.head),
                (Tap("down1", 2 * self.ngf, 2), self.down[0]), (Tap("down2", width, 4), self.down[1]),
                *((Tap(f"res{i}", width, 4), block) for i, block in enumerate(self.blocks, start=1))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.up(self.blocks(self.down(self.head(x)))))
