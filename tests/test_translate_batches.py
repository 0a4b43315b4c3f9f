"""p2p translate in batches: outputs do not depend on --batch-size under either protocol, images share a
forward pass only where that cannot change them, bad files keep their semantics, and the command says
how fast it went."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import invoke
from PIL import Image

from p2pcore import P2PError
from p2pcore.engine.infer.batching import batch_mixing_layers
from p2pcore.engine.infer.pipeline import translate_files
from p2pcore.engine.infer.translate import Translator

SIZES = [(20, 28), (32, 32), (20, 28), (20, 28), (32, 32), (17, 40), (20, 28), (32, 32), (20, 28)]


TRAINED = {"size": 64, "generator": {"name": "unet", "depth": 6, "ngf": 8, "norm": "batch", "dropout": 0.5}}
"""The checkpoint fixture's run: a U-Net with batch norm and dropout, so batch statistics and random draws
under the paper protocol."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for i, size in enumerate(SIZES):
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("protocol", [["--eval"], []], ids=["eval", "paper"])
def test_outputs_do_not_depend_on_the_batch_size(checkpoint, folder, tmp_path, host, protocol):
    results = []
    for batch in (1, 3, 8):
        result = invoke("translate", checkpoint, folder, tmp_path / str(batch), "--batch-size", batch, "--seed", 5,
                        *protocol)
        assert result.exit_code == 0, result.output
        results.append(outputs(tmp_path / str(batch)))
    assert len(results[0]) == len(SIZES)
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        assert all(np.array_equal(other[name], results[0][name]) for name in other)
    alone = Translator(checkpoint, host, device="cpu", protocol="eval" if protocol else "paper", seed=5)
    for name in ("00.png", "05.png"):  # what an image gets translated alone
        alone.translate_file(folder / name, tmp_path / name)
        assert np.array_equal(np.asarray(Image.open(tmp_path / name)), results[-1][name])


def test_images_share_a_pass_only_where_that_cannot_change_them(checkpoint, folder, host):
    jobs = [(p, p.with_suffix(".unused.png")) for p in sorted(folder.iterdir())]
    for protocol, shared in (("eval", True), ("paper", False)):
        translator = Translator(checkpoint, host, device="cpu", protocol=protocol, batch_size=4)
        seen: list[int] = []
        translator.nets["generator"].register_forward_pre_hook(lambda m, args, seen=seen: seen.append(len(args[0])))
        images = [translator.read(path) for path, _ in jobs if Image.open(path).size == (28, 20)]
        translator.translate_many(images)
        assert translator.batched is shared
        assert max(seen) == (4 if shared else 1) and sum(seen) == len(images)
        assert ("one image per forward pass" in translator.batching()) is not shared
    paper = Translator(checkpoint, host, device="cpu", protocol="paper")
    assert {"dropout", "batch statistics (BatchNorm2d)"} == set(paper.mixing)
    assert batch_mixing_layers([torch.nn.BatchNorm2d(3, track_running_stats=False).eval()])  # no running stats


def test_random_draws_are_found_on_the_first_pass_and_keep_images_apart(checkpoint, folder, host):
    translator = Translator(checkpoint, host, device="cpu", protocol="eval", batch_size=4, seed=2)
    plain = translator.forward
    translator.forward = lambda x: plain(x) + 0.1 * torch.randn_like(x)  # a network that draws noise
    images = [translator.read(folder / f"{i:02d}.png") for i in (0, 2, 3, 6)]
    together = translator.translate_many(images)
    assert translator.draws_random and not translator.batched
    assert all(torch.equal(a, translator(image)) for a, image in zip(together, images, strict=True))


def test_bad_files_keep_their_semantics_in_batches(checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a", "b", "d", "e", "f"):
        Image.fromarray(rng.integers(0, 255, (20, 28), dtype=np.uint8)).save(folder / f"{name}.png")
    (folder / "c.png").write_bytes(b"not an image")
    result = invoke("translate", checkpoint, folder, tmp_path / "out", "--eval", "--batch-size", 4)
    assert isinstance(result.exception, P2PError) and "1 of 6 image(s) failed" in result.exception.message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "d.png", "e.png", "f.png"]
    fast = invoke("translate", checkpoint, folder, tmp_path / "fast", "--eval", "--batch-size", 4, "--fail-fast")
    assert isinstance(fast.exception, P2PError) and "c.png" in (fast.exception.file or "")
    assert sorted(p.name for p in (tmp_path / "fast").iterdir()) == ["a.png", "b.png"]  # those before it


def test_the_command_reports_count_and_rate(checkpoint, folder, tmp_path, host):
    result = invoke("translate", checkpoint, folder, tmp_path / "out", "--eval", "--workers", 2)
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    assert f"translated {len(SIZES)} image(s) in" in line and "files/s" in line and "per forward pass" in line
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")
    jobs = [(p, tmp_path / "again" / p.name) for p in sorted(folder.iterdir())]
    ticks: list[int] = []
    outcome = translate_files(translator, jobs, workers=2, on_progress=ticks.append)
    assert outcome.written == sum(ticks) == len(SIZES) and not outcome.failed and outcome.rate > 0
