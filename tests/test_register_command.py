"""`p2p data register`: a camera rig's registration estimated from a dataset's own pairs (or from point pairs),
written as the recipe's `[data.align]` block, and the paired adapter applying that block to its items."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, SHARED, TINY_NETWORKS, one_torch_thread
from PIL import Image
from test_alignment import max_corner_error, rig, scene, thermal_view

from p2pcore.alignment import Alignment
from p2pcore.alignment.features import structure

ROADSCENE = SHARED / "data" / "roadscene"
SIZE_B, SIZE_A = (192, 144), (150, 112)  # as test_alignment.py registers RoadScene

one_thread = pytest.fixture(autouse=True)(one_torch_thread)




def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}, timeout=600)


def _save(image: torch.Tensor, path: Path) -> None:
    array = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)


def _registered_pairs(count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], float]:
    """Registered (a, b) pairs at b's size: RoadScene's thermal/colour pairs when ../shared holds them (their own
    registration is not exact: the tolerance test_alignment.py allows against the nominal rig, 2 px), else
    synthetic scenes (exact: 1 px)."""
    if (ROADSCENE / "ir").is_dir():
        from p2pcore.imageio import read_image

        files = sorted((ROADSCENE / "ir").glob("*.jpg"))
        files = files[:: max(1, len(files) // count)][:count]
        pairs = []
        for path in files:
            a, b = read_image(path, 1), read_image(ROADSCENE / "rgb" / path.name, 3)
            pairs.append(tuple(F.interpolate(x[None], size=SIZE_B[::-1], mode="bilinear", antialias=True)[0]
                               for x in (a, b)))
        return pairs, 2.0
    return [scene(seed, SIZE_B) for seed in range(min(count, 6))], 1.0


def make_rig_data(tmp_path: Path, count: int = 32) -> tuple[Path, np.ndarray, float]:
    """A recipe over a folder of pairs whose a images are the registered ones seen through a known rig."""
    truth = rig(SIZE_A, SIZE_B)
    pairs, tolerance = _registered_pairs(count)
    root = tmp_path / "data"
    (root / "ir").mkdir(parents=True)
    (root / "rgb").mkdir()
    for index, (a, b) in enumerate(pairs):
        _save(thermal_view(a, truth, SIZE_A), root / "ir" / f"{index:03d}.png")
        _save(b, root / "rgb" / f"{index:03d}.png")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"""# a rig of two cameras
task = "pix2pix"

[data]
name = "paired_folders"
root = "{root.as_posix()}"
a = {{ dir = "ir", channels = 1 }}
b = {{ dir = "rgb", channels = 3 }}
preprocess = "none"
flip = false

{TINY_NETWORKS}
[loss]
l1 = {{ name = "l1", weight = 100.0 }}
""")
    return recipe, truth, tolerance


def _block(recipe: Path) -> Alignment:
    return Alignment.from_table(tomllib.loads(recipe.read_text())["data"]["align"], file=str(recipe))


def _gradient_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    ga, gb = (structure(x.mean(dim=0, keepdim=True)[None]).flatten() for x in (a, b))
    ga, gb = ga - ga.mean(), gb - gb.mean()
    return float((ga * gb).sum() / (ga.norm() * gb.norm()))


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The rig data, registered once by `p2p data register --write` (the image estimate)."""
    tmp_path = tmp_path_factory.mktemp("rig")
    recipe, truth, tolerance = make_rig_data(tmp_path)
    before = recipe.read_text()
    result = p2p("data", "register", str(recipe), "--write", "--pairs", "32")
    return recipe, truth, tolerance, before, result


def test_register_recovers_a_known_rig_and_writes_a_block_that_validates(registered):
    recipe, truth, tolerance, before, result = registered
    assert result.returncode == 0, result.stderr
    for shown in ("correlation", "worst_pair", "stability_px", "common field of view", "[data.align]"):
        assert shown in result.stdout
    text = recipe.read_text()
    assert text.startswith(before)  # the rest of the file kept
    alignment = _block(recipe)
    assert alignment.size_a == SIZE_A and alignment.size_b == SIZE_B and alignment.model == "homography"
    assert max_corner_error(alignment, Alignment(truth, SIZE_A, SIZE_B)) < tolerance
    assert alignment.residual["correlation"] > alignment.residual["correlation_start"]
    check = p2p("validate", str(recipe))
    assert check.returncode == 0, check.stderr


