"""`colorize` task: its parameters and declaration, torch-free so `p2p validate` checks recipes without it
(the step code is in colorize.py)."""

from __future__ import annotations

from typing import Any, Literal

from p2pcore.api import BuildContext, Direction, Field, Player, Role, TaskParams, TaskSpec


class ColorizeParams(TaskParams):
    luma: Literal["rec601", "mean"] = Field(
        "rec601", description="how the grey input is derived from b: rec601 weights R, G, B as 0.299, 0.587, "
                              "0.114 (needs 3 channels); mean averages any number of channels")

    def declare(self) -> TaskSpec:
        d = ("discriminator", "generator")
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: grey(b) -> b"),
                   "discriminator": Role("discriminator", required=False,
                                         summary="D: judges (grey, colour) pairs, or colour alone")},
            players={"generator": Player("generator", ("generator",)),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"gray": (), "real_b": (), "fake_b": ("generator",), "d_real": d, "d_fake": d,
                     "d_in_real": d, "d_in_fake": d, "d_net": d},
            directions={"recolor": Direction("b", "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={"gray": "b", "fake_b": "b", "real_b": "b"},
            images=("b",),
        )


def build_colorize(params: ColorizeParams, ctx: BuildContext) -> Any:
    """Colourisation of any dataset's b images: the grey input is derived on the fly, a is not read."""
    from .colorize import ColorizeTask

    return ColorizeTask(params.luma)
