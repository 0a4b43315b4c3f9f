"""CycleGAN: the built-in task on the built-in data used without its pairing; the image pool;
exact resume with a full pool; translation and export in both directions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from p2p_tasks.pool import ImagePool
from PIL import Image
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe, validate_recipe

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart_cyclegan.toml"


def tiny(host, **train) -> dict:
    data = load_recipe(QUICKSTART, host).to_toml_dict()
    data["data"].update(size=32, train_count=24, test_count=2)
    data["translate"].update(load_size=32)
    for role in ("generator_ab", "generator_ba"):
        data["model"][role].update(ngf=8, n_blocks=1)
    for role in ("discriminator_a", "discriminator_b"):
        data["model"][role].update(ndf=8)
    data["train"].update({"epochs": 2, "batch_size": 1, "num_workers": 0, "log_every": 4, "device": "cpu", **train})
    return data


def make(host, tmp_path: Path, name: str, data: dict) -> Trainer:
    return Trainer(validate_recipe(data, host, default_name=name), host, tmp_path / name)


def test_image_pool_returns_stored_images_half_the_time_once_full():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: every image goes in and comes back
    returned_old = 0
    trials = 2000
    for i in range(trials):
        new = torch.full((1, 1, 1, 1), 100.0 + i)
        out = pool.query(new)
        returned_old += int(not torch.equal(out, new))
        assert len(pool.images) == 4
    assert abs(returned_old / trials - 0.5) < 0.05
    assert torch.equal(ImagePool(0).query(first), first)


def test_pool_state_round_trips():
    pool = ImagePool(3)
    pool.query(torch.randn(2, 3, 8, 8))
    again = ImagePool(3)
    again.load_state_dict(pool.state_dict())
    assert len(again.images) == 2 and all(torch.equal(a, b) for a, b in zip(again.images, pool.images, strict=True))


def test_cyclegan_trains_and_the_cycle_loss_falls(host, tmp_path):
    data = tiny(host, epochs=3, log_every=12)
    data["data"]["train_count"] = 48
    run = make(host, tmp_path, "run", data)
    assert set(run.nets) == {"generator_ab", "generator_ba", "discriminator_a", "discriminator_b"}
    assert set(run.optimizers) == {"generator", "discriminator"}
    run.fit()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "G/cycle_a" in x]
    assert {"G/gan_a", "G/gan_b", "D/gan_a", "D/gan_b", "G/cycle_b"} <= set(steps[0])
    assert steps[0]["lr/discriminator"] == pytest.approx(4 * steps[0]["lr"])  # the recipe's D learns at 4x G's rate
    first = steps[0]["G/cycle_a"] + steps[0]["G/cycle_b"]
    last = steps[-1]["G/cycle_a"] + steps[-1]["G/cycle_b"]
    assert last < 0.7 * first, (first, last)
    grid = Image.open(tmp_path / "run" / "samples" / "epoch_003.png")
    assert grid.size == (6 * 34 + 2, 2 * 34 + 2)  # real_a fake_b rec_a real_b fake_a rec_b


def test_resume_mid_run_with_a_full_pool_is_bit_exact(host, tmp_path):
    data = tiny(host, epochs=2, deterministic=True)
    data["task"] = {"name": "cyclegan", "pool_size": 3}
    make(host, tmp_path, "whole", data).fit()
    make(host, tmp_path, "parts", {**data, "train": {**data["train"], "max_steps": 29}}).fit()
    part = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors")
    assert part.metadata["step"] == 29 and "task.pool_b.2" in part.tensors  # stopped mid-epoch, pool full
    make(host, tmp_path, "parts", data).fit(resume=True)
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors").tensors
    parts = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").tensors
    keys = [k for k in whole if k.startswith(("net.", "optim.", "task."))]
    assert any(k.startswith("task.pool_a.") for k in keys)
    assert all(torch.equal(whole[k], parts[k]) for k in keys)


def test_translate_and_export_both_directions(host, tmp_path):
    make(host, tmp_path, "run", tiny(host, epochs=1)).fit()
    ckpt = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 44), dtype=np.uint8)).save(inputs / "thermal.png")
    Image.fromarray(rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)).save(inputs / "colour.png")
    runner = CliRunner()
    result = runner.invoke(app, ["translate", str(ckpt), str(inputs / "thermal.png"), str(tmp_path / "b.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "b.png").mode == "RGB" and Image.open(tmp_path / "b.png").size == (44, 30)
    result = runner.invoke(app, ["translate", str(ckpt), str(inputs / "colour.png"), str(tmp_path / "a.png"),
                                 "--direction", "b2a"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "a.png").mode == "L" and Image.open(tmp_path / "a.png").size == (44, 30)
    result = runner.invoke(app, ["translate", str(ckpt), str(inputs / "colour.png"), str(tmp_path / "x.png"),
                                 "--direction", "a2c"])
    assert result.exit_code != 0 and isinstance(result.exception, P2PError) and "b2a" in result.exception.hint
    for direction, channels in (("a2b", 1), ("b2a", 3)):
        out = tmp_path / f"{direction}.pt"
        result = runner.invoke(app, ["export", str(ckpt), str(out), "--format", "torchscript",
                                     "--direction", direction])
        assert result.exit_code == 0, result.output
        module = torch.jit.load(str(out))
        assert module(torch.zeros(1, channels, 32, 32)).shape == (1, 4 - channels, 32, 32)


def test_identity_terms_need_matching_channels(host, tmp_path):
    data = tiny(host, max_steps=1)
    data["loss"]["idt_b"] = {"name": "l1", "pred": "idt_b", "target": "real_b", "weight": 5.0}
    with pytest.raises(P2PError, match="same number of channels") as caught:
        make(host, tmp_path, "run", data).fit()
    assert caught.value.key == "loss.idt_b"


def test_conditional_discriminators_are_refused(host):
    data = tiny(host)
    data["model"]["discriminator_b"]["conditional"] = True
    with pytest.raises(P2PError, match="single images") as caught:
        validate_recipe(data, host)
    assert caught.value.key == "model.discriminator_b.conditional"


@pytest.mark.parametrize("name", ["horse2zebra", "thermal2rgb_unpaired", "quickstart_cyclegan"])
def test_cyclegan_recipes_follow_the_paper(host, name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.toml", host)
    assert recipe.task.name == "cyclegan" and recipe.task.params.pool_size == 50
    assert recipe.train.batch_size == 1
    assert all(recipe.model[r].params.norm.name == "instance" for r in recipe.model)
    assert {t.params.mode for t in (recipe.loss["gan_a"].ref(), recipe.loss["gan_b"].ref())} == {"lsgan"}
    assert recipe.loss["cycle_a"].weight == recipe.loss["cycle_b"].weight == 10.0
    if name != "quickstart_cyclegan":
        assert recipe.model["generator_ab"].params.n_blocks == 9 and recipe.train.epochs == 200
        assert recipe.schedule.name == "constant_then_linear" and recipe.schedule.params.decay_epochs == 100
        assert recipe.model["discriminator_a"].params.receptive_field == 70
    if name == "horse2zebra":
        assert recipe.loss["idt_a"].weight == recipe.loss["idt_b"].weight == 0.5 * 10.0
