"""Test-time sizes: `p2p translate` and `p2p eval` give the generator a square --load-size or a --scale-width
(aspect kept, multiples of its size multiple), by default the recipe's [translate], and resize outputs back
to each input's size (label maps nearest) unless --keep-model-size; test splits keep the whole image."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from PIL import Image

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint, write_checkpoint
from p2pcore.engine.evaluate.scoring import evaluate_checkpoint
from p2pcore.engine.infer.sizing import Sizing, label_keys, resize
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe

RECIPE = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 3},
          "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8, "norm": "instance", "dropout": 0.0}},
          "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, host) -> Path:
    out = tmp_path_factory.mktemp("sizes") / "run"
    Trainer(validate_recipe(RECIPE, host), host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


def with_translate(checkpoint: Path, folder: Path, table: dict) -> Path:
    """A copy of the checkpoint whose recipe carries a [translate] table."""
    ckpt = read_checkpoint(checkpoint)
    metadata = copy.deepcopy(ckpt.metadata)
    metadata["recipe"]["translate"] = table
    target = folder / "sized.safetensors"
    write_checkpoint(target, dict(ckpt.tensors), metadata)
    return target


def grey(path: Path, size: tuple[int, int] = (20, 28)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(1).integers(0, 255, size, dtype=np.uint8)).save(path)
    return path


def seen_sizes(translator: Translator) -> list[tuple[int, int]]:
    """Record the image sizes the generator is given."""
    sizes: list[tuple[int, int]] = []
    forward = translator.forward

    def recording(image: torch.Tensor) -> torch.Tensor:
        sizes.append(tuple(image.shape[-2:]))
        return forward(image)

    translator.forward = recording  # type: ignore[method-assign]
    return sizes


def test_model_sizes_honour_the_size_multiple() -> None:
    assert Sizing().model_size(20, 28) == (20, 28) and not Sizing().resizes
    assert Sizing.checked(load_size=64, scale_width=None, multiple=32).model_size(20, 28) == (64, 64)
    wide = Sizing.checked(load_size=None, scale_width=64, multiple=32)
    assert wide.model_size(20, 28) == (32, 64) and wide.model_size(60, 28) == (128, 64)  # heights rounded
    assert wide.model_size(2, 100) == (32, 64)                                            # one multiple at least
    with pytest.raises(P2PError, match="multiple of 32") as bad:
        Sizing.checked(load_size=40, scale_width=None, multiple=32)
    assert bad.value.key == "--load-size" and "--load-size 32" in bad.value.hint
    with pytest.raises(P2PError, match="give one"):
        Sizing.checked(load_size=32, scale_width=64, multiple=32)


def test_resizing_keeps_label_ids_and_the_image_range() -> None:
    ids = torch.tensor([[7.0, 26.0], [24.0, 11.0]]).repeat_interleave(5, 0).repeat_interleave(5, 1)[None]
    assert set(resize(ids, (7, 13), nearest=True).unique().tolist()) == {7.0, 11.0, 24.0, 26.0}
    assert len(resize(ids / 30, (7, 13), nearest=False).unique()) > 4     # what bicubic would do to ids
    edges = torch.where(torch.rand(3, 16, 16) > 0.5, 1.0, -1.0)
    assert resize(edges, (37, 37), nearest=False).abs().max() <= 1      # bicubic overshoot clamped
    assert resize(edges, (16, 16), nearest=False) is edges


def test_translate_at_a_load_size_writes_the_input_size_unless_kept(checkpoint, host, tmp_path) -> None:
    source = grey(tmp_path / "in.png")
    out = tmp_path / "out.png"
    result = invoke("translate", checkpoint, source, out, "--load-size", 64, "--eval", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (28, 20) and "model size 64 x 64" in " ".join(result.output.split())
    kept = tmp_path / "kept.png"
    assert invoke("translate", checkpoint, source, kept, "--load-size", 64, "--keep-model-size").exit_code == 0
    assert Image.open(kept).size == (64, 64)
    # the written image is the model-size translation resized back, bicubic
    translator = Translator(checkpoint, host, device="cpu", protocol="eval", load_size=64)
    sizes = seen_sizes(translator)
    image = translator.read(source)
    with torch.no_grad(), translator.run.in_protocol():
        at_model = translator.forward(resize(image, (64, 64), nearest=False)[None])[0]
    by_hand = resize(at_model, (20, 28), nearest=False)
    assert sizes == [(64, 64)]
    translated = translator(image)
    assert sizes == [(64, 64), (64, 64)] and torch.allclose(translated, by_hand, atol=1e-5)
    native = np.asarray(Image.open(out)).astype(int)
    assert np.abs(native - np.round((translated.permute(1, 2, 0).numpy() + 1) * 127.5)).max() <= 1


def test_scale_width_keeps_the_aspect(checkpoint, host, tmp_path) -> None:
    source = grey(tmp_path / "in.png", size=(40, 100))
    translator = Translator(checkpoint, host, device="cpu", protocol="eval", scale_width=64)
    sizes = seen_sizes(translator)
    assert translator(translator.read(source)).shape == (3, 40, 100) and sizes == [(32, 64)]
    kept = tmp_path / "kept.png"
    assert invoke("translate", checkpoint, source, kept, "--scale-width", 64, "--keep-model-size").exit_code == 0
    assert Image.open(kept).size == (64, 32)


def test_sizes_that_are_not_multiples_are_refused(checkpoint, tmp_path) -> None:
    source = grey(tmp_path / "in.png")
    for option in ("--load-size", "--scale-width"):
        result = invoke("translate", checkpoint, source, tmp_path / "out.png", option, 40)
        assert isinstance(result.exception, P2PError) and result.exception.key == option
        assert "multiple of 32" in result.exception.message and not (tmp_path / "out.png").exists()
    both = invoke("translate", checkpoint, source, tmp_path / "out.png", "--load-size", 32, "--scale-width", 64)
    assert isinstance(both.exception, P2PError) and "give one" in both.exception.message


def test_the_recipes_translate_size_is_the_default(checkpoint, host, tmp_path) -> None:
    sized = with_translate(checkpoint, tmp_path, {"load_size": 64})
    translator = Translator(sized, host, device="cpu", protocol="eval")
    sizes = seen_sizes(translator)
    source = grey(tmp_path / "in.png")
    assert translator(translator.read(source)).shape == (3, 20, 28) and sizes == [(64, 64)]
    asked = Translator(sized, host, device="cpu", protocol="eval", scale_width=32)   # options win
    asked_sizes = seen_sizes(asked)
    asked(asked.read(source))
    assert asked_sizes == [(32, 32)]
    inspected = invoke("inspect", sized)
    assert inspected.exit_code == 0 and "translate: 64 x 64 (translate.load_size)" in inspected.output
    assert "translate: each image at its own size" in invoke("inspect", checkpoint).output
    odd = with_translate(checkpoint, tmp_path / "odd", {"scale_width": 48})
    with pytest.raises(P2PError, match="multiple of 32") as refused:
        Translator(odd, host, device="cpu")
    assert refused.value.key == "translate.scale_width" and refused.value.file == str(odd)


def test_a_recipe_refuses_two_translate_sizes(host) -> None:
    with pytest.raises(P2PError, match="give one"):
        validate_recipe({**RECIPE, "translate": {"load_size": 32, "scale_width": 64}}, host)
    assert "translate" not in validate_recipe(RECIPE, host).to_toml_dict()   # recorded only when set


def test_eval_at_a_load_size_scores_outputs_resized_back(checkpoint, host, tmp_path) -> None:
    plain = evaluate_checkpoint(checkpoint, host, {"metrics": ["l1"]}, device="cpu", mode="eval")
    same = evaluate_checkpoint(checkpoint, host, {"metrics": ["l1"]}, device="cpu", mode="eval", load_size=32)
    assert same.figures == plain.figures                                  # the items' own size: nothing resized
    sized = evaluate_checkpoint(checkpoint, host, {"metrics": ["l1"]}, device="cpu", mode="eval", load_size=64)
    translator = Translator(checkpoint, host, device="cpu", protocol="eval", load_size=64)
    test = translator.adapter.dataset("test", train=False)
    by_hand = [(translator(test[i]["a"]) - test[i]["b"]).abs().mean() for i in range(len(test))]
    assert sized.figures["eval/l1"] == pytest.approx(float(torch.stack(by_hand).mean()), rel=1e-4)
    assert "64 x 64" in sized.extra["sizing"] and sized.figures != plain.figures
    kept = evaluate_checkpoint(checkpoint, host, {"metrics": ["l1"]}, device="cpu", mode="eval", load_size=64,
                               keep_model_size=True)
    with torch.no_grad(), translator.run.in_protocol():
        at_model = [(translator.forward(resize(test[i]["a"], (64, 64), nearest=False)[None])[0]
                     - resize(test[i]["b"], (64, 64), nearest=False)).abs().mean() for i in range(len(test))]
    assert kept.figures["eval/l1"] == pytest.approx(float(torch.stack(at_model).mean()), rel=1e-4)
    result = invoke("eval", checkpoint, "--metric", "l1", "--device", "cpu", "--eval-protocol", "--scale-width",
                    64, "--out", tmp_path / "scores")
    assert result.exit_code == 0, result.output
    written = json.loads(next((tmp_path / "scores").glob("*.json")).read_text())
    assert "64 wide" in written["sizing"]


def gradient_pairs(root: Path, side: int = 64) -> Path:
    """Pairs whose images are a horizontal ramp from black to white, edge to edge."""
    ramp = np.tile(np.linspace(0, 255, side).round().astype(np.uint8), (side, 1))
    for split in ("train", "test"):
        for folder in ("A", "B"):
            (root / split / folder).mkdir(parents=True)
            Image.fromarray(ramp).save(root / split / folder / "0.png")
    return root


def test_the_test_split_is_the_whole_image_unless_the_recipe_asks_for_a_crop(host, tmp_path) -> None:
    root = gradient_pairs(tmp_path / "ramp")
    data = {"name": "paired_folders", "root": str(root), "load_size": 72, "crop_size": 64,
            "a": {"dir": "A", "channels": 1}, "b": {"dir": "B", "channels": 1}}
    whole = host.build("dataset", data).dataset("test", train=False)[0]["a"]
    cropped = host.build("dataset", {**data, "test_crop": True}).dataset("test", train=False)[0]["a"]
    assert whole.shape == cropped.shape == (1, 64, 64)
    assert whole[0, :, 0].max() == -1 and whole[0, :, -1].min() == 1        # edge to edge, as stored
    assert cropped[0, :, 0].min() > -0.95 and cropped[0, :, -1].max() < 0.95  # the centre crop cuts the edges
    assert host.build("dataset", data).dataset("train", train=True)[0]["a"].shape == (1, 64, 64)


def test_label_maps_are_resized_nearest(host, tmp_path) -> None:
    recipe = {"task": {"name": "pix2pixhd", "label_nc": 35},
              "data": {"name": "synthetic_labels", "size": 32, "train_count": 2, "test_count": 1},
              "model": {"generator": {"name": "global", "ngf": 4, "n_downsample": 2, "n_blocks": 1},
                        "discriminator": {"name": "multiscale", "num_D": 1,
                                          "discriminator": {"name": "patch", "n_layers": 1, "ndf": 4}}},
              "loss": {"gan": {"name": "gan", "mode": "lsgan"}},
              "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "max_steps": 1}}
    out = tmp_path / "hd"
    Trainer(validate_recipe(recipe, host), host, out).fit()
    adapter = host.build("dataset", {"name": "synthetic_labels", "size": 32})
    assert label_keys(adapter) == {"label"}
    label_file = adapter.write_files("test", tmp_path / "files", count=1)[0]
    translator = Translator(out / "checkpoints" / "latest.safetensors", host, device="cpu", protocol="eval",
                            load_size=48)
    given: list[torch.Tensor] = []
    forward = translator.forward
    translator.forward = lambda image: given.append(image) or forward(image)  # type: ignore[method-assign]
    label = translator.read(label_file)
    photo = translator(label)
    assert photo.shape == (3, 32, 32) and given[0].shape[-2:] == (48, 48)
    for channel in range(2):  # label ids and instance ids both stay ids
        assert set(given[0][0, channel].unique().tolist()) <= set(label[channel].unique().tolist())
