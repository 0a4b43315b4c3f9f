"""Continuing a run from any of its checkpoints (`p2p run --resume --from`) and fine-tuning from another run's
weights and optimiser state (`[init] checkpoint` with `optimizer = true`), on tiny models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app, main
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe


def tiny_recipe(**train) -> dict:
    return {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 24, "test_count": 4},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 3, "batch_size": 8, "num_workers": 0, "log_every": 1, "deterministic": True,
                  "device": "cpu", **train},
    }


def make(host, tmp_path: Path, name: str, recipe: dict | None = None, **train) -> Trainer:
    parsed = validate_recipe(recipe or tiny_recipe(**train), host, default_name=name)
    return Trainer(parsed, host, tmp_path / name)


def state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path).tensors.items() if k.startswith(("net.", "optim."))}


def test_resume_from_an_epoch_continues_exactly(host, tmp_path):
    make(host, tmp_path, "whole").fit()
    make(host, tmp_path, "again", keep_optimizer=True).fit()  # epoch checkpoints to continue from
    run = tmp_path / "again"
    result = CliRunner().invoke(app, ["run", "--resume", "--out", str(run), "--quiet",
                                      "--from", str(run / "checkpoints" / "epoch_001.safetensors")])
    assert result.exit_code == 0, result.output
    assert "continuing from epoch_001.safetensors" in result.output and "step 3" in result.output
    whole, again = state(tmp_path / "whole" / "checkpoints" / "latest.safetensors"), state(run / "checkpoints" /
                                                                                             "latest.safetensors")
    assert whole.keys() == again.keys() and all(torch.equal(whole[k], again[k]) for k in whole)
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 9  # cut back to step 3, then appended


def test_resume_from_an_epoch_keeps_the_later_checkpoints(host, tmp_path):
    make(host, tmp_path, "run", keep_optimizer=True).fit()
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--resume", "--out", str(run), "--quiet", "--set", "train.epochs=2",
                                      "--from", str(run / "checkpoints" / "epoch_001.safetensors")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch_001.safetensors", "epoch_002.safetensors", "epoch_003.safetensors", "latest.safetensors"]
    assert read_checkpoint(run / "checkpoints" / "latest.safetensors").metadata["epoch"] == 2


def test_resume_from_another_runs_checkpoint_is_refused(host, tmp_path, monkeypatch, capsys):
    make(host, tmp_path, "mine", max_steps=2).fit()
    make(host, tmp_path, "other", max_steps=2).fit()
    monkeypatch.setattr(sys, "argv", ["p2p", "run", "--resume", "--out", str(tmp_path / "mine"), "--from",
                                      str(tmp_path / "other" / "checkpoints" / "latest.safetensors")])
    with pytest.raises(SystemExit) as ended:
        main()
    shown = " ".join(capsys.readouterr().err.split())
    assert ended.value.code == 2
    assert "is not a checkpoint of the run" in shown and "[init] checkpoint" in shown


def test_init_with_optimizer_carries_adam_moments_and_uses_the_new_lr(host, tmp_path):
    make(host, tmp_path, "source", epochs=1).fit()
    source = tmp_path / "source" / "checkpoints" / "latest.safetensors"
    recipe = tiny_recipe(epochs=2)
    recipe["data"]["train_count"] = 16
    recipe["optim"] = {"lr": 1e-5}
    recipe["init"] = {"checkpoint": str(source), "optimizer": True}
    tuned = make(host, tmp_path, "tuned", recipe=recipe)
    saved = read_checkpoint(source).tensors
    moments = 0
    for player, optimizer in tuned.optimizers.items():
        assert all(group["lr"] == 1e-5 for group in optimizer.param_groups)
        for index, entry in optimizer.state_dict()["state"].items():
            assert torch.equal(entry["exp_avg"], saved[f"optim.{player}.{index}.exp_avg"])
            assert torch.equal(entry["exp_avg_sq"], saved[f"optim.{player}.{index}.exp_avg_sq"])
            moments += 1
    assert moments and tuned.progress.step == 0 and tuned.progress.epoch == 0
    result = tuned.fit()
    assert result.steps == 4 and result.epochs == 2
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()
           if '"lr"' in line]
    assert lrs and all(lr <= 1e-5 for lr in lrs)


def test_init_with_optimizer_refuses_a_checkpoint_that_does_not_fit(host, tmp_path):
    make(host, tmp_path, "source", max_steps=1).fit()
    recipe = tiny_recipe()
    recipe["model"]["generator"]["ngf"] = 16
    recipe["init"] = {"checkpoint": str(tmp_path / "source" / "checkpoints" / "latest.safetensors"),
                      "optimizer": True}
    with pytest.raises(P2PError) as caught:
        make(host, tmp_path, "wider", recipe=recipe)
    assert caught.value.key == "init.checkpoint" and "shape" in caught.value.message
    alone = tiny_recipe(max_steps=1)
    alone["loss"] = {"l1": {"name": "l1"}}  # the source trained a generator only: no discriminator moments
    make(host, tmp_path, "alone", recipe=alone).fit()
    recipe = tiny_recipe()
    recipe["init"] = {"checkpoint": str(tmp_path / "alone" / "checkpoints" / "latest.safetensors"),
                      "optimizer": True}
    with pytest.raises(P2PError) as caught:
        make(host, tmp_path, "adversarial", recipe=recipe)
    assert caught.value.key == "init.checkpoint" and "optimiser state" in caught.value.message


def test_init_optimizer_needs_a_checkpoint(host):
    recipe = tiny_recipe()
    recipe["init"] = {"optimizer": True}
    with pytest.raises(P2PError, match="give the checkpoint"):
        validate_recipe(recipe, host, default_name="none")
