"""Validation that sees the whole recipe: a task's `check_recipe` gets a read-only, torch-free view (roles with
their parameters and facts, the loss terms that are on, the dataset's channels), refuses with the TOML key, and
`p2p validate` shows the file and key. The datasets declare their images' channels without being built."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_NETWORKS
from p2p_tasks import Pix2PixParams

from p2pcore.api import (
    Field,
    P2PError,
    RecipeView,
    TaskParams,
    TaskSpec,
    check_taps,
    hookimpl,
)
from p2pcore.recipe import load_recipe, validate_recipe
from p2pcore.testing import host_with

SEEN: list[RecipeView] = []


def _spec() -> TaskSpec:
    return Pix2PixParams().declare()


class LayeredParams(TaskParams):
    """A thermal task that learns from an L1 term and reads its generator's features at `layers`."""

    layers: list[int] = Field(default_factory=lambda: [0, 4], description="feature taps of the generator read")

    def declare(self) -> TaskSpec:
        return _spec()

    def check_recipe(self, view: RecipeView) -> None:
        SEEN.append(view)
        if not view.terms("l1"):
            raise P2PError("task 'layered' learns from an L1 term, and the recipe has none that is on", key="loss",
                           hint='add [loss.l1] name = "l1"')
        if view.channels is not None and view.channels["a"] != 1:
            raise P2PError(f"task 'layered' reads thermal images of 1 channel; the dataset gives "
                           f"{view.channels['a']}", key=view.channels_key("a"), hint="read them as 1 channel")
        check_taps(self.layers, view.facts["generator"]["taps"], key="task.layers",
                   generator=view.model["generator"].name)


class OldStyleParams(TaskParams):
    """A task of before `check_recipe`: only `check(model)`, still called."""

    def declare(self) -> TaskSpec:
        return _spec()

    def check(self, model: Any) -> None:
        if "discriminator" in model:
            raise P2PError("task 'old_style' trains without a discriminator", key="model.discriminator")


class Picky:
    @staticmethod
    @hookimpl
    def p2p_register_tasks(register: Any) -> None:
        from p2pcore.api import Task

        register("layered", lambda p, c: Task(), params=LayeredParams)
        register("old_style", lambda p, c: Task(), params=OldStyleParams)


RECIPE = """
task = "layered"
[data]
name = "synthetic_thermal"
size = 32
""" + TINY_NETWORKS + """[loss]
gan = { name = "gan", weight = 0.0 }
l1 = { name = "l1", weight = 100.0 }
"""


@pytest.fixture(scope="module")
def picky():
    return host_with(("picky", Picky))


@pytest.fixture
def recipe_file(tmp_path) -> Path:
    path = tmp_path / "layered.toml"
    path.write_text(RECIPE)
    return path


def test_the_view_holds_the_resolved_recipe_read_only(picky, recipe_file):
    SEEN.clear()
    load_recipe(recipe_file, picky)
    (view,) = SEEN
    assert view.task.name == "layered" and view.task.params.layers == [0, 4] and "a2b" in view.spec.directions
    assert view.model["generator"].params.depth == 5 and view.model["discriminator"].params.ndf == 8
    assert view.facts["generator"]["size_multiple"] == 32 and len(view.facts["generator"]["taps"]) > 4
    assert list(view.loss) == ["l1"] and view.loss["l1"].weight == 100.0  # the term of weight 0 is off
    assert view.terms("l1") == {"l1": view.loss["l1"]} and view.terms("gan") == {}
    assert view.loss["l1"].params.reads() == {"fake_b", "real_b"}
    assert view.data.name == "synthetic_thermal" and dict(view.channels) == {"a": 1, "b": 3}
    assert view.channels_key("a") == "data"  # the dataset fixes it
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.loss = {}  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.model["generator"] = view.model["discriminator"]  # type: ignore[index]


