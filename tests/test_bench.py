"""`p2p bench`: the command runs on a tiny recipe, its FLOP count agrees with counts made by hand, the
roofline fraction is sane, options report what cannot run in one line, and mistakes exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
import torch
from torch import nn

from p2pcore.engine.bench import options as bench_options
from p2pcore.engine.bench.benchmark import bench_trainer, count_flops, matmul_rate
from p2pcore.engine.bench.options import compare, why_not
from p2pcore.recipe import load_recipe
from p2pcore.testing import tiny_recipe

ROOT = Path(__file__).resolve().parents[1]


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(tiny_recipe()))
    return path


def conv_flops(module: nn.Module, image: torch.Tensor) -> int:
    """2 * Cin/groups * Cout * k * k per output pixel of every convolution (per input pixel for transposed
    ones), summed from the shapes forward hooks see: a count independent of PyTorch's FLOP counter."""
    total = 0

    def hook(m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        per = 2 * m.in_channels // m.groups * m.out_channels * kh * kw
        pixels = inputs[0].shape[-2:].numel() if isinstance(m, nn.ConvTranspose2d) else out.shape[-2:].numel()
        total += per * pixels * out.shape[0]

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    with torch.no_grad():
        module(image)
    for handle in handles:
        handle.remove()
    return total


def test_one_convolution_counts_by_hand() -> None:
    conv = nn.Conv2d(3, 5, 3, padding=1)
    image = torch.randn(2, 3, 8, 8, requires_grad=True)
    forward = 2 * 3 * 5 * 3 * 3 * 8 * 8 * 2
    assert count_flops(lambda: conv(image)) == forward
    # backward: the gradient of the input and of the weight each cost one forward
    assert count_flops(lambda: conv(image).sum().backward()) == 3 * forward


def test_generator_flops_equal_the_count_by_shapes(host, tiny: Path, tmp_path: Path) -> None:
    trainer, batch = bench_trainer(load_recipe(tiny, host, []), host, tmp_path / "run")
    generator = trainer.nets["generator"]
    counted = count_flops(lambda: generator(batch["a"]))
    assert counted == conv_flops(generator, batch["a"]) > 0


def test_bench_command_writes_sane_figures(host, tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = p2p("bench", str(tiny), "--steps", "2", "--warmup", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "fraction of the matmul limit" in done.stdout
    figures = json.loads(out.read_text())
    trainer, batch = bench_trainer(load_recipe(tiny, host, []), host, tmp_path / "run")
    g_forward = conv_flops(trainer.nets["generator"], batch["a"])
    # the step holds G's forward and backward (at least 2x more) and both players' D passes on top
    assert figures["step_flops"] > 3 * g_forward
    assert 0 < figures["fraction_of_matmul"] <= 1.5
    assert figures["train_ms_best"] > 0 and figures["infer_images_per_s"] > 0
    assert figures["memory_how"].startswith("CPU")


def test_matmul_rate_is_positive() -> None:
    rate, size = matmul_rate(torch.device("cpu"), torch.float32, size=128, repeats=2)
    assert size == 128 and rate > 0


def test_an_option_that_cannot_run_is_one_line(host, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "CUDA only" in why_not("train.precision", torch.device("cpu"))

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here\nlong traceback text")

    monkeypatch.setattr(bench_options, "bench_trainer", broken)
    result = compare(tiny, host, [], "train.compile", True, False, steps=1, warmup=1, rounds=1)
    assert result.note == "cannot run here: RuntimeError: no compiler here" and result.on_ms is None


def test_channels_last_is_timed_off_and_on(host, tiny: Path) -> None:
    result = compare(tiny, host, [], "train.channels_last", True, False, steps=1, warmup=1, rounds=2)
    assert result.off_ms > 0 and result.on_ms > 0 and result.speedup > 0 and not result.note


def test_missing_recipe_exits_2(tmp_path: Path) -> None:
    done = p2p("bench", str(tmp_path / "nope.toml"))
    assert done.returncode == 2
    assert "recipe not found" in done.stderr and "Traceback" not in done.stderr
