"""A task's own networks (`TaskSpec.own`, `Task.build_own_networks`): a 1x1 head on the generator's features,
trained by the generator's player, is built, optimised, checkpointed and resumed like a role, but never a
`[model.*]` table and never translated or exported; activation checkpointing leaves networks without
segments alone; under `--nproc` a task gets its modules themselves, never data-parallel wrappers."""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

from p2pcore.api import (
    Direction,
    Field,
    OwnNetwork,
    P2PError,
    Player,
    Role,
    Task,
    TaskContext,
    TaskParams,
    TaskSpec,
    Tensors,
    hookimpl,
)
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe
from p2pcore.testing import host_with

ROOT = Path(__file__).resolve().parents[1]


class HeadedParams(TaskParams):
    layer: int = Field(2, ge=0, description="the generator tap the head reads")
    aux_role: bool = Field(False, description="also build an optional generator-kind role without a model table")

    def declare(self) -> TaskSpec:
        d = ("discriminator", "generator")
        roles = {"generator": Role("generator", summary="G: a -> b"),
                 "discriminator": Role("discriminator", required=False, summary="D: judges b")}
        if self.aux_role:
            roles["aux"] = Role("generator", required=False, summary="built by the task, never in a recipe")
        return TaskSpec(
            roles=roles,
            players={"generator": Player("generator", ("generator", *(("aux",) if self.aux_role else ()))),
                     "discriminator": Player("discriminator", ("discriminator",))},
            tensors={"real_a": (), "real_b": (), "fake_b": ("generator",), "head_a": ("generator",),
                     "head_zero": ("generator",), "d_real": d, "d_fake": d},
            directions={"a2b": Direction("a", "b", ("generator",), tensor="fake_b", target="real_b")},
            visuals={"real_a": "a", "fake_b": "b", "real_b": "b"},
            own={"head": OwnNetwork("generator", summary="a 1x1 projection of the generator's features")},
        )


def unwrapped(nets: Mapping[str, nn.Module]) -> None:
    """A task must get the modules it built (their own methods reachable), never data-parallel wrappers."""
    wrapped = [name for name, net in nets.items() if isinstance(net, nn.parallel.DistributedDataParallel)]
    if wrapped:
        raise P2PError(f"the task got data-parallel wrappers for {', '.join(wrapped)}", key="task")


class HeadedTask(Task):
    """pix2pix with an unconditional D, plus a head on one of the generator's taps read by a loss term."""

    seen: set[str] = set()  # the names of the networks the task was handed, over every call

    def __init__(self, params: HeadedParams) -> None:
        self.params = params

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        nets = {"generator": ctx.build("generator", in_channels=ctx.channels["a"], out_channels=ctx.channels["b"])}
        if ctx.wants("discriminator"):
            nets["discriminator"] = ctx.build("discriminator", in_channels=ctx.channels["b"], out_channels=1)
        if self.params.aux_role:  # the workaround of old: a role of kind generator with no model table
            nets["aux"] = nn.Conv2d(1, 1, 1)
        return nets

    def build_own_networks(self, ctx: TaskContext, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        unwrapped(nets)
        channels = nets["generator"].taps()[self.params.layer].channels
        return {"head": nn.Conv2d(channels, 4, 1)}

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        unwrapped(nets)
        HeadedTask.seen |= set(nets)
        generator, head = nets["generator"], nets["head"]
        extra = {"aux_out": lambda t: nets["aux"](t["real_a"])} if "aux" in nets else {}
        return Tensors({"fake_b": lambda t: generator(t["real_a"]),
                        "head_a": lambda t: head(generator.feature_maps(t["real_a"], [self.params.layer])[0]),
                        "head_zero": lambda t: torch.zeros_like(t["head_a"]).detach(), **extra},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: str, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        unwrapped(nets)
        d = nets["discriminator"]
        fake = (lambda t: t["fake_b"].detach()) if side == "discriminator" else (lambda t: t["fake_b"])
        return base.extend({"d_real": lambda t: d(t["real_b"]), "d_fake": lambda t: d(fake(t))})

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        unwrapped(nets)
        return nets["generator"](image)

    def after_step(self, side: str, nets: Mapping[str, nn.Module], step: int) -> None:
        unwrapped(nets)

    def start_epoch(self, epoch: int, nets: Mapping[str, nn.Module]) -> None:
        unwrapped(nets)


def _register(register) -> None:
    register("headed", lambda params, ctx: HeadedTask(params), params=HeadedParams)


PLUGIN = types.SimpleNamespace(__name__="own_networks_test", __p2p_distribution__="p2p-own-networks-test",
                               __version__="1.0.0", P2P_API=">=1.5,<2", p2p_register_tasks=hookimpl(_register))


AFFINE = {"name": "instance", "affine": True}  # per-image norms: shards over processes equal the whole batch


def recipe(**train: Any) -> dict:
    return {
        "task": "headed",
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 8, "test_count": 2},
        "model": {"generator": {"name": "resnet", "n_blocks": 1, "ngf": 8, "norm": AFFINE},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2, "conditional": False, "norm": AFFINE}},
        "loss": {"gan": {"name": "gan", "mode": "lsgan"}, "l1": {"name": "l1", "weight": 10.0},
                 "head": {"name": "l1", "pred": "head_a", "target": "head_zero", "weight": 1.0}},
        "eval": {"metrics": []},
        "train": {"epochs": 2, "batch_size": 2, "num_workers": 0, "log_every": 1, "device": "cpu",
                  "deterministic": True, **train},
    }


