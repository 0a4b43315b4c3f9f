"""Where a run's modules live and how they are wrapped: the one object the loop is handed for how
training is spread over devices. One device today; a data-parallel placement implements the same
methods."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class SingleDevice:
    """Every module on one device (a GPU, or the CPU), optionally channels-last and compiled."""

    world_size = 1
    is_main = True

    def __init__(self, device: torch.device, *, channels_last: bool = False, compile: bool = False) -> None:
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.preserve_format
        self.compile = compile

    def place(self, module: nn.Module) -> nn.Module:
        """Move a network (or a loss term that owns one) to the device."""
        return module.to(self.device, memory_format=self.memory_format)

    def wrap(self, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        """The modules the forward passes run: compiled when asked, the same modules otherwise."""
        return {role: torch.compile(net) if self.compile else net for role, net in nets.items()}

    def wrap_term(self, term: nn.Module) -> None:
        """Compile the networks a loss term owns, in place, when compiling."""
        if self.compile:
            for child in term.children():
                child.compile()

    def to_device(self, image: torch.Tensor) -> torch.Tensor:
        return image.to(self.device, non_blocking=True, memory_format=self.memory_format)
