"""`p2p example-stats`, the sub-command this package adds through `p2p_add_commands`."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import p2p_example
import pytest
import typer
from typer.testing import CliRunner


def cli() -> typer.Typer:
    """A `p2p`-like app holding the commands the hook adds, as `p2p` does at start-up."""
    app = typer.Typer()
    app.callback()(lambda: None)
    p2p_example.p2p_add_commands(app)
    return app


def recipe_for(listing: Path, folder: Path) -> Path:
    base = folder / "base.toml"
    base.write_text(f'task = "pix2pix"\n[data]\nname = "csv_pairs"\nfile = "{listing.as_posix()}"\n'
                    "preprocess = \"none\"\n", encoding="utf-8")
    child = folder / "child.toml"
    child.write_text('extends = "base.toml"\n[train]\nepochs = 1\n', encoding="utf-8")
    return child


def test_stats_of_the_dataset_a_recipe_names(pairs_csv, tmp_path):
    import torch

    from p2pcore.api import read_image

    recipe = recipe_for(pairs_csv, tmp_path)  # data comes from the recipe it extends
    result = CliRunner().invoke(cli(), ["example-stats", str(recipe), "--json"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    stats = json.loads(result.output)
    assert (stats["dataset"], stats["split"], stats["items"]) == ("csv_pairs", "test", 2)
    assert set(stats["images"]) == {"a", "b"} and len(stats["images"]["b"]) == 3
    b = torch.stack([read_image(pairs_csv.parent / "b" / f"{i}.png", 3) for i in (4, 5)]).to(torch.float64)
    for channel, found in enumerate(stats["images"]["b"]):
        values = b[:, channel]
        assert found["mean"] == pytest.approx(float(values.mean()), abs=1e-6)
        assert found["std"] == pytest.approx(float(values.std(unbiased=False)), abs=1e-6)
        assert (found["min"], found["max"]) == pytest.approx((float(values.min()), float(values.max())))


def test_table_output_and_limit(pairs_csv, tmp_path):
    result = CliRunner().invoke(cli(), ["example-stats", str(recipe_for(pairs_csv, tmp_path)), "--split", "train",
                                        "--limit", "3"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "3 train item(s) of csv_pairs" in result.output
    assert sum(line.strip().startswith(("a[", "b[")) for line in result.output.splitlines()) == 6


@pytest.mark.skipif(not any(d.metadata["Name"] == "p2p-example" for d in md.distributions()),
                    reason="the `p2p` command finds this package's commands once it is installed (pip install -e .)")
def test_the_installed_command_reports_mistakes_on_one_screen(tmp_path):
    done = subprocess.run([sys.executable, "-m", "p2pcore", "example-stats", str(tmp_path / "missing.toml")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error" in done.stderr and "no recipe at" in done.stderr and "Traceback" not in done.stderr