@pytest.fixture(scope="module")
def host():
    return host_with(("own_networks_test", PLUGIN))


def make(host, out: Path, data: dict | None = None, **train: Any) -> Trainer:
    return Trainer(validate_recipe(data or recipe(**train), host, default_name=out.name), host, out)


def count(tensors: Mapping[str, torch.Tensor], prefix: str) -> int:
    return sum(v.numel() for k, v in tensors.items() if k.startswith(prefix))


@pytest.fixture(scope="module")
def trained(host, tmp_path_factory) -> Path:
    """A short run; its checkpoint."""
    out = tmp_path_factory.mktemp("own") / "run"
    trainer = make(host, out, max_steps=3)
    assert set(trainer.nets) == {"generator", "discriminator", "head"}
    before = {k: v.clone() for k, v in trainer.nets["head"].state_dict().items()}
    trainer.fit()
    after = trainer.nets["head"].state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)  # the head trains
    assert "head" in trainer.summary()
    return out / "checkpoints" / "latest.safetensors"


def test_the_head_is_trained_and_checkpointed_with_its_optimiser_state(trained, host):
    ckpt = read_checkpoint(trained)
    head = {k: v for k, v in ckpt.tensors.items() if k.startswith("net.head.")}
    assert set(head) == {"net.head.weight", "net.head.bias"}
    # the generator's optimiser holds the head's state after the generator's parameters
    generator = [k for k in ckpt.tensors if k.startswith("net.generator.") and "running" not in k
                 and "num_batches" not in k]
    moments = sorted((int(k.split(".")[2]), v) for k, v in ckpt.tensors.items()
                     if k.startswith("optim.generator.") and k.endswith(".exp_avg"))
    assert len(moments) == len(generator) + 2
    assert [tuple(v.shape) for _, v in moments[-2:]] == [tuple(head["net.head.weight"].shape),
                                                          tuple(head["net.head.bias"].shape)]
    assert all(float(v.abs().sum()) > 0 for _, v in moments[-2:])
    assert not any(k.startswith("optim.head") for k in ckpt.tensors)  # no optimiser of its own


def test_resume_is_bit_exact_with_the_head_and_its_optimiser_state(host, tmp_path):
    make(host, tmp_path / "whole").fit()
    make(host, tmp_path / "parts", max_steps=5).fit()  # stops mid-epoch 2
    make(host, tmp_path / "parts").fit(resume=True)
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors").tensors
    parts = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").tensors
    kept = [k for k in whole if k.startswith(("net.", "optim."))]
    assert any(k.startswith("net.head.") for k in kept)
    assert {k for k in parts if k.startswith(("net.", "optim."))} == set(kept)
    assert all(torch.equal(whole[k], parts[k]) for k in kept)


