"""Removable keys and task presets: `unset` in a recipe that extends another (and in `--set`), a loss term at
weight 0 off entirely, default loss terms a task supplies, `[eval] best` unset; and the run-name rule
`p2p validate` shares with `p2p run`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import L1_TERM, TINY_GENERATOR, synthetic_data
from p2p_tasks import Pix2PixParams

from p2pcore.api import P2PError, Task, hookimpl
from p2pcore.recipe import load_recipe, read_with_extends, validate_recipe
from p2pcore.rundir import RunDir, safe_name
from p2pcore.testing import host_with

CYCLEGAN = """
task = { name = "cyclegan", pool_size = 0 }
[data]
name = "synthetic_thermal"
size = 32
paired = false
[model.generator_ab]
name = "resnet"
n_blocks = 1
ngf = 8
[model.generator_ba]
name = "resnet"
n_blocks = 1
ngf = 8
[model.discriminator_b]
name = "patch"
ndf = 8
conditional = false
[model.discriminator_a]
name = "patch"
ndf = 8
conditional = false
[loss]
gan_b = { name = "gan", mode = "lsgan", prefix = "d_b" }
gan_a = { name = "gan", mode = "lsgan", prefix = "d_a" }
cycle_a = { name = "l1", pred = "rec_a", target = "real_a", weight = 10.0 }
cycle_b = { name = "l1", pred = "rec_b", target = "real_b", weight = 10.0 }
[train]
epochs = 4
[eval]
metrics = ["lab_histogram_intersection"]
best = "eval/a2b/lab_histogram_intersection"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


PIX2PIX_ON_PAIRS = 'task = "pix2pix"\n[data]\npaired = true\n' + TINY_GENERATOR + "[loss]\n" + L1_TERM
"""What a pix2pix recipe extending the CycleGAN one adds once it has unset the two-sided tables."""


@pytest.fixture
def base(tmp_path) -> Path:
    return write(tmp_path, "cyclegan.toml", CYCLEGAN)


def test_a_one_sided_recipe_extends_a_two_sided_one_by_unsetting(tmp_path, base, host):
    child = write(tmp_path, "one_sided.toml", """
extends = "cyclegan.toml"
unset = ["model.generator_ba", "model.discriminator_a", "model.generator_ab", "model.discriminator_b", "loss",
         "eval.best"]
""" + PIX2PIX_ON_PAIRS)
    recipe = load_recipe(child, host)
    assert set(recipe.model) == {"generator"} and set(recipe.loss) == {"l1"}
    assert recipe.eval.best is None and recipe.eval.metrics[0].name == "lab_histogram_intersection"
    assert recipe.train.epochs == 4 and recipe.data.params.paired  # what was not unset is inherited
    assert "unset" not in recipe.to_toml_dict()  # the resolved recipe is what remains


def test_without_unset_the_inherited_roles_are_refused(tmp_path, base, host):
    child = write(tmp_path, "one_sided.toml", 'extends = "cyclegan.toml"\ntask = "pix2pix"\n')
    with pytest.raises(P2PError, match="has no model role 'generator_ab'"):
        load_recipe(child, host)


def test_unset_then_set_replaces_a_table_whole(tmp_path, base, host):
    child = write(tmp_path, "child.toml", """
extends = "cyclegan.toml"
unset = ["model.generator_ab"]
[model.generator_ab]
name = "resnet"
ngf = 8
""")
    recipe = load_recipe(child, host)
    assert recipe.model["generator_ab"].params.n_blocks == 9  # the default: the inherited 1 is gone
    assert recipe.model["generator_ba"].params.n_blocks == 1


def test_unset_reaches_through_a_chain(tmp_path, base, host):
    write(tmp_path, "middle.toml", 'extends = "cyclegan.toml"\n[train]\nbatch_size = 2\n')
    leaf = write(tmp_path, "leaf.toml", 'extends = "middle.toml"\nunset = ["eval.best", "train.batch_size"]\n')
    data = read_with_extends(leaf)
    assert "best" not in data["eval"] and "batch_size" not in data["train"] and data["train"]["epochs"] == 4
    assert load_recipe(leaf, host).train.batch_size == 1


