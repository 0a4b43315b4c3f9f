"""`p2p data check`: a table when the data is fine, exit code 2 and the bad files named when not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import thermal_folders_recipe
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"})


def write_recipe(tmp_path: Path, root: Path) -> Path:
    return thermal_folders_recipe(tmp_path / "recipe.toml", root)


def make_data(root: Path, names=("0", "1", "2")) -> None:
    (root / "ir").mkdir(parents=True)
    (root / "rgb").mkdir()
    for i, name in enumerate(names):
        rgb = np.random.default_rng(i).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(rgb[..., 0]).save(root / "ir" / f"{name}.png")
        Image.fromarray(rgb).save(root / "rgb" / f"{name}.jpg")


def test_data_module_imports_no_torch():
    code = "import sys, p2pcore.commands.data; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_data_check_reports_and_exits_2_naming_bad_files(tmp_path):
    root = tmp_path / "data"
    make_data(root)
    recipe = write_recipe(tmp_path, root)
    good = p2p("data", "check", str(recipe))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "paired_folders" in good.stdout and "3" in good.stdout and "ok" in good.stdout

    (root / "ir" / "extra.png").write_bytes((root / "ir" / "0.png").read_bytes())
    data = (root / "rgb" / "1.jpg").read_bytes()
    (root / "rgb" / "1.jpg").write_bytes(data[: len(data) // 2])
    bad = p2p("data", "check", str(recipe), "--deep")
    assert bad.returncode == 2
    assert "ir/extra.png" in bad.stdout and "rgb/1.jpg" in bad.stdout and "problem" in bad.stdout

    as_json = p2p("data", "check", str(recipe), "--json", "--split", "test")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["ok"] is False and report["split"] == "test" and "no test split" in report["problems"][0]


def test_data_check_recipe_errors_are_one_screen(tmp_path):
    recipe = write_recipe(tmp_path, tmp_path / "missing")
    text = recipe.read_text().replace('dir = "ir"', 'dirr = "ir"')
    recipe.write_text(text)
    out = p2p("data", "check", str(recipe))
    assert out.returncode == 2 and "dirr" in out.stderr