def test_a_task_can_require_a_loss_term(picky, recipe_file):
    for change in ("unset=loss.l1", "loss.l1.weight=0"):
        with pytest.raises(P2PError, match="learns from an L1 term") as caught:
            load_recipe(recipe_file, picky, [change])
        assert caught.value.key == "loss" and caught.value.file == str(recipe_file)


@pytest.mark.parametrize(("data", "key"), [
    ({"name": "paired_folders", "root": "r", "a": {"dir": "A", "channels": 3}, "crop_size": 32, "load_size": 36},
     "data.a.channels"),
    ({"name": "aligned", "root": "r", "crop_size": 32, "load_size": 36}, "data.a_channels"),
])
def test_a_task_can_refuse_channel_counts_naming_the_key(picky, data, key):
    recipe = {"task": "layered", "data": data, "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}},
              "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError, match="thermal images of 1 channel; the dataset gives 3") as caught:
        validate_recipe(recipe, picky)
    assert caught.value.key == key
    one = {**data, "a": {"dir": "A", "channels": 1}} if "a" in data else {**data, "a_channels": 1}
    validate_recipe({**recipe, "data": one}, picky)


def test_layers_the_generator_does_not_have_are_refused_at_validate(picky, recipe_file, monkeypatch, capfd):
    with pytest.raises(P2PError) as caught:
        load_recipe(recipe_file, picky, ["task.layers=[0, 40]"])
    assert caught.value.key == "task.layers" and "40" in caught.value.message
    load_recipe(recipe_file, picky, ["task.layers=[0, 3]"])

    from p2pcore.cli import main

    monkeypatch.setattr("p2pcore.commands.common.host", lambda: picky)
    monkeypatch.setattr(sys, "argv", ["p2p", "validate", str(recipe_file), "--set", "task.layers=[0,40]"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main()
    out = "".join(capfd.readouterr())
    assert exited.value.code == 2, out
    assert "unet has no layer 40" in out and "key:  task.layers" in out and str(recipe_file) in out


def test_the_old_check_is_still_called_beside_the_new_one(picky, recipe_file):
    with pytest.raises(P2PError, match="without a discriminator") as caught:
        load_recipe(recipe_file, picky, ["task=old_style"])
    assert caught.value.key == "model.discriminator"
    load_recipe(recipe_file, picky, ["task=old_style", "unset=model.discriminator", "unset=loss.gan"])


def test_a_value_error_of_a_task_check_is_reported_at_task(picky, recipe_file, monkeypatch):
    def refuse(self: Any, view: RecipeView) -> None:
        raise ValueError("too few layers")

    monkeypatch.setattr(LayeredParams, "check_recipe", refuse)
    with pytest.raises(P2PError, match="cannot train this recipe: too few layers") as caught:
        load_recipe(recipe_file, picky)
    assert caught.value.key == "task"


def test_the_check_runs_for_training_not_for_translating(picky):
    SEEN.clear()
    recipe = {"task": "layered", "data": {"name": "synthetic_thermal", "size": 32},
              "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}}}
    validate_recipe(recipe, picky, inference=True)  # a checkpoint read to translate has no loss terms
    assert SEEN == []


def test_pix2pixhd_on_folders_of_image_pairs_is_refused_at_validate(host):
    """The dataset gives `a` and `b`; pix2pixHD reads `label`: refused before anything is built, in the words
    the task uses when it builds its networks."""
    recipe = {"task": {"name": "pix2pixhd", "label_nc": 8}, "model": {"generator": {"name": "global", "ngf": 8}},
              "data": {"name": "paired_folders", "root": "r"}, "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError, match="reads label maps of 1 channel .* the dataset gives none") as caught:
        validate_recipe(recipe, host)
    assert caught.value.key == "data" and "synthetic_labels" in caught.value.hint
    validate_recipe({**recipe, "data": {"name": "synthetic_labels", "size": 64}}, host)


def test_a_task_reading_images_the_dataset_lacks_is_refused(host, picky):
    """`single` gives inputs only: pix2pix cannot train on it (it still translates with it); a task that
    checks nothing itself is held to its declared images too."""
    recipe = {"data": {"name": "single", "root": "r"}, "model": {"generator": {"name": "unet", "depth": 5}},
              "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError, match="reads the image 'b', which dataset 'single' does not give") as caught:
        validate_recipe(recipe, host)
    assert caught.value.key == "data" and "paired_folders" in caught.value.hint
    validate_recipe(recipe, host, inference=True)
    with pytest.raises(P2PError, match="task 'old_style' reads the image 'b'"):
        validate_recipe({**recipe, "task": "old_style"}, picky)


def test_pix2pixhd_label_channels_are_checked_from_the_declaration(host, monkeypatch):
    """A label-map dataset declaring 3 label channels is refused at its key, by the rule the task applies
    to a built dataset."""
    from p2p_datasets.params import SyntheticLabelsParams

    monkeypatch.setattr(SyntheticLabelsParams, "image_channels", lambda self: {"label": 3, "b": 3})
    recipe = {"task": {"name": "pix2pixhd", "label_nc": 35}, "data": {"name": "synthetic_labels", "size": 64},
              "model": {"generator": {"name": "global", "ngf": 8}}, "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError, match="label maps of 1 channel .* the dataset gives 3-channel ones") as caught:
        validate_recipe(recipe, host)
    assert caught.value.key == "data.instances"


def test_p2p_validate_refuses_a_pairing_without_torch(tmp_path):
    """`p2p validate` refuses pix2pixHD on image pairs, naming file and key, and never imports torch."""
    path = tmp_path / "hd.toml"
    base = (Path(__file__).resolve().parents[1] / "recipes" / "quickstart_hd.toml").as_posix()
    path.write_text(f'extends = "{base}"\n[data]\nname = "paired_folders"\nroot = "x"\n')
    probe = textwrap.dedent(f"""
        import sys
        sys.argv = ["p2p", "validate", {str(path)!r}]
        from p2pcore.cli import main
        try:
            main()
        except SystemExit as e:
            print("exit", e.code)
        print("torch imported" if "torch" in sys.modules else "no torch")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    out = done.stdout + done.stderr
    assert "exit 2" in out and "no torch" in out, out
    assert "reads label maps" in out and "hd.toml" in out and "key:  data" in out


DATASETS = [
    {"name": "synthetic_thermal", "size": 32},
    {"name": "synthetic_labels", "size": 32},
    {"name": "synthetic_labels", "size": 32, "instances": False},
    {"name": "paired_folders", "root": "r", "a": {"dir": "t", "channels": 1}, "b": {"dir": "c", "channels": 4}},
    {"name": "aligned", "root": "r", "a_channels": 1},
    {"name": "unaligned", "root": "r", "b_channels": 1},
    {"name": "single", "root": "r", "channels": 2},
    {"name": "kaist", "root": "r"},
    {"name": "colorization", "root": "r"},
    {"name": "cityscapes_labels", "root": "r"},
    {"name": "cityscapes_hd", "root": "r", "instances": False},
]


@pytest.mark.parametrize("data", DATASETS, ids=lambda d: "-".join(str(v) for v in d.values()))
def test_declared_channels_are_those_of_the_built_adapter(host, data):
    """What the parameters declare without building (validation) is what the engine reads of the adapter."""
    from p2pcore.engine.build.assemble import image_channels

    ref = host.resolve("dataset", data)
    declared = ref.params.image_channels()
    built = image_channels(host.build("dataset", ref))
    assert declared and {key: built[key] for key in declared} == dict(declared)
    assert set(ref.params.image_channel_keys()) <= set(declared)
    if data["name"].startswith("synthetic"):  # rendered on demand: an item carries exactly the declared images
        item = host.build("dataset", ref).dataset("train", train=False)[0]
        assert {key for key, value in item.items() if getattr(value, "ndim", 0) == 3} == set(declared)
