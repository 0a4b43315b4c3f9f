"""Dataset adapters: the contract the engine relies on, every adapter, and every kind of bad input."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, needs_shared
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from p2pcore import P2PError
from p2pcore.imageio import load_image

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

ADAPTERS = ("paired_folders", "synthetic_thermal", "aligned", "unaligned", "single", "kaist", "colorization",
            "cityscapes_labels")


# -- helpers ------------------------------------------------------------------------------------------

def picture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image H x W x 3 (uint8) with some structure, so crops differ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    out = [np.sin(x * rng.uniform(3, 9) + y * rng.uniform(1, 5) + rng.uniform(0, 6)) for _ in range(3)]
    return ((np.stack(out, -1) + 1) * 127.5).astype(np.uint8)


def make_paired(root: Path, names=("0", "1", "2", "3"), size=(40, 30), a_dir="A", b_dir="B",
                a_ext=".png", b_ext=".jpg") -> Path:
    """Grey A (PNG) and colour B (JPEG) of the same scenes, w x h = `size`."""
    (root / a_dir).mkdir(parents=True, exist_ok=True)
    (root / b_dir).mkdir(parents=True, exist_ok=True)
    w, h = size
    for i, name in enumerate(names):
        rgb = picture(h, w, i)
        Image.fromarray(rgb).convert("L").save(root / a_dir / f"{name}{a_ext}")
        Image.fromarray(rgb).save(root / b_dir / f"{name}{b_ext}")
    return root


def build(host, name: str, **options):
    return host.build("dataset", {"name": name, **options}, key="data")


def paired(host, root: Path, **options):
    return build(host, "paired_folders", root=str(root), a={"dir": "A", "channels": 1},
                 b={"dir": "B", "channels": 3}, **options)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# -- registration and the contract ---------------------------------------------------------------------

def test_every_adapter_is_registered_and_documented(host):
    for name in ADAPTERS:
        spec = host.registry.get("dataset", name)
        assert spec.summary, name
        for field_name, field in spec.params.model_fields.items():
            assert field.description, f"{name}.{field_name} has no description"


def test_entry_module_imports_no_torch():
    code = "import sys, p2p_datasets; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapters_build_without_touching_the_disk(host, name, tmp_path):
    options = {} if name == "synthetic_thermal" else {"root": str(tmp_path / "does" / "not" / "exist")}
    adapter = build(host, name, **options)
    assert adapter.a_channels >= 1 and adapter.b_channels >= 1
    assert not (tmp_path / "does").exists()
    report = adapter.check("train")
    if name != "synthetic_thermal":
        assert not report.ok and "does not exist" in report.problems[0] and "expected" in report.problems[0]
        with pytest.raises(P2PError):
            adapter.dataset("train", train=True)


def test_params_are_strict(host):
    with pytest.raises(P2PError, match="dirr"):
        build(host, "paired_folders", root="x", a={"dirr": "A"})
    with pytest.raises(P2PError):
        build(host, "paired_folders", root="x", preprocess="resize_and_crop", load_size=128, crop_size=256)
    with pytest.raises(P2PError):
        build(host, "paired_folders", root="x", normalize={"mode": "fixed", "min": 5, "max": 1})
    adapter = build(host, "paired_folders", root="x", normalize={"mode": "percentile"})
    assert adapter.rule.mode == "percentile" and adapter.rule.high == 99
    resolved = host.resolve("dataset", {"name": "paired_folders", "root": "x"}).as_table()
    assert resolved["normalize"] == {"mode": "full_range"}
    assert host.resolve("dataset", resolved).params.normalize.mode == "full_range"


# -- paired_folders ------------------------------------------------------------------------------------

def test_paired_folders_items_collate_and_share_the_jitter(host, tmp_path):
    root = tmp_path / "data"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir(parents=True)
    for i in range(3):  # A is exactly B's first channel, so any crop/flip difference shows
        rgb = picture(30, 40, i)
        Image.fromarray(rgb[..., 0]).save(root / "A" / f"{i}.png")
        Image.fromarray(rgb).save(root / "B" / f"{i}.png")
    adapter = paired(host, root, load_size=36, crop_size=32)
    report = adapter.check()
    assert report.ok and report.pairs == 3, report
    data = adapter.dataset("train", train=True)
    assert len(data) == 3
    for seed in range(6):
        torch.manual_seed(seed)
        item = data[seed % 3]
        assert item["a"].shape == (1, 32, 32) and item["b"].shape == (3, 32, 32)
        assert item["a"].dtype == torch.float32 and item["a"].min() >= -1 and item["a"].max() <= 1
        assert torch.equal(item["a"][0], item["b"][0])
        assert item["skipped"] == 0 and item["name"] == str(seed % 3)
    batch = default_collate([data[i] for i in range(3)])
    assert batch["a"].shape == (3, 1, 32, 32) and batch["skipped"].tolist() == [0, 0, 0]
    test = adapter.dataset("train", train=False)
    assert torch.equal(test[1]["a"], test[1]["a"]) and torch.equal(test[1]["b"], test[1]["b"])


@pytest.mark.parametrize("mode,shape,whole", [("resize_and_crop", (24, 24), (24, 24)), ("crop", (24, 24), (30, 40)),
                                              ("scale_width", (21, 28), (21, 28)),
                                              ("scale_width_and_crop", (24, 24), (21, 28)),
                                              ("none", (30, 40), (30, 40))])
def test_paired_folders_preprocess_modes_on_non_square_images(host, tmp_path, mode, shape, whole):
    """Training items are cropped; test items are the whole image (resize_and_crop at crop_size, as the
    reference test), or cropped as in training with test_crop."""
    root = make_paired(tmp_path, size=(40, 30))
    adapter = paired(host, root, preprocess=mode, load_size=28, crop_size=24)
    cropped = paired(host, root, preprocess=mode, load_size=28, crop_size=24, test_crop=True)
    for train in (True, False):
        item = adapter.dataset("train", train=train)[0]
        assert item["a"].shape[-2:] == (shape if train else whole) and item["b"].shape[-2:] == item["a"].shape[-2:]
        item = cropped.dataset("train", train=train)[0]
        assert item["a"].shape[-2:] == shape and item["b"].shape[-2:] == shape


def test_paired_folders_splits_and_holdout(host, tmp_path):
    make_paired(tmp_path / "split" / "train", names=("a", "b", "c"))
    make_paired(tmp_path / "split" / "test", names=("d",))
    adapter = paired(host, tmp_path / "split")
    assert [i["name"] for i in adapter.dataset("test", train=False)] == ["d"]
    assert len(adapter.dataset("train", train=True)) == 3
    flat = make_paired(tmp_path / "flat", names=[f"img{i:03d}" for i in range(40)], size=(16, 16))
    with pytest.raises(P2PError, match="no test split"):
        paired(host, flat).dataset("test", train=False)
    held = paired(host, flat, test_holdout=0.25, preprocess="none")
    train = {i["name"] for i in held.dataset("train", train=False)}
    test = {i["name"] for i in held.dataset("test", train=False)}
    assert train.isdisjoint(test) and len(train | test) == 40 and 3 <= len(test) <= 20
    assert held.check("test").pairs == len(test)


def test_paired_folders_problems_name_the_files(host, tmp_path):
    root = make_paired(tmp_path, names=("0", "1", "2", "3", "4"))
    (root / "A" / "lonely.png").write_bytes((root / "A" / "0.png").read_bytes())
    Image.fromarray(picture(20, 20)).save(root / "B" / "3.jpg")           # size mismatch with A/3.png
    truncate(root / "B" / "1.jpg")                                           # truncated
    (root / "A" / "2.png").write_bytes(b"not a png")                          # corrupt
    (root / "B" / "notes.txt").write_text("hello")                            # ignored, warned
    Image.fromarray(picture(30, 40)).save(root / "A" / "0.jpg")              # duplicate stem
    report = paired(host, root).check()
    text = "\n".join(report.problems)
    assert not report.ok and report.pairs == 5
    assert "A/lonely.png: no partner in B/" in text
    assert "B/1.jpg" in text and "A/2.png" in text
    assert "A/3.png is 40x30 but B/3.jpg is 20x20" in text
    assert "A/0.jpg" in text and "share the name" in text
    assert any("notes.txt" in w for w in report.warnings)


def test_paired_folders_channel_and_depth_checks(host, tmp_path):
    root = make_paired(tmp_path, names=("0", "1"))
    Image.fromarray(picture(30, 40)).save(root / "A" / "0.png")               # RGB where 1 channel is expected
    np.save(root / "A" / "1.npy", np.zeros((5, 30, 40), np.uint8))           # 5 channels: not convertible
    (root / "A" / "1.png").unlink()
    report = paired(host, root).check()
    assert any("A/1.npy: has 5 channels, the recipe expects 1" in p for p in report.problems)
    assert any("read as 1 (luma)" in w for w in report.warnings)
    mixed = make_paired(tmp_path / "mixed", names=("0", "1"))
    Image.fromarray(np.full((30, 40), 40000, np.uint16)).save(mixed / "A" / "1.png")
    report = paired(host, mixed).check()
    assert report.ok and any("mixed bit depths" in w for w in report.warnings)


def test_corrupt_files_stop_or_are_skipped(host, tmp_path):
    root = make_paired(tmp_path, names=("0", "1", "2"))
    truncate(root / "A" / "1.png", 0.4)
    strict = paired(host, root).dataset("train", train=False)
    with pytest.raises(P2PError) as err:
        strict[1]
    assert err.value.file.endswith("1.png")
    lenient = paired(host, root, skip_corrupt=True).dataset("train", train=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        item = lenient[1]
        again = lenient[1]
    assert item["name"] == "2" and item["skipped"] == 1 and again["skipped"] == 1
    assert sum("1.png" in str(w.message) for w in caught) == 1
    assert lenient[0]["skipped"] == 0


def test_size_mismatch_in_a_pair_is_an_error_when_loading(host, tmp_path):
    root = make_paired(tmp_path, names=("0",))
    Image.fromarray(picture(20, 20)).save(root / "B" / "0.jpg")
    with pytest.raises(P2PError, match="differ in size"):
        paired(host, root).dataset("train", train=True)[0]


def test_sixteen_bit_pairs_keep_precision_and_normalise(host, tmp_path):
    root = tmp_path / "t16"
    (root / "ir").mkdir(parents=True)
    (root / "rgb").mkdir()
    thermal = (np.arange(30 * 40, dtype=np.int64).reshape(30, 40) * 37 + 20000).astype(np.uint16)
    Image.fromarray(thermal).save(root / "ir" / "0.png")
    Image.fromarray(picture(30, 40)).save(root / "rgb" / "0.png")
    options = {"root": str(root), "a": {"dir": "ir", "channels": 1}, "b": {"dir": "rgb", "channels": 3},
               "preprocess": "none"}
    full = build(host, "paired_folders", **options)
    a = full.dataset("train", train=False)[0]["a"]
    assert torch.equal(((a[0].double() + 1) * 65535 / 2).round().to(torch.int32),
                       torch.from_numpy(thermal.astype(np.int32)))
    fixed = build(host, "paired_folders", normalize={"mode": "fixed", "min": 20000, "max": 20000 + 37 * 1199},
                  **options).dataset("train", train=False)[0]["a"]
    assert fixed.min() == -1 and torch.isclose(fixed.max(), torch.tensor(1.0))
    pct = build(host, "paired_folders", normalize={"mode": "percentile", "low": 1, "high": 99},
                **options).read_input(root / "ir" / "0.png")
    assert pct.shape == (1, 30, 40) and pct.min() == -1 and pct.max() == 1
    report = full.check(deep=True)
    assert report.ok and "16-bit" in report.facts["A: ir/"]


def test_read_input_and_write_output_keep_channels_and_bits(host, tmp_path):
    root = make_paired(tmp_path / "d", names=("0",))
    adapter = paired(host, root, output_bits=16)
    x = adapter.read_input(root / "A" / "0.png")
    assert x.shape == (1, 30, 40)
    adapter.write_output(x, tmp_path / "grey.png")
    raw = load_image(tmp_path / "grey.png")
    assert raw.shape == (1, 30, 40) and raw.dtype == torch.uint16
    adapter.write_output(torch.zeros(3, 30, 40), tmp_path / "rgb.tif")
    assert load_image(tmp_path / "rgb.tif").shape == (3, 30, 40)


def test_datasets_pickle_and_load_in_worker_processes(host, tmp_path):
    adapter = paired(host, make_paired(tmp_path), load_size=36, crop_size=32)
    data = adapter.dataset("train", train=True)
    assert len(pickle.loads(pickle.dumps(data))) == 4
    loader = DataLoader(data, batch_size=2, num_workers=1, multiprocessing_context="fork")
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["b"].shape == (2, 3, 32, 32)


# -- synthetic_thermal ---------------------------------------------------------------------------------

def test_synthetic_thermal_is_deterministic_and_fast(host):
    adapter = build(host, "synthetic_thermal", train_count=20, test_count=4)
    assert (adapter.a_channels, adapter.b_channels) == (1, 3)
    train = adapter.dataset("train", train=False)
    first, again = train[3], train[3]
    assert torch.equal(first["a"], again["a"]) and torch.equal(first["b"], again["b"])
    assert first["a"].shape == (1, 64, 64) and first["b"].shape == (3, 64, 64)
    assert not torch.equal(train[4]["b"], first["b"])
    assert not torch.equal(adapter.dataset("test", train=False)[3]["b"], first["b"])
    other = build(host, "synthetic_thermal", seed=1).dataset("train", train=False)[3]
    assert not torch.equal(other["a"], first["a"])
    for item in (first, train[5]):
        for side in ("a", "b"):
            assert item[side].min() >= -1 and item[side].max() <= 1 and item[side].std() > 0.05
    flips = {bool(torch.equal(adapter.dataset("train", train=True)[3]["a"], first["a"])) for _ in range(12)}
    assert flips == {True, False}
    best = float("inf")
    for i in range(30):
        start = time.perf_counter()
        train[i % 20]
        best = min(best, time.perf_counter() - start)
    assert best < 0.005, f"an item took {best * 1e3:.1f} ms"
    assert len(default_collate([train[i] for i in range(4)])["a"]) == 4
    with pytest.raises(P2PError):
        adapter.dataset("validation", train=False)


def test_synthetic_thermal_physics(host):
    """People and engines are the hottest things, the sky the coldest; car colours vary."""
    from p2p_datasets.synthetic import render

    hot, cold = [], []
    for i in range(12):
        thermal, colour = render(64, 0, "train", i)
        hot.append(thermal.max())
        cold.append(thermal[:4].mean())
        assert thermal.shape == (64, 64) and colour.shape == (64, 64, 3)
    assert np.mean(hot) > np.mean(cold) + 0.4


def test_synthetic_thermal_check_and_io(host, tmp_path):
    adapter = build(host, "synthetic_thermal", size=32, train_count=10, test_count=3)
    report = adapter.check("test", deep=True)
    assert report.ok and report.pairs == 3
    assert adapter.check("train").pairs == 10
    a, b = adapter.render("test", 0)
    adapter.write_output(a, tmp_path / "thermal.png")
    assert torch.allclose(adapter.read_input(tmp_path / "thermal.png"), a, atol=1 / 255)
    adapter.write_output(b, tmp_path / "colour.png")
    assert Image.open(tmp_path / "colour.png").mode == "RGB"


# -- aligned -------------------------------------------------------------------------------------------

def make_aligned(folder: Path, n: int = 3, h: int = 24, w: int = 24) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        left = picture(h, w, i)
        right = 255 - left
        Image.fromarray(np.concatenate([left, right], axis=1)).save(folder / f"{i}.png")
    return folder


def test_aligned_directions_and_val_as_test(host, tmp_path):
    make_aligned(tmp_path / "train")
    make_aligned(tmp_path / "val", n=2)
    options = {"root": str(tmp_path), "preprocess": "none"}
    ab = build(host, "aligned", **options).dataset("train", train=False)[0]
    ba = build(host, "aligned", direction="BtoA", **options).dataset("train", train=False)[0]
    left = torch.from_numpy(picture(24, 24, 0)).permute(2, 0, 1).float() * (2 / 255) - 1
    assert torch.allclose(ab["a"], left) and torch.allclose(ba["b"], left)
    assert torch.allclose(ab["a"], -ab["b"], atol=1e-6)
    test = build(host, "aligned", **options)
    assert len(test.dataset("test", train=False)) == 2 and test.check("test").pairs == 2
    jittered = build(host, "aligned", root=str(tmp_path), load_size=22, crop_size=20).dataset("train", train=True)
    item = jittered[1]
    assert item["a"].shape == (3, 20, 20) and torch.allclose(item["a"], -item["b"], atol=0.05)


def test_aligned_check_problems(host, tmp_path):
    folder = make_aligned(tmp_path / "train", n=2)
    Image.fromarray(picture(10, 25)).save(folder / "odd.png")
    Image.fromarray(picture(10, 1)).save(folder / "narrow.png")
    truncate(folder / "0.png", 0.3)
    report = build(host, "aligned", root=str(tmp_path)).check()
    assert report.pairs == 4 and not report.ok
    assert any("narrow.png" in p for p in report.problems) and any("0.png" in p for p in report.problems)
    assert any("odd.png" in w and "odd width" in w for w in report.warnings)
    missing = build(host, "aligned", root=str(tmp_path)).check("test")
    assert not missing.ok and "no test split" in missing.problems[0]


# -- cityscapes_labels ---------------------------------------------------------------------------------

def test_cityscapes_label_colours_decode_to_train_ids(host, tmp_path):
    from p2p_datasets.cityscapes import (
        IGNORE,
        OTHER_COLORS,
        TRAIN_COLORS,
        colorize,
        colors_to_ids,
        decode_labels,
        encode_labels,
    )

    ids = torch.arange(19, dtype=torch.uint8).repeat_interleave(2).view(2, 19)
    rgb = torch.tensor(TRAIN_COLORS, dtype=torch.int32).repeat_interleave(2, 0).T.reshape(3, 2, 19)
    noisy = (rgb + torch.randint(-6, 7, rgb.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 255)
    assert torch.equal(colors_to_ids(noisy.to(torch.uint8)), ids)
    other = torch.tensor(OTHER_COLORS, dtype=torch.uint8).T.reshape(3, 1, -1)
    assert (colors_to_ids(other) == IGNORE).all()
    assert (colors_to_ids(other, ignore_colors=False) != IGNORE).all()
    full = torch.cat([ids.flatten(), torch.tensor([IGNORE], dtype=torch.uint8)]).to(torch.int64)
    levels = encode_labels(full)
    assert levels.min() == -1 and levels.max() == 1
    assert torch.equal(decode_labels(levels + 0.04), full)
    assert torch.equal(colors_to_ids(colorize(ids)), ids)
    anything = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for ignore in (True, False):
        colors = torch.tensor(TRAIN_COLORS + (OTHER_COLORS if ignore else ()), dtype=torch.float32)
        nearest = torch.cdist(anything.reshape(3, -1).T.float(), colors).argmin(1).reshape(64, 64)
        expected = torch.where(nearest < 19, nearest, IGNORE)
        assert torch.equal(colors_to_ids(anything, ignore_colors=ignore).long(), expected)


def test_cityscapes_labels_items_and_outputs(host, tmp_path):
    from p2p_datasets.cityscapes import TRAIN_COLORS, decode_labels

    folder = tmp_path / "val"
    folder.mkdir()
    label = np.zeros((32, 32, 3), np.uint8)
    label[:16] = TRAIN_COLORS[10]        # sky
    label[16:, :16] = TRAIN_COLORS[0]    # road
    label[16:, 16:] = TRAIN_COLORS[13]   # car
    label[30:] = 0                       # void
    Image.fromarray(np.concatenate([picture(32, 32), label], axis=1)).save(folder / "x.png")
    adapter = build(host, "cityscapes_labels", root=str(tmp_path), load_size=36, crop_size=32)
    assert (adapter.a_channels, adapter.b_channels) == (3, 1)
    item = adapter.dataset("test", train=True)[0]
    assert item["a"].shape == (3, 32, 32) and item["b"].shape == (1, 32, 32)
    assert set(item["label"].unique().tolist()) <= {0, 10, 13, 255}
    assert torch.equal(decode_labels(item["b"])[0], item["label"])
    exact = build(host, "cityscapes_labels", root=str(tmp_path), preprocess="none").dataset("test", train=False)[0]
    assert exact["label"][0, 0] == 10 and exact["label"][20, 2] == 0 and exact["label"][31, 31] == 255
    adapter.write_output(exact["b"], tmp_path / "out.png")
    written = np.asarray(Image.open(tmp_path / "out.png"))
    assert tuple(written[0, 0]) == TRAIN_COLORS[10] and tuple(written[31, 0]) == (0, 0, 0)
    ids = build(host, "cityscapes_labels", root=str(tmp_path), write_as="train_ids")
    ids.write_output(exact["b"], tmp_path / "ids.png")
    assert np.asarray(Image.open(tmp_path / "ids.png"))[20, 20] == 13


# -- unaligned, single ---------------------------------------------------------------------------------

def test_unaligned_random_partners_and_check(host, tmp_path):
    for side, n, size in (("A", 2, (20, 16)), ("B", 5, (30, 24))):
        (tmp_path / f"train{side}").mkdir()
        for i in range(n):
            Image.fromarray(picture(size[1], size[0], i)).save(tmp_path / f"train{side}" / f"{side}{i}.png")
    adapter = build(host, "unaligned", root=str(tmp_path), load_size=18, crop_size=16)
    data = adapter.dataset("train", train=True)
    assert len(data) == 5
    partners = set()
    for seed in range(10):
        torch.manual_seed(seed)
        item = data[0]
        partners.add(item["name_b"])
        assert item["a"].shape == item["b"].shape == (3, 16, 16) and item["name"] == "A0"
    assert len(partners) > 1
    fixed = adapter.dataset("train", train=False)
    assert [fixed[i]["name_b"] for i in range(5)] == ["B0", "B1", "B2", "B3", "B4"]
    report = adapter.check()
    assert report.ok and report.pairs == 5
    missing = adapter.check("test")
    assert not missing.ok and "testA" in missing.problems[0]


def test_single_has_no_targets(host, tmp_path):
    for i in range(2):
        Image.fromarray(picture(20, 28, i)).save(tmp_path / f"{i}.jpg")
    adapter = build(host, "single", root=str(tmp_path), channels=1, out_channels=3)
    item = adapter.dataset("test", train=False)[1]
    assert set(item) == {"a", "name", "skipped"} and item["a"].shape == (1, 20, 28)
    assert adapter.check().pairs == 2
    rootless = build(host, "single")
    assert rootless.check().ok and rootless.check().warnings
    with pytest.raises(P2PError, match="no root"):
        rootless.dataset("test", train=False)
    assert rootless.read_input(tmp_path / "0.jpg").shape == (3, 20, 28)


# -- kaist ---------------------------------------------------------------------------------------------

def test_kaist_sets_split_and_problems(host, tmp_path):
    for set_name, videos, frames in (("set00", ("V000", "V001"), 4), ("set06", ("V000",), 2)):
        for video in videos:
            for kind in ("lwir", "visible"):
                folder = tmp_path / set_name / video / kind
                folder.mkdir(parents=True)
                for f in range(frames):
                    rgb = picture(16, 20, f)
                    Image.fromarray(rgb if kind == "visible" else np.repeat(rgb[..., :1], 3, -1)).save(
                        folder / f"I{f:05d}.jpg")
    adapter = build(host, "kaist", root=str(tmp_path), train_sets=["set00"], test_sets=["set06"],
                    preprocess="none")
    train = adapter.dataset("train", train=False)
    assert len(train) == 8 and train[0]["name"] == "set00_V000_I00000"
    assert train[0]["a"].shape == (1, 16, 20) and train[0]["b"].shape == (3, 16, 20)
    assert len(adapter.dataset("test", train=False)) == 2
    every_other = build(host, "kaist", root=str(tmp_path), train_sets=["set00"], step=2)
    assert len(every_other.dataset("train", train=True)) == 4
    (tmp_path / "set00" / "V001" / "visible" / "I00003.jpg").unlink()
    report = build(host, "kaist", root=str(tmp_path), train_sets=["set00", "set01"]).check()
    text = "\n".join(report.problems)
    assert "set01/ not found" in text and "set00/V001/lwir/I00003.jpg: no partner" in text
    assert report.pairs == 7 and any("luma" in w for w in report.warnings)
    assert build(host, "kaist", root=str(tmp_path)).check("test").problems  # set07..set11 missing


# -- colorization --------------------------------------------------------------------------------------

def test_lab_conversion_round_trips():
    from p2p_datasets.colorization import join_lab, lab_to_rgb, rgb_to_lab, split_lab

    rgb = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)
    white = rgb_to_lab(torch.ones(3, 1, 1))
    assert torch.allclose(white.flatten(), torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    red = rgb_to_lab(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)).flatten()
    assert torch.allclose(red, torch.tensor([53.24, 80.09, 67.20]), atol=0.1)
    unit = rgb * 2 - 1
    l_unit, ab = split_lab(unit)
    assert l_unit.shape == (1, 8, 8) and ab.shape == (2, 8, 8) and ab.abs().max() <= 1
    assert torch.allclose(join_lab(l_unit, ab), unit, atol=1e-3)


def test_colorization_items_and_writing_back(host, tmp_path):
    for i in range(3):
        Image.fromarray(picture(24, 32, i)).save(tmp_path / f"{i}.png")
    Image.fromarray(picture(24, 32, 9)[..., 0]).save(tmp_path / "grey.png")
    adapter = build(host, "colorization", root=str(tmp_path), preprocess="none")
    assert (adapter.a_channels, adapter.b_channels) == (1, 2)
    item = adapter.dataset("train", train=False)[0]
    assert item["a"].shape == (1, 24, 32) and item["b"].shape == (2, 24, 32)
    report = adapter.check()
    assert report.ok and report.pairs == 4 and any("grey" in w for w in report.warnings)
    fresh = build(host, "colorization", root=str(tmp_path))
    with pytest.raises(P2PError, match="lightness"):
        fresh.write_output(item["b"], tmp_path / "out" / "x.png")
    l_unit = fresh.read_input(tmp_path / "0.png")
    assert torch.allclose(l_unit, item["a"], atol=1e-5)
    fresh.write_output(item["b"], tmp_path / "out" / "x.png")
    back = np.asarray(Image.open(tmp_path / "out" / "x.png")).astype(int)
    assert np.abs(back - picture(24, 32, 0)).max() <= 2
    fresh.write_output(item["b"], tmp_path / "out" / "y.png", input_image=item["a"])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "y.png")), back)


# -- real data -----------------------------------------------------------------------------------------

@needs_shared("data", "roadscene")
def test_roadscene_thermal_to_colour(host):
    root = SHARED / "data" / "roadscene"
    adapter = build(host, "paired_folders", root=str(root), a={"dir": "ir", "channels": 1},
                    b={"dir": "rgb", "channels": 3})
    report = adapter.check()
    assert report.ok and report.pairs == 221 and not report.warnings, report
    data = adapter.dataset("train", train=True)
    batch = default_collate([data[i] for i in range(4)])
    assert batch["a"].shape == (4, 1, 256, 256) and batch["b"].shape == (4, 3, 256, 256)
    source = next(iter(sorted((root / "ir").iterdir())))
    x = adapter.read_input(source)
    assert x.shape[0] == 1 and x.shape[1:] == Image.open(source).size[::-1]


@needs_shared("data", "cityscapes_pix2pix", "val")
def test_cityscapes_val_files_read_directly(host):
    from p2p_datasets.cityscapes import TRAIN_COLORS, colors_to_ids

    root = SHARED / "data" / "cityscapes_pix2pix"
    labels_to_photo = build(host, "aligned", root=str(root), direction="BtoA")
    report = labels_to_photo.check("test")
    assert report.ok and report.pairs == 500, report
    item = labels_to_photo.dataset("test", train=False)[0]
    assert item["a"].shape == item["b"].shape == (3, 256, 256)
    raw = load_image(root / "val" / "1.jpg")
    label_half = raw[:, :, 256:]
    ids = colors_to_ids(label_half)                 # the right half is the colour-coded label map
    palette = torch.tensor(TRAIN_COLORS, dtype=torch.float32)[ids.clamp(max=18).long()].permute(2, 0, 1)
    near = ((label_half.float() - palette).abs().max(0).values < 40) | (ids == 255)
    assert near.float().mean() > 0.9
    photo_to_labels = build(host, "cityscapes_labels", root=str(root))
    sample = photo_to_labels.dataset("test", train=True)[0]
    assert sample["a"].shape == (3, 256, 256) and sample["label"].shape == (256, 256)
    assert (sample["label"] == 0).float().mean() > 0.1   # a street scene: road is common
