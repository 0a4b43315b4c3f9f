"""The loss-term contract: what a term reads and what it adds to each side's objective."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcore.api.base import Params
from p2pcore.api.tensors import Tensors

if TYPE_CHECKING:  # pragma: no cover
    import torch


class LossParams(Params):
    """Base of every loss term's parameters. `reads` names the step tensors the term reads, so
    `p2p validate` checks the wiring against the task's declaration without torch."""

    def reads(self) -> frozenset[str]:
        return frozenset()


class LossTerm:
    """Base of loss terms. The engine weights and sums what they return.

    `generator_loss` contributes to the generator side's objective (scaled by the recipe's weight);
    `discriminator_loss` to the discriminator side's (unscaled: the weight balances the generator's
    objectives). Return None for a side the term has no part in. A term that owns a network (a
    VGG) may also be an ``nn.Module``: the engine moves it to the device with the networks.
    """

    def generator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None

    def discriminator_loss(self, t: Tensors) -> torch.Tensor | None:
        return None

