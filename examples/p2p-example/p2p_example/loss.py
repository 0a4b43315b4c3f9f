"""`tv` loss term: total variation of a step tensor. Tensors arrive with the step; no torch import needed."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Field, LossParams, LossTerm


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
