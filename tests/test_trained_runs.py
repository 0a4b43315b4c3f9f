"""One way to open a trained run: `p2p translate`, `p2p eval`, `p2p export` and `p2pcore.api.load_trained` all
open a checkpoint through `p2pcore.engine.build.trained`, so each refuses one made with a component that is not
installed, naming the distribution to install (through the CLI: exit 2, one screen, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from p2pcore import P2PError, api
from p2pcore.api import hookimpl
from p2pcore.checkpoint.files import read_checkpoint, write_checkpoint
from p2pcore.engine.build.trained import TrainedRun, open_trained
from p2pcore.engine.evaluate.scoring import evaluate_checkpoint
from p2pcore.engine.infer.export import export
from p2pcore.engine.infer.translate import Translator
from p2pcore.testing import host_with

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "p2p-trained-runs-test"
MISSING = f"generator 'one_by_one' from {DISTRIBUTION} 1.0.0, which is not installed"


class OneByOne(nn.Module):
    """The smallest generator: a 1x1 convolution and tanh."""

    size_multiple = 1

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def _register(register) -> None:
    register("one_by_one", lambda params, ctx: OneByOne(ctx.in_channels, ctx.out_channels))


PLUGIN = types.SimpleNamespace(__name__="trained_runs_test", __p2p_distribution__=DISTRIBUTION,
                               __version__="1.0.0", P2P_API=">=1,<2",
                               p2p_register_generators=hookimpl(_register))


@pytest.fixture(scope="module")
def extended():
    """The installed plugins and one more, which the default host lacks."""
    return host_with(("trained_runs_test", PLUGIN))


@pytest.fixture(scope="module")
def checkpoint(extended, tmp_path_factory) -> Path:
    """Weights of the extra plugin's generator, written with the recipe that rebuilds them."""
    torch.manual_seed(0)
    recipe = {"name": "one", "task": "pix2pix",
              "data": {"name": "synthetic_thermal", "size": 32, "train_count": 2, "test_count": 2},
              "model": {"generator": {"name": "one_by_one"}}, "eval": {"metrics": ["l1"]}}
    net = extended.build("generator", "one_by_one", in_channels=1, out_channels=3)
    path = tmp_path_factory.mktemp("trained") / "one.safetensors"
    api.write_weights(path, recipe, {"generator": net}, source="test:one_by_one", host=extended)
    return path


def _not_installed(caught: pytest.ExceptionInfo, checkpoint: Path) -> None:
    assert MISSING in caught.value.message and caught.value.file == str(checkpoint)
    assert f"pip install '{DISTRIBUTION}==1.0.0'" in caught.value.hint


# -- with the plugin, every path opens the checkpoint ------------------------------------------------------

def test_the_opener_rebuilds_a_direction_with_the_checkpoint_weights(checkpoint, extended):
    run = open_trained(checkpoint, extended, protocol="eval")
    assert isinstance(run, TrainedRun) and api.TrainedRun is TrainedRun
    assert run.direction == "a2b" and set(run.nets) == {"generator"} and run.device == torch.device("cpu")
    assert not run.averaged and run.size_multiple() == 1 and run.channels["a"] == 1
    held = read_checkpoint(checkpoint).prefixed("net.generator")
    assert all(torch.equal(run.nets["generator"].state_dict()[k], v) for k, v in held.items())
    assert run.nets["generator"].training
    with run.in_protocol():
        assert not run.nets["generator"].training
    assert run.nets["generator"].training  # the protocol is entered for a while, never left behind



def test_the_opener_builds_the_dataset_adapter_once(checkpoint, extended, monkeypatch):
    built: list[str] = []
    build = type(extended).build

    def counting(self, kind, *args, **kwargs):
        built.append(kind)
        return build(self, kind, *args, **kwargs)

    monkeypatch.setattr(type(extended), "build", counting)
    run = open_trained(checkpoint, extended, protocol="eval")
    assert built.count("dataset") == 1 and run.adapter is not None, built

