"""Memory bounded before it is asked for: a recipe's data and networks are estimated against the budget
(`p2p validate`, `p2p run` at its start) and refused naming the key; `p2p translate` tiles an image whose
untiled pass would not fit and turns a failed allocation into a one-screen error; `p2p eval --tile`
translates items in tiles. The huge cases are refused before anything is allocated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from PIL import Image
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.cli import app
from p2pcore.engine.build.memory import check_recipe_memory, network_needs
from p2pcore.engine.infer.fitting import Fitting, allocation_failure
from p2pcore.engine.infer.pipeline import translate_files
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe
from p2pcore.recipe.memory import BUDGET_VARIABLE, Budget, check_needs, data_needs, format_bytes, parse_bytes
from p2pcore.testing.recipes import merged

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.toml"
SMALL = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
         "model": {"generator": {"name": "resnet", "ngf": 8, "n_blocks": 1, "norm": "none"},
                   "discriminator": {"name": "patch", "ndf": 8}},
         "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}


def recipe_with(host, **changes) -> object:
    """SMALL with `changes` merged in table by table, validated."""
    return validate_recipe(merged(SMALL, changes), host)


def test_budget_parsing_and_units():
    assert parse_bytes("64G") == 64 * 10**9 and parse_bytes("1.5T") == 1.5e12 and parse_bytes("2GiB") == 2 * 1024**3
    assert parse_bytes("off") is None and parse_bytes("0") is None
    with pytest.raises(P2PError) as caught:
        parse_bytes("lots")
    assert caught.value.key == BUDGET_VARIABLE
    assert format_bytes(800e9) == "800 GB" and format_bytes(128e12) == "128 TB" and format_bytes(1500) == "1.5 KB"


def test_a_huge_item_count_is_refused_naming_its_key(host):
    recipe = recipe_with(host, data={"train_count": 100_000_000_000})
    with pytest.raises(P2PError) as caught:
        check_needs(data_needs(recipe), Budget(64 * 10**9, "a test budget"))
    error = caught.value
    assert error.key == "data.train_count" and "100000000000" in error.message and "TB" in error.message
    assert "lower data.train_count" in error.hint and BUDGET_VARIABLE in error.hint
    check_needs(data_needs(recipe), Budget(None, "off"))  # no budget: no check
    check_needs(data_needs(recipe), Budget(10**16, "a large machine"))


def test_a_huge_batch_is_refused_naming_its_key(host):
    recipe = recipe_with(host, train={"batch_size": 10**9})
    with pytest.raises(P2PError) as caught:
        check_needs(data_needs(recipe), Budget(64 * 10**9, "a test budget"))
    assert caught.value.key == "train.batch_size"


def test_a_huge_network_is_counted_on_the_meta_device_and_refused_naming_its_width(host):
    recipe = recipe_with(host, model={"discriminator": {"ndf": 1_000_000}})
    needs = {need.key: need for need in network_needs(recipe, host)}
    assert needs["model.discriminator.ndf"].bytes > 10**15  # petabytes: nothing of it was allocated
    assert needs["model.generator"].bytes < 10**7
    with pytest.raises(P2PError) as caught:
        check_needs(needs.values(), Budget(64 * 10**9, "a test budget"))
    assert caught.value.key == "model.discriminator.ndf" and "its default is 64" in caught.value.hint


def test_validate_refuses_huge_data_without_torch(tmp_path):
    probe = textwrap.dedent(f"""
        import sys
        sys.argv = ["p2p", "validate", {str(QUICKSTART)!r}, "--set", "data.train_count=100000000000"]
        from p2pcore.cli import main
        try:
            main()
        except SystemExit as e:
            print("exit", e.code)
        print("torch imported" if "torch" in sys.modules else "no torch")
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200", BUDGET_VARIABLE: "64G"})
    out = done.stdout + done.stderr
    assert "exit 2" in out and "no torch" in out and "Traceback" not in out, out
    assert "data.train_count" in out and "5.6 TB" in out and "64G" in out


def test_validate_memory_and_run_refuse_a_huge_network_before_allocating(tmp_path, monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "64G")
    result = invoke("validate", QUICKSTART, "--set", "model.discriminator.ndf=1000000", "--memory")
    assert isinstance(result.exception, P2PError), result.output
    assert result.exception.key == "model.discriminator.ndf" and result.exception.file == str(QUICKSTART)
    plain = invoke("validate", QUICKSTART, "--set", "model.discriminator.ndf=1000000")
    assert plain.exit_code == 0, plain.output  # the networks are counted with --memory (it imports torch)
    run = invoke("run", QUICKSTART, "--set", "model.discriminator.ndf=1000000", "--out", tmp_path / "run", "--quiet")
    assert isinstance(run.exception, P2PError) and run.exception.key == "model.discriminator.ndf", run.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_run_of_a_recipe_that_fits_is_not_refused(host):
    check_recipe_memory(recipe_with(host), host)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, host) -> Path:
    out = tmp_path_factory.mktemp("memory") / "run"
    Trainer(recipe_with(host), host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


def big_input(path: Path, height: int = 300, width: int = 420) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width), dtype=np.uint8)).save(path)
    return path


