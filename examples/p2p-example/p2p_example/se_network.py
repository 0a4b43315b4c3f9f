"""The squeeze-and-excitation residual block and the generator built from it (torch).

A block is x + SE(Norm(Conv3x3(Dropout(ReLU(Norm(Conv3x3(x))))))), where SE scales each channel by a gate
computed from the whole image's average of that channel: the block can turn channels up or down by
global content, which a plain residual block sees only through its 3x3 windows.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.up(self.blocks(self.down(self.head(x)))))
