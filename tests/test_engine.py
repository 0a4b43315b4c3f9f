"""Training end to end on tiny models: learning, translate from a checkpoint alone, exact resume,
the divergence guard and damaged checkpoints."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, needs_shared
from PIL import Image

from p2pcore import P2PError, load_host
from p2pcore.api import LossParams, LossTerm, hookimpl
from p2pcore.checkpoint.files import latest_valid_checkpoint, read_checkpoint
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe


def tiny_recipe(**train) -> dict:
    return {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 48, "test_count": 4},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 3, "batch_size": 8, "num_workers": 0, "log_every": 1, **train},
    }


def make(host, tmp_path: Path, name: str = "run", recipe: dict | None = None, **train) -> Trainer:
    parsed = validate_recipe(recipe or tiny_recipe(**train), host, default_name=name)
    return Trainer(parsed, host, tmp_path / name)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path).tensors.items() if k.startswith(("net.", "optim."))}


def test_training_lowers_l1_and_writes_the_run(host, tmp_path):
    recipe = tiny_recipe(epochs=4, batch_size=4)
    recipe["data"]["train_count"] = 64
    trainer = make(host, tmp_path, recipe=recipe)
    before = trainer.sample(trainer.sample_batch(), tmp_path / "before.png")["samples/l1"]
    result = trainer.fit()
    run = tmp_path / "run"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "G/l1" in line]
    assert {"G/gan", "G/l1", "D/gan", "lr", "skipped_files"} <= set(steps[0])
    evals = [line["samples/l1"] for line in lines if "samples/l1" in line]
    assert len(evals) == 4
    assert evals[-1] < 0.85 * before, (before, evals)
    assert evals[-1] < evals[0]
    assert result.steps == 4 * 16 and result.epochs == 4
    assert (run / "recipe.toml").exists() and (run / "samples" / "epoch_004.png").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch_002.safetensors", "epoch_003.safetensors", "epoch_004.safetensors", "latest.safetensors"]
    grid = Image.open(run / "samples" / "epoch_004.png")
    assert grid.size == (3 * 34 + 2, 4 * 34 + 2)


def test_discriminator_absent_without_adversarial_term(host, tmp_path):
    recipe = tiny_recipe(max_steps=2)
    recipe["loss"] = {"l1": {"name": "l1"}}
    trainer = make(host, tmp_path, recipe=recipe)
    assert set(trainer.nets) == {"generator"} and set(trainer.optimizers) == {"generator"}
    trainer.fit()


def test_translate_from_checkpoint_alone_keeps_sizes_and_names(host, tmp_path):
    make(host, tmp_path, epochs=1).fit()
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"wide.png": (37, 70), "tall.jpg": (50, 33)}.items():
        Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8)).save(inputs / name)
    from typer.testing import CliRunner

    from p2pcore.cli import app

    ckpt = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    result = CliRunner().invoke(app, ["translate", str(ckpt), str(inputs), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, size in {"wide.png": (70, 37), "tall.jpg": (33, 50)}.items():
        out = Image.open(tmp_path / "out" / name)
        assert out.size == size and out.mode == "RGB"


def test_paper_protocol_leaves_running_statistics_alone(host, tmp_path):
    make(host, tmp_path, epochs=1).fit()
    ckpt = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    image = torch.rand(1, 32, 32) * 2 - 1
    paper = Translator(ckpt, host, protocol="paper", seed=3, device="cpu")
    before = {k: v.clone() for k, v in paper.nets["generator"].state_dict().items()}
    first, second = paper(image), paper(image)
    assert torch.equal(first, second)  # seeded dropout: repeatable
    assert all(torch.equal(before[k], v) for k, v in paper.nets["generator"].state_dict().items())
    evaluated = Translator(ckpt, host, protocol="eval", device="cpu")
    assert torch.equal(evaluated(image), evaluated(image))
    assert not torch.allclose(first, evaluated(image))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_bit_exact(host, tmp_path, workers):
    common = {"epochs": 3, "num_workers": workers, "deterministic": True, "log_every": 2, "device": "cpu"}
    make(host, tmp_path, "whole", **common).fit()
    make(host, tmp_path, "parts", max_steps=7, **common).fit()  # stops mid-epoch 2
    part = latest_valid_checkpoint(tmp_path / "parts" / "checkpoints")
    assert read_checkpoint(part).metadata["step"] == 7
    make(host, tmp_path, "parts", **common).fit(resume=True)
    whole = weights(tmp_path / "whole" / "checkpoints" / "latest.safetensors")
    parts = weights(tmp_path / "parts" / "checkpoints" / "latest.safetensors")
    assert whole.keys() == parts.keys()
    assert all(torch.equal(whole[k], parts[k]) for k in whole)
    lines = (tmp_path / "parts" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 18  # appended, not restarted


def test_existing_run_needs_resume(host, tmp_path):
    make(host, tmp_path, max_steps=1).fit()
    with pytest.raises(P2PError, match="--resume"):
        make(host, tmp_path, max_steps=1).fit()


class NaNAfter(LossTerm):
    def __init__(self, start: int) -> None:
        self.calls, self.start = 0, start

    def generator_loss(self, t):
        self.calls += 1
        value = t["fake_b"].abs().mean()
        return value * float("nan") if self.calls > self.start else value


def test_divergence_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    class Start(LossParams):
        start: int = 3

        def reads(self) -> frozenset[str]:
            return frozenset({"fake_b"})

    plugin = types.SimpleNamespace(
        __name__="nan_plugin",
        p2p_register_losses=hookimpl(lambda register: register(
            "nan_after", lambda p, c: NaNAfter(p.start), params=Start)))
    host = load_host(extra_plugins=[("nan", plugin)])
    recipe = tiny_recipe(divergence_patience=4, checkpoint_steps=1, epochs=5)
    recipe["loss"]["bad"] = {"name": "nan_after"}
    trainer = make(host, tmp_path, recipe=recipe)
    with pytest.raises(P2PError, match="diverged") as err:
        trainer.fit()
    assert err.value.key == "loss.bad"
    good = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.safetensors")
    assert good.metadata["step"] == 3
    assert all(torch.isfinite(v).all() for k, v in good.tensors.items() if k.startswith("net."))


def test_damaged_checkpoints_are_refused_and_skipped(host, tmp_path):
    make(host, tmp_path, epochs=2).fit()
    ckpts = tmp_path / "run" / "checkpoints"
    latest = ckpts / "latest.safetensors"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    with pytest.raises(P2PError) as err:
        read_checkpoint(latest)
    assert err.value.file == str(latest) and "truncated" in err.value.hint
    assert latest_valid_checkpoint(ckpts).name == "epoch_002.safetensors"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(P2PError):
        Translator(garbage, host)


@needs_shared("data", "roadscene")
def test_real_thermal_to_colour_on_roadscene(host, tmp_path):
    recipe = tiny_recipe(max_steps=6, epochs=1, batch_size=2)
    recipe["data"] = {"name": "paired_folders", "root": str(SHARED / "data" / "roadscene"),
                      "a": {"dir": "ir", "channels": 1}, "b": {"dir": "rgb", "channels": 3},
                      "load_size": 72, "crop_size": 64}
    recipe["model"]["generator"]["depth"] = 6
    trainer = make(host, tmp_path, recipe=recipe)
    assert len(trainer.train_set) == 221
    trainer.fit()
    source = sorted((SHARED / "data" / "roadscene" / "ir").iterdir())[0]
    translator = Translator(tmp_path / "run" / "checkpoints" / "latest.safetensors", host)
    translator.translate_file(source, tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").size == Image.open(source).size


def test_keeps_the_last_k_and_every_nth_epoch(host, tmp_path):
    recipe = tiny_recipe(epochs=5, keep_last=1, keep_every=2)
    recipe["data"]["train_count"] = 8
    make(host, tmp_path, recipe=recipe).fit()
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == ["epoch_002.safetensors", "epoch_004.safetensors", "epoch_005.safetensors", "latest.safetensors"]
    assert oct((tmp_path / "run" / "checkpoints" / "latest.safetensors").stat().st_mode & 0o777) != oct(0o600)


def _pairs_with_one_corrupt_png(root: Path, n: int = 8) -> Path:
    """PNG pairs where one file has an intact header and tail but damaged image data, so only
    decoding (during training) finds it."""
    rng = np.random.default_rng(0)
    for side, channels in (("thermal", 1), ("rgb", 3)):
        (root / side).mkdir(parents=True)
        for i in range(n):
            shape = (40, 40) if channels == 1 else (40, 40, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / side / f"{i:02d}.png")
    bad = root / "rgb" / "03.png"
    data = bytearray(bad.read_bytes())
    start = data.index(b"IDAT") + 20
    data[start:start + 200] = bytes(200)
    bad.write_bytes(bytes(data))
    return bad


@pytest.mark.parametrize(("skip", "workers"), [(True, 0), (False, 0), (False, 2)])
def test_corrupt_file_found_while_training(host, tmp_path, skip, workers):
    bad = _pairs_with_one_corrupt_png(tmp_path / "data")
    recipe = tiny_recipe(epochs=1, batch_size=2, num_workers=workers)
    recipe["data"] = {"name": "paired_folders", "root": str(tmp_path / "data"), "a": {"dir": "thermal", "channels": 1},
                      "b": {"dir": "rgb", "channels": 3}, "load_size": 36, "crop_size": 32, "skip_corrupt": skip}
    trainer = make(host, tmp_path, recipe=recipe)  # the header check passes: the damage is inside the data
    if not skip:
        with pytest.raises(P2PError) as err:
            trainer.fit()
        assert err.value.file == str(bad)
        return
    with pytest.warns(UserWarning, match="03.png"):
        trainer.fit()
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(line.get("skipped_files", 0) for line in lines) >= 1


@pytest.mark.parametrize("workers", [0, 2])
def test_native_sizes_in_one_batch_are_a_clear_error(host, tmp_path, workers):
    root = tmp_path / "data"
    for side, channels in (("thermal", 1), ("rgb", 3)):
        (root / side).mkdir(parents=True)
        for i, size in enumerate([(32, 32), (32, 48), (32, 32), (48, 32)]):
            shape = size if channels == 1 else (*size, 3)
            Image.fromarray(np.zeros(shape, np.uint8)).save(root / side / f"{i}.png")
    recipe = tiny_recipe(epochs=1, batch_size=2, num_workers=workers)
    recipe["data"] = {"name": "paired_folders", "root": str(root), "a": {"dir": "thermal", "channels": 1},
                      "b": {"dir": "rgb", "channels": 3}, "preprocess": "none", "flip": False}
    with pytest.raises(P2PError, match="differ in size") as err:
        make(host, tmp_path, recipe=recipe).fit()
    assert err.value.key == "train.batch_size" and "batch_size = 1" in err.value.hint
    assert "Traceback" not in str(err.value)
    recipe["train"]["batch_size"] = 1
    make(host, tmp_path, "native", recipe=recipe).fit()  # one image per step: native sizes train

