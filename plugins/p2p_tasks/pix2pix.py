"""pix2pix (Isola et al. 2017): G maps a to b; D judges (a, b) pairs, or b alone when unconditional."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.api import ComponentRef, P2PError, TaskContext, Tensors


class Pix2PixTask:
    generator_roles = ("generator",)
    discriminator_roles = ("discriminator",)

    def __init__(self) -> None:
        self.conditional = True

    def build_networks(self, model: Mapping[str, ComponentRef], ctx: TaskContext) -> dict[str, nn.Module]:
        if "generator" not in model:
            raise P2PError("pix2pix needs a generator", key="model.generator",
                           hint='add a [model.generator] table, e.g. name = "unet"')
        nets = {"generator": ctx.host.build("generator", model["generator"], in_channels=ctx.a_channels,
                                            out_channels=ctx.b_channels, key="model.generator")}
        if ctx.needs_discriminator:
            if "discriminator" not in model:
                raise P2PError("an adversarial loss term needs a discriminator", key="model.discriminator",
                               hint='add a [model.discriminator] table, e.g. name = "patch", or drop the gan term')
            _, params = ctx.host.resolve("discriminator", model["discriminator"], key="model.discriminator")
            self.conditional = bool(getattr(params, "conditional", True))
            seen = ctx.a_channels + ctx.b_channels if self.conditional else ctx.b_channels
            nets["discriminator"] = ctx.host.build("discriminator", model["discriminator"], in_channels=seen,
                                                   out_channels=1, key="model.discriminator")
        return nets

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        generator = nets["generator"]
        return Tensors({"fake_b": lambda t: generator(t["real_a"])},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def _seen(self, t: Tensors, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([t["real_a"], b], dim=1) if self.conditional else b

    def _phase(self, nets: Mapping[str, nn.Module], base: Tensors, detach_fake: bool) -> Tensors:
        d = nets["discriminator"]
        return base.extend({
            "d_net": lambda t: d,
            "d_in_real": lambda t: self._seen(t, t["real_b"]),
            "d_in_fake": lambda t: self._seen(t, t["fake_b"].detach() if detach_fake else t["fake_b"]),
            "d_real": lambda t: d(t["d_in_real"]),
            "d_fake": lambda t: d(t["d_in_fake"]),
        })

    def discriminator_phase(self, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        return self._phase(nets, base, detach_fake=True)

    def generator_phase(self, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        return self._phase(nets, base, detach_fake=False) if "discriminator" in nets else base

    def sample_images(self, t: Tensors) -> list[torch.Tensor]:
        return [t["real_a"], t["fake_b"], t["real_b"]]

    def translate(self, nets: Mapping[str, nn.Module], a: torch.Tensor) -> torch.Tensor:
        return nets["generator"](a)
