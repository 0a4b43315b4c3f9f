"""The squeeze-and-excitation residual block and the generator built from it (torch).

A block is x + SE(Norm(Conv3x3(Dropout(ReLU(Norm(Conv3x3(x))))))), where SE scales each channel by a gate
computed from the whole image's average of that channel: the block can turn channels up or down by
global content, which a plain residual block sees only through its 3x3 windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from p2pcore.api import Tap, check_taps

from .generator import se_resnet_tap_names


class SqueezeExcite(nn.Module):
    """Per-channel gates in (0, 1) from global average pooling through a bottleneck of 1x1 convolutions."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SEResidualBlock(nn.Module):
    """Two 3x3 convolutions with norms, their output recalibrated by SqueezeExcite, added to the input."""

    def __init__(self, channels: int, norm: Any, *, reduction: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect",
                                             bias=norm.conv_bias), norm(channels), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", bias=norm.conv_bias),
                   norm(channels), SqueezeExcite(channels, reduction)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _stage(conv: nn.Module, norm: Any, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, norm(channels), nn.ReLU(inplace=True))


class SEResNetGenerator(nn.Module):
    """c7s1-ngf, n_down stride-2 convolutions, SE blocks, as many 2x resize-convolutions, c7s1-out, Tanh."""

    def __init__(self, in_channels: int, out_channels: int, *, ngf: int, n_down: int, n_blocks: int, reduction: int,
                 norm: Any, dropout: float) -> None:
        super().__init__()
        self.size_multiple = 2 ** n_down
        self.in_channels, self.ngf, self.n_down = in_channels, ngf, n_down
        bias = norm.conv_bias
        widths = [ngf * 2 ** i for i in range(n_down + 1)]
        self.head = _stage(nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode="reflect", bias=bias), norm, ngf)
        self.down = nn.Sequential(*(_stage(nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=bias), norm, 2 * w)
                                    for w in widths[:-1]))
        self.blocks = nn.Sequential(*(SEResidualBlock(widths[-1], norm, reduction=reduction, dropout=dropout)
                                      for _ in range(n_blocks)))
        self.up = nn.Sequential(*(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                _stage(nn.Conv2d(2 * w, w, 3, padding=1, bias=bias), norm, w))
                                  for w in reversed(widths[:-1])))
        self.tail = nn.Sequential(nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode="reflect"), nn.Tanh())

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks `train.activation_checkpointing` may recompute in the backward pass."""
        return [self.head, *self.down, *self.blocks, *self.up]

    def _stages(self) -> list[nn.Module]:
        """The encoder's modules in execution order, each giving the next tap (the input needs none)."""
        return [self.head, *self.down, *self.blocks]

    def taps(self) -> tuple[Tap, ...]:
        """The feature-tap contract: the input, the head, each downsampling, each SE block, in execution order."""
        names = se_resnet_tap_names(self.n_down, len(self.blocks))
        channels = [self.in_channels, *(self.ngf * 2 ** i for i in range(self.n_down + 1))]
        channels += [channels[-1]] * len(self.blocks)
        scales = [1, 1, *(2 ** i for i in range(1, self.n_down + 1))] + [2 ** self.n_down] * len(self.blocks)
        return tuple(Tap(n, c, s) for n, c, s in zip(names, channels, scales, strict=True))

    def feature_maps(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The maps at these tap indices, in the order asked, running the encoder no further than needed."""
        check_taps(layers, [t.name for t in self.taps()], key="layers", generator="se_resnet")
        found = {0: x} if 0 in layers else {}
        for index, stage in enumerate(self._stages()[: max(layers)], start=1):
            x = stage(x)
            if index in layers:
                found[index] = x
        return [found[i] for i in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.up(self.blocks(self.down(self.head(x)))))
