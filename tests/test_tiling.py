"""Tiled translation: the grid, the blend (weights summing to one, no step at seams), agreement with the
untiled pass away from tile borders, memory bounded by the tile, and the errors users see."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.cli import app
from p2pcore.engine.infer.protocols import translate_image
from p2pcore.engine.infer.tiling import Tiling, tile_starts, translate_tiled
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe

HEIGHT, WIDTH = 150, 230  # not multiples of the ResNet's 4: padding is exercised too


def smooth_image(channels: int = 3) -> torch.Tensor:
    """Low-frequency content: the untiled output is smooth, so a seam would stand out."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, HEIGHT), torch.linspace(0, 1, WIDTH), indexing="ij")
    waves = [torch.sin(6 * xx + 2 * yy), torch.cos(5 * yy - 3 * xx), torch.sin(4 * (xx + yy))]
    return torch.stack(waves[:channels]) * 0.8


@pytest.fixture(scope="module")
def resnet(host) -> torch.nn.Module:
    """A fully convolutional generator without batch statistics, weights large enough to vary its output."""
    torch.manual_seed(0)
    net = host.build("generator", {"name": "resnet", "ngf": 8, "n_blocks": 1, "norm": "none"},
                     in_channels=3, out_channels=3).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, 0.0, 0.05)
    return net


def receptive_radius(net: torch.nn.Module) -> int:
    """How far from an output pixel the inputs it depends on lie, by back-propagation."""
    x = torch.zeros(1, 3, 129, 129, requires_grad=True)
    with torch.enable_grad():
            net(x)[0, :, 64, 64].sum().backward()
    used = (x.grad.abs().sum((0, 1)) > 0).nonzero()
    return int((used - 64).abs().max())


