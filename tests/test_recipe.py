"""Recipe loading: validation against the registry, `extends`, `--set`, and the error messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import TINY_NETWORKS

from p2pcore import P2PError
from p2pcore.recipe import load_recipe, merge, parse_override

BASE = """
task = "pix2pix"
[data]
name = "synthetic_thermal"
size = 32
""" + TINY_NETWORKS + """[loss]
gan = { name = "gan", mode = "vanilla" }
l1 = { name = "l1", weight = 100.0 }
[train]
epochs = 2
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_valid_recipe_resolves_defaults(tmp_path, host):
    recipe = load_recipe(write(tmp_path, "r.toml", BASE), host)
    assert recipe.name == "r"
    generator = recipe.model["generator"].options
    assert generator["norm"]["name"] == "batch" and generator["dropout"] == 0.5
    assert recipe.loss["l1"].weight == 100.0 and recipe.optim.lr == 2e-4 and recipe.optim.betas == (0.5, 0.999)


def test_extends_merges_and_a_new_component_replaces(tmp_path, host):
    write(tmp_path, "base.toml", BASE)
    child = write(tmp_path, "child.toml", 'extends = "base.toml"\n[model.generator]\nngf = 4\n'
                                          '[model.discriminator]\nname = "pixel"\n[train]\nbatch_size = 4\n')
    recipe = load_recipe(child, host)
    assert recipe.model["generator"].options["ngf"] == 4
    assert recipe.model["generator"].options["depth"] == 5
    assert recipe.model["discriminator"].name == "pixel" and "n_layers" not in recipe.model["discriminator"].options
    assert recipe.train.batch_size == 4 and recipe.train.epochs == 2


def test_extends_cycle_is_reported(tmp_path, host):
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(P2PError, match="cycle"):
        load_recipe(tmp_path / "a.toml", host)


def test_set_overrides_use_the_same_validation(tmp_path, host):
    path = write(tmp_path, "r.toml", BASE)
    recipe = load_recipe(path, host, ["train.epochs=7", "model.generator.norm=instance", "loss.l1.weight=10"])
    assert recipe.train.epochs == 7 and recipe.loss["l1"].weight == 10.0
    assert recipe.model["generator"].options["norm"]["name"] == "instance"
    with pytest.raises(P2PError) as err:
        load_recipe(path, host, ["train.epochs=-1"])
    assert err.value.key == "train.epochs" and err.value.file == str(path)
    with pytest.raises(P2PError) as err:
        load_recipe(path, host, ["model.generator.norm=batchh"])
    assert err.value.key == "model.generator.norm.name" and "did you mean 'batch'" in err.value.hint


def test_set_name_switches_component_and_drops_its_parameters(tmp_path, host):
    path = write(tmp_path, "r.toml", BASE)
    recipe = load_recipe(path, host, ["model.discriminator.name=pixel", "model.discriminator.ndf=16"])
    assert recipe.model["discriminator"].name == "pixel" and recipe.model["discriminator"].options["ndf"] == 16
    recipe = load_recipe(path, host, ["data.name=synthetic_thermal", "data.size=64"])
    assert recipe.data.options["size"] == 64


def test_overrides_reach_into_lists():
    from p2pcore.recipe import apply_overrides

    data = {"eval": {"metrics": ["psnr", {"name": "fcn_score", "segmenter": {"name": "espnet", "weights": "a"}}]}}
    got = apply_overrides(data, ["eval.metrics.1.segmenter.weights=/models/espnet.pth", "eval.metrics.0.max_val=2"])
    assert got["eval"]["metrics"] == [{"name": "psnr", "max_val": 2},
                                      {"name": "fcn_score", "segmenter": {"name": "espnet",
                                                                          "weights": "/models/espnet.pth"}}]
    assert apply_overrides(data, ["eval.metrics.0=ssim"])["eval"]["metrics"][0] == "ssim"
    assert data["eval"]["metrics"][0] == "psnr"  # the recipe read is left as it was
    for bad in ("eval.metrics.2.name=l1", "eval.metrics.first.name=l1"):
        with pytest.raises(P2PError, match="not a position in a list of 2") as error:
            apply_overrides(data, [bad])
        assert error.value.key == bad.split("=")[0]


def test_parse_override_values():
    assert parse_override("a.b=5") == (["a", "b"], 5)
    assert parse_override("a=[0.5, 0.9]") == (["a"], [0.5, 0.9])
    assert parse_override("a=instance") == (["a"], "instance")
    assert parse_override('a="5"') == (["a"], "5")
    with pytest.raises(P2PError):
        parse_override("novalue")