def test_fitting_scales_with_the_pixels(checkpoint, host):
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")
    fitting = Fitting(lambda side: side * side * 100, translator.multiple, translator.device)
    assert fitting.need(400, 400) == pytest.approx(4 * fitting.need(200, 200), rel=0.05)
    assert not fitting.worth_probing(64, 64) and fitting.worth_probing(1000, 1000)

    def broken(side: int) -> int:
        raise ValueError("this generator cannot run at the probe's size")

    assert Fitting(broken, 4, torch.device("cpu")).tiles_for(20000, 20000) is None  # no estimate: untiled


def test_translate_tiles_an_image_that_would_not_fit_with_a_note(checkpoint, host, tmp_path, monkeypatch):
    monkeypatch.setenv(BUDGET_VARIABLE, "4M")
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")
    seen: list[tuple[int, ...]] = []
    translator.nets["generator"].register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    notes: list[str] = []
    source = big_input(tmp_path / "big.png")
    outcome = translate_files(translator, [(source, tmp_path / "out.png")], on_note=notes.append)
    assert outcome.written == 1 and Image.open(tmp_path / "out.png").size == (420, 300)
    assert len(notes) == 1 and "big.png" in notes[0] and "px tiles" in notes[0] and "--tile" in notes[0]
    largest = max(shape[-1] for shape in seen[1:])  # the first pass is the small probe
    assert largest < 300 and translator.tiling is None  # tiles only; the translator is left untiled
    result = CliRunner().invoke(app, ["translate", str(checkpoint), str(source), str(tmp_path / "cli.png"),
                                      "--protocol", "eval"], env={"COLUMNS": "200", BUDGET_VARIABLE: "4M"})
    assert result.exit_code == 0 and "note: big.png" in result.output, result.output


def test_an_allocation_that_fails_is_tried_again_in_smaller_tiles(checkpoint, host, tmp_path):
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")
    forward, seen = translator.forward, []

    def limited(image: torch.Tensor) -> torch.Tensor:  # no pass of more than 128 x 128 pixels fits
        seen.append(tuple(image.shape[-2:]))
        if image.shape[-2] * image.shape[-1] > 128 * 128:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
        return forward(image)

    translator.forward = limited
    notes: list[str] = []
    source = big_input(tmp_path / "big.png")
    outcome = translate_files(translator, [(source, tmp_path / "out.png")], on_note=notes.append)
    assert outcome.written == 1 and Image.open(tmp_path / "out.png").size == (420, 300)
    assert notes == ["big.png: out of memory untiled: trying 208 px tiles",
                     "big.png: out of memory in 208 px tiles: trying 104 px tiles"], notes
    assert max(h * w for h, w in seen[-4:]) <= 104 * 104 and translator.tiling is None


@pytest.mark.parametrize("failure", [RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: "
                                                  "can't allocate memory: you tried to allocate 987654321 bytes."),
                                     torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
                                     MemoryError()])
def test_an_allocation_that_fails_is_a_one_screen_error_with_the_tile_hint(checkpoint, host, tmp_path, failure):
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")

    def failing(image: torch.Tensor) -> torch.Tensor:
        raise failure

    translator.forward = failing
    source = big_input(tmp_path / "a.png", 40, 60)
    with pytest.raises(P2PError) as caught:
        translate_files(translator, [(source, tmp_path / "out.png")])
    assert caught.value.file == str(source) and caught.value.key == "--tile" and "--tile 512" in caught.value.hint
    assert allocation_failure(failure) and not allocation_failure(RuntimeError("shapes do not match"))


def test_eval_tiles_large_items_and_scores_them_alike(checkpoint, host):
    from p2pcore.engine.evaluate.scoring import evaluate_checkpoint

    seen: list[tuple[int, ...]] = []

    def watched(module: torch.nn.Module, args: tuple) -> None:
        if type(module).__name__.lower().startswith("resnet"):  # the generator, whatever builds it
            seen.append(tuple(args[0].shape))

    larger = {"size": 160, "test_count": 2}
    whole = evaluate_checkpoint(checkpoint, host, {"metrics": ["psnr", "ssim"]}, data=larger, device="cpu",
                                mode="eval")
    handle = torch.nn.modules.module.register_module_forward_pre_hook(watched)
    try:
        tiled = evaluate_checkpoint(checkpoint, host, {"metrics": ["psnr", "ssim"]}, data=larger, device="cpu",
                                    mode="eval", tile=64, overlap=16)
    finally:
        handle.remove()
    assert seen and max(shape[-1] for shape in seen) == 64 and max(shape[-2] for shape in seen) == 64
    assert tiled.extra["tiling"] == "64 px tiles sharing at least 16 px" and tiled.items == 2
    for key, value in whole.figures.items():  # the blend differs from one pass only near tile borders
        assert tiled.figures[key] == pytest.approx(value, rel=0.05), key


def test_eval_tile_options_are_checked(checkpoint):
    bad = invoke("eval", checkpoint, "--metric", "psnr", "--overlap", "8")
    assert isinstance(bad.exception, P2PError) and bad.exception.key == "--overlap", bad.output
    folders = invoke("eval", "--pred", ".", "--real", ".", "--tile", "64")
    assert isinstance(folders.exception, P2PError) and folders.exception.key == "--tile"
