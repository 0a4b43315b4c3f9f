"""`p2p validate` lists every mistake of a recipe in one run, each with its file, key and hint; integers too
large for a recipe are one-screen errors naming their key, never Python's traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2pcore.errors import P2PError
from p2pcore.recipe import apply_overrides, load_recipe, read_toml, validate_recipe
from p2pcore.recipe.validate import RecipeMistakes

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = (ROOT / "recipes" / "quickstart.toml").as_posix()
HUGE = "9" * 5000


def p2p(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "120"}, timeout=120)


def by_key(error: BaseException) -> dict[str | None, P2PError]:
    assert isinstance(error, RecipeMistakes), error
    return {mistake.key: mistake for mistake in error.mistakes}


def typos_recipe(folder: Path) -> Path:
    """typos.toml in `folder`: the quickstart with a misspelt train key and an unknown generator."""
    recipe = folder / "typos.toml"
    recipe.write_text(f'extends = "{QUICKSTART}"\n[train]\nbatchsize = 4\n[model.generator]\nname = "unett"\n')
    return recipe


def test_a_misspelt_key_and_an_unknown_generator_are_reported_together(host, tmp_path: Path) -> None:
    recipe = typos_recipe(tmp_path)
    with pytest.raises(P2PError) as caught:
        load_recipe(recipe, host)
    found = by_key(caught.value)
    assert set(found) == {"train.batchsize", "model.generator.name"}
    assert "did you mean 'batch_size'" in found["train.batchsize"].message and found["train.batchsize"].hint
    assert "did you mean 'unet'" in found["model.generator.name"].hint
    assert all(mistake.file == str(recipe) for mistake in found.values())
    assert caught.value.file == str(recipe) and len(caught.value.details) == 2


def test_every_section_is_checked_in_one_run(host) -> None:
    data = {"seed": -3, "data": {"name": "synthetic_thermal", "sizee": 32},
            "model": {"generator": {"name": "unett"}, "genrator": {"name": "unet"}},
            "loss": {"l1": {"name": "l1"}, "perc": {"name": "perceptul"}}, "optim": {"lrr": 0.1},
            "schedule": "cosine_whatever", "train": {"epochs": "many", "batchsize": 2},
            "eval": {"metrics": ["l1", "psnrr"]}}
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, host)
    assert set(by_key(caught.value)) == {
        "seed", "data.sizee", "model.generator.name", "model.genrator", "loss.perc.name", "optim.lrr",
        "schedule.name", "train.epochs", "train.batchsize", "eval.metrics.psnrr.name"}
    assert all(mistake.hint for mistake in caught.value.mistakes)


def test_wiring_and_evaluation_mistakes_are_reported_together(host) -> None:
    data = {"data": {"name": "synthetic_thermal", "size": 48},
            "model": {"generator": {"name": "unet", "depth": 6, "ngf": 8}, "discriminator": {"name": "patch"}},
            "loss": {"l1": {"name": "l1"}}, "eval": {"metrics": ["l1"], "best": "eval/l2"}}
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, host)
    found = by_key(caught.value)
    assert set(found) == {"model.generator", "eval.best"} and "did you mean 'eval/l1'" in found["eval.best"].hint


def test_a_single_mistake_is_the_error_itself(host) -> None:
    data = {"data": {"name": "synthetic_thermal"}, "model": {"generator": {"name": "unett"}}}
    with pytest.raises(P2PError) as caught:
        validate_recipe(data, host)
    assert not isinstance(caught.value, RecipeMistakes) and caught.value.key == "model.generator.name"


def test_each_mistake_is_placed_in_the_file_that_wrote_it(host, tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text(f'extends = "{QUICKSTART}"\n[train]\nbatchsize = 4\n')
    child = tmp_path / "child.toml"
    child.write_text('extends = "base.toml"\n[model.generator]\nname = "unett"\n')
    with pytest.raises(P2PError) as caught:
        load_recipe(child, host, ["optim.lrr=0.1"])
    found = by_key(caught.value)
    assert found["train.batchsize"].file == str(base) and found["model.generator.name"].file == str(child)
    assert "--set optim.lrr=0.1" in found["optim.lrr"].message
    assert f"train.batchsize in {base}" in "\n".join(caught.value.details)


def test_p2p_validate_lists_every_mistake_on_one_screen(tmp_path: Path) -> None:
    recipe = typos_recipe(tmp_path)
    done = p2p("validate", recipe)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "2 mistakes in the recipe" in done.stderr and f"file: {recipe}" in done.stderr
    assert "- train.batchsize: unknown key 'batchsize'" in done.stderr
    assert "- model.generator.name: unknown generator 'unett'" in done.stderr
    assert done.stderr.count("hint: ") == 3  # one for each mistake, and one for the whole


@pytest.mark.parametrize("value", [HUGE, "0x" + "f" * 5000, "-" + HUGE, "9" * 20])
def test_a_huge_integer_in_a_recipe_file_names_its_key(tmp_path: Path, value: str) -> None:
    recipe = tmp_path / "huge.toml"
    recipe.write_text(f'# {HUGE}\nname = "{HUGE}"\n[train]\nepochs = 2\nseed = {value}\n')
    with pytest.raises(P2PError) as caught:
        read_toml(recipe)
    assert caught.value.key == "train.seed" and caught.value.file == str(recipe)
    assert "64-bit" in caught.value.message and len(str(caught.value)) < 400


def test_a_huge_integer_in_an_array_names_its_place(tmp_path: Path) -> None:
    recipe = tmp_path / "huge.toml"
    recipe.write_text(f'[eval]\nmetrics = ["l1", {{ name = "psnr", x = [1, {HUGE}] }}]\n')
    with pytest.raises(P2PError) as caught:
        read_toml(recipe)
    assert caught.value.key == "eval.metrics.1.x.1" and "5,000 digits" in caught.value.message


def test_a_huge_integer_in_set_or_data_names_its_key(host) -> None:
    for value in (HUGE, str(2**64)):
        with pytest.raises(P2PError) as caught:
            apply_overrides({}, [f"seed={value}"])
        assert caught.value.key == "seed"
    with pytest.raises(P2PError) as caught:
        validate_recipe({"data": {"name": "synthetic_thermal"}, "train": {"epochs": 10**5000}}, host)
    assert caught.value.key == "train.epochs"
    assert apply_overrides({}, ["seed=9223372036854775807"]) == {"seed": 2**63 - 1}  # the largest TOML integer


def test_p2p_validate_with_a_huge_seed_is_one_screen() -> None:
    done = p2p("validate", "recipes/quickstart.toml", "--set", f"seed={HUGE}")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "key:  seed" in done.stderr and len(done.stderr.splitlines()) <= 6 and len(done.stderr) < 600
