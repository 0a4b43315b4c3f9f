"""PatchGAN discriminator of pix2pix (Isola et al. 2017, section 3.2.2 and appendix 6.1.2).

Ck is a 4x4 Convolution-Norm-LeakyReLU(0.2) with k filters. The 70x70 PatchGAN is

    C64-C128-C256-C512, then a convolution to 1 channel (one logit per 70x70 patch)

with no norm on C64. In general: n stride-2 layers (the first without norm; filters ndf * 2**i, at most
8 * ndf), one stride-1 layer with norm, and a stride-1 convolution to one channel, all with padding 1.
The receptive field is 9 * 2**n - 2: 16, 34, 70, 142, 286 for n = 1 .. 5, and a 256x256 input gives a
(256 / 2**n - 2)-sided map (30x30 for n = 3). Outputs are logits (no sigmoid).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from p2p_discriminators import receptive_field_of
from p2p_discriminators.layers import BlocksThenHead, apply_spectral_norm


def conv_block(in_channels: int, out_channels: int, *, stride: int, norm=None, padding: int = 1) -> nn.Sequential:
    """Conv 4x4 - Norm - LeakyReLU(0.2); without `norm` the convolution keeps its bias."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    layers["conv"] = nn.Conv2d(in_channels, out_channels, 4, stride=stride, padding=padding,
                               bias=True if norm is None else norm.conv_bias)
    if norm is not None:
        layers["norm"] = norm(out_channels)
    layers["act"] = nn.LeakyReLU(0.2, inplace=True)
    return nn.Sequential(layers)


class PatchDiscriminator(BlocksThenHead):
    def __init__(self, in_channels: int, *, n_layers: int = 3, ndf: int = 64, norm, conditional: bool = True,
                 spectral_norm: bool = False, padding: int = 1) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError("a PatchGAN needs n_layers >= 1")
        self.n_layers = n_layers
        self.receptive_field = receptive_field_of(n_layers)
        self.conditional = conditional

        widths = [ndf * min(2 ** i, 8) for i in range(n_layers + 1)]  # C64-C128-C256-C512 for n = 3
        blocks = [conv_block(in_channels, widths[0], stride=2, padding=padding)]  # C64, no norm
        for i in range(1, n_layers):                                            # C128, C256: stride 2
            blocks.append(conv_block(widths[i - 1], widths[i], stride=2, norm=norm, padding=padding))
        blocks.append(conv_block(widths[-2], widths[-1], stride=1, norm=norm, padding=padding))  # C512: stride 1
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(widths[-1], 1, 4, stride=1, padding=padding)  # one logit per patch
        if spectral_norm:
            apply_spectral_norm(self)
