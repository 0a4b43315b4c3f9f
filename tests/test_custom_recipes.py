"""recipes/custom/: architectures composed from built-in and example-plugin components with no Python.
Every recipe validates, and one trains for two steps at 32 px."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pcore.cli import app

CUSTOM = Path(__file__).resolve().parents[1] / "recipes" / "custom"
RECIPES = sorted(CUSTOM.glob("*.toml"))

try:
    md.distribution("p2p-example")
except md.PackageNotFoundError:
    pytest.skip("recipes/custom/ use the example plugin's components: pip install -e examples/p2p-example",
                allow_module_level=True)


def test_there_are_custom_recipes():
    assert len(RECIPES) >= 2


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_custom_recipe_validates(recipe):
    lines = recipe.read_text(encoding="utf-8").splitlines()
    header = "\n".join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith("#"))])
    assert header.startswith("# Composes:") and "Needs: pip install -e examples/p2p-example" in header
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_se_resnet_multiscale_noisy_trains_two_steps(host, tmp_path):
    from p2pcore.engine.trainer import Trainer
    from p2pcore.recipe import load_recipe

    small = ["data.size=32", "data.train_count=4", "data.test_count=2", "model.generator.ngf=8",
             "model.generator.n_blocks=1", "model.discriminator.discriminator.discriminator.ndf=8",
             "train.batch_size=2", "train.max_steps=2", "train.num_workers=0", "train.device=\"cpu\"",
             "train.sample_count=2", "train.log_every=1", "train.checkpoint_minutes=0.0"]
    recipe = load_recipe(CUSTOM / "se_resnet_multiscale_noisy.toml", host, small)
    trainer = Trainer(recipe, host, tmp_path / "run")
    result = trainer.fit()
    assert result.steps == 2
    assert {"G/gan", "G/feature_matching", "G/l1", "G/tv"} <= set(result.metrics)
    assert type(trainer.nets["generator"]).__name__ == "SEResNetGenerator"
    assert [type(d).__name__ for d in trainer.nets["discriminator"].scales] == ["NoisyInputWithFeatures"] * 2
