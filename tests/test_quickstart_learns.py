"""The built-in synthetic scenes are learnable: colour follows class and temperature, so a short run of the
quickstart recipe (shrunk to 32 px and a few hundred scenes) lowers its held-out L1 by 30% or more from
the first epoch to the last and raises its PSNR, as the full quickstart does on its 64 px scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from p2pcore.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["data.size=32", "data.train_count=64", "data.test_count=16", "model.generator.depth=5",
         "model.generator.ngf=16", "model.discriminator.ndf=16", "train.epochs=10", "schedule.decay_epochs=5",
         "train.num_workers=0", "train.device=\"cpu\"", "train.sample_count=2", "train.checkpoint_minutes=0.0",
         "eval.metrics=[\"l1\", \"psnr\"]"]


def test_a_short_quickstart_lowers_the_held_out_l1_by_30_percent(host, tmp_path):
    from p2pcore.engine.train.trainer import Trainer

    recipe = load_recipe(ROOT / "recipes" / "quickstart.toml", host, SHORT)
    Trainer(recipe, host, tmp_path / "run").fit()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [row for row in rows if "eval/l1" in row]
    assert [row["epoch"] for row in evals] == list(range(1, 11))
    first, last = evals[0], evals[-1]
    assert last["eval/l1"] <= 0.7 * first["eval/l1"], [round(row["eval/l1"], 4) for row in evals]
    assert last["eval/psnr"] > first["eval/psnr"] + 1.0


def test_each_class_colour_follows_its_temperature():
    """Colours lie on each class's ramp, picked by the surface's temperature with mild variation: on the
    thermal image alone, the warmth of the sky (clouds hold heat) says how grey it is."""
    from p2p_datasets.synthetic import _CLOTH, _PAINT, VARIATION, ramp, render

    assert np.allclose(ramp(_PAINT, 0.0), _PAINT[0]) and np.allclose(ramp(_PAINT, 1.0), _PAINT[-1])
    assert np.allclose(ramp(_CLOTH, 0.5), np.add(_CLOTH[2], _CLOTH[3]) / 2)
    assert VARIATION <= 0.05
    warmth, saturation = [], []
    for i in range(32):
        thermal, colour = render(64, 0, "train", i)
        warmth.append(thermal[:2].mean())
        saturation.append((colour[:2].max(axis=2) - colour[:2].min(axis=2)).mean())
    assert np.corrcoef(warmth, saturation)[0, 1] < -0.6