@pytest.mark.parametrize(("text", "key", "fragment"), [
    (BASE.replace('ngf = 8', 'ngff = 8'), "model.generator.ngff", "did you mean 'ngf'"),
    (BASE.replace('name = "unet"', 'name = "unett"'), "model.generator.name", "unknown generator 'unett'"),
    (BASE + "\n[optim]\nlrr = 0.1\n", "optim.lrr", "did you mean 'lr'"),
    (BASE.replace('task = "pix2pix"', 'task = "pix2pixx"'), "task.name", "unknown task"),
    (BASE.replace('[loss]', '[loss]\nbad = { weight = 1.0 }'), "loss.bad.name", "Field required"),
    (BASE + "\n[model.critic]\nname = 'patch'\n", "model.critic", "has no model role 'critic'"),
    (BASE + "\n[optim.generatr]\nlr = 0.1\n", "optim.generatr", "did you mean 'generator'"),
])
def test_errors_name_file_and_key(tmp_path, host, text, key, fragment):
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(P2PError) as err:
        load_recipe(path, host)
    assert err.value.file == str(path)
    assert err.value.key == key, str(err.value)
    assert fragment in str(err.value)


def test_toml_syntax_error_names_the_file(tmp_path, host):
    path = write(tmp_path, "broken.toml", "task = \n")
    with pytest.raises(P2PError, match="not valid TOML") as err:
        load_recipe(path, host)
    assert err.value.file == str(path)


def test_merge_is_deep_and_does_not_mutate():
    base = {"a": {"x": 1, "y": {"z": 2}}, "b": 1}
    out = merge(base, {"a": {"y": {"z": 3}}})
    assert out == {"a": {"x": 1, "y": {"z": 3}}, "b": 1} and base["a"]["y"]["z"] == 2


def test_every_shipped_recipe_validates(host):
    recipes = sorted(Path(__file__).resolve().parents[1].joinpath("recipes").rglob("*.toml"))
    assert recipes
    for path in recipes:
        load_recipe(path, host)


# -- hostile recipe files: refused before they are parsed (or recursed into) ------------------------

@pytest.mark.parametrize(("text", "fragment"), [
    ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "arrays or tables nested more than 32 deep (line 1)"),
    ("a = " + "{ b = " * 60_000 + "1" + " }" * 60_000 + "\n", "arrays or tables nested more than 32 deep"),
    ("seed = 1\n" + "a" + ".a" * 100_000 + " = 1\n", "a dotted key of more than 32 parts (line 2)"),
    ("[" + ".".join(["t"] * 40) + "]\nx = 1\n", "a dotted key of more than 32 parts (line 1)"),
])
def test_deep_nesting_is_refused_before_parsing(tmp_path, host, text, fragment):
    import time

    path = write(tmp_path, "deep.toml", text)
    assert path.stat().st_size < 512 * 1024
    start = time.perf_counter()
    with pytest.raises(P2PError) as err:
        load_recipe(path, host)
    assert time.perf_counter() - start < 2
    assert err.value.file == str(path) and fragment in err.value.message and "32 levels" in err.value.hint


def test_nesting_through_tables_dotted_keys_and_arrays_together_is_named(tmp_path, host):
    text = "[" + ".".join(["t"] * 20) + "]\n" + ".".join(["k"] * 12) + " = [[1]]\n"
    path = write(tmp_path, "deep.toml", text)
    with pytest.raises(P2PError, match="nested more than 32 deep") as err:
        load_recipe(path, host)
    assert err.value.key == ".".join(["t"] * 20 + ["k"] * 12 + ["0"])


def test_brackets_and_dots_inside_strings_and_comments_are_not_nesting(tmp_path, host):
    from p2pcore.recipe import read_toml

    noise = "[{" * 40 + "." * 40
    path = write(tmp_path, "r.toml", BASE.replace('task = "pix2pix"', f'task = "pix2pix"  # {noise}'))
    assert load_recipe(path, host).name == "r"
    strings = write(tmp_path, "s.toml", f"a = \"{noise}\"\nb = '{noise}'\nc = \"\"\"\n{noise}\n\"\"\"\n"
                                        f"d = '''{noise}'''\n\"{noise}\" = 1\n")
    assert read_toml(strings)["a"] == noise


def test_oversized_recipe_is_refused_before_reading(tmp_path, host):
    path = write(tmp_path, "big.toml", BASE + "# " + "x" * (600 * 1024) + "\n")
    with pytest.raises(P2PError, match="larger than 512 KiB") as err:
        load_recipe(path, host)
    assert err.value.file == str(path) and err.value.hint