def interior(length: int, tiling: Tiling, margin: int) -> torch.Tensor:
    """Pixels along one side covered by a single tile, at least `margin` from its inner borders."""
    padded = -(-length // tiling.multiple) * tiling.multiple
    starts = tile_starts(padded, tiling.size, tiling.step)
    cover = torch.zeros(padded, dtype=torch.int64)
    far = torch.zeros(padded, dtype=torch.bool)
    for s in starts:
        cover[s:s + tiling.size] += 1
        lo = s + margin if s > 0 else s
        hi = s + tiling.size - margin if s + tiling.size < padded else padded
        far[lo:hi] = True
    return ((cover == 1) & far)[:length]


@pytest.mark.parametrize(("length", "size", "overlap", "multiple"),
                         [(300, 96, 16, 4), (256, 64, 8, 8), (1000, 256, 32, 32), (64, 64, 0, 4), (40, 64, 8, 4)])
def test_the_grid_is_the_formula(length, size, overlap, multiple):
    tiling = Tiling.checked(size, overlap, multiple)
    assert tiling.step % multiple == 0 and size - tiling.step >= overlap
    assert tiling.step + multiple > size - overlap  # the largest such step
    starts = tile_starts(length, size, tiling.step)
    if length <= size:
        assert starts == [0]
        return
    assert len(starts) == 1 + math.ceil((length - size) / tiling.step)
    assert starts[:-1] == [i * tiling.step for i in range(len(starts) - 1)]
    assert starts[-1] + size == length  # the last tile is aligned to the edge
    assert all(b - a <= tiling.step and a + size - b >= overlap for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-2] + size < length  # one tile fewer would not cover


def test_weights_sum_to_one_so_an_identity_network_returns_its_input():
    image = torch.rand(2, 97, 203) * 2 - 1
    tiling = Tiling.checked(32, 12, 4)
    assert torch.allclose(translate_tiled(image, lambda x: x, tiling, lambda: 3), image, atol=1e-6)
    constant = translate_tiled(image, lambda x: torch.full_like(x, 0.25), tiling, lambda: 5)
    assert torch.allclose(constant, torch.full_like(image, 0.25), atol=1e-6)


@torch.no_grad()
def test_tiles_agree_with_the_whole_image_away_from_their_borders(resnet):
    radius = receptive_radius(resnet)
    image = smooth_image()
    whole = translate_image(resnet, image[None], 4)[0]
    tiling = Tiling.checked(96, 16, 4)
    tiled = translate_tiled(image, resnet, tiling, lambda: 2)
    assert tiled.shape == whole.shape
    mask = interior(HEIGHT, tiling, radius + 1)[:, None] & interior(WIDTH, tiling, radius + 1)[None, :]
    assert mask.sum() > 0.1 * mask.numel()
    assert (tiled - whole)[:, mask].abs().max() < 1e-5
    assert (tiled - whole)[:, ~mask].abs().max() > 1e-4  # tile borders do differ: the comparison can fail


@torch.no_grad()
def test_blended_seams_show_no_step(resnet):
    image = smooth_image()
    whole = translate_image(resnet, image[None], 4)[0]
    typical = min((whole[..., 1:] - whole[..., :-1]).abs().mean(),
                  (whole[..., 1:, :] - whole[..., :-1, :]).abs().mean())

    def worst_step(overlap: int) -> float:
        """The largest jump between neighbouring pixels that the untiled output does not have."""
        error = translate_tiled(image, resnet, Tiling.checked(64, overlap, 4), lambda: 4) - whole
        return float(max((error[..., 1:] - error[..., :-1]).abs().max(),
                         (error[..., 1:, :] - error[..., :-1, :]).abs().max()))

    assert worst_step(16) < 0.5 * typical
    assert worst_step(0) > 2 * typical  # hard seams do step: the measure sees them


@pytest.mark.parametrize(("size", "overlap", "key", "words"), [
    (30, None, "--tile", "multiple of 4"), (0, None, "--tile", "multiple of 4"),
    (64, 32, "--overlap", "less than half"), (64, -1, "--overlap", "at least 0"), (4, 1, "--tile", "no room")])
def test_bad_tiles_are_clear_errors(size, overlap, key, words):
    with pytest.raises(P2PError, match=words) as caught:
        Tiling.checked(size, overlap, 4)
    assert caught.value.key == key and caught.value.hint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, host) -> Path:
    out = tmp_path_factory.mktemp("tiling") / "run"
    recipe = {"data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
              "model": {"generator": {"name": "resnet", "ngf": 8, "n_blocks": 1, "norm": "none"}},
              "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}
    Trainer(validate_recipe(recipe, host), host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


def test_the_network_never_sees_more_than_a_tile_batch(checkpoint, host):
    translator = Translator(checkpoint, host, device="cpu", protocol="eval", batch_size=3, tile=64, overlap=8)
    seen: list[tuple[int, ...]] = []
    translator.nets["generator"].register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    image = torch.rand(translator.in_channels, 200, 300) * 2 - 1
    out = translator(image)
    assert out.shape == (translator.out_channels, 200, 300)
    starts = [tile_starts(length, 64, translator.tiling.step) for length in (200, 300)]
    assert sum(shape[0] for shape in seen) == len(starts[0]) * len(starts[1])
    assert max(seen) == (3, translator.in_channels, 64, 64)  # batched tiles, never the image
    assert translator.batched


def test_the_command_tiles_and_names_bad_options(checkpoint, tmp_path):
    source = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 130), dtype=np.uint8)).save(source)
    ok = CliRunner().invoke(app, ["translate", str(checkpoint), str(source), str(tmp_path / "out.png"),
                                  "--eval", "--tile", "64", "--overlap", "8"])
    assert ok.exit_code == 0, ok.output
    assert Image.open(tmp_path / "out.png").size == (130, 90)
    for size, valid in (("66", "64"), ("0", "4")):
        bad = CliRunner().invoke(app, ["translate", str(checkpoint), str(source), str(tmp_path / "bad.png"),
                                       "--tile", size])
        assert isinstance(bad.exception, P2PError) and bad.exception.key == "--tile"
        assert f"--tile {valid}" in bad.exception.hint
    lonely = CliRunner().invoke(app, ["translate", str(checkpoint), str(source), str(tmp_path / "bad.png"),
                                      "--overlap", "8"])
    assert isinstance(lonely.exception, P2PError) and lonely.exception.key == "--overlap"
