"""The shipped recipes state the pix2pix paper's settings, and each ablation differs from the
full method in exactly the way its table row says."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcore.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

# recipe -> (generator, discriminator, receptive field, conditional, loss terms)
ABLATIONS = {
    "objective_l1": ("unet", "patch", 70, True, {"l1"}),
    "objective_gan": ("unet", "patch", 70, False, {"gan"}),
    "objective_cgan": ("unet", "patch", 70, True, {"gan"}),
    "objective_l1_gan": ("unet", "patch", 70, False, {"gan", "l1"}),
    "objective_l1_cgan": ("unet", "patch", 70, True, {"gan", "l1"}),
    "generator_encdec_l1": ("encoder_decoder", "patch", 70, True, {"l1"}),
    "generator_encdec_l1_cgan": ("encoder_decoder", "patch", 70, True, {"gan", "l1"}),
    "generator_unet_l1": ("unet", "patch", 70, True, {"l1"}),
    "generator_unet_l1_cgan": ("unet", "patch", 70, True, {"gan", "l1"}),
    "rf_1x1_pixelgan": ("unet", "pixel", 1, True, {"gan", "l1"}),
    "rf_16x16": ("unet", "patch", 16, True, {"gan", "l1"}),
    "rf_70x70": ("unet", "patch", 70, True, {"gan", "l1"}),
    "rf_286x286_imagegan": ("unet", "patch", 286, True, {"gan", "l1"}),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_rows(host, name):
    recipe = load_recipe(RECIPES / "ablations" / f"{name}.toml", host)
    generator, discriminator, field, conditional, terms = ABLATIONS[name]
    assert recipe.model["generator"].name == generator
    d = recipe.model["discriminator"]
    assert d.name == discriminator and d.options["conditional"] is conditional
    spec = host.registry.get("discriminator", d.name)
    assert spec.facts(spec.params.model_validate(d.options))["receptive_field"] == field
    assert set(recipe.loss) == terms
    if "gan" in terms:
        assert recipe.loss["gan"].weight == 1.0 and recipe.loss["gan"].model_extra["mode"] == "vanilla"
    if "l1" in terms:
        assert recipe.loss["l1"].weight == 100.0
    assert recipe.data.name == "aligned" and recipe.data.options["direction"] == "BtoA"
    assert (recipe.train.epochs, recipe.optim.lr, recipe.optim.betas) == (200, 2e-4, (0.5, 0.999))
    assert recipe.train.batch_size == (10 if name.startswith("generator_") else 1)


@pytest.mark.parametrize(("name", "epochs", "batch"), [
    ("cityscapes_labels2photo", 200, 1), ("cityscapes_photo2labels", 200, 1), ("facades", 200, 1),
    ("maps", 200, 1), ("edges2photo", 15, 4), ("day2night", 17, 4), ("colorization", 6, 4),
    ("thermal2rgb", 10, 4),
])
def test_task_recipes_use_the_paper_settings(host, name, epochs, batch):
    recipe = load_recipe(RECIPES / f"{name}.toml", host)
    assert (recipe.train.epochs, recipe.train.batch_size) == (epochs, batch)
    generator = recipe.model["generator"].options
    assert recipe.model["generator"].name == "unet" and generator["depth"] == 8 and generator["ngf"] == 64
    assert recipe.model["discriminator"].options["receptive_field"] == 70
    assert recipe.loss["l1"].weight == 100.0


def test_thermal2rgb_missing_root_explains_the_layout(host, tmp_path):
    from p2pcore import P2PError
    from p2pcore.engine.train.trainer import Trainer

    recipe = load_recipe(RECIPES / "thermal2rgb.toml", host, [f"data.root={tmp_path / 'nowhere'}"])
    with pytest.raises(P2PError) as err:
        Trainer(recipe, host, tmp_path / "run")
    text = str(err.value)
    assert "thermal" in text and "rgb" in text and "nowhere" in text
