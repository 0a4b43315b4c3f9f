"""CycleGAN (Zhu et al. 2017): G maps a to b, F maps b to a; D_b judges real b against G(a), D_a
real a against F(b); cycle consistency F(G(a)) = a, G(F(b)) = b; optional identity G(b) = b.

Tensor names: fake_b = G(a), fake_a = F(b), rec_a = F(G(a)), rec_b = G(F(b)), idt_b = G(b),
idt_a = F(a); for each discriminator side s in (a, b): d_s_real, d_s_fake, d_s_in_real,
d_s_in_fake, d_s_net. On the discriminator side the fakes come from an image history pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2p_tasks.pool import ImagePool
from p2pcore.api import P2PError, Side, Task, TaskContext, Tensors

GENERATOR_OF = {"a": "generator_ba", "b": "generator_ab"}  # who makes the fakes each discriminator judges


class CycleGANTask(Task):
    def __init__(self, pool_size: int) -> None:
        self.pools = {side: ImagePool(pool_size) for side in ("a", "b")}
        self.same_channels = True

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        a, b = ctx.channels["a"], ctx.channels["b"]
        self.same_channels = a == b
        nets = {}
        if ctx.wants("generator_ab"):
            nets["generator_ab"] = ctx.build("generator_ab", in_channels=a, out_channels=b)
        if ctx.wants("generator_ba"):
            nets["generator_ba"] = ctx.build("generator_ba", in_channels=b, out_channels=a)
        for side, channels in (("a", a), ("b", b)):
            if ctx.wants(f"discriminator_{side}"):
                nets[f"discriminator_{side}"] = ctx.build(f"discriminator_{side}", in_channels=channels,
                                                          out_channels=1)
        return nets

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        g, f = nets.get("generator_ab"), nets.get("generator_ba")

        def identity(net: nn.Module, image: torch.Tensor, name: str) -> torch.Tensor:
            if not self.same_channels:
                raise P2PError(f"the identity tensor {name} needs a and b with the same number of channels",
                               hint="drop the identity terms (or set their weight to 0) for this data")
            return net(image)

        return Tensors({
            "fake_b": lambda t: g(t["real_a"]),
            "fake_a": lambda t: f(t["real_b"]),
            "rec_a": lambda t: f(t["fake_b"]),
            "rec_b": lambda t: g(t["fake_a"]),
            "idt_b": lambda t: identity(g, t["real_b"], "idt_b"),
            "idt_a": lambda t: identity(f, t["real_a"], "idt_a"),
        }, values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        producers = {}
        for judged in ("a", "b"):
            d = nets.get(f"discriminator_{judged}")
            if d is not None:
                producers.update(self._judge(judged, d, side == "discriminator"))
        return base.extend(producers)

    def _judge(self, judged: str, d: nn.Module, detach: bool) -> dict[str, Any]:
        p = f"d_{judged}"
        pool = self.pools[judged]

        def fake(t: Tensors) -> torch.Tensor:
            image = t[f"fake_{judged}"]
            return pool.query(image.detach()) if detach else image

        return {f"{p}_net": lambda t: d, f"{p}_in_real": lambda t: t[f"real_{judged}"], f"{p}_in_fake": fake,
                f"{p}_real": lambda t: d(t[f"{p}_in_real"]), f"{p}_fake": lambda t: d(t[f"{p}_in_fake"])}

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        return nets["generator_ab" if direction == "a2b" else "generator_ba"](image)

    def state_dict(self) -> dict[str, Any]:
        return {f"pool_{side}.{k}": v for side, pool in self.pools.items() for k, v in pool.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for side, pool in self.pools.items():
            prefix = f"pool_{side}."
            pool.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
