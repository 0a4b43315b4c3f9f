"""`p2p new plugin --kind task`: paired translation judged without the condition."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="paired translation a -> b whose discriminator judges outputs alone (no condition)",
    entry='''
from p2pcore.api import Direction, Player, Role, TaskParams, TaskSpec, hookimpl

JUDGED = ("discriminator", "generator")


class $NameParams(TaskParams):
    def declare(self) -> TaskSpec:
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: a -> b"),
                   "discriminator": Role("discriminator", required=False, summary="D: judges b alone")},
            players={"generator": Player("generator", ("generator",)),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"real_a": (), "real_b": (), "fake_b": ("generator",), "d_real": JUDGED, "d_fake": JUDGED},
            directions={"a2b": Direction("a", "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={"real_a": "a", "fake_b": "b", "real_b": "b"})

    def check(self, model: Any) -> None:
        from p2pcore.api import P2PError

        d = model.get("discriminator")
        if d is not None and getattr(d.params, "conditional", False):
            raise P2PError("$name's discriminator judges outputs alone", key="model.discriminator.conditional",
                           hint="set conditional = false")


def build(params: $NameParams, ctx: Any) -> Any:
    """Paired translation a -> b whose discriminator judges outputs alone (no condition)."""
    from $name.network import $NameTask

    return $NameTask()


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
from typing import Any

import torch
from torch import nn

from p2pcore.api import Task, Tensors


class $NameTask(Task):
    def build_networks(self, ctx: Any) -> dict[str, nn.Module]:
        a, b = ctx.channels["a"], ctx.channels["b"]
        nets = {"generator": ctx.build("generator", in_channels=a, out_channels=b)}
        if ctx.wants("discriminator"):
            nets["discriminator"] = ctx.build("discriminator", in_channels=b, out_channels=1)
        return nets

    def step_tensors(self, nets: Any, batch: Any) -> Tensors:
        generator = nets["generator"]
        return Tensors({"fake_b": lambda t: generator(t["real_a"])},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: str, nets: Any, base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        d = nets["discriminator"]
        detach = side == "discriminator"  # D's update must not reach G through the fake
        return base.extend({"d_real": lambda t: d(t["real_b"]),
                            "d_fake": lambda t: d(t["fake_b"].detach() if detach else t["fake_b"])})

    def translate(self, direction: str, nets: Any, image: torch.Tensor) -> torch.Tensor:
        return nets["generator"](image)
''',
    checks='''
def test_task_contract(p2p_host, tmp_path):
    check_task(p2p_host, "$name", out_dir=tmp_path,
               recipe=tiny_recipe(model={"discriminator": {"conditional": False}}))


def test_task_trains_without_a_discriminator(p2p_host, tmp_path):
    check_task(p2p_host, "$name", out_dir=tmp_path,
               recipe=tiny_recipe(model={"discriminator": None}, loss={"gan": None}))
''',
    recipe={"task": "$name", "model": {"discriminator": {"conditional": False}}},
    imports=("tiny_recipe",),
)