def test_largest_allowed_recipe_parses_quickly(tmp_path):
    import time

    from p2pcore.recipe import MAX_RECIPE_BYTES, read_toml

    key = ".".join(["a"] * 31)
    dotted = "".join(f"{key}.k{i:06d} = 1\n" for i in range(MAX_RECIPE_BYTES // len(f"{key}.k000000 = 1\n")))
    path = write(tmp_path, "dotted.toml", dotted)
    assert MAX_RECIPE_BYTES * 0.9 < path.stat().st_size <= MAX_RECIPE_BYTES
    start = time.perf_counter()
    read_toml(path)
    assert time.perf_counter() - start < 2


def test_extends_chain_is_followed_without_recursion_and_limited(tmp_path, host):
    for i in range(1000):
        write(tmp_path, f"r{i}.toml", f'extends = "r{i + 1}.toml"\n' if i < 999 else BASE)
    with pytest.raises(P2PError, match="more than 32 recipes") as err:
        load_recipe(tmp_path / "r0.toml", host)
    assert err.value.key == "extends" and err.value.file == str((tmp_path / "r32.toml").resolve())
    assert err.value.hint
    recipe = load_recipe(tmp_path / "r967.toml", host)  # 32 links: allowed
    assert recipe.model["generator"].options["ngf"] == 8


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_extends_dev_zero_is_refused_at_the_extends_key(tmp_path, host):
    child = write(tmp_path, "child.toml", 'extends = "/dev/zero"\n')
    with pytest.raises(P2PError, match="/dev/zero, which is a character device") as err:
        load_recipe(child, host)
    assert err.value.file == str(child.resolve()) and err.value.key == "extends" and err.value.hint
    with pytest.raises(P2PError, match="character device") as err:
        load_recipe("/dev/zero", host)
    assert err.value.file == "/dev/zero"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
def test_a_named_pipe_or_folder_is_refused_without_waiting(tmp_path, host):
    os.mkfifo(tmp_path / "pipe.toml")
    with pytest.raises(P2PError, match="named pipe"):
        load_recipe(tmp_path / "pipe.toml", host)
    child = write(tmp_path, "child.toml", 'extends = "pipe.toml"\n')
    with pytest.raises(P2PError, match="named pipe") as err:
        load_recipe(child, host)
    assert err.value.key == "extends"
    write(tmp_path, "folder.toml", 'extends = "."\n')
    with pytest.raises(P2PError, match="a folder") as err:
        load_recipe(tmp_path / "folder.toml", host)
    assert err.value.key == "extends"


def test_a_deeply_nested_set_value_is_refused():
    with pytest.raises(P2PError, match="too large or too deeply nested"):
        parse_override("train.epochs=" + "[" * 50_000 + "]" * 50_000)
    assert parse_override("data.crop=[[1, 2], [3, 4]]")[1] == [[1, 2], [3, 4]]
    assert len(parse_override("data.pairs=[" + ", ".join(["[1, 2]"] * 100) + "]")[1]) == 100


@pytest.mark.parametrize(("change", "key"), [
    ({"seed": -1}, "seed"), ({"seed": 2**33}, "seed"), ({"optim": {"betas": [2.0, 5.0]}}, "optim.betas.0"),
    ({"optim": {"lr": float("nan")}}, "optim.lr"), ({"train": {"epochs": True}}, "train.epochs"),
    ({"model": {"generator": {"name": "unet", "ngf": True}}}, "model.generator.ngf"),
    ({"model": {"generator": {"name": "unet", "dropout": float("inf")}}}, "model.generator.dropout"),
])
def test_values_that_would_crash_later_are_refused(host, change, key):
    from p2pcore.recipe import validate_recipe

    base = {"data": {"name": "synthetic_thermal"}, "model": {"generator": {"name": "unet"}},
            "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError) as caught:
        validate_recipe({**base, **change}, host)
    assert caught.value.key == key


def test_a_generator_that_cannot_fit_the_crop_is_refused(host):
    from p2pcore.recipe import validate_recipe

    recipe = {"data": {"name": "synthetic_thermal", "size": 64}, "model": {"generator": {"name": "unet", "depth": 8}},
              "loss": {"l1": {"name": "l1"}}}
    with pytest.raises(P2PError, match="multiples of 256, but data.size is 64") as caught:
        validate_recipe(recipe, host)
    assert caught.value.key == "model.generator"
    recipe["model"]["generator"]["depth"] = 6
    validate_recipe(recipe, host)


def test_switching_a_loss_terms_component_keeps_its_weight(tmp_path, monkeypatch):
    """`tv` is the example plugin's loss term: the plugin is loaded from its folder, installed or not."""
    from p2pcore.testing import host_with

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples" / "p2p-example"))
    host = host_with("p2p_example")
    path = write(tmp_path, "r.toml", BASE)
    recipe = load_recipe(path, host, ["loss.l1.name=tv"])
    assert recipe.loss["l1"].name == "tv" and recipe.loss["l1"].weight == 100.0
