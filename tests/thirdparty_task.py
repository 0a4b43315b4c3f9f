"""A task written as a third party would write one: its own module, importing only p2pcore.api.

`denoise2way` learns both directions of paired data from noisy inputs: `forward` maps a noisy a
to b, `backward` maps b to a, and an optional `critic` judges b. The noise shrinks as training goes
on, counted by state the task keeps (so a resume that lost it would not be exact).
"""

from __future__ import annotations

from typing import Any

from p2pcore.api import (
    BuildContext,
    Direction,
    Field,
    Player,
    Role,
    Task,
    TaskContext,
    TaskParams,
    TaskSpec,
    Tensors,
    hookimpl,
)


class Denoise2WayParams(TaskParams):
    noise: float = Field(0.3, ge=0, description="standard deviation of the noise added to a at the start")
    half_life: int = Field(8, ge=1, description="generator steps over which the noise halves")

    def declare(self) -> TaskSpec:
        critic = ("critic", "forward")
        return TaskSpec(
            roles={"forward": Role("generator"), "backward": Role("generator"),
                   "critic": Role("discriminator", required=False)},
            players={"generators": Player("generator", ("forward", "backward")),
                     "critic": Player("discriminator", ("critic",))},
            tensors={"real_a": (), "real_b": (), "noisy_a": (), "fake_b": ("forward",), "fake_a": ("backward",),
                     "critic_real": critic, "critic_fake": critic},
            directions={"a2b": Direction("a", "b", ("forward",), tensor="fake_b", target="real_b"),
                        "b2a": Direction("b", "a", ("backward",), tensor="fake_a", target="real_a")},
            visuals={"noisy_a": "a", "fake_b": "b", "real_b": "b", "fake_a": "a"},
        )


class Denoise2Way(Task):
    def __init__(self, params: Denoise2WayParams) -> None:
        self.params = params
        self.seen = None  # generator steps so far, a tensor so that it travels in checkpoints

    def build_networks(self, ctx: TaskContext) -> dict[str, Any]:
        import torch

        self.seen = torch.zeros((), dtype=torch.int64)
        a, b = ctx.channels["a"], ctx.channels["b"]
        shapes = {"forward": (a, b), "backward": (b, a), "critic": (b, 1)}
        return {role: ctx.build(role, in_channels=i, out_channels=o) for role, (i, o) in shapes.items()
                if ctx.wants(role)}

    def step_tensors(self, nets: Any, batch: Any) -> Tensors:
        import torch

        scale = self.params.noise * 0.5 ** (float(self.seen) / self.params.half_life)
        forward, backward = nets["forward"], nets["backward"]
        return Tensors({"noisy_a": lambda t: t["real_a"] + scale * torch.randn_like(t["real_a"]),
                        "fake_b": lambda t: forward(t["noisy_a"]),
                        "fake_a": lambda t: backward(t["real_b"])},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: str, nets: Any, base: Tensors) -> Tensors:
        if "critic" not in nets:
            return base
        critic = nets["critic"]
        detach = side == "discriminator"
        return base.extend({"critic_real": lambda t: critic(t["real_b"]),
                            "critic_fake": lambda t: critic(t["fake_b"].detach() if detach else t["fake_b"])})

    def translate(self, direction: str, nets: Any, image: Any) -> Any:
        return nets["forward" if direction == "a2b" else "backward"](image)

    def after_step(self, side: str, nets: Any, step: int) -> None:
        if side == "generator":
            self.seen = self.seen + 1

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state: Any) -> None:
        self.seen = state["seen"].cpu()


def build_denoise2way(params: Denoise2WayParams, ctx: BuildContext) -> Denoise2Way:
    """Both directions of paired data, from inputs with shrinking noise."""
    return Denoise2Way(params)


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("denoise2way", build_denoise2way, params=Denoise2WayParams)
