"""An exponential moving average of generator weights (`train.ema`), used for samples, translate
and export when present: averaged weights often give steadier outputs than the last step's."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import torch
from torch import nn


class WeightAverage:
    """ema = decay * ema + (1 - decay) * weights after every generator update; buffers (batch-norm
    statistics) are copied as they are."""

    def __init__(self, nets: Mapping[str, nn.Module], roles: Iterable[str], decay: float) -> None:
        self.decay = decay
        self.live = {role: nets[role] for role in roles}
        self.nets = {role: copy.deepcopy(net).requires_grad_(False) for role, net in self.live.items()}

    @torch.no_grad()
    def reset(self) -> None:
        """Start the average at the current weights (across processes, after the first one's were broadcast)."""
        for role, net in self.live.items():
            self.nets[role].load_state_dict(net.state_dict())

    @torch.no_grad()
    def update(self) -> None:
        for role, net in self.live.items():
            average = self.nets[role]
            mine = [p for p in average.parameters()]
            theirs = [p.detach() for p in net.parameters()]
            if mine:
                torch._foreach_lerp_(mine, theirs, 1.0 - self.decay)
            for a, b in zip(average.buffers(), net.buffers(), strict=True):
                a.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{role}.{k}": v for role, net in self.nets.items() for k, v in net.state_dict().items()}
