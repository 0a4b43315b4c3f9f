"""`p2p new plugin --kind generator`: a small residual generator."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="a small residual generator: one downsampling, residual blocks, one upsampling",
    entry='''
from p2pcore.api import BuildContext, Field, NormRef, P2PError, Params, hookimpl


class $NameParams(Params):
    ngf: int = Field(16, ge=1, le=1024, description="filters of the first layer, doubled at half resolution")
    n_blocks: int = Field(2, ge=0, le=32, description="residual blocks at half resolution")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A small residual generator: one downsampling, residual blocks, one upsampling."""
    if not ctx.in_channels or not ctx.out_channels:
        raise P2PError("a generator needs its channel counts", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels and out_channels to host.build")
    from $name.network import Generator  # torch only when building

    return Generator(ctx.in_channels, ctx.out_channels, ngf=params.ngf, n_blocks=params.n_blocks,
                     norm=ctx.build(params.norm))


@hookimpl
def p2p_register_generators(register: Any) -> None:
    register("$name", build, params=$NameParams, facts=lambda params: {"size_multiple": 2})
''',
    module='''
from typing import Any

import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, channels: int, norm: Any) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm.conv_bias), norm(channels), nn.ReLU(True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm.conv_bias), norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    size_multiple = 2  # one stride-2 convolution: even sides come back the same size

    def __init__(self, in_channels: int, out_channels: int, *, ngf: int, n_blocks: int, norm: Any) -> None:
        super().__init__()
        wide = 2 * ngf
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, ngf, 3, padding=1, bias=norm.conv_bias), norm(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, wide, 4, stride=2, padding=1, bias=norm.conv_bias), norm(wide), nn.ReLU(True),
            *(Residual(wide, norm) for _ in range(n_blocks)),
            nn.ConvTranspose2d(wide, ngf, 4, stride=2, padding=1, bias=norm.conv_bias), norm(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"ngf": 8, "n_blocks": 0, "norm": "batch"}])
def test_generator_contract(p2p_host, params):
    check_generator(p2p_host, "$name", in_channels=1, out_channels=3, **params)
''',
    recipe={"model": {"generator": {"name": "$name", "ngf": 8}}},
)
