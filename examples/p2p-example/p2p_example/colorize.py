"""The `colorize` task's step (torch): G sees grey(b) and should give b back; D judges (grey, colour) pairs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.api import P2PError, Side, Task, TaskContext, Tensors

REC601 = (0.299, 0.587, 0.114)


def grey(image: torch.Tensor, luma: str) -> torch.Tensor:
    """N x 1 x H x W luminance of N x C x H x W images in [-1, 1] (still in [-1, 1])."""
    if luma == "mean":
        return image.mean(dim=1, keepdim=True)
    weights = torch.tensor(REC601, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


class ColorizeTask(Task):
    def __init__(self, luma: str) -> None:
        self.luma = luma
        self.conditional = True

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        b = ctx.channels["b"]
        if self.luma == "rec601" and b != 3:
            raise P2PError(f"rec601 luma needs 3-channel b images, the dataset's have {b}", key="task.luma",
                           hint='set task = { name = "colorize", luma = "mean" }')
        nets = {"generator": ctx.build("generator", in_channels=1, out_channels=b)}
        if ctx.wants("discriminator"):
            self.conditional = bool(getattr(ctx.model["discriminator"].params, "conditional", True))
            nets["discriminator"] = ctx.build("discriminator", in_channels=1 + b if self.conditional else b,
                                              out_channels=1)
        return nets

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        generator = nets["generator"]
        return Tensors({"gray": lambda t: grey(t["real_b"], self.luma), "fake_b": lambda t: generator(t["gray"])},
                       values={"real_b": batch["b"]})

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        d, detach = nets["discriminator"], side == "discriminator"

        def seen(t: Tensors, colour: torch.Tensor) -> torch.Tensor:
            return torch.cat([t["gray"], colour], dim=1) if self.conditional else colour

        return base.extend({
            "d_net": lambda t: d,
            "d_in_real": lambda t: seen(t, t["real_b"]),
            "d_in_fake": lambda t: seen(t, t["fake_b"].detach() if detach else t["fake_b"]),
            "d_real": lambda t: d(t["d_in_real"]),
            "d_fake": lambda t: d(t["d_in_fake"]),
        })

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        return nets["generator"](grey(image, self.luma))
