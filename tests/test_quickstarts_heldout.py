"""The CycleGAN and pix2pixHD quickstarts learn on held-out scenes: a shortened run of each recipe (fewer
scenes and epochs; for pix2pixHD smaller scenes, its encoder and discriminators one level shallower; the same
losses, batch size, rates and schedule) brings its outputs closer to the held-out scenes from the first epoch
to the last. CycleGAN trains without pairs, but the synthetic scenes have them: its thermal -> colour outputs
are scored against the true colour of each test scene, as a user does with `python -m p2p_datasets.scenes`,
`p2p translate` and `p2p eval --pred --real`."""

from __future__ import annotations

import json
from pathlib import Path

import p2pcore
from p2pcore.engine.evaluate.folders import evaluate_folders
from p2pcore.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["train.num_workers=0", "train.device=\"cpu\"", "train.sample_count=2", "train.checkpoint_minutes=0.0"]


def evaluations(run: Path, key: str) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row[key] for row in rows if key in row]


HD = ["data.size=32", "data.train_count=64", "data.test_count=8", "model.encoder.n_downsample=2",
      "model.discriminator.discriminator.n_layers=2", "train.log_every=32", *COMMON]


def test_a_short_pix2pixhd_quickstart_lowers_its_held_out_l1(host, tmp_path):
    from p2pcore.engine.train.trainer import Trainer

    recipe = load_recipe(ROOT / "recipes" / "quickstart_hd.toml", host, HD)
    Trainer(recipe, host, tmp_path / "run").fit()
    l1, psnr = evaluations(tmp_path / "run", "eval/l1"), evaluations(tmp_path / "run", "eval/psnr")
    # measured: L1 0.195 -> 0.171 (13% lower), PSNR 16.80 -> 17.77 dB; the full recipe 0.143 -> 0.133
    assert len(l1) == 4 and l1[-1] < 0.95 * l1[0] and psnr[-1] > psnr[0] + 0.4, (l1, psnr)


CYCLEGAN = ["data.train_count=64", "data.test_count=8", "train.epochs=3", "schedule.decay_epochs=2",
            "train.log_every=32", *COMMON]


def paired_l1(checkpoint: Path, scenes: Path, out: Path, host) -> float:
    """L1 of the checkpoint's a2b outputs of the scenes' thermal images to their true colour images."""
    p2pcore.load(checkpoint, direction="a2b", device="cpu", host=host).translate_folder(scenes / "thermal", out)
    result, matched = evaluate_folders({"--pred": out, "--real": scenes / "colour"}, ["l1"], host, device="cpu")
    assert len(matched.pairs) == 8 and not any(matched.unmatched.values())
    return result.figures["eval/l1"]


def test_a_short_cyclegan_quickstart_brings_unpaired_outputs_closer_to_the_true_scenes(host, tmp_path):
    from p2p_datasets.scenes import write_thermal_scenes

    from p2pcore.engine.train.trainer import Trainer

    recipe = load_recipe(ROOT / "recipes" / "quickstart_cyclegan.toml", host, CYCLEGAN)
    run = tmp_path / "run"
    Trainer(recipe, host, run).fit()
    write_thermal_scenes(tmp_path / "scenes", count=8, size=recipe.data.params.size)
    l1 = [paired_l1(run / "checkpoints" / f"epoch_{epoch:03d}.safetensors", tmp_path / "scenes",
                    tmp_path / f"out{epoch}", host) for epoch in (1, 3)]
    colours = evaluations(run, "eval/a2b/lab_histogram_intersection")
    # measured: paired L1 0.304 -> 0.277 (9% lower), histogram intersection 0.670 -> 0.697; the full recipe
    # 0.278 -> 0.215 and 0.71 -> 0.88
    assert l1[1] < 0.95 * l1[0] and len(colours) == 3 and colours[-1] > colours[0] + 0.01, (l1, colours)
