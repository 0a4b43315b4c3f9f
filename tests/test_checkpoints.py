"""Checkpoints that never lose work: crash survival, interrupts, inspect and export."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import L1_TERM, synthetic_data, tiny_networks
from typer.testing import CliRunner

from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app
from p2pcore.engine.infer.protocols import protocol_mode
from p2pcore.engine.infer.translate import Translator

ROOT = Path(__file__).resolve().parents[1]
RECIPE = "\n" + synthetic_data(32) + tiny_networks(discriminator="n_layers = 2\n") + """[loss]
gan = { name = "gan" }
""" + L1_TERM + """[train]
epochs = 6
batch_size = 4
num_workers = 0
log_every = 1
checkpoint_steps = 1
"""


def start(recipe: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "p2pcore", "run", str(recipe), "--out", str(out), "--quiet",
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return max((line["step"] for line in lines), default=0)


def wait_for_step(proc: subprocess.Popen, out: Path, step: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while logged_steps(out) < step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.005)


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    recipe = tmp_path / "crash.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    rng = random.Random(1234)
    resume: tuple[str, ...] = ()
    for _ in range(4):
        proc = start(recipe, out, *resume)
        wait_for_step(proc, out, logged_steps(out) + rng.randint(2, 6))
        time.sleep(rng.uniform(0, 0.03))  # lands anywhere in a step, a checkpoint write included
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for ckpt in (out / "checkpoints").glob("*.safetensors"):
            read_checkpoint(ckpt)  # every checkpoint on disk is complete
        resume = ("--resume",)
    proc = start(recipe, out, "--resume")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    final = read_checkpoint(out / "checkpoints" / "latest.safetensors")
    assert final.metadata["step"] == 6 * 8 and final.metadata["epoch"] == 6
    assert not list((out / "checkpoints").glob(".*.tmp"))
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if "G/total" in line]
    assert logged == list(range(1, 6 * 8 + 1))  # every step once: re-done steps are not logged twice


def test_ctrl_c_writes_a_checkpoint_and_resume_continues(tmp_path):
    recipe = tmp_path / "int.toml"
    recipe.write_text(RECIPE.replace("checkpoint_steps = 1", "checkpoint_steps = 0"))
    out = tmp_path / "run"
    proc = start(recipe, out)
    wait_for_step(proc, out, 5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    saved = read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata["step"]
    assert saved >= 5
    proc = start(recipe, out, "--resume")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 48 and steps[0] == 1  # appended to, not restarted


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    recipe = out.parent / "r.toml"
    recipe.write_text(RECIPE.replace("epochs = 6", "epochs = 1"))
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out / "checkpoints" / "latest.safetensors"


def test_inspect(trained):
    result = CliRunner().invoke(app, ["inspect", str(trained), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["step"] == 8 and info["resumable"]
    assert info["recipe"]["model"]["generator"]["name"] == "unet"
    assert {c["name"] for c in info["components"]} >= {"unet", "patch", "synthetic_thermal", "gan", "l1"}
    assert info["parameters"]["generator"] > 0 and info["parameters"]["discriminator"] > 0


def test_inspect_refuses_truncated_files(trained, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(trained.read_bytes()[:-100])
    result = CliRunner().invoke(app, ["inspect", str(cut)])
    assert result.exit_code != 0


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_at_two_sizes(trained, tmp_path, host, fmt):
    target = tmp_path / ("g.onnx" if fmt == "onnx" else "g.pt")
    result = CliRunner().invoke(app, ["export", str(trained), str(target), "--format", fmt])
    assert result.exit_code == 0, result.output
    translator = Translator(trained, host, device="cpu", protocol="eval")
    net = translator.nets["generator"]
    for shape in [(1, 1, 32, 64), (2, 1, 96, 32)]:
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad(), protocol_mode(net, "eval"):
            expected = net(x).numpy()
        if fmt == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            got = session.run(None, {"a": x.numpy()})[0]
        else:
            got = torch.jit.load(str(target))(x).detach().numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-4


def test_export_unknown_format(trained, tmp_path):
    env = {**os.environ}
    done = subprocess.run([sys.executable, "-m", "p2pcore", "export", str(trained), str(tmp_path / "x"),
                           "--format", "tflite"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 2 and "onnx or torchscript" in done.stderr
