"""The dataset adapter owns its file formats: `p2p translate` picks and checks files by what the checkpoint's
adapter declares (`input_suffixes`/`output_suffixes`), p2p's image formats only where it declares nothing.

The third-party adapter here (tests/thirdparty_frames.py) uses .npz archives, a format p2p's own image I/O
does not read, so only the adapter's word can make these translations work."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import thirdparty_frames
from PIL import Image
from typer.testing import CliRunner

from p2pcore import P2PError, load_host
from p2pcore.cli import app
from p2pcore.engine.infer.translate import plan
from p2pcore.engine.train.trainer import Trainer
from p2pcore.formats import DEFAULT_OUTPUTS, Formats
from p2pcore.recipe import validate_recipe
from p2pcore.testing import check_dataset


@pytest.fixture(scope="module")
def frames_host():
    return load_host(extra_plugins=[("thermal_frames", thirdparty_frames)])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, frames_host) -> Path:
    out = tmp_path_factory.mktemp("frames") / "run"
    recipe = {"data": {"name": "thermal_frames", "size": 32, "count": 2},
              "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}},
              "loss": {"l1": {"name": "l1"}},
              "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "max_steps": 1}}
    Trainer(validate_recipe(recipe, frames_host), frames_host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


@pytest.fixture()
def translate(frames_host, monkeypatch):
    monkeypatch.setattr("p2pcore.commands.common.host", lambda: frames_host)

    def run(*args: object):
        return CliRunner().invoke(app, ["translate", *(str(a) for a in args)])
    return run


def frame(path: Path, shape: tuple[int, int], kelvin: float = 300.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, frame=np.random.default_rng(0).normal(kelvin, 10, shape).astype(np.float32))
    return path


def png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(path)
    return path


def test_a_folder_of_the_adapters_own_format_is_translated_into_it(checkpoint, translate, tmp_path):
    shapes = {"hall.npz": (32, 32), "yard.npz": (20, 28), "road.NPZ": (32, 48)}
    for name, shape in shapes.items():
        frame(tmp_path / "in" / name, shape)
    png(tmp_path / "in" / "preview.png")  # p2p could read it, but this adapter does not: left alone
    (tmp_path / "in" / "notes.txt").write_text("calibration: 2024-05\n")
    result = translate(checkpoint, tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(shapes)
    for name, shape in shapes.items():
        with np.load(tmp_path / "out" / name) as archive:
            kelvin = archive["frame"]
        assert kelvin.shape == shape and np.isfinite(kelvin).all()
        assert kelvin.min() >= 250.0 and kelvin.max() <= 350.0


def test_a_folder_without_the_adapters_format_is_refused_naming_it(checkpoint, translate, tmp_path):
    png(tmp_path / "in" / "a.png")
    png(tmp_path / "in" / "b.png")
    result = translate(checkpoint, tmp_path / "in", tmp_path / "out")
    error = result.exception
    assert isinstance(error, P2PError), result.output
    assert "dataset 'thermal_frames' reads" in error.message and error.file == str(tmp_path / "in")
    assert ".npz" in error.hint and ".png" not in error.hint.split("e.g.")[0]
    assert "2 other file(s), e.g. a.png" in error.hint
    assert not (tmp_path / "out").exists()


def test_single_files_and_outputs_the_adapter_does_not_handle_are_refused(checkpoint, translate, tmp_path):
    source = frame(tmp_path / "hall.npz", (16, 16))
    wrong_output = translate(checkpoint, source, tmp_path / "hall.png")
    assert isinstance(wrong_output.exception, P2PError)
    assert wrong_output.exception.file == str(tmp_path / "hall.png") and ".npz" in wrong_output.exception.hint
    assert not (tmp_path / "hall.png").exists()
    wrong_input = translate(checkpoint, png(tmp_path / "photo.png"), tmp_path / "photo.npz")
    assert isinstance(wrong_input.exception, P2PError) and "does not read .png" in wrong_input.exception.message
    assert wrong_input.exception.file == str(tmp_path / "photo.png")
    existing = frame(tmp_path / "kept.npz", (16, 16))
    before = existing.read_bytes()
    kept = translate(checkpoint, source, existing)
    assert isinstance(kept.exception, P2PError) and "--overwrite" in kept.exception.hint
    assert existing.read_bytes() == before


def test_the_third_party_adapter_passes_the_dataset_contract_on_its_format(frames_host):
    check_dataset(frames_host, "thermal_frames", size=16, count=2)


# -- the declarations, without a checkpoint ---------------------------------------------------------------

class Declaring:
    def __init__(self, inputs: object, outputs: object = (".out",)) -> None:
        self.inputs, self.outputs = inputs, outputs

    def input_suffixes(self, key: str) -> object:
        return self.inputs

    def output_suffixes(self, key: str) -> object:
        return self.outputs


def test_suffixes_are_matched_case_blind_and_whole_compound_suffixes_count(tmp_path):
    scans = Declaring([".NII.GZ", ".nii.gz", ".mha"], outputs=(".nii.gz", ".mha"))
    formats = Formats.of(scans, name="scans", input_key="a", output_key="b")
    assert formats.inputs == (".nii.gz", ".mha")
    for name in ("a.nii.gz", "B.NII.GZ", "c.mha", "d.gz", "e.nii", ".nii.gz"):
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"")
    jobs = plan(tmp_path / "in", tmp_path / "out", formats)
    assert [src.name for src, _ in jobs] == ["B.NII.GZ", "a.nii.gz", "c.mha"]
    with pytest.raises(P2PError, match="cannot write .GZ files") as caught:  # outputs keep the input names
        plan(tmp_path / "in", tmp_path / "out", replace(formats, outputs=(".out",)))
    assert caught.value.file == str(tmp_path / "out" / "B.NII.GZ")
    assert "dataset 'scans' writes .out for image key 'b'" in caught.value.hint


@pytest.mark.parametrize("answer", [".npz", ["npz"], [], [".npz", 3], None])
def test_a_malformed_declaration_names_the_plugins_mistake(answer):
    with pytest.raises(P2PError, match=r"Declaring: input_suffixes\('a'\) returned") as caught:
        Formats.of(Declaring(answer), name="odd", input_key="a", output_key="b")
    assert "plugin" in caught.value.hint


def test_an_adapter_declaring_nothing_gets_p2ps_image_formats(frames_host, tmp_path):
    plain = Formats.of(object(), name="plain", input_key="a", output_key="b")
    assert ".png" in plain.inputs and ".npy" in plain.inputs and plain.outputs == DEFAULT_OUTPUTS
    assert plan(png(tmp_path / "a.png"), tmp_path / "b.jpg", plain) == [(tmp_path / "a.png", tmp_path / "b.jpg")]


def test_builtin_adapters_declare_what_they_write(frames_host, tmp_path):
    deep = frames_host.build("dataset", {"name": "paired_folders", "root": "nowhere", "output_bits": 16})
    formats = Formats.of(deep, name="paired_folders", input_key="a", output_key="b")
    assert formats.outputs == (".png", ".tif", ".tiff", ".npy")
    with pytest.raises(P2PError, match="cannot write .jpg"):  # refused before any network runs
        plan(png(tmp_path / "a.png"), tmp_path / "a.jpg", formats)
    labels = frames_host.build("dataset", {"name": "cityscapes_labels", "root": "nowhere"})
    to_labels = Formats.of(labels, name="cityscapes_labels", input_key="a", output_key="b")
    assert ".png" in to_labels.outputs and not {".jpg", ".jpeg", ".webp"} & set(to_labels.outputs)
    assert ".jpg" in Formats.of(labels, name="cityscapes_labels", input_key="b", output_key="a").outputs
