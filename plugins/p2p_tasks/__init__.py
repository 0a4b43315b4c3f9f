"""Built-in tasks: pix2pix (paired translation with a conditional GAN), CycleGAN (unpaired
translation with cycle consistency), pix2pixHD (label maps to photos, coarse to fine) and CUT / FastCUT
(one-sided unpaired translation with a contrastive patch loss). Declarations
live here, torch-free; the step code in modules imported by the builders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from p2pcore.api import (
    BuildContext,
    ComponentRef,
    Direction,
    Field,
    OwnNetwork,
    P2PError,
    Player,
    RecipeView,
    Role,
    TaskParams,
    TaskSpec,
    check_taps,
    hookimpl,
)

P2P_API = ">=1.7,<2"  # the plugin API versions this plugin supports (the core's file writers came with 1.7)


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


class CUTParams(TaskParams):
    mode: Literal["cut", "fastcut"] = Field("cut", description=(
        "cut: PatchNCE weight 1 with identity NCE on real b (each half the weight); fastcut: weight 10, no "
        "identity, flip equivariance (Park et al. 2020); sets the defaults of nce_idt, flip_equivariance and "
        "the task's loss terms"))
    nce_layers: list[int] = Field(default_factory=lambda: [0, 2, 3, 4, 8], min_length=1, description=(
        "the generator's feature taps PatchNCE compares (p2p show generator NAME lists them): for resnet "
        "input, down1, down2, res1, res5 as in the paper"))
    num_patches: int = Field(256, ge=1, le=65536, description="places sampled per layer and image (all of a "
                                                               "smaller map)")
    nce_idt: bool | None = Field(None, description="identity NCE between real b and G(b); unset: on for cut, "
                                                   "off for fastcut")
    flip_equivariance: bool | None = Field(None, description=(
        "flip G's input left-right at random each training step and its features back for PatchNCE; unset: "
        "on for fastcut, off for cut"))
    projector_width: int = Field(256, ge=1, le=4096, description="width of each layer's projection head "
                                                                 "(the task's own network projector)")

    def identity(self) -> bool:
        return self.mode == "cut" if self.nce_idt is None else self.nce_idt

    def flips(self) -> bool:
        return self.mode == "fastcut" if self.flip_equivariance is None else self.flip_equivariance

    def declare(self) -> TaskSpec:
        d = ("discriminator", "generator")
        g = ("generator",)
        return TaskSpec(
            roles={"generator": Role("generator", summary="G: a -> b; its encoder's taps give PatchNCE's features"),
                   "discriminator": Role("discriminator", summary="D: judges b images alone")},
            players={"generator": Player("generator", g),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"real_a": (), "real_b": (), "fake_b": g, "idt_b": g, "nce_ab": g, "nce_idt": g,
                     "d_real": d, "d_fake": d, "d_in_real": d, "d_in_fake": d, "d_net": d},
            directions={"a2b": Direction("a", "b", g, tensor="fake_b")},
            visuals={"real_a": "a", "fake_b": "b", "real_b": "b", "idt_b": "b"},
            own={"projector": OwnNetwork("generator", summary="H: per tapped layer, an MLP projecting patch "
                                                              "features for PatchNCE (training only)")},
        )

    def default_loss(self) -> Mapping[str, Mapping[str, Any]]:
        """LSGAN weight 1; PatchNCE with lambda 1 (cut) or 10 (fastcut), halved between the pairs when the
        identity term is on (the reference averages them)."""
        lam = 1.0 if self.mode == "cut" else 10.0
        share = 0.5 if self.identity() else 1.0
        terms: dict[str, Mapping[str, Any]] = {
            "gan": {"name": "gan", "mode": "lsgan", "weight": 1.0},
            "nce": {"name": "patch_nce", "pair": "ab", "weight": lam * share}}
        if self.identity():
            terms["nce_idt"] = {"name": "patch_nce", "pair": "idt", "weight": lam * share}
        return terms

    def check(self, model: Mapping[str, ComponentRef]) -> None:
        if "discriminator" in model and getattr(model["discriminator"].params, "conditional", False):
            raise P2PError("cut's discriminator judges b images alone, not (a, b) pairs",
                           key="model.discriminator.conditional", hint="set conditional = false")

    def check_recipe(self, view: RecipeView) -> None:
        generator = view.model["generator"].name
        taps = view.facts.get("generator", {}).get("taps")
        if not taps:
            raise P2PError(f"cut encodes images with the generator's feature taps, and generator {generator!r} "
                           "offers none", key="model.generator",
                           hint="use a generator with taps: p2p show generator resnet lists them")
        check_taps(self.nce_layers, taps, key="task.nce_layers", generator=generator)
        nce = view.terms("patch_nce")
        if not nce:
            raise P2PError("cut learns its content through PatchNCE, and no patch_nce term is on", key="loss",
                           hint='drop the override that turns it off, or add [loss.nce] name = "patch_nce"')
        idt = [label for label, term in nce.items() if term.params.pair == "idt"]
        if idt and not self.identity():
            raise P2PError(f"loss.{idt[0]} compares idt_b with real_b, and the identity term is off here",
                           key="task.nce_idt", hint=f"set task.nce_idt = true, or drop [loss.{idt[0]}]")
        channels = view.channels or {}
        if "a" in channels and "b" in channels:
            cut_generator_channels(channels["a"], channels["b"], key=view.channels_key("a"))


def cut_generator_channels(a: int, b: int, *, key: str = "data") -> int:
    """The channels CUT's generator reads: a's and b's when they agree, else the wider side's when the other is
    grey (repeated); anything else its encoder cannot take both as input and as output. One rule for the channels
    a dataset declares (`p2p validate`) and those of the dataset built (`p2p run`)."""
    if a == b or min(a, b) == 1:
        return max(a, b)
    raise P2PError(f"cut re-encodes its output with the generator's encoder, so a and b need the same channels "
                   f"(or one of them grey, repeated); the data gives a {a} and b {b}", key=key,
                   hint="read both sides with the same channel count")


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


def build_cut(params: CUTParams, ctx: BuildContext) -> Any:
    """One-sided unpaired translation a -> b with a contrastive patch loss (CUT / FastCUT, Park et al. 2020).

    An unconditional LSGAN discriminator and PatchNCE between G's encoder features of input and output,
    through the task's own projection heads; translation and export hold the generator alone."""
    from p2p_tasks.cut import CUTTask

    return CUTTask(params)


@hookimpl
def p2p_register_tasks(register: Any) -> None:
    register("pix2pix", build_pix2pix, params=Pix2PixParams)
    register("cyclegan", build_cyclegan, params=CycleGANParams)
    register("pix2pixhd", build_pix2pixhd, params=Pix2PixHDParams)
    register("cut", build_cut, params=CUTParams)


@hookimpl
def p2p_add_commands(app: Any) -> None:
    from p2p_tasks.cluster_command import cluster

    app.command("cluster")(cluster)
