"""recipes/: architectures composed from built-in and this package's components with no Python.
Every recipe validates, and one trains for two steps at 32 px. The marker registers this package
where it is not installed (`PYTHONPATH=. pytest`)."""

from __future__ import annotations

from pathlib import Path

import p2p_example
import pytest

pytestmark = pytest.mark.p2p_plugins(("example", p2p_example))

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.toml"))


def test_there_are_recipes():
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_validates(p2p_host, recipe):
    from p2pcore.recipe import load_recipe

    lines = recipe.read_text(encoding="utf-8").splitlines()
    header = "\n".join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))])
    assert header.startswith("# Composes:") and "Needs: pip install -e examples/p2p-example" in header
    assert f"p2p run examples/p2p-example/recipes/{recipe.name}" in header
    load_recipe(recipe, p2p_host)


def test_se_resnet_multiscale_noisy_trains_two_steps(p2p_host, tmp_path):
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import load_recipe

    small = ["data.size=32", "data.train_count=4", "data.test_count=2", "model.generator.ngf=8",
             "model.generator.n_blocks=1", "model.discriminator.discriminator.discriminator.ndf=8",
             "train.batch_size=2", "train.max_steps=2", "train.num_workers=0", "train.device=\"cpu\"",
             "train.sample_count=2", "train.log_every=1", "train.checkpoint_minutes=0.0"]
    path = next(r for r in RECIPES if r.stem == "se_resnet_multiscale_noisy")
    recipe = load_recipe(path, p2p_host, small)
    trainer = Trainer(recipe, p2p_host, tmp_path / "run")
    result = trainer.fit()
    assert result.steps == 2
    assert {"G/gan", "G/feature_matching", "G/l1", "G/tv"} <= set(result.metrics)
    assert type(trainer.nets["generator"]).__name__ == "SEResNetGenerator"
    assert [type(d).__name__ for d in trainer.nets["discriminator"].scales] == ["NoisyInputWithFeatures"] * 2
