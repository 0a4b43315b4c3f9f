"""What the built-in discriminators share: a stack of blocks followed by a prediction head."""

from __future__ import annotations

import torch
from torch import nn


class BlocksThenHead(nn.Module):
    """Subclasses set `blocks` (an nn.ModuleList) and `head`; forward returns the head's map of logits."""

    blocks: nn.ModuleList
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output and, last, the prediction map (for feature-matching losses)."""
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        features.append(self.head(x))
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def apply_spectral_norm(net: nn.Module) -> nn.Module:
    """Spectral normalisation of every convolution's weight (Miyato et al. 2018)."""
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d):
            nn.utils.parametrizations.spectral_norm(module)
    return net
