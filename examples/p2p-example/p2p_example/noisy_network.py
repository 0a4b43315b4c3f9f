"""The instance-noise wrapper (torch): adds N(0, sigma^2) to a discriminator's input in training mode only,
so evaluation and sample grids see what the wrapped network sees."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize


class NoisyInput(nn.Module):
    """Forwards to `inner` with noise added to the input; keeps its receptive field and its output shape."""

    def __init__(self, inner: nn.Module, *, sigma: float, conditional: bool) -> None:
        super().__init__()
        self.inner = inner
        self.sigma = sigma
        self.conditional = conditional
        self.receptive_field = int(getattr(inner, "receptive_field", 1))

    def noised(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x) if self.training and self.sigma > 0 else x

    def forward(self, x: torch.Tensor) -> Any:
        return self.inner(self.noised(x))


class NoisyInputWithFeatures(NoisyInput):
    """For a wrapped discriminator offering `forward_features`: offers it too, so `multiscale` and
    `feature_matching` see through the wrapper."""

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.inner.forward_features(self.noised(x)))


def wrap(inner: nn.Module, *, sigma: float, conditional: bool, spectral_norm: bool) -> NoisyInput:
    """The wrapper that fits `inner`; `spectral_norm` parametrises every convolution not already so."""
    cls = NoisyInputWithFeatures if callable(getattr(inner, "forward_features", None)) else NoisyInput
    net = cls(inner, sigma=sigma, conditional=conditional)
    if spectral_norm:
        for module in list(net.modules()):
            if isinstance(module, nn.Conv2d) and not parametrize.is_parametrized(module, "weight"):
                nn.utils.parametrizations.spectral_norm(module)
    return net
