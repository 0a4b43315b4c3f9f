"""`group` norm: parameters and factory. torch is imported only when a layer is made."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Field, Params


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
