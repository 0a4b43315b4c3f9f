"""pix2pix (Isola et al. 2017): G maps a to b; D judges (a, b) pairs, or b alone when unconditional."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.api import Side, Task, TaskContext, Tensors


def judging(d: nn.Module, seen: Callable[[Tensors, torch.Tensor], torch.Tensor], *, detach: bool) -> dict[str, Any]:
    """Producers of the d_* tensors: what D sees of real_b and fake_b (`seen` adds the condition) and its
    predictions; the discriminator side sees the fake detached."""
    return {
        "d_net": lambda t: d,
        "d_in_real": lambda t: seen(t, t["real_b"]),
        "d_in_fake": lambda t: seen(t, t["fake_b"].detach() if detach else t["fake_b"]),
        "d_real": lambda t: d(t["d_in_real"]),
        "d_fake": lambda t: d(t["d_in_fake"]),
    }


class Pix2PixTask(Task):
    def __init__(self) -> None:
        self.conditional = True

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        a, b = ctx.channels["a"], ctx.channels["b"]
        nets = {"generator": ctx.build("generator", in_channels=a, out_channels=b)}
        if ctx.wants("discriminator"):
            self.conditional = bool(getattr(ctx.model["discriminator"].params, "conditional", True))
            nets["discriminator"] = ctx.build("discriminator", in_channels=a + b if self.conditional else b,
                                              out_channels=1)
        return nets

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        generator = nets["generator"]
        return Tensors({"fake_b": lambda t: generator(t["real_a"])},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def _seen(self, t: Tensors, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([t["real_a"], b], dim=1) if self.conditional else b

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        return base.extend(judging(nets["discriminator"], self._seen, detach=side == "discriminator"))

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        return nets["generator"](image)
