"""Shared fixtures: the plugin host and the location of the shared real data (optional)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# A terminal width inherited from the runner (pytest-xdist's workers set COLUMNS=80) would fix the width of
# consoles created at import; each test that cares sets its own.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)
if os.environ.get("PYTEST_XDIST_WORKER"):  # processes side by side: one thread each (and each p2p they start)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from p2pcore import Host, load_host  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]


def run_without_torch(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`p2p ARGS` in a fresh interpreter, which fails unless the command succeeds without importing torch."""
    probe = textwrap.dedent(f"""
        import sys
        sys.argv = ["p2p", *{list(args)!r}]
        from p2pcore.cli import main
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        assert "torch" not in sys.modules, "torch was imported"
    """)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=timeout)


@pytest.fixture(scope="session")
def host() -> Host:
    return load_host()


def needs_shared(*parts: str) -> pytest.MarkDecorator:
    """Skip a test cleanly when ../shared (real data, reference fixtures) is not beside the repo."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not present")


TINY_GENERATOR = """[model.generator]
name = "unet"
depth = 5
ngf = 8
"""
"""The smallest pix2pix generator for 32 px images: the model table of the recipes tests write."""
L1_TERM = 'l1 = { name = "l1", weight = 100.0 }\n'
"""pix2pix's L1 term, a line of a recipe's [loss] table."""


def tiny_networks(generator: str = "", discriminator: str = "") -> str:
    """The model tables of the smallest pix2pix networks for 32 px images, each followed by the given lines
    (more keys of that network)."""
    return f'{TINY_GENERATOR}{generator}[model.discriminator]\nname = "patch"\nndf = 8\n{discriminator}'


TINY_NETWORKS = tiny_networks()
"""The smallest pix2pix networks for 32 px images: the model tables of the recipes tests write."""


def synthetic_data(train_count: int, test_count: int = 2, size: int = 32) -> str:
    """The [data] table of a recipe on rendered thermal scenes: `train_count` and `test_count` of `size` px."""
    return (f'[data]\nname = "synthetic_thermal"\nsize = {size}\ntrain_count = {train_count}\n'
            f"test_count = {test_count}\n")


def thermal_folders_recipe(path: Path, root: Path) -> Path:
    """Write a pix2pix recipe at `path` on a `paired_folders` dataset under `root` (1-channel ir/, 3-channel
    rgb/), with TINY_NETWORKS and an L1 term."""
    path.write_text(f"""task = "pix2pix"
[data]
name = "paired_folders"
root = "{root.as_posix()}"
a = {{ dir = "ir", channels = 1 }}
b = {{ dir = "rgb", channels = 3 }}
{TINY_NETWORKS}[loss]
{L1_TERM}""")
    return path


def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for the test (a fixture body): the alignment's many small tensor operations run
    fastest so on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def trained_checkpoint(out: Path, host: Host, *, size: int, generator: dict) -> Path:
    """The latest checkpoint of one epoch of pix2pix (an L1 term) on 4 synthetic scenes of `size` pixels, in
    `out`: for tests that translate with a trained run."""
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    recipe = {"data": {"name": "synthetic_thermal", "size": size, "train_count": 4, "test_count": 1},
              "model": {"generator": generator}, "loss": {"l1": {"name": "l1"}},
              "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}
    Trainer(validate_recipe(recipe, host), host, out).fit()
    return out / "checkpoints" / "latest.safetensors"


@pytest.fixture(scope="module")
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, host: Host) -> Path:
    """The trained checkpoint a test module translates with: `trained_checkpoint` with the module's
    `TRAINED` settings (`size`, `generator`), trained once per module."""
    settings = getattr(request.module, "TRAINED", None)
    assert settings is not None, f"{request.module.__name__} sets no TRAINED (size, generator) to train with"
    return trained_checkpoint(tmp_path_factory.mktemp(request.module.__name__) / "run", host, **settings)


def split_safetensors(blob: bytes) -> tuple[dict, bytes]:
    """A safetensors file's bytes as its JSON header (`__metadata__` included) and its body: for tests that craft
    damaged checkpoints."""
    (length,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + length]), blob[8 + length:]


def join_safetensors(header: dict, body: bytes) -> bytes:
    """A safetensors file's bytes from its JSON header and body, the header padded to 8 bytes as the format asks."""
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def invoke(*args: object) -> Any:
    """`p2p ARGS` in this process (typer's test runner), each argument as a string."""
    from typer.testing import CliRunner

    from p2pcore.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def torch_algorithms_restored() -> Iterator[None]:
    """A run with `train.deterministic` switches the process to deterministic algorithms; a test that trained
    in-process leaves the next one the mode it found."""
    if "torch" not in sys.modules:
        yield
        return
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(deterministic)
