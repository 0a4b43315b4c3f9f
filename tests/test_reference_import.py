"""Importing checkpoints trained with junyanz/pytorch-CycleGAN-and-pix2pix.

Each fixture in ../shared/reference holds a reference network's state_dict under its own key names
(``state.<key>``), an input, and the reference's output in eval mode; the constructor arguments are in
the metadata. The converted p2p network must reproduce that output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from p2p_interop.junyanz import import_discriminator, import_generator, load_reference_state
from safetensors import safe_open

from p2pcore import P2PError, load_host

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
FIXTURES = sorted(REFERENCE.glob("junyanz_*.safetensors")) if REFERENCE.is_dir() else []
pytestmark = pytest.mark.skipif(not FIXTURES, reason=f"reference fixtures not present in {REFERENCE}")

HOST = load_host()
TOLERANCE = 1e-4


def read_fixture(path: Path) -> tuple[dict, torch.Tensor, torch.Tensor, dict, str]:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        names = list(f.keys())
        tensors = {key: f.get_tensor(key) for key in names}
    state = {key[len("state."):]: t for key, t in tensors.items() if key.startswith("state.")}
    return state, tensors["input"], tensors["output"], json.loads(meta["args"]), json.loads(meta["reference"])


def reference_flags(args: dict, reference: str) -> tuple[str, dict]:
    """The reference's training flags that built a fixture's network, from its constructor arguments."""
    if "UnetGenerator" in reference:
        net_g = {8: "unet_256", 7: "unet_128"}[args["num_downs"]]
        return "generator", dict(net_g=net_g, ngf=args["ngf"], norm=args["norm"], dropout=args["use_dropout"],
                                 input_nc=args["input_nc"], output_nc=args["output_nc"])
    if "ResnetGenerator" in reference:
        return "generator", dict(net_g=f"resnet_{args['n_blocks']}blocks", ngf=args["ngf"], norm=args["norm"],
                                 dropout=args.get("use_dropout", False), input_nc=args["input_nc"],
                                 output_nc=args["output_nc"])
    if "NLayerDiscriminator" in reference:  # a pix2pix discriminator: 3 input + 3 output channels
        n_layers = args["n_layers"]
        return "discriminator", dict(net_d="basic" if n_layers == 3 else "n_layers", n_layers_d=n_layers,
                                     ndf=args["ndf"], norm=args["norm"], input_nc=args["input_nc"] - 3,
                                     output_nc=3)
    if "PixelDiscriminator" in reference:
        return "discriminator", dict(net_d="pixel", ndf=args["ndf"], norm=args["norm"],
                                     input_nc=args["input_nc"] - 3, output_nc=3)
    pytest.fail(f"no p2p component covers the reference network {reference!r}")


def convert(kind: str, state: dict, file: str = "", **flags):
    importer = import_generator if kind == "generator" else import_discriminator
    return importer(state, HOST, file=file, **flags)


def fingerprint(tensors) -> list[tuple]:
    """The multiset of tensors, independent of key names."""
    return sorted((tuple(t.shape), str(t.dtype), round(float(t.double().sum()), 6)) for t in tensors)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_imported_network_reproduces_the_reference(path: Path) -> None:
    state, x, expected, args, reference = read_fixture(path)
    kind, flags = reference_flags(args, reference)
    imported = convert(kind, state, file=str(path), **flags)
    ours = imported.net.state_dict()
    assert len(ours) == len(state)
    assert fingerprint(ours.values()) == fingerprint(state.values())
    imported.net.eval()
    with torch.no_grad():
        out = imported.net(x)
    assert out.shape == expected.shape
    difference = float((out - expected).abs().max())
    print(f"{path.stem}: max abs difference {difference:.3g}")
    assert difference <= TOLERANCE


def test_norm_and_dropout_are_read_from_the_checkpoint() -> None:
    state, *_ = read_fixture(REFERENCE / "junyanz_resnet_9blocks_ngf8_instance.safetensors")
    imported = import_generator(state, HOST, net_g="resnet_9blocks", ngf=8)
    assert imported.spec["norm"]["name"] == "instance" and imported.spec["dropout"] == 0.0
    state, *_ = read_fixture(REFERENCE / "junyanz_unet_256_ngf8_batch.safetensors")
    imported = import_generator(state, HOST, net_g="unet_256", ngf=8)
    spec = dict(imported.spec)
    assert spec.pop("norm")["name"] == "batch"
    assert spec == {"name": "unet", "depth": 8, "ngf": 8, "dropout": 0.5, "upsample": "transposed"}


@pytest.mark.parametrize(("fixture", "kind", "flags", "hint"), [
    ("unet_256_ngf8_batch", "generator", dict(net_g="unet_128", ngf=8), "--netG unet_256"),
    ("unet_256_ngf8_batch", "generator", dict(net_g="resnet_9blocks", ngf=8), "--netG unet_256"),
    ("unet_256_ngf8_batch", "generator", dict(net_g="unet_256"), "--ngf 8"),
    ("unet_256_ngf8_batch", "generator", dict(net_g="unet_256", ngf=8, norm="instance"), "--norm batch"),
    ("unet_256_ngf8_batch", "generator", dict(net_g="unet_256", ngf=8, input_nc=1), "--input-nc 3"),
    ("unet_256_ngf8_batch", "generator", dict(net_g="unet_256", ngf=8, output_nc=2), "--output-nc 3"),
    ("resnet_9blocks_ngf8_instance", "generator", dict(net_g="resnet_6blocks", ngf=8), "--netG resnet_9blocks"),
    ("resnet_9blocks_ngf8_instance", "generator", dict(net_g="resnet_9blocks", ngf=8, dropout=True),
     "--no-dropout"),
    ("resnet_9blocks_ngf8_instance", "generator", dict(net_g="resnet_9blocks", ngf=8, norm="batch"),
     "--norm instance"),
    ("patch_n3_ndf8_batch_in6", "discriminator", dict(net_d="pixel", ndf=8), "--netD basic"),
    ("patch_n3_ndf8_batch_in6", "discriminator", dict(net_d="n_layers", n_layers_d=4, ndf=8),
     "--n-layers-D 3"),
    ("patch_n3_ndf8_batch_in6", "discriminator", dict(net_d="basic", ndf=16), "--ndf 8"),
    ("patch_n3_ndf8_batch_in6", "discriminator", dict(net_d="basic", ndf=8, input_nc=1), "--input-nc"),
    ("pixel_ndf8_batch_in6", "discriminator", dict(net_d="basic", ndf=8), "--netD pixel"),
])
def test_flags_that_do_not_fit_are_named(fixture: str, kind: str, flags: dict, hint: str) -> None:
    path = REFERENCE / f"junyanz_{fixture}.safetensors"
    state, *_ = read_fixture(path)
    with pytest.raises(P2PError) as info:
        convert(kind, state, file=str(path), **flags)
    error = info.value
    assert error.file == str(path) and error.key
    assert hint in (error.hint or ""), str(error)


def test_unknown_flag_values_suggest_the_right_one() -> None:
    state, *_ = read_fixture(REFERENCE / "junyanz_unet_256_ngf8_batch.safetensors")
    with pytest.raises(P2PError, match="did you mean 'unet_256'"):
        import_generator(state, HOST, net_g="unet256")
    with pytest.raises(P2PError, match="choose one of: batch, instance, none"):
        import_generator(state, HOST, net_g="unet_256", norm="group")


def test_pth_files_are_read_safely(tmp_path: Path) -> None:
    state, *_ = read_fixture(REFERENCE / "junyanz_pixel_ndf8_batch_in6.safetensors")
    wrapped = tmp_path / "latest_net_D.pth"
    torch.save({f"module.{key}": t for key, t in state.items()}, wrapped)  # saved from DataParallel
    loaded = load_reference_state(wrapped)
    assert set(loaded) == {f"module.{key}" for key in state}
    imported = import_discriminator(loaded, HOST, net_d="pixel", ndf=8)
    assert imported.conditional is True

    pickled = tmp_path / "opt.pth"
    torch.save({"opt": argparse.Namespace(netG="unet_256")}, pickled)
    with pytest.raises(P2PError) as info:
        load_reference_state(pickled)
    assert info.value.file == str(pickled)
    with pytest.raises(P2PError, match="not found"):
        load_reference_state(tmp_path / "missing.pth")


def test_norm_none_checkpoints_without_biases_import_with_zero_biases() -> None:
    """With --norm none the reference drops the biases of every convolution but the last; p2p keeps
    them, so they import as zeros and compute the same."""
    from p2p_interop.junyanz import unet_layers

    torch.manual_seed(0)
    source = HOST.build("generator", {"name": "unet", "depth": 8, "ngf": 4, "norm": "none"},
                       in_channels=3, out_channels=3).eval()
    reference_name = dict(unet_layers(8))
    state = {}
    for key, tensor in source.state_dict().items():
        module, _, leaf = key.rpartition(".")
        if leaf == "bias" and module != "up.0.conv":
            tensor.zero_()
            continue
        state[f"{reference_name[module]}.{leaf}"] = tensor
    imported = import_generator(state, HOST, net_g="unet_256", ngf=4, dropout=False)
    assert imported.spec["norm"]["name"] == "none"
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(imported.net.eval()(x), source(x))
    with pytest.raises(P2PError, match="model.model.0.bias"):
        import_generator(state, HOST, net_g="unet_256", ngf=4, norm="instance")


def test_unconditional_discriminator_is_recognised() -> None:
    state, *_ = read_fixture(REFERENCE / "junyanz_patch_n3_ndf8_batch_in6.safetensors")
    imported = import_discriminator(state, HOST, net_d="basic", ndf=8, input_nc=1, output_nc=6)
    assert imported.conditional is False and imported.spec["conditional"] is False


# -- the command -------------------------------------------------------------------------------------------

def _reference_run(tmp_path: Path) -> Path:
    """A reference checkpoint folder as its train.py leaves it."""
    run = tmp_path / "facades_pix2pix"
    run.mkdir()
    for fixture, role in (("unet_256_ngf8_batch", "G"), ("patch_n3_ndf8_batch_in6", "D")):
        state, *_ = read_fixture(REFERENCE / f"junyanz_{fixture}.safetensors")
        torch.save(state, run / f"latest_net_{role}.pth")
    return run


def test_import_command_writes_a_translatable_checkpoint(tmp_path: Path) -> None:
    import typer
    from p2p_interop import p2p_add_commands
    from typer.testing import CliRunner

    from p2pcore.checkpoint.files import load_network, read_checkpoint

    if "single" not in HOST.registry.names("dataset"):
        pytest.skip("the `single` dataset adapter is not installed")
    run = _reference_run(tmp_path)
    out = tmp_path / "facades.safetensors"
    app = typer.Typer()
    app.callback()(lambda: None)
    p2p_add_commands(app)  # the hook `p2p` runs for every plugin
    result = CliRunner().invoke(app, ["import", "junyanz", str(run / "latest_net_G.pth"), str(out),
                                      "--netG", "unet_256", "--ngf", "8", "--netD", "basic", "--ndf", "8"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    ckpt = read_checkpoint(out)
    meta = ckpt.metadata
    assert meta["step"] == 0 and meta["epoch"] == 0
    assert meta["source"] == "junyanz:latest_net_G.pth,latest_net_D.pth"
    recipe = meta["recipe"]
    assert recipe["task"] == "pix2pix"
    assert recipe["data"] == {"name": "single", "channels": 3, "out_channels": 3}
    assert recipe["model"]["generator"]["name"] == "unet" and recipe["model"]["generator"]["depth"] == 8
    assert recipe["model"]["discriminator"]["name"] == "patch"
    assert {c["kind"] for c in meta["components"]} == {"task", "dataset", "generator", "discriminator"}

    _, x, expected, _, _ = read_fixture(REFERENCE / "junyanz_unet_256_ngf8_batch.safetensors")
    generator = HOST.build("generator", recipe["model"]["generator"], in_channels=3, out_channels=3)
    load_network(generator, ckpt.prefixed("net.generator"), role="generator", file=str(out))
    with torch.no_grad():
        assert float((generator.eval()(x) - expected).abs().max()) <= TOLERANCE

    from p2pcore.engine.infer.translate import Translator

    translator = Translator(out, HOST, device="cpu", protocol="eval")
    assert float((translator(x[0]) - expected[0]).abs().max()) <= TOLERANCE


def test_import_command_reports_wrong_flags(tmp_path: Path) -> None:
    run = _reference_run(tmp_path)
    result = subprocess.run([sys.executable, "-m", "p2pcore", "import", "junyanz", str(run / "latest_net_G.pth"),
                             str(tmp_path / "out.safetensors"), "--netG", "unet_128", "--ngf", "8"],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "400"})
    if "No such command 'import'" in result.stderr:
        pytest.skip("the p2p command does not list the import commands yet")
    assert result.returncode == 2, result.stderr
    assert "latest_net_G.pth" in result.stderr and "--netG unet_256" in result.stderr
    assert not (tmp_path / "out.safetensors").exists()
