"""The thermal and quickstart recipes state their learning-rate schedule: `train.epochs` is the whole run (the
reference code's n_epochs + n_epochs_decay), and a recipe without `[schedule]` would keep the rate constant."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcore.recipe import load_recipe, read_with_extends

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
STATED = sorted([*RECIPES.glob("thermal2rgb*.toml"), *RECIPES.glob("quickstart*.toml")])


@pytest.mark.parametrize("path", STATED, ids=lambda p: p.stem)
def test_the_schedule_is_stated_and_decays_within_the_run(host, path):
    assert "schedule" in read_with_extends(path), f"{path.name} has no [schedule]"
    recipe = load_recipe(path, host)
    assert recipe.schedule.name == "constant_then_linear"
    assert 0 < recipe.schedule.params.decay_epochs <= recipe.train.epochs


def test_thermal2rgb_decays_over_the_last_half_as_the_papers(host):
    recipe = load_recipe(RECIPES / "thermal2rgb.toml", host)
    assert (recipe.train.epochs, recipe.schedule.params.decay_epochs) == (10, 5)
    unpaired = load_recipe(RECIPES / "thermal2rgb_unpaired.toml", host)
    assert (unpaired.train.epochs, unpaired.schedule.params.decay_epochs) == (200, 100)


def test_without_a_schedule_the_rate_is_constant(host):
    recipe = load_recipe(RECIPES / "thermal2rgb.toml", host, ["unset=schedule"])
    assert recipe.schedule.name == "constant_then_linear" and recipe.schedule.params.decay_epochs == 0
