"""p2p translate never loses a file: atomic outputs, no silent overwrite, the input safe under any
name, each bad file reported while the rest are translated, non-finite outputs refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from PIL import Image

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint, write_checkpoint
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, host) -> Path:
    out = tmp_path_factory.mktemp("translate") / "run"
    recipe = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
              "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}},
              "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}
    Trainer(validate_recipe(recipe, host), host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


def grey(path: Path, size: tuple[int, int] = (20, 28)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)).save(path)
    return path


def test_existing_outputs_need_overwrite(checkpoint, tmp_path):
    source = grey(tmp_path / "in.png")
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    result = invoke("translate", checkpoint, source, target)
    assert isinstance(result.exception, P2PError) and "--overwrite" in result.exception.hint
    assert target.read_bytes() == b"precious"
    assert invoke("translate", checkpoint, source, target, "--overwrite").exit_code == 0
    assert Image.open(target).size == (28, 20)
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_an_output_hard_linked_to_its_input_is_refused(checkpoint, tmp_path):
    source = grey(tmp_path / "in.png")
    os.link(source, tmp_path / "alias.png")
    before = source.read_bytes()
    result = invoke("translate", checkpoint, source, tmp_path / "alias.png", "--overwrite")
    assert isinstance(result.exception, P2PError) and "overwrite its input" in result.exception.message
    assert source.read_bytes() == before


def test_bad_files_are_reported_and_the_rest_translated(checkpoint, tmp_path):
    folder = tmp_path / "in"
    grey(folder / "a.png")
    (folder / "b.png").write_bytes(b"not an image")
    (folder / "c.png").mkdir()
    grey(folder / "d.png")
    result = invoke("translate", checkpoint, folder, tmp_path / "out")
    assert isinstance(result.exception, P2PError)
    assert "2 of 4 image(s) failed" in result.exception.message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "d.png"]
    assert any("c.png" in line and "regular" in line for line in result.exception.details)
    fast = invoke("translate", checkpoint, folder, tmp_path / "fast", "--fail-fast")
    assert isinstance(fast.exception, P2PError) and "b.png" in (fast.exception.file or "")


def test_non_finite_outputs_are_an_error(checkpoint, tmp_path):
    ckpt = read_checkpoint(checkpoint)
    tensors = dict(ckpt.tensors)
    first = next(k for k in tensors if k.startswith("net.generator.") and k.endswith("weight"))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    broken = tmp_path / "nan.safetensors"
    write_checkpoint(broken, tensors, ckpt.metadata)
    result = invoke("translate", broken, grey(tmp_path / "in.png"), tmp_path / "out.png")
    assert isinstance(result.exception, P2PError) and "not finite" in result.exception.message
    assert not (tmp_path / "out.png").exists()


def test_a_read_only_output_folder_is_refused_before_any_work(checkpoint, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        result = invoke("translate", checkpoint, grey(tmp_path / "in.png"), locked / "out.png")
        assert isinstance(result.exception, P2PError) and "cannot write into" in result.exception.message
    finally:
        locked.chmod(0o700)


def test_pgm_outputs_are_grey_only(tmp_path):
    from p2pcore.imageio import write_image

    with pytest.raises(P2PError, match=".pgm holds grey images"):
        write_image(torch.zeros(3, 4, 4), tmp_path / "colour.pgm")
    write_image(torch.zeros(1, 4, 4), tmp_path / "grey.pgm")
    assert Image.open(tmp_path / "grey.pgm").mode == "L"


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(checkpoint, tmp_path, monkeypatch):
    import errno

    ckpt = read_checkpoint(checkpoint)
    target = tmp_path / "latest.safetensors"
    write_checkpoint(target, ckpt.tensors, ckpt.metadata)
    before = target.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(P2PError, match="No space left") as caught:
        write_checkpoint(target, ckpt.tensors, ckpt.metadata)
    assert "previous checkpoint is intact" in caught.value.hint
    assert target.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_task_without_styles_refuses_them(checkpoint, host):
    from p2pcore.engine.infer.translate import Translator

    with pytest.raises(P2PError, match="without styles") as caught:
        Translator(checkpoint, host, device="cpu", style="random", styles="x.safetensors")
    assert caught.value.key == "--style"


def test_a_checkpoint_names_the_plugin_it_needs(checkpoint, tmp_path, host):
    from p2pcore.engine.infer.translate import Translator

    ckpt = read_checkpoint(checkpoint)
    recorded = ckpt.metadata["components"]
    assert {"norm"} <= {c["kind"] for c in recorded}  # nested components are recorded too
    missing = {"kind": "generator", "name": "hourglass", "qualified_name": "p2p-hourglass:hourglass",
               "distribution": "p2p-hourglass", "version": "1.2.0"}
    crafted = tmp_path / "needs.safetensors"
    write_checkpoint(crafted, ckpt.tensors, {**ckpt.metadata, "components": [*recorded, missing]})
    with pytest.raises(P2PError, match="from p2p-hourglass 1.2.0, which is not installed") as caught:
        Translator(crafted, host, device="cpu")
    assert "pip install 'p2p-hourglass==1.2.0'" in caught.value.hint
    older = [{**c, "version": "0.0.1"} if c["kind"] == "generator" else c for c in recorded]
    write_checkpoint(crafted, ckpt.tensors, {**ckpt.metadata, "components": older})
    with pytest.warns(UserWarning, match="0.0.1"):
        Translator(crafted, host, device="cpu")
