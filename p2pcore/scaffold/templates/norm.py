"""`p2p new plugin --kind norm`: pixel normalisation."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="pixel normalisation: each pixel's feature vector scaled to unit mean square, then a learned scale",
    entry='''
from p2pcore.api import BuildContext, Field, Params, hookimpl


class $NameParams(Params):
    eps: float = Field(1e-8, gt=0, description="added to the mean square for stability")
    affine: bool = Field(True, description="learn a per-channel scale after normalising")


class $NameFactory:
    """A NormFactory: `factory(channels)` makes a layer; the conv before it keeps its bias (nothing here
    shifts the features)."""

    conv_bias = True

    def __init__(self, params: $NameParams) -> None:
        self.params = params

    def __call__(self, channels: int) -> Any:
        from $name.network import PixelNorm

        return PixelNorm(channels, eps=self.params.eps, affine=self.params.affine)


def build(params: $NameParams, ctx: BuildContext) -> $NameFactory:
    """Pixel normalisation: each pixel's feature vector scaled to unit mean square, then a learned scale."""
    return $NameFactory(params)


@hookimpl
def p2p_register_norms(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
import torch
from torch import nn


class PixelNorm(nn.Module):
    def __init__(self, channels: int, *, eps: float, affine: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return y * self.weight if self.weight is not None else y
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"affine": False}])
def test_norm_contract(p2p_host, params):
    check_norm(p2p_host, "$name", **params)


def test_norm_inside_a_builtin_generator(p2p_host):
    check_generator(p2p_host, "unet", depth=5, ngf=8, norm="$name")
''',
    recipe={"model": {"generator": {"norm": "$name"}, "discriminator": {"norm": "$name"}}},
    imports=("check_generator",),
)