def test_translate_and_export_hold_the_generator_only(trained, host, tmp_path, monkeypatch):
    generator = count(read_checkpoint(trained).tensors, "net.generator.")
    params = {k: v for k, v in read_checkpoint(trained).tensors.items() if k.startswith("net.generator.")
              and "running" not in k and "num_batches" not in k}
    translator = Translator(trained, host, device="cpu")
    assert set(translator.nets) == {"generator"}
    assert sum(p.numel() for p in translator.nets["generator"].parameters()) == count(params, "")
    monkeypatch.setattr("p2pcore.commands.common.host", lambda: host)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(inputs / "x.png")
    result = CliRunner().invoke(app(), ["translate", str(trained), str(inputs), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "x.png").size == (32, 32)
    script = tmp_path / "g.pt"
    result = CliRunner().invoke(app(), ["export", str(trained), str(script), "--format", "torchscript"])
    assert result.exit_code == 0, result.output
    exported = torch.jit.load(str(script))
    assert sum(p.numel() for p in exported.parameters()) == count(params, "")
    assert sum(b.numel() for b in exported.buffers()) + count(params, "") == generator
    assert {name.split(".")[1] for name, _ in exported.named_parameters()} == {"generator"}  # nets.<name>.*


def app() -> Any:
    from p2pcore.cli import app as cli

    return cli


def test_a_model_table_for_an_own_network_is_refused(host):
    data = recipe()
    data["model"]["head"] = {"name": "resnet"}
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, host)
    assert caught.value.key == "model.head"
    assert "head" not in caught.value.hint.split("offers:")[-1]


def test_show_task_lists_the_own_network(host, monkeypatch):
    monkeypatch.setattr("p2pcore.commands.common.host", lambda: host)
    result = CliRunner().invoke(app(), ["show", "task", "headed"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "own network" in result.output and "head" in result.output
    assert "a 1x1 projection of the generator's features" in result.output
    roles = result.output.split("role (a model table)")[1].split("own network")[0]
    assert "generator" in roles and "head" not in roles


def test_an_own_network_must_name_a_player_and_not_a_role():
    common = {"roles": {"g": Role("generator")}, "players": {"p": Player("generator", ("g",))},
              "tensors": {"x": ("g",)}, "directions": {"a2b": Direction("a", "b", ("g",), tensor="x")}}
    with pytest.raises(ValueError, match="player 'q'"):
        TaskSpec(**common, own={"h": OwnNetwork("q")})
    with pytest.raises(ValueError, match="'g' has the name of a role"):
        TaskSpec(**common, own={"g": OwnNetwork("p")})


def test_activation_checkpointing_passes_over_networks_without_segments(host, tmp_path, recwarn):
    data = recipe(activation_checkpointing=True, max_steps=2)
    data["task"] = {"name": "headed", "aux_role": True}
    trainer = make(host, tmp_path / "run", data)
    assert set(trainer.nets) == {"generator", "discriminator", "head", "aux"}
    trainer.fit()
    assert not [w for w in recwarn if "activation_checkpointing" in str(w.message)]
    assert read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.safetensors").metadata["step"] == 2


WORKER = """
import sys
from pathlib import Path

sys.path.insert(0, {tests!r})
import test_own_networks as t

host = t.host_with(("own_networks_test", t.PLUGIN))
trainer = t.make(host, Path(sys.argv[1]), max_steps=2)
trainer.fit()
assert t.HeadedTask.seen == {{"generator", "discriminator", "head"}}, t.HeadedTask.seen
"""


def test_two_processes_train_the_head_with_unwrapped_modules(host, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER.format(tests=str(Path(__file__).parent)))
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(worker), str(tmp_path / "two")], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    make(host, tmp_path / "one", max_steps=2).fit()
    one = read_checkpoint(tmp_path / "one" / "checkpoints" / "latest.safetensors").tensors
    two = read_checkpoint(tmp_path / "two" / "checkpoints" / "latest.safetensors").tensors
    kept = [k for k in one if k.startswith("net.")]
    assert any(k.startswith("net.head.") for k in kept)
    for key in kept:  # the same data in each step; shards averaged as one batch
        torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=1e-4, msg=key)
