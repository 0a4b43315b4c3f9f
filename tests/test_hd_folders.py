"""pix2pixHD on your own data: the pix2pixHD folder layout (`pix2pixhd_folders`) on real files, its check, a
tiny training and translation; image input (`label_nc = 0`) with the coarse-to-fine freeze, also in two
processes; the recipes validate without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import ROOT, run_without_torch
from PIL import Image
from typer.testing import CliRunner

from p2pcore import P2PError, load_host
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import read_with_extends, validate_recipe
from p2pcore.testing import check_dataset

HOST = load_host()
W, H = 48, 32            # training images: 2:1.5, not square
TEST_W, TEST_H = 38, 22  # test label maps of another size, not a multiple of 4: translations keep it
BIG = 2 ** 24 + 5        # a 32-bit instance id that float32 cannot hold exactly


def scene(i: int, w: int = W, h: int = H) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Label ids 0..3 (3 sky, 1 road, 2 cars), instance ids with two cars (Cityscapes' id * 1000 + n), a photo."""
    label = np.zeros((h, w), np.int64)
    label[: h // 2] = 3
    label[h // 2:, : w // 2] = 1
    label[h // 2:, w // 2:] = 2
    label[h // 2:, : 4 + i] = 0
    instances = label.copy()
    instances[h // 2:, w // 2: 3 * w // 4] = 2001
    instances[h // 2:, 3 * w // 4:] = 2002
    palette = np.array([[20, 20, 20], [128, 64, 128], [0, 0, 142], [70, 130, 180]], np.uint8)
    photo = palette[label] + np.random.default_rng(i).integers(0, 20, (h, w, 3), dtype=np.uint8)
    return label, instances, photo


def write_split(root: Path, split: str, count: int, w: int, h: int) -> None:
    """Label maps alternately 8- and 16-bit PNG; instance maps 8-bit, 16-bit PNG and 32-bit TIFF in turn
    (the TIFF's ids beyond 2**24); photos JPEG and PNG."""
    for folder in ("label", "inst", "img"):
        (root / f"{split}_{folder}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label, instances, photo = scene(i, w, h)
        name = f"{split}{i:02d}"
        Image.fromarray(label.astype(np.uint8 if i % 2 == 0 else np.uint16)).save(root / f"{split}_label" /
                                                                                   f"{name}.png")
        if i % 3 == 0:
            Image.fromarray((instances % 256).astype(np.uint8)).save(root / f"{split}_inst" / f"{name}.png")
        elif i % 3 == 1:
            Image.fromarray(instances.astype(np.uint16)).save(root / f"{split}_inst" / f"{name}.png")
        else:
            tifffile.imwrite(root / f"{split}_inst" / f"{name}.tif", (instances + BIG).astype(np.uint32))
        Image.fromarray(photo).save(root / f"{split}_img" / f"{name}.{'jpg' if i % 2 else 'png'}")


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    root = tmp_path / "mine"
    write_split(root, "train", 6, W, H)
    write_split(root, "test", 2, TEST_W, TEST_H)
    return root


def check(root: Path, *options: str, recipe: str = "recipes/pix2pixhd_folders.toml") -> tuple[int, dict]:
    """`p2p data check RECIPE --json` on `root`: the exit code and the report."""
    result = CliRunner().invoke(app, ["data", "check", str(ROOT / recipe), "--set", f"data.root={root}",
                                      "--set", "data.label_nc=4", "--set", "task.label_nc=4", "--json", *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, json.loads(result.stdout)


# -- the adapter ---------------------------------------------------------------------------------------------

def test_the_layout_is_read_with_exact_ids(folders: Path) -> None:
    adapter = check_dataset(HOST, "pix2pixhd_folders", keys=("label", "b"), root=str(folders), preprocess="none")
    assert adapter.channels == {"label": 2} and adapter.a_channels == 2 and adapter.b_channels == 3
    items = adapter.dataset("train", train=False)
    assert len(items) == 6 and [items[i]["name"] for i in range(2)] == ["train00", "train01"]
    for i in range(6):
        item = items[i]
        label, instances = item["label"]
        truth_label, truth_instances, _ = scene(i)
        assert item["b"].shape == (3, H, W) and item["label_file"].endswith(f"train{i:02d}.png")
        assert torch.equal(label, torch.from_numpy(truth_label).float())           # 8- and 16-bit alike
        if i % 3 == 0:
            assert torch.equal(instances, torch.from_numpy(truth_instances % 256).float())
        elif i % 3 == 1:
            assert torch.equal(instances, torch.from_numpy(truth_instances).float())
        else:  # 32-bit ids beyond float32's exact range: renumbered, the same pixels still share an instance
            pairs = set(zip(instances.flatten().tolist(), truth_instances.flatten().tolist(), strict=True))
            assert len(pairs) == len(np.unique(truth_instances)) == len(instances.unique())
    shown = adapter.display(items[0]["label"][None], "label")
    assert shown.shape == (1, 3, H, W) and shown.min() >= -1 and shown.max() <= 1
    road = adapter.display(torch.full((1, 2, 2, 2), 7.0), "label")[0, :, 0, 0]
    assert ((road + 1) * 127.5).round().tolist() == [128, 64, 128]            # id 7 in Cityscapes' palette
    jittered = HOST.build("dataset", {"name": "pix2pixhd_folders", "root": str(folders), "load_size": 24,
                                      "instances": False}).dataset("train", train=True)[3]
    assert jittered["label"].shape == (1, 16, 24) and jittered["b"].shape == (3, 16, 24)   # scale_width
    assert set(jittered["label"].unique().tolist()) <= {0, 1, 2, 3}                        # nearest: ids stay ids


def test_translate_reads_the_instance_map_of_the_same_name(folders: Path, tmp_path: Path) -> None:
    adapter = HOST.build("dataset", {"name": "pix2pixhd_folders", "root": ""})
    maps = adapter.read_input(folders / "test_label" / "test01.png", "label")
    assert maps.shape == (2, TEST_H, TEST_W) and maps[1].max() == 2002
    assert adapter.read_input(folders / "test_img" / "test00.png", "b").shape == (3, TEST_H, TEST_W)
    (folders / "test_inst" / "test01.png").unlink()
    with pytest.raises(P2PError, match="instance map of this label map is missing") as caught:
        adapter.read_input(folders / "test_label" / "test01.png", "label")
    assert caught.value.file == str(folders / "test_inst" / "test01.png")
    elsewhere = tmp_path / "labels" / "x.png"
    elsewhere.parent.mkdir()
    Image.fromarray(scene(0)[0].astype(np.uint8)).save(elsewhere)
    with pytest.raises(P2PError, match="does not end in _label") as caught:
        adapter.read_input(elsewhere, "label")
    assert "_inst/" in caught.value.hint
    no_instances = HOST.build("dataset", {"name": "pix2pixhd_folders", "root": "", "instances": False})
    assert no_instances.read_input(elsewhere, "label").shape == (1, H, W)


# -- p2p data check ------------------------------------------------------------------------------------------

def test_data_check_is_ok_and_describes_the_files(folders: Path) -> None:
    code, report = check(folders, "--deep")
    assert code == 0 and report["ok"] and report["pairs"] == 6 and report["adapter"] == "pix2pixhd_folders"
    facts = report["facts"]
    assert facts["label maps"] == "6 files, 3 16-bit, 3 8-bit"
    assert facts["instance maps"] == "6 files, 2 16-bit, 2 32-bit, 2 8-bit"
    assert facts["photos"].startswith("6 files, 3 ch") and "48 x 32 px" in facts["photos"]
    assert facts["label ids"] == "4 ids, 0..3"
    code, test = check(folders, "--split", "test")
    assert code == 0 and test["pairs"] == 2 and test["facts"]["label values"] == "read with --deep"


def test_data_check_reports_each_mistake(folders: Path) -> None:
    label = folders / "train_label"
    (folders / "train_img" / "train01.jpg").unlink()                            # a label map without its photo
    tifffile.imwrite(folders / "train_inst" / "stray.tif", np.zeros((H, W), np.uint32))   # no label map
    ids = scene(3)[0].astype(np.uint8)
    ids[2, 5] = 9
    Image.fromarray(ids).save(label / "train03.png")                            # an id beyond label_nc
    Image.fromarray(scene(4)[0][:16].astype(np.uint8)).save(label / "train04.png")          # another size
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(label / "train05.png")              # colour-coded
    code, report = check(folders, "--deep")
    problems = "\n".join(report["problems"])
    assert code == 2 and not report["ok"] and report["pairs"] == 3, problems          # 00, 02 and 03 fit
    assert len(report["problems"]) == 5, problems
    assert "train_label/train01.png: no partner in train_img/" in problems
    assert "train_inst/stray.tif: no label map in train_label/" in problems
    assert "train_label/train03.png: label ids 9 outside 0..3 (data.label_nc = 4)" in problems
    assert "the files of 'train04' differ in size: train_label/train04.png 48x16" in problems
    assert "train_label/train05.png: a label map must be a 1-channel image of integer ids, this one is " \
           "3-channel" in problems
    code, shallow = check(folders)                                              # headers only: ids not read
    assert code == 2 and not any("label ids" in p for p in shallow["problems"])
    code, ignored = check(folders, "--deep", "--set", "data.ignore_index=9", "--set", "task.ignore=9")
    assert not any("train03" in p for p in ignored["problems"])


def test_missing_folders_are_named_and_the_test_split_may_lack_photos(folders: Path) -> None:
    for photo in (folders / "test_img").iterdir():
        photo.unlink()
    (folders / "test_img").rmdir()
    code, test = check(folders, "--split", "test")
    assert code == 0 and test["pairs"] == 0 and "can be translated" in test["warnings"][0]
    adapter = HOST.build("dataset", {"name": "pix2pixhd_folders", "root": str(folders)})
    with pytest.raises(P2PError, match="no test_img/ folder of photos"):
        adapter.dataset("test", train=False)
    for inst in (folders / "train_inst").iterdir():
        inst.unlink()
    (folders / "train_inst").rmdir()
    code, train = check(folders)
    assert code == 2 and "no train_inst/ folder" in train["problems"][0] and "instances = false" in \
        train["problems"][0]
    code, train = check(folders, "--set", "data.instances=false")
    assert code == 0 and train["pairs"] == 6
    code, nowhere = check(folders / "nowhere")
    assert code == 2 and "does not exist" in nowhere["problems"][0]


# -- training and translating --------------------------------------------------------------------------------

TINY_GAN = {
    "model": {"generator": {"name": "global", "ngf": 8, "n_downsample": 2, "n_blocks": 1, "norm": "instance"},
              "discriminator": {"name": "multiscale", "num_D": 2,
                                "discriminator": {"name": "patch", "n_layers": 2, "ndf": 8, "norm": "instance",
                                                  "padding": 2}}},
    "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "device": "cpu", "log_every": 1, "sample_count": 2},
}


def tiny(recipe: str, name: str, **changes: dict) -> dict:
    """A recipe of recipes/ with tiny networks, one epoch, no VGG term (it needs a weights file)."""
    data = read_with_extends(ROOT / "recipes" / recipe)
    for section, values in [*TINY_GAN.items(), *changes.items()]:
        data[section] = {**data.get(section, {}), **values}
    data["loss"].pop("vgg")
    data.pop("init", None)
    data["name"] = name
    return data


def test_a_tiny_pix2pixhd_trains_on_the_folders_and_translates_them(folders: Path, tmp_path: Path) -> None:
    data = tiny("pix2pixhd_folders.toml", "mine", task={"label_nc": 4},
                data={"root": str(folders), "label_nc": 4, "preprocess": "none"})
    out = tmp_path / "run"
    Trainer(validate_recipe(data, HOST), HOST, out).fit()
    checkpoint = out / "checkpoints" / "latest.safetensors"
    saved = read_checkpoint(checkpoint)
    assert saved.metadata["epoch"] == 1 and saved.metadata["recipe"]["data"]["name"] == "pix2pixhd_folders"
    first = saved.tensors["net.generator.features.head.conv.weight"]
    assert first.shape[1] == 4 + 1                                   # 4 one-hot labels and the boundary map
    translated = tmp_path / "translated"
    result = CliRunner().invoke(app, ["translate", str(checkpoint), str(folders / "test_label"), str(translated)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    outputs = sorted(translated.iterdir())
    assert [p.name for p in outputs] == ["test00.png", "test01.png"]
    for path in outputs:
        with Image.open(path) as image:
            assert image.size == (TEST_W, TEST_H) and image.mode == "RGB"


def test_a_label_beyond_label_nc_stops_training_naming_the_file(folders: Path, tmp_path: Path) -> None:
    ids = scene(2)[0].astype(np.uint8)
    ids[0, 0] = 7
    Image.fromarray(ids).save(folders / "train_label" / "train02.png")
    data = tiny("pix2pixhd_folders.toml", "bad", task={"label_nc": 4},
                data={"root": str(folders), "label_nc": 4, "preprocess": "none"},
                train={"batch_size": 6})
    with pytest.raises(P2PError) as caught:
        Trainer(validate_recipe(data, HOST), HOST, tmp_path / "bad").fit()
    assert caught.value.file == str(folders / "train_label" / "train02.png") and "7" in caught.value.message


# -- image input (label_nc = 0) and the coarse-to-fine freeze ---------------------------------------------

@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    """Pixel-aligned pairs as paired_folders reads them: train/A, train/B, test/A, test/B."""
    root = tmp_path / "pairs"
    for split, count in (("train", 8), ("test", 2)):
        for side in ("A", "B"):
            (root / split / side).mkdir(parents=True)
        for i in range(count):
            _, _, photo = scene(i, 32, 32)
            Image.fromarray(photo).save(root / split / "A" / f"{i}.png")
            Image.fromarray(255 - photo).save(root / split / "B" / f"{i}.png")
    return root


AFFINE = {"name": "instance", "affine": True}  # no bias before the norm: gradients without rounding noise
LOCAL = {"name": "local_enhancer", "ngf": 4, "n_enhancers": 1, "n_blocks_local": 1, "n_downsample": 2,
         "n_blocks": 1, "norm": AFFINE}


def images_recipe(pairs: Path, name: str) -> dict:
    return tiny("pix2pixhd_images.toml", name, task={"freeze_epochs": 1},
                data={"root": str(pairs), "preprocess": "none"},
                model={"generator": LOCAL, "discriminator": {"name": "multiscale", "num_D": 2, "discriminator": {
                    "name": "patch", "n_layers": 2, "ndf": 8, "norm": AFFINE, "padding": 2}}},
                train={"epochs": 2, "batch_size": 4})


def test_images_in_with_g1_held_for_the_first_epoch(pairs: Path, tmp_path: Path) -> None:
    data = images_recipe(pairs, "images")
    assert data["task"] == {"name": "pix2pixhd", "label_nc": 0, "freeze_epochs": 1}
    out = tmp_path / "images"
    run = Trainer(validate_recipe(data, HOST), HOST, out)
    start = {k: v.clone() for k, v in run.nets["generator"].global_net.state_dict().items()}
    run.fit()
    first = read_checkpoint(out / "checkpoints" / "epoch_001.safetensors").prefixed("net.generator.global_net")
    last = read_checkpoint(out / "checkpoints" / "epoch_002.safetensors").prefixed("net.generator.global_net")
    assert all(torch.equal(first[k], start[k]) for k in start)                 # held in epoch 1
    assert any(not torch.equal(last[k], start[k]) for k in start)             # trained in epoch 2
    checkpoint = out / "checkpoints" / "latest.safetensors"
    assert read_checkpoint(checkpoint).tensors["net.generator.global_net.head.conv.weight"].shape[1] == 3  # RGB in
    target = tmp_path / "b.png"
    result = CliRunner().invoke(app, ["translate", str(checkpoint), str(pairs / "test" / "A" / "1.png"), str(target)])
    assert result.exit_code == 0, result.output
    with Image.open(target) as image:
        assert image.size == (32, 32)


def test_images_in_refuse_what_needs_label_maps(pairs: Path) -> None:
    data = images_recipe(pairs, "styles")
    data["model"]["encoder"] = {"name": "global", "ngf": 8, "n_downsample": 2, "n_blocks": 0}
    with pytest.raises(P2PError, match="has neither") as caught:
        validate_recipe(data, HOST)
    assert caught.value.key == "model.encoder"
    data = images_recipe(pairs, "ignore")
    data["task"]["ignore"] = 255
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, HOST)
    assert caught.value.key == "task.ignore"


def run_p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", "run", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_the_freeze_in_two_processes_equals_one(pairs: Path, tmp_path: Path) -> None:
    """Under --nproc the held G1 gets no gradient in the first epoch: the data-parallel wrapper leaves it
    out of the averaging, and both processes end where one process ends."""
    import tomli_w

    recipe = tmp_path / "images.toml"
    recipe.write_text(tomli_w.dumps(images_recipe(pairs, "ddp")))
    for name, extra in (("one", ()), ("two", ("--nproc", "2"))):
        result = run_p2p(str(recipe), "--out", str(tmp_path / name), *extra)
        assert result.returncode == 0, result.stderr[-3000:]
    for epoch in ("epoch_001", "epoch_002"):
        one = read_checkpoint(tmp_path / "one" / "checkpoints" / f"{epoch}.safetensors").tensors
        two = read_checkpoint(tmp_path / "two" / "checkpoints" / f"{epoch}.safetensors").tensors
        nets = [k for k in one if k.startswith("net.")]
        assert any(".global_net." in k for k in nets)
        for key in nets:
            torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=1e-4, msg=key)


# -- the recipes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", ["pix2pixhd_folders.toml", "pix2pixhd_images_global.toml", "pix2pixhd_images.toml"])
def test_the_recipes_validate_without_torch(recipe: str, folders: Path) -> None:
    result = run_without_torch(["validate", f"recipes/{recipe}", "--set", f"data.root={folders}"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_validate_refuses_label_maps_from_a_dataset_without_them(tmp_path: Path) -> None:
    """pix2pixHD with label_nc > 0 reads an item's `label`, which paired_folders does not give: refused at
    validate, without torch, naming the key."""
    recipe = tmp_path / "pairs.toml"
    recipe.write_text(textwrap.dedent(f"""
        extends = "{ROOT / 'recipes' / 'pix2pixhd_folders.toml'}"
        [data]
        name = "paired_folders"
        root = "{tmp_path}"
    """))
    probe = textwrap.dedent(f"""
        import sys
        sys.argv = ["p2p", "validate", {str(recipe)!r}]
        from p2pcore.cli import main
        try:
            main()
        except SystemExit as e:
            code = e.code
        assert "torch" not in sys.modules, "torch was imported"
        sys.exit(code)
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "200"}, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "label maps" in output and "key:  data" in output and "pix2pixhd_folders" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(("changes", "key", "words"), [
    ({"data.label_nc": 20}, "data.label_nc", "ids 0..19 (data.label_nc = 20) but the task one-hots 35"),
    ({"data.ignore_index": 255}, "task.ignore", "set task.ignore = 255"),
    ({"data.name": "paired_folders"}, "data", "the dataset gives none"),
])
def test_validate_refuses_label_ids_or_maps_the_task_cannot_read(changes: dict, key: str, words: str) -> None:
    data = read_with_extends(ROOT / "recipes" / "pix2pixhd_folders.toml")
    for path, value in changes.items():
        data["data"][path.split(".")[1]] = value
    if data["data"]["name"] == "paired_folders":
        data["data"] = {"name": "paired_folders", "root": "x"}
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, HOST)
    assert caught.value.key == key and words in str(caught.value), str(caught.value)
    agreed = read_with_extends(ROOT / "recipes" / "pix2pixhd_folders.toml")
    agreed["data"]["ignore_index"] = agreed["task"]["ignore"] = 255
    assert validate_recipe(agreed, HOST).data.params.ignore_index == 255