def test_items_of_the_registered_adapter_are_the_common_box_with_a_on_b(registered):
    from p2pcore.commands.common import host, load_recipe

    recipe, *_ = registered
    alignment = _block(recipe)
    x0, y0, x1, y1 = alignment.common_box()
    parsed = load_recipe(recipe, None, host())
    aligned = host().build("dataset", parsed.data, key="data")
    plain = host().build("dataset", parsed.data.model_copy(update={
        "params": parsed.data.params.model_copy(update={"align": None})}), key="data")
    gains = []
    for index in range(3):
        item = aligned.dataset("train", train=True)[index]
        assert item["a"].shape == (1, y1 - y0, x1 - x0) and item["b"].shape == (3, y1 - y0, x1 - x0)
        raw_a, raw_b = plain.read_input(plain.records("train")[0][index][0], "a"), item["b"]
        # unregistered: a's pixels taken as b's, over the same box
        unregistered = F.interpolate(raw_a[None], size=SIZE_B[::-1], mode="bilinear")[0][:, y0:y1, x0:x1]
        gains.append(_gradient_correlation(item["a"], raw_b) - _gradient_correlation(unregistered, raw_b))
    assert min(gains) > 0.05, gains
    # translate and eval read a through the adapter as training does: a on b's grid, the common box
    path_a = aligned.records("train")[0][0][0]
    assert aligned.read_input(path_a, "a").shape == (1, y1 - y0, x1 - x0)
    report = aligned.check("train")
    assert report.ok, report.problems
    assert report.facts["common field of view"].startswith(f"{x1 - x0}x{y1 - y0}")


def test_points_register_the_rig_and_overwrite_replaces_the_block(tmp_path):
    recipe, truth, _ = make_rig_data(tmp_path, count=2)
    alignment = Alignment(truth, SIZE_A, SIZE_B)
    points_a = np.array([[10, 12], [130, 8.5], [140, 100], [6, 104], [70, 55], [40, 80], [100, 30.25], [90, 90]])
    points_b = alignment.map(points_a)
    points = tmp_path / "rig.txt"
    points.write_text("# xa ya xb yb\n" + "\n".join(" ".join(f"{v:.4f}" for v in (*pa, *pb))
                                                    for pa, pb in zip(points_a, points_b, strict=True)) + "\n")
    result = p2p("data", "register", str(recipe), "--points", str(points), "--write")
    assert result.returncode == 0, result.stderr
    assert "rms_px" in result.stdout and "max_px" in result.stdout
    written = _block(recipe)
    assert written.residual["method"] == "points" and written.residual["rms_px"] < 0.01
    assert max_corner_error(written, alignment) < 0.05

    refused = p2p("data", "register", str(recipe), "--points", str(points), "--model", "affine", "--write")
    assert refused.returncode == 2 and "already has an align block" in refused.stderr
    assert "--overwrite" in refused.stderr and _block(recipe).model == "homography"

    again = p2p("data", "register", str(recipe), "--points", str(points), "--model", "affine", "--write",
                "--overwrite")
    assert again.returncode == 0, again.stderr
    text = recipe.read_text()
    assert text.count("[data.align]") == 1 and text.count("[data.align.residual]") == 1
    assert _block(recipe).model == "affine" and "# a rig of two cameras" in text and TINY_NETWORKS in text


def test_bad_points_and_bad_blocks_are_refused(tmp_path):
    recipe, _, _ = make_rig_data(tmp_path, count=2)
    bad = tmp_path / "bad.txt"
    bad.write_text("10 12 30\n")
    result = p2p("data", "register", str(recipe), "--points", str(bad))
    assert result.returncode == 2 and "four numbers" in result.stderr and "Traceback" not in result.stderr
    few = tmp_path / "few.txt"
    few.write_text("10 12 30 40\n50 60 70 80\n")
    result = p2p("data", "register", str(recipe), "--points", str(few))
    assert result.returncode == 2 and "needs at least 4 point pairs" in result.stderr
    missing = p2p("data", "register", str(recipe), "--points", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "not found" in missing.stderr

    synthetic = tmp_path / "synthetic.toml"
    synthetic.write_text(recipe.read_text().split("[data]")[0] + '[data]\nname = "synthetic_thermal"\nsize = 32\n'
                         + "[model.generator]" + recipe.read_text().split("[model.generator]")[1])
    unpaired = p2p("data", "register", str(synthetic))
    assert unpaired.returncode == 2 and "cannot be registered" in unpaired.stderr, unpaired.stderr

    recipe.write_text(recipe.read_text() + "\n[data.align]\nmatrix = [[1, 0], [0, 1]]\nsize_a = [150, 112]\n"
                      "size_b = [192, 144]\n")
    invalid = p2p("validate", str(recipe))
    assert invalid.returncode == 2 and "data.align.matrix" in invalid.stderr, invalid.stderr
