"""Coarse-to-fine generator of pix2pixHD (Wang et al. 2018, section 3.2): G = {G1, G2}.

G1 (`global_net`, the global generator without its output layer) works on the input downsampled by 2
for each enhancer. An enhancer G2 works at twice the resolution of the network below it: its front-end
G2^(F) (c7s1-k, d2k) brings its input to the resolution below, the element-wise sum of that and the last
feature map of the network below goes through its residual blocks G2^(R) (R2k x n_blocks_local) and its
back-end (u k). The finest enhancer ends in the output layer (c7s1-3, Tanh).

With one enhancer and ngf 32 (the paper's 2048x1024 Cityscapes generator), G1 has ngf 64:

    input / 2 -> G1: c7s1-64, d128, d256, d512, d1024, R1024 x 9, u512, u256, u128, u64
    input     -> G2: c7s1-32, d64, (+ G1), R64 x 3, u32, c7s1-3, Tanh

Enhancer n of N (1 = just above G1) has k = ngf * 2**(N - n) filters, G1 ngf * 2**N. The input pyramid is
made by 3x3 average pooling, stride 2, with padded pixels left out of the average.
"""

from __future__ import annotations

import torch
from torch import nn

from p2p_generators.global_generator import GlobalFeatures, output_layer
from p2p_generators.resnet import ResidualBlock, conv_norm_relu, upsampling
from p2p_generators.taps import local_tap_names
from p2pcore.api import Tap, check_taps


class Enhancer(nn.Module):
    """G2: front-end (c7s1-k, d2k), then on the sum with the features below: R2k x n_blocks, u k."""

    def __init__(self, in_channels: int, k: int, *, n_blocks: int, norm, padding: str) -> None:
        super().__init__()
        bias = norm.conv_bias
        self.front = nn.Sequential(
            conv_norm_relu(nn.Conv2d(in_channels, k, 7, padding=3, padding_mode=padding, bias=bias), norm, k),
            conv_norm_relu(nn.Conv2d(k, 2 * k, 3, stride=2, padding=1, bias=bias), norm, 2 * k))
        self.blocks = nn.Sequential(*(ResidualBlock(2 * k, norm, dropout=0.0, padding=padding)
                                      for _ in range(n_blocks)))
        self.up = conv_norm_relu(upsampling(2 * k, k, bias, "transposed"), norm, k)

    def forward(self, x: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
        return self.up(self.blocks(self.front(x) + below))


class LocalEnhancer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, ngf: int = 32, n_enhancers: int = 1,
                 n_blocks_local: int = 3, n_downsample: int = 4, n_blocks: int = 9, norm,
                 padding: str = "reflect") -> None:
        super().__init__()
        self.n_enhancers = n_enhancers
        # G1 runs at 1/2**n_enhancers and needs twice its own multiple of 2**n_downsample there
        self.size_multiple = 2 ** (n_downsample + 1 + n_enhancers)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.global_net = GlobalFeatures(in_channels, ngf=ngf * 2 ** n_enhancers, n_downsample=n_downsample,
                                         n_blocks=n_blocks, norm=norm, padding=padding)
        self.enhancers = nn.ModuleList(
            Enhancer(in_channels, ngf * 2 ** (n_enhancers - n), n_blocks=n_blocks_local, norm=norm, padding=padding)
            for n in range(1, n_enhancers + 1))
        self.tail = output_layer(ngf, out_channels, padding)
        self.in_channels, self.ngf = in_channels, ngf

    def checkpoint_segments(self) -> list[nn.Module]:
        """The blocks whose activations `train.activation_checkpointing` recomputes in the backward pass."""
        local = [segment for e in self.enhancers for segment in (e.front, *e.blocks, e.up)]
        return [*self.global_net.checkpoint_segments(), *local]

    def _pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        pyramid = [x]                                   # pyramid[j]: the input downsampled j times
        for _ in range(self.n_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        return pyramid

    def _below(self, pyramid: list[torch.Tensor], enhancers: int) -> torch.Tensor:
        """What the first `enhancers` enhancers give the next one: G1's features refined by each."""
        features = self.global_net(pyramid[-1])
        for n, enhancer in enumerate(self.enhancers[:enhancers], start=1):
            features = enhancer(pyramid[self.n_enhancers - n], features)
        return features

    def taps(self) -> tuple[Tap, ...]:
        """The finest enhancer's encoder at full resolution: input, head, down1, then its residual blocks."""
        finest = self.enhancers[-1]
        names = local_tap_names(len(finest.blocks))
        return (Tap(names[0], self.in_channels), Tap(names[1], self.ngf), Tap(names[2], 2 * self.ngf, 2),
                *(Tap(name, 2 * self.ngf, 2) for name in names[3:]))

    def feature_maps(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        finest = self.enhancers[-1]
        check_taps(layers, [tap.name for tap in self.taps()], key="layers", generator="LocalEnhancer")
        maps = [x, finest.front[0](x)]
        if max(layers) >= 2:
            maps.append(finest.front[1](maps[1]))
        if max(layers) >= 3:
            h = maps[2] + self._below(self._pyramid(x), self.n_enhancers - 1)
            for block in finest.blocks[: max(layers) - 2]:
                h = block(h)
                maps.append(h)
        return [maps[layer] for layer in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = self._pyramid(x)
        return self.tail(self.enhancers[-1](pyramid[0], self._below(pyramid, self.n_enhancers - 1)))
