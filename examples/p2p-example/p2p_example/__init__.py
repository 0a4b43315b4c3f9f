"""An example p2p plugin, shaped as a third party would publish one.

It registers a norm (`group`) that any generator or discriminator can use by name, and a loss
term (`tv`) that smooths generator outputs. It imports only `p2pcore.api` from p2p, and torch only
inside builders, so `p2p list` stays fast.
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Field, LossParams, LossTerm, Params, hookimpl

__version__ = "0.1.0"
P2P_API = ">=1,<2"  # the p2p plugin API versions this package supports (p2pcore.api.API_VERSION)


class GroupParams(Params):
    groups: int = Field(8, ge=1, description="channel groups; must divide every layer's channel count")
    eps: float = Field(1e-5, gt=0)


class GroupNorm:
    """A NormFactory: makes nn.GroupNorm layers; convs before it need no bias."""

    conv_bias = False

    def __init__(self, params: GroupParams) -> None:
        self.params = params

    def __call__(self, channels: int) -> Any:
        from torch import nn

        return nn.GroupNorm(min(self.params.groups, channels), channels, eps=self.params.eps)


def build_group(params: GroupParams, ctx: BuildContext) -> GroupNorm:
    """Group normalisation: batch-size independent, a middle ground between batch and instance."""
    return GroupNorm(params)


class TVParams(LossParams):
    tensor: str = Field("fake_b", description="which tensor of the step to smooth")

    def reads(self) -> frozenset[str]:
        return frozenset({self.tensor})


class TotalVariation(LossTerm):
    def __init__(self, tensor: str) -> None:
        self.tensor = tensor

    def generator_loss(self, t: Any) -> Any:
        x = t[self.tensor]
        return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def build_tv(params: TVParams, ctx: BuildContext) -> TotalVariation:
    """Total variation of the output: penalises high-frequency noise and checkerboard artefacts."""
    return TotalVariation(params.tensor)


@hookimpl
def p2p_register_norms(register: Any) -> None:
    register("group", build_group, params=GroupParams)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("tv", build_tv, params=TVParams)
