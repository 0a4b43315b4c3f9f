"""`p2p new plugin --kind discriminator`: a small PatchGAN-style discriminator."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="a small PatchGAN-style discriminator: stride-2 convolutions, then a map of logits",
    entry='''
from p2pcore.api import BuildContext, DiscriminatorParams, Field, NormRef, P2PError, hookimpl


class $NameParams(DiscriminatorParams):  # `conditional` and `spectral_norm` come with DiscriminatorParams
    ndf: int = Field(16, ge=1, le=1024, description="filters of the first layer, doubled by each later one")
    n_layers: int = Field(2, ge=1, le=6, description="stride-2 convolutions")
    norm: NormRef = Field("instance", description="normalisation layer (see `p2p list norm`)")


def receptive_field(n_layers: int) -> int:
    """Pixels each logit sees: a 3x3 stride-1 convolution after n 4x4 stride-2 ones."""
    side = 3
    for _ in range(n_layers):
        side = 2 * (side - 1) + 4
    return side


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A small PatchGAN-style discriminator: stride-2 convolutions, then a map of logits."""
    if not ctx.in_channels:
        raise P2PError("a discriminator needs the channels it sees", key=ctx.key or None,
                       hint="build it through a task, or pass in_channels to host.build")
    from $name.network import Discriminator

    return Discriminator(ctx.in_channels, ndf=params.ndf, n_layers=params.n_layers, norm=ctx.build(params.norm),
                         conditional=params.conditional, spectral_norm=params.spectral_norm,
                         receptive_field=receptive_field(params.n_layers))


@hookimpl
def p2p_register_discriminators(register: Any) -> None:
    register("$name", build, params=$NameParams,
             facts=lambda params: {"receptive_field": receptive_field(params.n_layers)})
''',
    module='''
from typing import Any

import torch
from torch import nn


class Discriminator(nn.Module):
    def __init__(self, in_channels: int, *, ndf: int, n_layers: int, norm: Any, conditional: bool,
                 spectral_norm: bool, receptive_field: int) -> None:
        super().__init__()
        self.conditional = conditional
        self.receptive_field = receptive_field

        def conv(*args: Any, **kwargs: Any) -> nn.Module:
            layer = nn.Conv2d(*args, **kwargs)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer

        layers: list[nn.Module] = [conv(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for _ in range(n_layers - 1):
            layers += [conv(channels, 2 * channels, 4, stride=2, padding=1, bias=norm.conv_bias),
                       norm(2 * channels), nn.LeakyReLU(0.2, True)]
            channels *= 2
        layers.append(conv(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"conditional": False, "n_layers": 3, "norm": "batch"},
                                    {"spectral_norm": True}])
def test_discriminator_contract(p2p_host, params):
    check_discriminator(p2p_host, "$name", in_channels=4, **params)
''',
    recipe={"model": {"discriminator": {"name": "$name", "ndf": 8}}},
)
