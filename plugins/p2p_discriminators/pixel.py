"""1x1 PixelGAN discriminator of pix2pix (Isola et al. 2017, section 4.4 and appendix 6.1.2).

C64-C128 with 1x1 convolutions (LeakyReLU 0.2, no norm on C64), then a 1x1 convolution to one logit per
pixel. It sees no spatial structure, only colour statistics. As in the public pix2pix code, the
convolutions after C64 keep their bias only where the norm asks for it.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from p2p_discriminators.layers import BlocksThenHead, apply_spectral_norm


class PixelDiscriminator(BlocksThenHead):
    receptive_field = 1

    def __init__(self, in_channels: int, *, ndf: int = 64, norm, conditional: bool = True,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.conditional = conditional
        self.blocks = nn.ModuleList([
            # C64
            nn.Sequential(OrderedDict(conv=nn.Conv2d(in_channels, ndf, 1),
                                      act=nn.LeakyReLU(0.2, inplace=True))),
            # C128
            nn.Sequential(OrderedDict(conv=nn.Conv2d(ndf, 2 * ndf, 1, bias=norm.conv_bias),
                                      norm=norm(2 * ndf),
                                      act=nn.LeakyReLU(0.2, inplace=True))),
        ])
        self.head = nn.Conv2d(2 * ndf, 1, 1, bias=norm.conv_bias)
        if spectral_norm:
            apply_spectral_norm(self)
