"""Data-parallel training on CPU processes (gloo), started through `p2p run --nproc 2`: two processes
on shards of a batch end where one process on the whole batch ends, and a distributed run resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from p2pcore.checkpoint.files import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RECIPE = """
[data]
name = "synthetic_thermal"
size = 32
train_count = 16
test_count = 2
[model.generator]
name = "unet"
depth = 5
ngf = 8
norm = {norm}
dropout = 0.0
[model.discriminator]
name = "patch"
ndf = 8
n_layers = 2
norm = {{ name = "instance", affine = true }}
[loss]
gan = {{ name = "gan", mode = "lsgan" }}
l1 = {{ name = "l1", weight = 100.0 }}
[train]
epochs = 2
batch_size = 4
num_workers = 0
log_every = 1
device = "cpu"
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", "run", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def weights(out: Path) -> dict[str, torch.Tensor]:
    ckpt = read_checkpoint(out / "checkpoints" / "latest.safetensors")
    return {k: v for k, v in ckpt.tensors.items() if k.startswith("net.")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    recipe = root / "r.toml"
    # affine instance norm: convolutions before it then have no bias, whose exact gradient would be zero
    # (Adam would turn the rounding noise of such gradients into steps that differ between runs)
    recipe.write_text(RECIPE.format(norm='{ name = "instance", affine = true }'))
    one = run(str(recipe), "--out", str(root / "one"), "--set", "train.max_steps=3")
    assert one.returncode == 0, one.stderr
    two = run(str(recipe), "--out", str(root / "two"), "--set", "train.max_steps=3", "--nproc", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    batch = root / "batch.toml"
    batch.write_text(RECIPE.format(norm='"batch"'))
    one = run(str(batch), "--out", str(root / "batch"), "--set", "train.max_steps=3")
    assert one.returncode == 0, one.stderr
    two = run(str(batch), "--out", str(root / "sync"), "--set", "train.max_steps=3", "--nproc", "2",
              "--set", "model.generator.norm=syncbatch")
    assert two.returncode == 0, two.stderr[-3000:]
    return root


def test_two_processes_on_shards_equal_one_on_the_whole_batch(runs):
    one, two = weights(runs / "one"), weights(runs / "two")
    assert one.keys() == two.keys()
    for key in one:  # Adam normalises tiny gradients, so summation order shows in a few elements
        torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=1e-4, msg=key)
    assert sum(float((one[k] - two[k]).abs().sum()) for k in one) / sum(v.numel() for v in one.values()) < 1e-7
    logged = {name: [json.loads(x) for x in (runs / name / "metrics.jsonl").read_text().splitlines()]
              for name in ("one", "two")}
    for a, b in zip(logged["one"], logged["two"], strict=True):  # the same data in every step
        for key in ("G/l1", "G/gan", "D/gan"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), (key, a["step"])
    moved = read_checkpoint(runs / "two" / "checkpoints" / "latest.safetensors").metadata
    assert moved["step"] == 3
    lines = (runs / "two" / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"G/l1"' in line]) == 3  # one process logs


def test_syncbatch_in_two_processes_equals_batch_norm_over_the_whole_batch(runs):
    one, two = weights(runs / "batch"), weights(runs / "sync")
    assert one.keys() == two.keys() and any("running_var" in k for k in one)
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=1e-4, msg=key)


def test_a_distributed_run_resumes(runs):
    result = run("--resume", "--out", str(runs / "two"), "--nproc", "2", "--set", "train.max_steps=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_checkpoint(runs / "two" / "checkpoints" / "latest.safetensors").metadata["step"] == 5


def test_a_batch_that_does_not_split_is_refused(runs):
    result = run(str(runs / "r.toml"), "--out", str(runs / "odd"), "--set", "train.batch_size=3", "--nproc", "2")
    assert result.returncode == 2 and "does not split over 2 processes" in result.stderr
    assert "Traceback" not in result.stderr


AFFINE = '{ name = "instance", affine = true }'
MULTI_NETWORK = {  # tasks that train several networks, each under its own data-parallel wrapper
    "cyclegan": ("quickstart_cyclegan.toml", [
        "task.pool_size=0", "data.size=32", "data.train_count=16",  # a history pool draws per process
        "eval.metrics=[]", "unset=eval.best",
        *(f"model.{g}.{k}" for g in ("generator_ab", "generator_ba")
          for k in ("n_blocks=1", "ngf=8", f"norm={AFFINE}")),
        *(f"model.{d}.{k}" for d in ("discriminator_a", "discriminator_b") for k in ("ndf=8", f"norm={AFFINE}"))]),
    "pix2pixhd": ("quickstart_hd.toml", [
        "data.size=32", "data.train_count=16", "model.generator.n_downsample=2", "model.generator.n_blocks=1",
        f"model.generator.norm={AFFINE}", "model.encoder.n_downsample=2", f"model.encoder.norm={AFFINE}",
        f'model.discriminator.discriminator.norm={AFFINE}', "model.discriminator.discriminator.n_layers=2"]),
}


@pytest.mark.parametrize("task", list(MULTI_NETWORK))
def test_multi_network_tasks_train_alike_in_two_processes(tmp_path, task):
    recipe, changes = MULTI_NETWORK[task]
    common = [str(ROOT / "recipes" / recipe), *(x for change in changes for x in ("--set", change)),
              "--set", "train.max_steps=2", "--set", "train.batch_size=4", "--set", "train.num_workers=0",
              "--set", 'train.device="cpu"']
    one = run(*common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    two = run(*common, "--out", str(tmp_path / "two"), "--nproc", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys() and len({k.split(".")[1] for k in a}) >= 3
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=key)


def test_each_process_resumes_its_own_random_state(tmp_path):
    """With dropout, every process draws its own masks: a resumed run ends like an uninterrupted one only if
    each process gets its own random state back. (Items are loaded in a worker, which seeds itself per item;
    without workers that seeding would set the training process's state too and hide the difference.)"""
    recipe = tmp_path / "dropout.toml"
    recipe.write_text(RECIPE.format(norm=AFFINE).replace('name = "unet"\ndepth = 5', 'name = "resnet"\nn_blocks = 1')
                      .replace("dropout = 0.0", "dropout = 0.5").replace("num_workers = 0", "num_workers = 1"))
    whole = run(str(recipe), "--out", str(tmp_path / "whole"), "--set", "train.max_steps=4", "--nproc", "2")
    assert whole.returncode == 0, whole.stderr[-3000:]
    part = run(str(recipe), "--out", str(tmp_path / "part"), "--set", "train.max_steps=2", "--nproc", "2")
    assert part.returncode == 0, part.stderr[-3000:]
    saved = read_checkpoint(tmp_path / "part" / "checkpoints" / "latest.safetensors").tensors
    assert not torch.equal(saved["rng.rank.0.torch"], saved["rng.rank.1.torch"])
    rest = run("--resume", "--out", str(tmp_path / "part"), "--nproc", "2", "--set", "train.max_steps=4")
    assert rest.returncode == 0, rest.stderr[-3000:]
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "part")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6, msg=key)
