"""ImageGAN discriminator: one real/fake logit per image.

The paper's 286x286 discriminator (Isola et al. 2017, section 4.4: C64-C128-C256-C512-C512-C512) covers a
whole 256x256 image. Here the PatchGAN body (`p2p_discriminators.patch`, default n_layers 5) scores
patches and their scores are averaged over the map, so any image size gives an N x 1 x 1 x 1 output.
`receptive_field` is the side of the averaged patches; the averaged score depends on the whole image.
"""

from __future__ import annotations

import torch

from p2p_discriminators.patch import PatchDiscriminator


class ImageDiscriminator(PatchDiscriminator):
    def __init__(self, in_channels: int, *, n_layers: int = 5, ndf: int = 64, norm, conditional: bool = True,
                 spectral_norm: bool = False, padding: int = 1) -> None:
        super().__init__(in_channels, n_layers=n_layers, ndf=ndf, norm=norm, conditional=conditional,
                         spectral_norm=spectral_norm, padding=padding)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = super().forward_features(x)
        features[-1] = features[-1].mean(dim=(2, 3), keepdim=True)
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).mean(dim=(2, 3), keepdim=True)