@pytest.mark.parametrize(("text", "message", "hint"), [
    ('extends = "cyclegan.toml"\nunset = ["eval.bets"]\n', "'eval.bets' is not set by the recipes it extends",
     "did you mean 'eval.best'?"),
    ('extends = "cyclegan.toml"\nunset = ["loss.idt_a"]\n', "'loss.idt_a' is not set", "weight = 0"),
    ('extends = "cyclegan.toml"\nunset = ["model.generator_ab.name.x"]\n', "is not set", ""),
    ('extends = "cyclegan.toml"\nunset = ["eval.metrics.0"]\n', "'eval.metrics' is a list", "whole list"),
    ('extends = "cyclegan.toml"\nunset = "eval.best"\n', "takes a list of key paths", ""),
    ('extends = "cyclegan.toml"\nunset = ["eval..best"]\n', "is not a key path", ""),
    ('unset = ["eval.best"]\n' + CYCLEGAN, "extends none", "drop `unset`"),
])
def test_unset_that_removes_nothing_is_refused_at_its_file(tmp_path, base, host, text, message, hint):
    child = write(tmp_path, "child.toml", text)
    with pytest.raises(P2PError, match=message) as caught:
        load_recipe(child, host)
    assert caught.value.key == "unset" and caught.value.file == str(child) and hint in (caught.value.hint or "")


def test_set_unset_removes_keys(base, host):
    assert load_recipe(base, host, ["unset=eval.best"]).eval.best is None
    recipe = load_recipe(base, host, ['unset=["eval.best", "loss.cycle_a"]'])
    assert recipe.eval.best is None and "cycle_a" not in recipe.loss
    with pytest.raises(P2PError, match="'eval.bets' is not set by the recipe") as caught:
        load_recipe(base, host, ["unset=eval.bets"])
    assert caught.value.key == "unset" and caught.value.file == str(base) and "--set unset=eval.bets" in \
        caught.value.message
    with pytest.raises(P2PError, match="`unset` is not a table"):
        load_recipe(base, host, ["unset.eval=best"])


def test_a_recipe_given_as_data_has_nothing_to_unset(host):
    with pytest.raises(P2PError, match="here there is none") as caught:
        validate_recipe({"unset": ["eval.best"], "data": {"name": "synthetic_thermal"}}, host)
    assert caught.value.key == "unset"


def test_set_reaches_into_a_task_given_by_name(base, host):
    """`task = "pix2pix"` becomes a table when --set names one of its parameters (the name is kept)."""
    recipe = load_recipe(base, host, ["task=cyclegan", "task.pool_size=7"])
    assert recipe.task.name == "cyclegan" and recipe.task.params.pool_size == 7


def test_a_term_at_weight_zero_is_off_and_its_inputs_not_required(tmp_path, host):
    """A pix2pix recipe built on the CycleGAN one: the cycle terms read tensors pix2pix does not have."""
    child = write(tmp_path, "paired.toml", """
extends = "cyclegan.toml"
unset = ["model", "loss.gan_a", "loss.gan_b", "eval.best"]
""" + PIX2PIX_ON_PAIRS + """cycle_a = { weight = 0.0 }
""")
    write(tmp_path, "cyclegan.toml", CYCLEGAN)
    with pytest.raises(P2PError, match="loss.cycle_b reads tensor 'rec_b'") as caught:
        load_recipe(child, host)
    assert caught.value.key == "loss.cycle_b"
    recipe = load_recipe(child, host, ["loss.cycle_b.weight=0"])
    assert recipe.loss["cycle_a"].weight == 0 and recipe.loss["cycle_b"].weight == 0


class PresetParams(Pix2PixParams):
    """pix2pix's declaration with the paper's objective supplied by default."""

    def default_loss(self) -> dict[str, dict[str, Any]]:
        return {"gan": {"name": "gan", "mode": "lsgan"}, "l1": {"name": "l1", "weight": 100.0}}


class Presets:
    @staticmethod
    @hookimpl
    def p2p_register_tasks(register: Any) -> None:
        register("preset", lambda p, c: Task(), params=PresetParams)


@pytest.fixture(scope="module")
def presets():
    return host_with(("presets", Presets))


