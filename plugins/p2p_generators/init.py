"""The papers' weight initialisation: convolutions N(0, 0.02), norm scales N(1, 0.02), biases 0."""

from __future__ import annotations

from torch import nn


def init_weights(net: nn.Module, std: float = 0.02) -> nn.Module:
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm) and module.affine:
            nn.init.normal_(module.weight, 1.0, std)
            nn.init.zeros_(module.bias)
    return net
