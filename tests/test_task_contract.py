"""The task contract, exercised by a task written as a third party would (tests/thirdparty_task.py):
parameters, state, two directions, its own loss wiring; and what `p2p validate` catches without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import thirdparty_task
import tomli_w
import torch

from p2pcore import P2PError, load_host
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe, validate_recipe

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def host():
    return load_host(extra_plugins=[("denoise2way", thirdparty_task)])


def recipe(**train) -> dict:
    net = {"name": "unet", "depth": 5, "ngf": 8}
    return {
        "task": {"name": "denoise2way", "noise": 0.4, "half_life": 4},
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 16, "test_count": 2},
        "model": {"forward": net, "backward": net, "critic": {"name": "patch", "ndf": 8, "n_layers": 2,
                                                              "conditional": False}},
        "loss": {"gan": {"name": "gan", "mode": "lsgan", "prefix": "critic"},
                 "to_b": {"name": "l1", "pred": "fake_b", "target": "real_b", "weight": 10.0},
                 "to_a": {"name": "l1", "pred": "fake_a", "target": "real_a", "weight": 10.0}},
        "optim": {"critic": {"lr": 1e-4}},
        "train": {"epochs": 2, "batch_size": 4, "num_workers": 0, "log_every": 1, "device": "cpu",
                  "deterministic": True, **train},
    }


def trainer(host, tmp_path: Path, name: str, data: dict) -> Trainer:
    return Trainer(validate_recipe(data, host, default_name=name), host, tmp_path / name)


def test_third_party_task_trains_with_its_players_and_state(host, tmp_path):
    run = trainer(host, tmp_path, "run", recipe())
    assert set(run.nets) == {"forward", "backward", "critic"}
    assert run.optimizers["critic"].param_groups[0]["lr"] == 1e-4
    assert run.optimizers["generators"].param_groups[0]["lr"] == 2e-4
    assert "forward unet" in run.summary() and "backward unet" in run.summary()  # two roles, one table
    result = run.fit()
    assert int(run.task.seen) == result.steps == 8
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"G/to_a", "G/to_b", "G/gan", "D/gan"} <= set(lines[0])
    evals = [x for x in lines if "samples/a2b/l1" in x]
    assert len(evals) == 2 and "samples/b2a/l1" in evals[0]
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.safetensors")
    assert int(ckpt.tensors["task.seen"]) == 8
    assert {"optim.generators.0.exp_avg", "optim.critic.0.exp_avg"} <= set(ckpt.tensors)


def test_third_party_task_resumes_bit_exactly(host, tmp_path):
    trainer(host, tmp_path, "whole", recipe(epochs=3)).fit()
    trainer(host, tmp_path, "parts", recipe(epochs=3, max_steps=5)).fit()
    resumed = trainer(host, tmp_path, "parts", recipe(epochs=3))
    resumed.fit(resume=True)
    assert int(resumed.task.seen) == 12
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors").tensors
    parts = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").tensors
    keys = [k for k in whole if k.startswith(("net.", "optim.", "task."))]
    assert keys and all(torch.equal(whole[k], parts[k]) for k in keys)


def test_third_party_task_translates_both_ways(host, tmp_path):
    trainer(host, tmp_path, "run", recipe(epochs=1)).fit()
    ckpt = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    a2b = Translator(ckpt, host, device="cpu", protocol="eval")
    b2a = Translator(ckpt, host, device="cpu", protocol="eval", direction="b2a")
    assert a2b.direction == "a2b" and set(a2b.nets) == {"forward"} and set(b2a.nets) == {"backward"}
    assert a2b(torch.zeros(1, 40, 24)).shape == (3, 40, 24)
    assert b2a(torch.zeros(3, 40, 24)).shape == (1, 40, 24)
    with pytest.raises(P2PError, match="does not translate") as caught:
        Translator(ckpt, host, device="cpu", direction="c2d")
    assert caught.value.key == "--direction" and "a2b, b2a" in caught.value.hint


@pytest.mark.parametrize(("change", "key", "message"), [
    (lambda r: r["model"].pop("backward"), "model.backward", "needs a generator as model.backward"),
    (lambda r: r["model"].update(extra={"name": "unet"}), "model.extra", "has no model role 'extra'"),
    (lambda r: r["model"].update(forwrd=r["model"].pop("forward")), "model.forwrd", "did you mean 'forward'"),
    (lambda r: r["loss"]["to_b"].update(pred="fake_bb"), "loss.to_b", "did you mean 'fake_b'"),
    (lambda r: r["loss"]["gan"].update(prefix="critc"), "loss.gan", "'critc_fake'"),
    (lambda r: r["model"].pop("critic"), "model.critic", "loss.gan reads 'critic_fake', which needs model.critic"),
    (lambda r: r["optim"].update(critc={"lr": 1.0}), "optim.critc", "did you mean 'critic'"),
    (lambda r: r["task"].update(nose=1.0), "task.nose", "unknown key 'nose'"),
])
def test_validate_catches_wiring_mistakes(host, change, key, message):
    data = recipe()
    change(data)
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, host)
    text = f"{caught.value.message} {caught.value.hint}"
    assert caught.value.key == key and message in text, (caught.value.key, text)


def test_validate_command_reports_a_miswired_loss_without_torch(tmp_path):
    data = load_recipe(ROOT / "recipes" / "quickstart.toml", load_host()).to_toml_dict()
    data["loss"]["gan"]["prefix"] = "dd"
    path = tmp_path / "miswired.toml"
    path.write_text(tomli_w.dumps(data))
    code = ("import sys\nfrom p2pcore.cli import main\nsys.argv = ['p2p', 'validate', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
            "assert 'torch' not in sys.modules, 'validate imported torch'\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "loss.gan" in result.stderr and "'dd_fake'" in result.stderr and "Traceback" not in result.stderr


def test_task_takes_parameters_in_a_recipe_table(host):
    parsed = validate_recipe(recipe(), host)
    assert parsed.task.params.noise == 0.4
    assert parsed.to_toml_dict()["task"] == {"name": "denoise2way", "noise": 0.4, "half_life": 4}
    assert validate_recipe({**recipe(), "task": "denoise2way"}, host).task.params.noise == 0.3


def test_every_registered_task_declares_a_consistent_spec(host):
    for spec in host.registry.specs("task"):
        declared = spec.params().declare()
        assert declared.directions and set(declared.players) and set(declared.roles)
        for direction in declared.directions.values():
            assert direction.input in declared.images and direction.output in declared.images
        assert set(declared.visuals.values()) <= set(declared.images)


def test_a_self_contradicting_declaration_names_the_culprit():
    from p2pcore.api import Player, Role, TaskSpec

    with pytest.raises(ValueError, match="player 'g' names role 'gen'"):
        TaskSpec(roles={"generator": Role("generator")}, players={"g": Player("generator", ("gen",))},
                 tensors={"fake_b": ("generator",)},
                 directions={"a2b": thirdparty_task.Direction("a", "b", ("generator",), tensor="fake_b")})
