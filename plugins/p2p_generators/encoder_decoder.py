"""Encoder-decoder generator of pix2pix: the U-Net without its skips (Isola et al. 2017, appendix 6.1.1).

    encoder  C64-C128-C256-C512-C512-C512-C512-C512   (LeakyReLU 0.2, no norm on C64)
    decoder  CD512-CD512-CD512-C512-C256-C128-C64      (ReLU), then a convolution to the output and Tanh

Layers, norms, dropout placement and biases follow the U-Net (see `p2p_generators.unet`); only the
decoder's input widths differ, since no skip is concatenated. The paper's errata notes that a batch
norm on the bottleneck zeroes it at batch size 1, so `bottleneck_norm` is off by default.
"""

from __future__ import annotations

import torch
from torch import nn

from p2p_generators.unet import MirroredLevels, down_block, has_dropout, level_channels, up_block


class EncoderDecoderGenerator(MirroredLevels):
    def __init__(self, in_channels: int, out_channels: int, *, depth: int = 8, ngf: int = 64, norm,
                 dropout: float = 0.5, upsample: str = "transposed", bottleneck_norm: bool = False) -> None:
        super().__init__(in_channels, ngf, depth, what="an encoder-decoder")
        channels = level_channels(ngf, depth)
        innermost = depth - 1

        self.down = nn.ModuleList(
            down_block(in_channels if i == 0 else channels[i - 1], channels[i], norm, outermost=i == 0,
                       with_norm=0 < i < innermost or (0 < i == innermost and bottleneck_norm))
            for i in range(depth))
        self.up = nn.ModuleList(
            up_block(channels[i], out_channels if i == 0 else channels[i - 1], norm, outermost=i == 0,
                     dropout=dropout if has_dropout(i, depth) else 0.0, upsample=upsample)
            for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for down in self.down:
            x = down(x)
        for level in reversed(range(self.depth)):
            x = self.up[level](x)
        return x