PRESET = {"task": "preset", "data": {"name": "synthetic_thermal", "size": 32},
          "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}, "discriminator": {"name": "patch"}}}


def test_a_task_supplies_default_loss_terms(presets):
    recipe = validate_recipe(PRESET, presets)
    assert {label: (t.name, t.weight) for label, t in recipe.loss.items()} == {"gan": ("gan", 1.0),
                                                                                "l1": ("l1", 100.0)}
    assert recipe.loss["gan"].model_extra["mode"] == "lsgan"
    again = validate_recipe(recipe.to_toml_dict(), presets)  # a recorded recipe reads back the same
    assert again.to_toml_dict() == recipe.to_toml_dict()


def test_a_recipe_overrides_a_default_term_key_by_key_or_turns_it_off(presets):
    recipe = validate_recipe({**PRESET, "loss": {"l1": {"weight": 10.0}, "gan": {"weight": 0}}}, presets)
    assert recipe.loss["l1"].name == "l1" and recipe.loss["l1"].weight == 10.0
    assert recipe.loss["gan"].weight == 0 and recipe.loss["gan"].model_extra["mode"] == "lsgan"
    switched = validate_recipe({**PRESET, "loss": {"gan": {"name": "l1", "weight": 5.0}}}, presets)
    assert switched.loss["gan"].name == "l1" and "mode" not in (switched.loss["gan"].model_extra or {})
    own = validate_recipe({**PRESET, "loss": {"tv_free": {"name": "l1", "weight": 1.0}}}, presets)
    assert set(own.loss) == {"gan", "l1", "tv_free"}


def test_default_terms_apply_to_a_recipe_file_and_its_set(tmp_path, presets):
    path = write(tmp_path, "preset.toml", """
task = "preset"
[data]
name = "synthetic_thermal"
size = 32
[model.generator]
name = "unet"
depth = 5
ngf = 8
[loss.l1]
weight = 50.0
""")
    recipe = load_recipe(path, presets, ["loss.gan.weight=0"])
    assert recipe.loss["l1"].weight == 50.0 and recipe.loss["gan"].weight == 0


def test_a_default_term_cannot_be_unset_and_the_error_says_how_to_turn_it_off(tmp_path, presets):
    path = write(tmp_path, "preset.toml", 'task = "preset"\n[data]\nname = "synthetic_thermal"\nsize = 32\n'
                                          '[model.generator]\nname = "unet"\ndepth = 5\n')
    with pytest.raises(P2PError, match="nothing to remove") as caught:
        load_recipe(path, presets, ["unset=loss.gan"])
    assert "weight = 0" in caught.value.hint


def test_translating_ignores_the_default_terms(presets):
    recipe = validate_recipe(PRESET, presets, inference=True)
    assert recipe.loss == {}


@pytest.mark.parametrize("name", ["../../x", "a/b", "a\\b", "", ".", ".."])
def test_p2p_validate_refuses_the_run_names_p2p_run_refuses(tmp_path, base, host, name):
    named = write(tmp_path, "named.toml", f'extends = "cyclegan.toml"\nname = {json.dumps(name)}\n')
    with pytest.raises(P2PError) as at_validate:
        load_recipe(named, host)
    with pytest.raises(P2PError) as at_run:
        RunDir.named(name)
    assert at_validate.value.message == at_run.value.message and at_validate.value.key == "name"
    assert at_validate.value.file == str(named) and at_validate.value.hint


def test_good_run_names_pass_and_a_checkpoint_read_to_translate_is_not_held_to_them(base, host):
    assert load_recipe(base, host, ["name=night-drive_2"]).name == "night-drive_2"
    assert safe_name("night-drive_2") == "night-drive_2"
    recorded = load_recipe(base, host).to_toml_dict()
    validate_recipe({**recorded, "name": "../x"}, host, inference=True)


def test_a_run_whose_best_is_unset_keeps_no_best_checkpoint(tmp_path, host):
    from p2pcore.engine.train.trainer import Trainer

    write(tmp_path, "base.toml", "\n" + synthetic_data(4) + TINY_GENERATOR + "[loss]\n" + L1_TERM + """[train]
epochs = 1
batch_size = 2
num_workers = 0
device = "cpu"
[eval]
metrics = ["l1"]
best = "eval/l1"
""")
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\nunset = ["eval.best"]\n')
    out = tmp_path / "run"
    Trainer(load_recipe(child, host), host, out).fit()
    assert (out / "eval" / "epoch_001.json").exists() and (out / "checkpoints" / "latest.safetensors").exists()
    assert not (out / "checkpoints" / "best.safetensors").exists() and not (out / "eval" / "best.json").exists()
