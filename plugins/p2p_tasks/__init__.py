"""Built-in tasks: pix2pix (paired translation with a conditional GAN), CycleGAN (unpaired
translation with cycle consistency) and pix2pixHD (label maps to photos, coarse to fine). Declarations
live here, torch-free; the step code in modules imported by the builders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p2pcore.api import (
    BuildContext,
    ComponentRef,
    Direction,
    Field,
    P2PError,
    Player,
    RecipeView,
    Role,
    TaskParams,
    TaskSpec,
    hookimpl,
)

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION


class Pix2PixParams(TaskParams):
    def declare(self) -> TaskSpec:
        d = ("discriminator", "generator")
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: a -> b"),
                   "discriminator": Role("discriminator", required=False,
                                         summary="D: judges (a, b) pairs, or b alone when unconditional")},
            players={"generator": Player("generator", ("generator",)),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"real_a": (), "real_b": (), "fake_b": ("generator",), "d_real": d, "d_fake": d,
                     "d_in_real": d, "d_in_fake": d, "d_net": d},
            directions={"a2b": Direction("a", "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={"real_a": "a", "fake_b": "b", "real_b": "b"},
        )


class CycleGANParams(TaskParams):
    pool_size: int = Field(50, ge=0, le=10_000,
                           description="generated images each discriminator also learns from (0: no pool)")

    def declare(self) -> TaskSpec:
        ab, ba = "generator_ab", "generator_ba"
        tensors: dict[str, tuple[str, ...]] = {
            "real_a": (), "real_b": (), "fake_b": (ab,), "fake_a": (ba,), "rec_a": (ab, ba), "rec_b": (ab, ba),
            "idt_b": (ab,), "idt_a": (ba,)}
        for side, generator in (("a", ba), ("b", ab)):
            for suffix in ("real", "fake", "in_real", "in_fake", "net"):
                tensors[f"d_{side}_{suffix}"] = (f"discriminator_{side}", generator)
        return TaskSpec(
            roles={ab: Role("generator", summary="G: a -> b"), ba: Role("generator", summary="F: b -> a"),
                   "discriminator_b": Role("discriminator", required=False, summary="D_Y: real b against G(a)"),
                   "discriminator_a": Role("discriminator", required=False, summary="D_X: real a against F(b)")},
            players={"generator": Player("generator", (ab, ba)),
                     "discriminator": Player("discriminator", ("discriminator_a", "discriminator_b"))},
            tensors=tensors,
            directions={"a2b": Direction("a", "b", (ab,), tensor="fake_b"),
                        "b2a": Direction("b", "a", (ba,), tensor="fake_a")},
            visuals={"real_a": "a", "fake_b": "b", "rec_a": "a", "real_b": "b", "fake_a": "a", "rec_b": "b"},
        )

    def check(self, model: Mapping[str, ComponentRef]) -> None:
        for role in ("discriminator_a", "discriminator_b"):
            if role in model and getattr(model[role].params, "conditional", False):
                raise P2PError("CycleGAN's discriminators judge single images, not pairs",
                               key=f"model.{role}.conditional", hint="set conditional = false")


def check_label_channels(label: int | None, *, key: str = "data") -> None:
    """pix2pixHD's label maps have 1 channel (label ids) or 2 (label and instance ids): one rule for the
    channels a dataset declares (`p2p validate`) and those of the dataset built (`p2p run`)."""
    if label not in (1, 2):
        given = f"{label}-channel ones" if label else "none"
        raise P2PError(f"pix2pixhd reads label maps of 1 channel (label ids) or 2 (label and instance ids); "
                       f"the dataset gives {given}", key=key,
                       hint="use a label-map dataset: pix2pixhd_folders, cityscapes_hd or synthetic_labels; "
                            "or task.label_nc = 0 for images in")


class Pix2PixHDParams(TaskParams):
    label_nc: int = Field(35, ge=0, le=1024, description=(
        "label ids 0..label_nc-1 of the label maps, each one input channel (one-hot); 35 for Cityscapes' "
        "labelIds; 0: the input is an image (a paired dataset's a side), as the reference's --label_nc 0"))
    ignore: int | None = Field(None, description="a label id whose pixels belong to no class (all-zero one-hot), "
                                                 "e.g. 255; other ids outside 0..label_nc-1 are errors")
    instances: bool = Field(True, description="add the instance boundary map to the input when the dataset "
                                              "has instance maps")
    feat_nc: int = Field(3, ge=1, le=64, description="feature channels of the instance encoder "
                                                    "(model.encoder), averaged per instance")
    freeze_epochs: int = Field(0, ge=0, description=(
        "hold the generator's `freeze` module fixed for the first epochs (coarse to fine: a local enhancer's "
        "G1 while its enhancer learns; under --nproc too, the held parameters left out of the gradient "
        "averaging); 0: train everything from the start"))
    freeze: str = Field("global_net", min_length=1, description="the generator module freeze_epochs holds fixed")

    def declare(self) -> TaskSpec:
        d = ("discriminator", "generator")
        source = "label" if self.label_nc else "real_a"      # label maps, or (label_nc 0) an image
        side = "label" if self.label_nc else "a"
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: label maps (+ instance features) -> photo"),
                   "discriminator": Role("discriminator", required=False,
                                         summary="D: judges (label maps, photo) pairs, usually multiscale"),
                   "encoder": Role("generator", required=False,
                                   summary="E: photo -> feature channels averaged per instance (style codes)")},
            players={"generator": Player("generator", ("generator", "encoder")),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={source: (), "input_label": (), "real_b": (), "features": ("encoder",),
                     "fake_b": ("generator",), "d_real": d, "d_fake": d, "d_in_real": d, "d_in_fake": d,
                     "d_net": d},
            directions={"a2b": Direction(side, "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={source: side, "fake_b": "b", "real_b": "b"},
            images=(side, "b"),
        )

    def check_recipe(self, view: RecipeView) -> None:
        if self.label_nc and view.channels is not None:
            check_label_channels(view.channels.get("label"), key=view.channels_key("label"))
        # a label-map dataset that states the ids its maps hold (pix2pixhd_folders: label_nc, ignore_index)
        # must state the task's: its check tests the files against them, the one-hot stops on any other id
        data = view.data.params
        declared = getattr(data, "label_nc", None)
        if self.label_nc and declared is not None and declared != self.label_nc:
            raise P2PError(f"the dataset's label maps hold ids 0..{declared - 1} (data.label_nc = {declared}) but "
                           f"the task one-hots {self.label_nc} (task.label_nc)", key="data.label_nc",
                           hint="give data.label_nc and task.label_nc the same number of label ids")
        ignore = getattr(data, "ignore_index", None)
        if self.label_nc and ignore is not None and ignore != self.ignore:
            raise P2PError(f"the dataset's label maps hold the ignore id {ignore} (data.ignore_index), which the "
                           "task would stop on", key="task.ignore",
                           hint=f"set task.ignore = {ignore}: its pixels then belong to no class (all-zero one-hot)")

    def check(self, model: Mapping[str, ComponentRef]) -> None:
        if not self.label_nc and self.ignore is not None:
            raise P2PError("task.ignore names a label id, and with label_nc = 0 the input is an image",
                           key="task.ignore", hint="drop task.ignore, or give label maps (label_nc > 0)")
        if not self.label_nc and "encoder" in model:
            raise P2PError("instance features are averaged over instances or label regions, and an image input "
                           "(label_nc = 0) has neither", key="model.encoder",
                           hint="drop [model.encoder], or give label maps (task.label_nc > 0)")


def build_pix2pix(params: Pix2PixParams, ctx: BuildContext) -> Any:
    """Paired translation a -> b: generator G(a), discriminator on (a, b) pairs or on b alone."""
    from p2p_tasks.pix2pix import Pix2PixTask

    return Pix2PixTask()


def build_cyclegan(params: CycleGANParams, ctx: BuildContext) -> Any:
    """Unpaired translation both ways: G a -> b, F b -> a, a discriminator per side, cycle consistency."""
    from p2p_tasks.cyclegan import CycleGANTask

    return CycleGANTask(params.pool_size)


def build_pix2pixhd(params: Pix2PixHDParams, ctx: BuildContext) -> Any:
    """Label maps -> photos at high resolution (pix2pixHD), coarse to fine.

    One-hot labels and instance boundaries in, usually a multi-scale discriminator with feature matching,
    an optional instance-level feature encoder."""
    from p2p_tasks.pix2pixhd import Pix2PixHDTask

    return Pix2PixHDTask(params)


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("pix2pix", build_pix2pix, params=Pix2PixParams)
    register("cyclegan", build_cyclegan, params=CycleGANParams)
    register("pix2pixhd", build_pix2pixhd, params=Pix2PixHDParams)


@hookimpl
def p2p_add_commands(app: Any) -> None:
    from p2p_tasks.cluster_command import cluster

    app.command("cluster")(cluster)
