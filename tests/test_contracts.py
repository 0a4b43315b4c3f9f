"""Every built-in component passes the contract checks that `p2pcore.testing` offers plugin authors, and
the checks catch broken components with a message saying what is wrong.

Parametrised over the registry: a new built-in is checked without editing this file, with its default
parameters unless TINY below shrinks them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import SHARED
from pydantic_core import PydanticUndefined

from p2pcore import load_host
from p2pcore.kinds import KINDS
from p2pcore.testing import check_component, check_entry_module_light, check_params_round_trip, tiny_recipe

HOST = load_host()
ESPNET = SHARED / "weights" / "espnet_p_2_q_8_cityscapes.pth"
PATCH = {"name": "patch", "n_layers": 2, "ndf": 8}
CRITIC = {**PATCH, "norm": "instance", "conditional": False}
RESNET = {"name": "resnet", "ngf": 8, "n_blocks": 1}
TINY: dict[tuple[str, str], dict[str, Any]] = {  # small networks and data: the checks stay under a minute
    ("generator", "unet"): {"depth": 5, "ngf": 8},
    ("generator", "encoder_decoder"): {"depth": 5, "ngf": 8},
    ("generator", "resnet"): {"ngf": 8, "n_blocks": 1},
    ("generator", "global"): {"ngf": 8, "n_downsample": 2, "n_blocks": 1},
    ("generator", "local_enhancer"): {"ngf": 8, "n_downsample": 2, "n_blocks": 1, "n_blocks_local": 1},
    ("discriminator", "patch"): {"n_layers": 2, "ndf": 8},
    ("discriminator", "image"): {"n_layers": 2, "ndf": 8},
    ("discriminator", "pixel"): {"ndf": 8},
    ("discriminator", "multiscale"): {"num_D": 2, "discriminator": PATCH},
    ("dataset", "synthetic_thermal"): {"size": 32, "train_count": 2, "test_count": 2},
    ("dataset", "synthetic_labels"): {"size": 32, "train_count": 2, "test_count": 2},
    ("schedule", "plateau"): {"patience": 1},  # drops within the check's epochs, so its state matters
}
if ESPNET.is_file():  # the FCN-score needs a segmenter's weights: the real ones, where the shared data has them
    TINY[("metric", "fcn_score")] = {"segmenter": {"name": "espnet", "weights": str(ESPNET)}}
    TINY[("segmenter", "espnet")] = {"weights": str(ESPNET)}
EXTRA: dict[tuple[str, str], dict[str, Any]] = {  # what a check needs beyond the component's parameters
    ("dataset", "synthetic_labels"): {"keys": ("label", "b")},
    ("loss", "feature_matching"): {"tensors": lambda name: [[torch.randn(2, 4, 8, 8, requires_grad=True),
                                                             torch.randn(2, 1, 6, 6, requires_grad=True)]]},
    ("metric", "ms_ssim"): {"size": 176, "batch": 1},
    ("task", "cyclegan"): {"recipe": tiny_recipe(
        task="cyclegan", data={"paired": False},
        model={"generator": None, "discriminator": None, "generator_ab": RESNET, "generator_ba": RESNET,
               "discriminator_a": CRITIC, "discriminator_b": CRITIC},
        loss={"gan": None, "l1": None, "gan_a": {"name": "gan", "mode": "lsgan", "prefix": "d_a"},
              "gan_b": {"name": "gan", "mode": "lsgan", "prefix": "d_b"},
              "cycle_a": {"name": "l1", "pred": "rec_a", "target": "real_a", "weight": 10.0}})},
    ("loss", "patch_nce"): {"tensors": lambda name: [(torch.randn(2, 4, 8, requires_grad=True),
                                                      torch.randn(2, 4, 8, requires_grad=True))]},
    ("task", "cut"): {"recipe": tiny_recipe(
        task="cut", data={"paired": False}, model={"generator": RESNET, "discriminator": CRITIC},
        loss={"gan": None, "l1": None}), "nce_layers": [0, 2, 3, 4], "num_patches": 16, "projector_width": 16},
    ("task", "pix2pixhd"): {"recipe": tiny_recipe(
        data={"name": "synthetic_labels", "size": 32, "train_count": 2, "test_count": 2},
        model={"generator": {"name": "global", "ngf": 8, "n_downsample": 2, "n_blocks": 1},
               "discriminator": {"name": "multiscale", "num_D": 2, "discriminator": {**PATCH, "padding": 2}}},
        loss={"l1": None, "gan": {"mode": "lsgan"}, "fm": {"name": "feature_matching", "weight": 10.0}})},
}


def required(kind: str, name: str) -> list[str]:
    """Parameters without a default: a weights file, a data folder."""
    fields = HOST.registry.get(kind, name).params.model_fields
    return [f for f, info in fields.items() if info.default is PydanticUndefined and info.default_factory is None]


def builtins(kind: str) -> list[Any]:
    """The built-in components of a kind, those that need a file or a folder skipped with the reason (unless
    the shared data beside the repository provides it)."""
    out = []
    for spec in HOST.registry.specs(kind):
        if not spec.builtin:
            continue
        needs = [f for f in required(kind, spec.name) if f not in args(kind, spec.name)]
        if "root" in spec.params.model_fields:
            needs = needs or ["root"]
        marks = [pytest.mark.skip(reason=f"needs {', '.join(needs)} (files)")] if needs else []
        out.append(pytest.param(spec.name, marks=marks, id=spec.name))
    return out


def args(kind: str, name: str) -> dict[str, Any]:
    return {**TINY.get((kind, name), {}), **EXTRA.get((kind, name), {})}


CALL: dict[str, Callable[[Path], dict[str, Any]]] = {  # the check's own options a kind's call needs
    "generator": lambda tmp_path: {"in_channels": 2, "out_channels": 3},
    "discriminator": lambda tmp_path: {"in_channels": 5},
    "task": lambda tmp_path: {"out_dir": tmp_path},
    "callback": lambda tmp_path: {"run_dir": tmp_path},
}


def contract_test(kind: str) -> Callable[[str, Path], None]:
    """`test_<kind>_contract`: every built-in component of `kind` passes its kind's contract check."""

    @pytest.mark.parametrize("name", builtins(kind))
    def test(name: str, tmp_path: Path) -> None:
        check_component(HOST, kind, name, **CALL.get(kind, lambda _: {})(tmp_path), **args(kind, name))

    test.__name__ = test.__qualname__ = f"test_{kind}_contract"
    return test


for _kind in KINDS:
    globals()[f"test_{_kind}_contract"] = contract_test(_kind)


def test_every_kind_has_a_contract_test_here_and_a_check_through_the_table():
    # each kind's test_<kind>_contract is made from KINDS by the loop above
    assert check_component(HOST, "schedule", "step", epochs=4).factor(3.0, 4) == 1.0


@pytest.mark.parametrize(("kind", "name"), [pytest.param(s.kind, s.name, id=f"{s.kind}-{s.name}")
                                            for s in HOST.registry if s.builtin
                                            and set(required(s.kind, s.name)) <= set(TINY.get((s.kind, s.name), {}))])
def test_params_round_trip(kind, name):
    check_params_round_trip(HOST, kind, name, **TINY.get((kind, name), {}))


@pytest.mark.parametrize("module", sorted({s.plugin.split(":")[1] for s in HOST.registry if s.builtin}))
def test_entry_modules_are_light(module):
    check_entry_module_light(HOST.manager.get_plugin(f"p2pcore:{module}").__name__)
