"""`p2pcore.load`: a checkpoint's translation from Python, on PIL images, NumPy arrays and tensors (each
returned as it came, at its size), folders with the CLI's guarantees; translation precision; and the paper
protocol in exported files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from PIL import Image

import p2pcore
from p2pcore import P2PError
from p2pcore.engine.infer.translate import Translator as Engine

ROOT = Path(__file__).resolve().parents[1]


TRAINED = {"size": 32, "generator": {"name": "resnet", "n_blocks": 1, "ngf": 8, "norm": "batch", "dropout": 0.5}}
"""The checkpoint fixture's run: grey thermal -> colour, a ResNet generator with batch norm and dropout, so
the paper protocol draws."""


@pytest.fixture(scope="module")
def model(checkpoint):
    return p2pcore.load(checkpoint, device="cpu", protocol="eval")


def picture(height: int = 20, width: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)


def test_load_is_lazy_and_torch_free_until_called() -> None:
    code = ("import sys, p2pcore; p2pcore.load; p2pcore.Translator; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_a_pil_image_comes_back_as_the_cli_writes_it(model, checkpoint, tmp_path) -> None:
    image = Image.fromarray(picture())
    out = model.translate(image)
    assert isinstance(out, Image.Image) and out.size == image.size and out.mode == "RGB"
    image.save(tmp_path / "in.png")
    assert invoke("translate", checkpoint, tmp_path / "in.png", tmp_path / "out.png", "--eval",
                  "--device", "cpu").exit_code == 0
    assert np.array_equal(np.asarray(out), np.asarray(Image.open(tmp_path / "out.png")))
    assert model.direction == "a2b" and model.in_channels == 1 and model.out_channels == 3
    assert "protocol='eval'" in repr(model)


def test_arrays_keep_their_dtype_and_layout(model) -> None:
    grey = picture()
    eight = model.translate(grey)
    assert eight.dtype == np.uint8 and eight.shape == (20, 28, 3)
    assert np.array_equal(eight, np.asarray(model.translate(Image.fromarray(grey))))
    sixteen = model.translate(grey.astype(np.uint16) * 257)             # the same values in 16 bits
    assert sixteen.dtype == np.uint16 and sixteen.shape == (20, 28, 3)
    assert np.array_equal(sixteen, eight.astype(np.uint16) * 257)       # 8-bit outputs, in 16-bit units
    unit = model.translate(grey.astype(np.float32) / 255)               # floats: 0..1
    assert unit.dtype == np.float32 and np.allclose(unit, eight / 255, atol=1e-6)
    channel_last = model.translate(grey[..., None])
    assert np.array_equal(channel_last, eight)
    with pytest.raises(P2PError, match="6 channels") as refused:
        model.translate(np.stack([grey] * 6, -1))
    assert refused.value.file is None and "input side: 1 channel" in refused.value.hint
    with pytest.raises(P2PError, match="cannot translate a str"):
        model.translate("image.png")


def test_tensors_are_translated_as_the_networks_see_them(model, checkpoint, host) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 20, 28) * 2 - 1
    engine = Engine(checkpoint, host, device="cpu", protocol="eval")
    out = model.translate(image)
    assert out.shape == (3, 20, 28) and out.dtype == torch.float32 and torch.equal(out, engine(image))
    batch = model.translate(torch.stack([image, -image]))
    assert batch.shape == (2, 3, 20, 28) and torch.allclose(batch[0], out, atol=1e-6)
    as_double = model.translate(image.double())
    assert as_double.dtype == torch.float64
    integers = torch.from_numpy(picture())[None]
    eight = model.translate(integers)
    assert eight.dtype == torch.uint8 and eight.shape == (3, 20, 28)
    assert np.array_equal(eight.permute(1, 2, 0).numpy(), model.translate(picture()))


def test_a_test_time_size_through_the_api(checkpoint) -> None:
    sized = p2pcore.load(checkpoint, device="cpu", protocol="eval", load_size=64)
    assert sized.translate(Image.fromarray(picture())).size == (28, 20)
    kept = p2pcore.load(checkpoint, device="cpu", protocol="eval", load_size=64, keep_model_size=True)
    assert kept.translate(Image.fromarray(picture())).size == (64, 64)
    assert kept.translate(torch.zeros(1, 20, 28)).shape == (3, 64, 64)


def test_a_folder_with_the_clis_guarantees(model, tmp_path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for i in range(3):
        Image.fromarray(picture(seed=i)).save(source / f"{i}.png")
    (source / "notes.txt").write_text("not an image")
    outcome = model.translate_folder(source, tmp_path / "out")
    assert outcome.written == 3 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png", "2.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "1.png")),
                          np.asarray(model.translate(Image.open(source / "1.png"))))
    (tmp_path / "out" / "0.png").write_bytes(b"precious")
    with pytest.raises(P2PError, match="exist already"):
        model.translate_folder(source, tmp_path / "out")
    assert (tmp_path / "out" / "0.png").read_bytes() == b"precious"
    assert model.translate_folder(source, tmp_path / "out", overwrite=True).written == 3
    assert not [p for p in (tmp_path / "out").iterdir() if ".tmp" in p.name]
    (source / "2.png").write_bytes(b"broken")
    with pytest.raises(P2PError, match="1 of 3 image"):
        model.translate_folder(source, tmp_path / "again")
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["0.png", "1.png"]


def test_bf16_on_the_cpu_is_close_to_fp32_and_fp16_is_refused(checkpoint, model, tmp_path) -> None:
    image = torch.rand(1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    bf16 = p2pcore.load(checkpoint, device="cpu", protocol="eval", precision="bf16")
    full, half = model.translate(image), bf16.translate(image)
    assert half.dtype == torch.float32 and bf16.precision == "bf16"
    assert not torch.equal(full, half) and (full - half).abs().max() < 0.1
    with pytest.raises(P2PError, match="fp16 needs a CUDA device") as refused:
        p2pcore.load(checkpoint, device="cpu", precision="fp16")
    assert refused.value.key == "--precision" and "bf16" in refused.value.hint
    Image.fromarray(picture()).save(tmp_path / "in.png")
    done = subprocess.run([sys.executable, "-m", "p2pcore", "translate", str(checkpoint), str(tmp_path / "in.png"),
                           str(tmp_path / "out.png"), "--device", "cpu", "--precision", "fp16"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 2 and "fp16 needs a CUDA device" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out.png").exists()
    cli = invoke("translate", checkpoint, tmp_path / "in.png", tmp_path / "bf16.png", "--device", "cpu",
                 "--precision", "bf16")
    assert cli.exit_code == 0 and "bf16" in cli.output and (tmp_path / "bf16.png").is_file()


def test_an_export_keeps_the_paper_protocol_on_request(checkpoint, model, tmp_path) -> None:
    image = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    assert invoke("export", checkpoint, tmp_path / "eval.pt", "--format", "torchscript").exit_code == 0
    result = invoke("export", checkpoint, tmp_path / "paper.pt", "--format", "torchscript", "--protocol", "paper")
    assert result.exit_code == 0 and "paper protocol" in result.output
    files: dict[str, str] = {"protocol": ""}
    evaluated = torch.jit.load(str(tmp_path / "eval.pt"))
    paper = torch.jit.load(str(tmp_path / "paper.pt"), _extra_files=files)
    assert files["protocol"] == b"paper" or files["protocol"] == "paper"
    with torch.no_grad():
        once, twice = evaluated(image), evaluated(image)
        assert torch.equal(once, twice)                                        # eval: deterministic
        assert torch.allclose(once[0], model.translate(image[0]), atol=1e-5)  # and what translate --eval gives
        first, second = paper(image), paper(image)
    assert not torch.allclose(first, second, atol=1e-3)                        # paper: dropout draws each run
    assert not torch.allclose(first, once, atol=1e-3)
    bad = invoke("export", checkpoint, tmp_path / "x.pt", "--protocol", "train")
    assert isinstance(bad.exception, P2PError) and bad.exception.key == "--protocol"


def test_an_onnx_export_records_the_paper_protocol(checkpoint, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    result = invoke("export", checkpoint, tmp_path / "paper.onnx", "--protocol", "paper")
    assert result.exit_code == 0 and "ORT_DISABLE_ALL" in " ".join(result.output.split())
    graph = onnx.load(str(tmp_path / "paper.onnx"))
    props = {p.key: p.value for p in graph.metadata_props}
    assert props == {"size_multiple": "4", "protocol": "paper"}
    dropout = [n for n in graph.graph.node if n.op_type == "Dropout"]
    norms = [n for n in graph.graph.node if n.op_type == "BatchNormalization"]
    assert dropout and norms and all(a.i == 1 for n in norms for a in n.attribute if a.name == "training_mode")
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(tmp_path / "paper.onnx"), options)
    image = np.random.default_rng(3).uniform(-1, 1, (1, 1, 32, 32)).astype(np.float32)
    assert not np.allclose(session.run(None, {"a": image})[0], session.run(None, {"a": image})[0], atol=1e-3)
