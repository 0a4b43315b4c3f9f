"""Learning-rate schedules as components: their curves over a simulated 200 epochs, per-step
stepping, the plateau schedule fed a logged metric, and exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe


def schedule(host, name: str, **params):
    return host.build("schedule", {"name": name, **params}, key="schedule")


def test_constant_then_linear_is_the_papers_100_plus_100(host):
    s = schedule(host, "constant_then_linear", decay_epochs=100)
    factors = [s.factor(e, 200) for e in range(200)]
    assert factors[:100] == [1.0] * 100
    assert factors[100] == pytest.approx(1 - 1 / 101) and factors[199] == pytest.approx(1 / 101)
    assert all(b < a for a, b in zip(factors[100:], factors[101:], strict=False))
    assert schedule(host, "linear").factor(150, 200) == 1.0  # alias; 0 decay epochs: constant


def test_step_cosine_and_constant(host):
    step = schedule(host, "step", step_epochs=50, gamma=0.5)
    assert [step.factor(e, 200) for e in (0, 49, 50, 99, 100, 199)] == [1, 1, 0.5, 0.5, 0.25, 0.125]
    cosine = schedule(host, "cosine", floor=0.1)
    curve = [cosine.factor(e, 200) for e in range(0, 260)]
    assert curve[0] == 1.0 and curve[100] == pytest.approx(0.55)
    assert all(b <= a for a, b in zip(curve, curve[1:], strict=False))
    assert min(curve) == pytest.approx(0.1) and curve[-1] == pytest.approx(0.1)  # never climbs back
    warm = schedule(host, "cosine", warmup_epochs=4)
    assert warm.factor(0, 200) == pytest.approx(0.2) and warm.factor(4, 200) == pytest.approx(1.0)
    assert schedule(host, "constant").factor(123.5, 200) == 1.0


def test_plateau_drops_after_patience_and_waits_for_epochs_that_evaluate(host):
    plateau = schedule(host, "plateau", patience=2, gamma=0.5)
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.92, 0.91]):
        plateau.observe(epoch, {"eval/l1": value})
    assert plateau.factor(5, 200) == 0.5
    restored = schedule(host, "plateau", patience=2, gamma=0.5)
    restored.load_state_dict(plateau.state_dict())
    assert restored.state_dict() == plateau.state_dict()
    plateau.observe(6, {"samples/l1": 1.0})  # an epoch without evaluation changes nothing
    assert plateau.state_dict() == restored.state_dict()


def test_a_plateau_on_a_figure_the_run_never_logs_is_refused(host):
    with pytest.raises(P2PError, match="not a figure this run logs") as caught:
        validate_recipe(tiny(schedule={"name": "plateau", "metric": "eval/psnr"}), host)
    assert caught.value.key == "schedule" and "samples/l1" in caught.value.hint


def tiny(**changes) -> dict:
    recipe = {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 16, "test_count": 2},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 4, "batch_size": 4, "num_workers": 0, "log_every": 1, "device": "cpu",
                  "deterministic": True},
    }
    recipe.update(changes)
    return recipe


def test_per_step_schedule_changes_the_rate_within_an_epoch(host, tmp_path):
    data = tiny(schedule={"name": "cosine", "per": "step"})
    trainer = Trainer(validate_recipe(data, host), host, tmp_path / "run")
    trainer.fit()
    import json

    rates = [json.loads(x)["lr"] for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if "lr" in json.loads(x)]
    assert len(set(rates)) == len(rates)  # every step its own rate
    assert rates[0] == 2e-4  # the rate each step trained with: the last at 3.75 of 4 epochs
    assert rates[-1] == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi * 3.75 / 4)), abs=1e-12)


def test_plateau_schedule_resumes_exactly(host, tmp_path):
    data = tiny(schedule={"name": "plateau", "metric": "samples/l1", "patience": 0, "gamma": 0.5, "threshold": 10.0})
    Trainer(validate_recipe(data, host), host, tmp_path / "whole").fit()
    parts = {**data, "train": {**data["train"], "max_steps": 9}}
    Trainer(validate_recipe(parts, host), host, tmp_path / "parts").fit()
    Trainer(validate_recipe(data, host), host, tmp_path / "parts").fit(resume=True)
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors")
    part = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors")
    assert whole.metadata["schedule"] == part.metadata["schedule"]
    assert whole.metadata["schedule"]["current"] < 1.0  # it did drop
    assert all(torch.equal(whole.tensors[k], part.tensors[k]) for k in whole.tensors if k.startswith("net."))