def test_every_path_opens_it_where_the_plugin_is_installed(checkpoint, extended, tmp_path):
    translator = Translator(checkpoint, extended, device="cpu", protocol="eval")
    assert translator(torch.zeros(1, 32, 32)).shape == (3, 32, 32)
    result = evaluate_checkpoint(checkpoint, extended, {}, device="cpu", mode="eval")
    assert result.items == 2 and result.figures["eval/l1"] is not None and result.extra["weights"] == "last"
    info = export(checkpoint, tmp_path / "one.pt", extended, "torchscript")
    assert info == {"direction": "a2b", "in_channels": 1, "out_channels": 3, "size_multiple": 1}
    run = api.load_trained(checkpoint, roles=("generator",), builder=extended)
    assert isinstance(run, api.TrainedRun) and set(run.nets) == {"generator"}


# -- without it, every path refuses it, naming the distribution ---------------------------------------------

def test_translate_refuses_a_checkpoint_whose_generator_is_not_installed(checkpoint, host):
    with pytest.raises(P2PError) as caught:
        Translator(checkpoint, host, device="cpu")
    _not_installed(caught, checkpoint)


def test_eval_refuses_a_checkpoint_whose_generator_is_not_installed(checkpoint, host):
    with pytest.raises(P2PError) as caught:
        evaluate_checkpoint(checkpoint, host, {}, device="cpu")
    _not_installed(caught, checkpoint)


def test_export_refuses_a_checkpoint_whose_generator_is_not_installed(checkpoint, host, tmp_path):
    with pytest.raises(P2PError) as caught:
        export(checkpoint, tmp_path / "one.onnx", host, "onnx")
    _not_installed(caught, checkpoint)
    assert not (tmp_path / "one.onnx").exists()


def test_load_trained_refuses_a_checkpoint_whose_generator_is_not_installed(checkpoint):
    with pytest.raises(P2PError) as caught:
        api.load_trained(checkpoint, roles=("generator",))  # the default host: the installed plugins
    _not_installed(caught, checkpoint)


@pytest.mark.parametrize("command", ["translate", "eval", "export"])
def test_the_commands_refuse_it_on_one_screen(checkpoint, tmp_path, command):
    image = tmp_path / "in.png"
    Image.new("L", (32, 32), 128).save(image)
    args = {"translate": [str(image), str(tmp_path / "out.png")],
            "eval": ["--metric", "l1", "--out", str(tmp_path)],
            "export": [str(tmp_path / "one.onnx")]}[command]
    done = subprocess.run([sys.executable, "-m", "p2pcore", command, str(checkpoint), *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    text = " ".join((done.stdout + done.stderr).split())
    assert MISSING in text and DISTRIBUTION in text and "Traceback" not in text
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "one.onnx").exists()


# -- what the opener checks --------------------------------------------------------------------------------

def test_a_dataset_replaced_by_data_need_not_be_installed(checkpoint, extended, tmp_path):
    ckpt = read_checkpoint(checkpoint)
    gone = {"kind": "dataset", "name": "gone_data", "qualified_name": "p2p-gone:gone_data",
            "distribution": "p2p-gone", "version": "0.1.0"}
    crafted = tmp_path / "gone.safetensors"
    components = [gone if c["kind"] == "dataset" else c for c in ckpt.metadata["components"]]
    write_checkpoint(crafted, ckpt.tensors, {**ckpt.metadata, "components": components})
    with pytest.raises(P2PError, match="dataset 'gone_data' from p2p-gone 0.1.0, which is not installed"):
        api.load_trained(crafted, roles=("generator",), builder=extended, data={"root": str(tmp_path)})
    other = {"name": "single", "root": str(tmp_path), "channels": 1, "out_channels": 3}
    run = api.load_trained(crafted, roles=("generator",), builder=extended, data=other)
    assert run.recipe.data.name == "single" and set(run.nets) == {"generator"}


def test_load_trained_refuses_an_unavailable_device_and_a_missing_role(checkpoint, extended):
    with pytest.raises(P2PError, match="unknown device 'gpu'"):
        api.load_trained(checkpoint, roles=("generator",), builder=extended, device="gpu")
    with pytest.raises(P2PError, match="has no model.encoder") as caught:
        api.load_trained(checkpoint, roles=("encoder",), builder=extended)
    assert caught.value.file == str(checkpoint) and caught.value.key == "model.encoder"
