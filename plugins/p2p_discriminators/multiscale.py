"""Multi-scale discriminator of pix2pixHD (Wang et al. 2018, section 3.2).

D1, D2, ... Dk have the same architecture and judge the same image at 1, 1/2, ... 1/2**(k-1) of its
resolution: the input pyramid is made by 3x3 average pooling with stride 2 (padding 1, padded pixels left
out of the average). The coarsest scale sees the whole layout, the finest the details.

Any registered discriminator can be the one used at every scale (pix2pixHD's is the PatchGAN with
n_layers 3 and padding 2). For feature matching each scale returns the list of its intermediate feature
maps with its prediction map last; a discriminator that offers `forward_features(x)` (every built-in
one does) gives all of them, any other gives its prediction alone.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize


def downsample() -> nn.AvgPool2d:
    """The input pyramid's step: 3x3 average, stride 2, padded pixels not counted."""
    return nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)


def features_of(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A discriminator's intermediate feature maps and, last, its prediction map."""
    forward_features = getattr(net, "forward_features", None)
    if forward_features is not None:
        return list(forward_features(x))
    out = net(x)
    return list(out) if isinstance(out, list | tuple) else [out]


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, scales: list[nn.Module], *, conditional: bool = True, spectral_norm: bool = False) -> None:
        super().__init__()
        self.conditional = conditional
        self.scales = nn.ModuleList(scales)  # scales[k] judges the input downsampled k times
        self.downsample = downsample()
        # a receptive field of r pixels at scale k covers r * 2**k + 2**k - 1 input pixels
        coarsest = len(scales) - 1
        self.receptive_field = int(getattr(scales[-1], "receptive_field", 1)) * 2 ** coarsest + 2 ** coarsest - 1
        if spectral_norm:
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d) and not parametrize.is_parametrized(module, "weight"):
                    nn.utils.parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale, finest first: the intermediate feature maps, then the prediction map."""
        out = []
        for k, net in enumerate(self.scales):
            if k:
                x = self.downsample(x)
            out.append(features_of(net, x))
        return out
