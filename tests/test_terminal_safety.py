"""What p2p prints from a checkpoint is plain text: a crafted file whose names and recipe carry escape sequences,
a bell and rich markup can neither clear the screen nor style the output (`p2p inspect`, `p2p translate`, their
errors and warnings), and `p2p inspect` shows its tables before the recipe, which it prints only when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import join_safetensors, split_safetensors
from PIL import Image

from p2pcore.commands.common import plain

ROOT = Path(__file__).resolve().parents[1]
EVIL = "\x1b[2J\x07[bold red]x[/]"
RECIPE = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 2, "test_count": 1},
          "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                    "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
          "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
          "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "device": "cpu"}}


def craft(source: Path, target: Path, change) -> Path:
    """`source` with its header's metadata changed by `change(meta)`, the tensors as they were."""
    header, body = split_safetensors(source.read_bytes())
    change(header["__metadata__"])
    target.write_bytes(join_safetensors(header, body))
    return target


def p2p(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, host) -> Path:
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    run = tmp_path_factory.mktemp("terminal") / "run"
    Trainer(validate_recipe(RECIPE, host, default_name="small"), host, run).fit()
    Image.new("L", (32, 32), 100).save(run / "in.png")
    return run / "checkpoints" / "latest.safetensors"


@pytest.fixture(scope="module")
def evil(trained) -> Path:
    """Every string of the metadata a user cannot check by eye: plugins, versions, source, the recipe's name."""
    def change(meta: dict) -> None:
        components = json.loads(meta["components"])
        for component in components:
            component["distribution"] = EVIL + component["distribution"]
            component["version"] = EVIL
        meta["components"] = json.dumps(components)
        meta["recipe"] = json.dumps({**json.loads(meta["recipe"]), "name": EVIL})
        meta["p2p_version"] = json.dumps(EVIL)
        meta["source"] = json.dumps(EVIL)

    return craft(trained, trained.with_name("evil.safetensors"), change)


def assert_plain(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output, output
    assert "[bold red]x[/]" in output  # shown as written, not applied


def test_plain_writes_control_characters_out_and_escapes_markup():
    assert plain(EVIL) == "\\x1b[2J\\x07\\[bold red]x\\[/]"
    assert plain("a\nb\tc\r\x9b\u202e") == "a\\nb\\tc\\r\\x9b\\u202e"
    assert plain("a\nb\tc", lines=True) == "a\nb\tc"
    assert plain("runs/quickstart") == "runs/quickstart"


def test_inspect_prints_a_crafted_checkpoint_as_plain_text(evil):
    for args in ([], ["--recipe"]):
        done = p2p("inspect", str(evil), *args)
        assert done.returncode == 0, done.stderr
        assert_plain(done.stdout + done.stderr)
        assert "\\x1b[2J" in done.stdout  # written out, visibly
    done = p2p("inspect", str(evil), "--json")
    assert done.returncode == 0 and "\x1b" not in done.stdout
    assert json.loads(done.stdout)["source"] == EVIL  # the JSON keeps the value itself


def test_translate_prints_a_crafted_checkpoint_as_plain_text(evil, tmp_path):
    done = p2p("translate", str(evil), str(evil.parent.parent / "in.png"), str(tmp_path / "out.png"))
    assert done.returncode == 0, done.stderr
    assert "warning: " in done.stderr and "was made with" in done.stderr  # the plugins differ: named in warnings
    assert_plain(done.stdout + done.stderr)
    assert (tmp_path / "out.png").is_file()


def test_errors_about_a_crafted_checkpoint_are_plain_text(trained, tmp_path):
    def rename(meta: dict) -> None:
        recipe = json.loads(meta["recipe"])
        recipe["model"]["generator"]["name"] = EVIL
        meta["recipe"] = json.dumps(recipe)

    bad = craft(trained, tmp_path / "bad.safetensors", rename)
    done = p2p("translate", str(bad), str(trained.parent.parent / "in.png"), str(tmp_path / "out.png"))
    assert done.returncode == 2 and done.stderr.startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert_plain(done.stderr)


def test_inspect_shows_its_tables_and_the_recipe_only_when_asked(trained):
    short = p2p("inspect", str(trained))
    assert short.returncode == 0, short.stderr
    assert "generator" in short.stdout and "resume state" in short.stdout
    assert "[model.generator]" not in short.stdout and short.stdout.rstrip().endswith("--recipe prints it")
    full = p2p("inspect", str(trained), "--recipe").stdout
    assert "[model.generator]" in full and 'name = "unet"' in full
    assert full.index("parameters") < full.index("resume state") < full.index("[model.generator]")
