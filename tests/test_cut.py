"""CUT and FastCUT: the PatchNCE loss against a direct computation, the task's projection heads, the loss
falling in a short run, exact resume with the heads and their optimiser state, translation and export holding
the generator alone, the recipe checks at validation and the quickstart run with its report."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_without_torch
from p2p_losses.patch_nce import layered_patch_nce, patch_nce
from p2p_tasks.cut import CUTTask
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.api import Tap, load_trained
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe, validate_recipe

TAU = 0.07


def direct_patch_nce(q: torch.Tensor, k: torch.Tensor, tau: float) -> float:
    """Written out: for every image and every patch i, logits [q_i.k_i, q_i.k_j for j != i, -10 at j = i] / tau,
    the positive first; the cross-entropy towards it, averaged over every patch of every image."""
    images, patches, _ = q.shape
    total, count = 0.0, 0
    for b in range(images):
        for i in range(patches):
            logits = [float(q[b, i] @ k[b, i]) / tau]
            for j in range(patches):
                logits.append(-10.0 / tau if j == i else float(q[b, i] @ k[b, j]) / tau)
            top = max(logits)
            log_sum = top + math.log(sum(math.exp(x - top) for x in logits))
            total += log_sum - logits[0]
            count += 1
    return total / count


def unit(*shape: int) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    return x / x.norm(dim=-1, keepdim=True)


def test_patch_nce_matches_a_direct_computation():
    torch.manual_seed(0)
    for images, patches, dim in ((1, 5, 4), (2, 7, 3), (3, 1, 6)):
        q, k = unit(images, patches, dim), unit(images, patches, dim)
        got = float(patch_nce(q, k, TAU))
        assert got == pytest.approx(direct_patch_nce(q.float(), k.float(), TAU), rel=1e-5), (images, patches, dim)


def test_patch_nce_is_small_when_each_query_is_its_own_key_and_negatives_stay_within_an_image():
    torch.manual_seed(1)
    k = unit(2, 6, 8)
    assert float(patch_nce(k.clone(), k, TAU)) < float(patch_nce(unit(2, 6, 8), k, TAU))
    # the second image's keys are not the first image's negatives: changing them leaves image 0's loss alone
    q = unit(2, 6, 8)
    other = k.clone()
    other[1] = unit(6, 8)
    first = direct_patch_nce(q[:1].float(), k[:1].float(), TAU)
    mixed = 2 * float(patch_nce(q, other, TAU)) - direct_patch_nce(q[1:].float(), other[1:].float(), TAU)
    assert mixed == pytest.approx(first, rel=1e-4)


def test_layers_are_averaged_and_keys_get_no_gradient():
    torch.manual_seed(2)
    pairs = [(unit(2, 4, 5).requires_grad_(), unit(2, 4, 5).requires_grad_()) for _ in range(3)]
    loss = layered_patch_nce(pairs, TAU)
    expected = sum(direct_patch_nce(q.detach().float(), k.detach().float(), TAU) for q, k in pairs) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(q.grad is not None and q.grad.abs().sum() > 0 for q, _ in pairs)
    assert all(k.grad is None for _, k in pairs)


# -- the task -----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart_cut.toml"
TINY_SET = ["data.train_count=4", "data.test_count=2", "train.epochs=1", "schedule.decay_epochs=0",
            "train.device=cpu", "train.num_workers=0", "model.generator.ngf=8", "model.generator.n_blocks=1",
            "model.discriminator.ndf=8", "task.nce_layers=[0,2,3,4]", "task.num_patches=16",
            "task.projector_width=16", "train.log_every=2", "eval.max_items=2"]


def tiny(host, task: dict | None = None, **train) -> dict:
    """The quickstart at test size: 1 residual block, 16 patches per layer, 16-wide heads."""
    data = load_recipe(QUICKSTART, host).to_toml_dict()
    data.pop("loss")  # the task's own terms, for the mode asked
    data["task"].update({"nce_layers": [0, 2, 3, 4], "num_patches": 16, "projector_width": 16, **(task or {})})
    data["data"].update(train_count=12, test_count=2)
    data["model"]["generator"].update(ngf=8, n_blocks=1)
    data["model"]["discriminator"].update(ndf=8)
    data["train"].update({"epochs": 2, "num_workers": 0, "log_every": 4, "device": "cpu", **train})
    data["schedule"]["decay_epochs"] = 1
    return data


def make(host, tmp_path: Path, name: str, data: dict) -> Trainer:
    return Trainer(validate_recipe(data, host, default_name=name), host, tmp_path / name)


class Mirror(nn.Module):
    """A generator that returns its input, and its input as its one tap: queries equal keys exactly when the
    task flips the output's features back onto the input's places."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def taps(self) -> tuple[Tap, ...]:
        return (Tap("input", 3),)

    def feature_maps(self, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
        return [x * self.scale for _ in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


@pytest.mark.parametrize("flip", [False, True])
def test_queries_and_keys_share_places_and_flips_are_undone(host, flip):
    params = host.registry.get("task", "cut").params(nce_layers=[0, 0], num_patches=5, projector_width=8,
                                                     flip_equivariance=flip)
    task = CUTTask(params)
    task.g_channels = 3
    nets = {"generator": Mirror()}
    nets["projector"] = task.build_own_networks(None, nets)["projector"]
    image = torch.randn(2, 3, 4, 6)
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        t = task.step_tensors(nets, {"a": image, "b": image})
        flipped = not torch.equal(t["fake_b"], image)
        seen.add(flipped)
        assert torch.equal(t["fake_b"], torch.flip(image, dims=[3]) if flipped else image)
        pairs = t["nce_ab"]
        assert len(pairs) == 2
        for q, k in pairs:
            assert q.shape == k.shape == (2, 5, 8)
            assert torch.allclose(q.norm(dim=-1), torch.ones(2, 5), atol=1e-5)
            assert torch.allclose(q, k, atol=1e-6)  # same places, flips undone
    assert seen == ({False, True} if flip else {False})
    with torch.no_grad():  # sample grids never flip
        assert torch.equal(task.step_tensors(nets, {"a": image, "b": image})["fake_b"], image)


def test_heads_are_the_task_own_network_and_defaults_follow_the_mode(host):
    recipe = validate_recipe(tiny(host), host)
    assert {label: (t.ref().name, t.weight) for label, t in recipe.loss.items()} == {
        "gan": ("gan", 1.0), "nce": ("patch_nce", 0.5), "nce_idt": ("patch_nce", 0.5)}
    fast = validate_recipe(tiny(host, {"mode": "fastcut"}), host)
    assert {label: t.weight for label, t in fast.loss.items()} == {"gan": 1.0, "nce": 10.0}
    assert fast.task.params.flips() and not fast.task.params.identity()
    spec = recipe.task.params.declare()
    assert set(spec.roles) == {"generator", "discriminator"} and set(spec.own) == {"projector"}
    assert spec.own["projector"].player == "generator" and not spec.own["projector"].translation
    assert list(spec.directions) == ["a2b"] and list(spec.visuals) == ["real_a", "fake_b", "real_b", "idt_b"]


def test_the_nce_loss_falls_in_a_short_run(host, tmp_path):
    data = tiny(host, epochs=3, log_every=6)
    data["data"]["train_count"] = 24
    run = make(host, tmp_path, "run", data)
    assert set(run.nets) == {"generator", "discriminator", "projector"}
    run.fit()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in lines if "G/nce" in x]
    assert {"G/gan", "G/nce", "G/nce_idt", "D/gan"} <= set(steps[0])
    first, last = steps[0]["G/nce"], steps[-1]["G/nce"]
    assert last < 0.8 * first, (first, last)
    grid = Image.open(tmp_path / "run" / "samples" / "epoch_003.png")
    assert grid.size == (4 * 34 + 2, 2 * 34 + 2)  # real_a fake_b real_b idt_b


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_resume_mid_run_is_bit_exact_with_the_heads_and_their_optimiser_state(host, tmp_path, mode):
    data = tiny(host, {"mode": mode}, epochs=2, deterministic=True)
    data["data"]["train_count"] = 8
    make(host, tmp_path, "whole", data).fit()
    make(host, tmp_path, "parts", {**data, "train": {**data["train"], "max_steps": 11}}).fit()
    assert read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").metadata["step"] == 11
    make(host, tmp_path, "parts", data).fit(resume=True)
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors").tensors
    parts = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").tensors
    keys = [k for k in whole if k.startswith(("net.", "optim.", "task."))]
    assert any(k.startswith("net.projector.") for k in keys)
    heads = sum(1 for k in whole if k.startswith("net.projector."))
    generator = sum(1 for k in whole if k.startswith("net.generator."))
    moments = {k.split(".")[2] for k in whole if k.startswith("optim.generator.") and k.endswith(".exp_avg")}
    assert len(moments) == heads + generator  # Adam's state of every head and generator tensor
    assert set(whole) == set(parts) and all(torch.equal(whole[k], parts[k]) for k in keys)


def test_translate_and_export_hold_the_generator_alone(host, tmp_path):
    make(host, tmp_path, "run", tiny(host, epochs=1)).fit()
    ckpt = tmp_path / "run" / "checkpoints" / "latest.safetensors"
    tensors = read_checkpoint(ckpt).tensors
    generator = sum(v.numel() for k, v in tensors.items() if k.startswith("net.generator."))
    assert any(k.startswith("net.projector.") for k in tensors)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 44), dtype=np.uint8)).save(tmp_path / "thermal.png")
    runner = CliRunner()
    result = runner.invoke(app, ["translate", str(ckpt), str(tmp_path / "thermal.png"), str(tmp_path / "b.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "b.png").mode == "RGB" and Image.open(tmp_path / "b.png").size == (44, 30)
    opened = load_trained(ckpt, roles=["generator"])
    assert set(opened.nets) == {"generator"}
    assert sum(p.numel() for p in opened.nets["generator"].parameters()) == generator
    out = tmp_path / "g.pt"
    result = runner.invoke(app, ["export", str(ckpt), str(out), "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    module = torch.jit.load(str(out))
    assert sum(p.numel() for p in module.parameters()) == generator
    assert not any("projector" in name or "heads" in name for name, _ in module.named_parameters())
    assert module(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)  # grey in, colour out


# -- validation ---------------------------------------------------------------------------------------------

def test_p2p_validate_refuses_layers_the_generator_lacks_with_exit_2_and_the_key():
    done = subprocess.run([sys.executable, "-m", "p2pcore", "validate", str(QUICKSTART), "--set",
                           "task.nce_layers=[0,40]"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "key:  task.nce_layers" in done.stderr and "no layer 40" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(("recipe", "sets", "key", "fragment"), [
    ("quickstart_cut", ["loss.nce.weight=0", "loss.nce_idt.weight=0"], "loss", "no patch_nce term"),
    ("quickstart_cut", ["model.discriminator.conditional=true"], "model.discriminator.conditional", "alone"),
    ("thermal2rgb_cut", ["data.a_channels=2"], "data.a_channels", "same channels"),
    ("quickstart_cut", ["task.nce_idt=false", 'loss.idt={name="patch_nce",pair="idt"}'], "task.nce_idt",
     "identity term is off"),
    ("quickstart_cut", ["model.generator.n_blocks=2"], "task.nce_layers", "no layer 6"),
])
def test_what_cut_cannot_train_is_refused_at_validation_with_its_key(recipe, sets, key, fragment):
    result = CliRunner().invoke(app, ["validate", str(ROOT / "recipes" / f"{recipe}.toml"),
                                      *(x for s in sets for x in ("--set", s))])
    assert isinstance(result.exception, P2PError), result.output
    assert result.exception.key == key and fragment in result.exception.message, result.exception


def test_the_cut_recipes_validate_without_torch_and_state_the_paper():
    for name in ("quickstart_cut", "horse2zebra_cut", "thermal2rgb_cut"):
        probe = run_without_torch(["validate", str(ROOT / "recipes" / f"{name}.toml")])
        assert probe.returncode == 0, probe.stderr


@pytest.mark.parametrize("name", ["horse2zebra_cut", "thermal2rgb_cut"])
def test_cut_recipes_follow_the_paper(host, name):
    recipe = load_recipe(ROOT / "recipes" / f"{name}.toml", host)
    task = recipe.task.params
    assert recipe.task.name == "cut" and task.mode == "cut" and task.nce_layers == [0, 2, 3, 4, 8]
    assert task.num_patches == 256 and task.projector_width == 256 and task.identity() and not task.flips()
    assert recipe.model["generator"].params.n_blocks == 9 and recipe.model["generator"].params.ngf == 64
    assert recipe.model["discriminator"].params.layers == 3 and not recipe.model["discriminator"].params.conditional
    assert all(recipe.model[r].params.norm.name == "instance" for r in recipe.model)
    gan, nce, idt = (recipe.loss[x].ref() for x in ("gan", "nce", "nce_idt"))
    assert gan.params.mode == "lsgan" and recipe.loss["gan"].weight == 1.0
    assert (nce.params.pair, idt.params.pair, nce.params.temperature) == ("ab", "idt", 0.07)
    assert recipe.loss["nce"].weight == recipe.loss["nce_idt"].weight == 0.5
    assert recipe.optim.lr == 2e-4 and tuple(recipe.optim.betas) == (0.5, 0.999) and recipe.train.batch_size == 1
    assert recipe.train.epochs == 400 and recipe.schedule.params.decay_epochs == 200
    assert (recipe.init.type, recipe.init.gain) == ("xavier", 0.02)
    assert (recipe.data.params.load_size, recipe.data.params.crop_size) == (286, 256)


# -- the quickstart from the command line -------------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["train.activation_checkpointing=true"]])
def test_p2p_run_quickstart_cut_trains_and_writes_a_report(tmp_path, extra):
    out = tmp_path / "run"
    sets = [x for s in [*TINY_SET, *extra] for x in ("--set", s)]
    result = CliRunner().invoke(app, ["run", str(QUICKSTART), *sets, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").stat().st_size > 0
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("G/nce" in x for x in lines) and any("eval/lab_histogram_intersection" in x for x in lines)
