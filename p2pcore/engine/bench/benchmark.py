"""`p2p bench`: what a recipe's networks cost on its device, measured in one process.

The training figure is the compute-only limit (`Trainer.train_step` on one batch already on the device,
as `benchmarks/train_speed.py` measures it); its FLOPs are counted by PyTorch's `FlopCounterMode` over
one whole step (both players' forward and backward passes) and set against a dense matrix product timed
in the same run on the same device and dtype, so the step's achieved FLOP/s reads as a fraction of a
limit this machine really reaches rather than of a datasheet figure.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from p2pcore.engine.build.device import DTYPES, autocast
from p2pcore.engine.infer.protocols import nets_in_protocol
from p2pcore.engine.train.trainer import Trainer
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe, load_recipe


@dataclass
class OptionResult:
    """One engine option timed off and on in alternating rounds, or why it could not run."""

    key: str
    value: Any
    off_ms: float | None = None
    on_ms: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float | None:
        return self.off_ms / self.on_ms if self.off_ms and self.on_ms else None


@dataclass
class BenchResult:
    """The figures of one `p2p bench` run; `asdict` of it is the --out file."""

    recipe: str
    device: str
    precision: str
    batch_size: int
    image_size: list[int]
    steps: int
    train_ms_best: float
    train_ms_median: float
    train_images_per_s: float
    infer_images_per_s: float
    direction: str
    memory_bytes: int
    memory_how: str
    step_flops: int
    achieved_flops_per_s: float
    matmul_flops_per_s: float
    matmul_size: int
    fraction_of_matmul: float
    torch_version: str = torch.__version__
    threads: int = field(default_factory=torch.get_num_threads)
    options: list[OptionResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = [asdict(o) | {"speedup": o.speedup} for o in self.options]
        return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(step: Callable[[], Any], steps: int, device: torch.device) -> list[float]:
    """Seconds of each of `steps` calls, the device drained after each."""
    out = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync(device)
        out.append(time.perf_counter() - start)
    return out


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of the matrix products and convolutions `fn` runs, forward and backward alike (a multiply-add
    is two); element-wise work (norms, activations, the optimiser) is not counted."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_rate(device: torch.device, dtype: torch.dtype, *, size: int | None = None, repeats: int = 5) -> tuple[
        float, int]:
    """FLOP/s of a square `torch.mm` on `device` in `dtype`, best of `repeats`: the dense-arithmetic
    limit this machine reaches now (other processes included); and the size used."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    sync(device)
    best = min(step_times(lambda: torch.mm(a, b), repeats, device))
    return 2 * size ** 3 / best, size


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, Any]]:
    """The peak memory of the block: CUDA's `max_memory_allocated` (tensors only, caching excluded), or on
    a CPU the growth of the process's peak resident set (`ru_maxrss`, so 0 when an earlier peak was higher)."""
    out: dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        yield out
        out["bytes"], out["how"] = torch.cuda.max_memory_allocated(device) - base, "CUDA max_memory_allocated"
        return
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield out
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["bytes"], out["how"] = (after - before) * 1024, "CPU peak RSS growth (ru_maxrss)"


def without_eval(recipe: Recipe) -> Recipe:
    """The recipe with no `[eval]` metrics: timing training needs none, and some need files (weights)."""
    return recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"metrics": [], "best": None})})


def bench_trainer(recipe: Recipe, host: Host, out_dir: Path) -> tuple[Trainer, dict[str, Any]]:
    """A trainer for the recipe (without its evaluation) and one training batch already on its device."""
    trainer = Trainer(without_eval(recipe), host, out_dir)
    items = [trainer.train_set[i % len(trainer.train_set)] for i in range(recipe.train.batch_size)]
    return trainer, trainer._to_device(torch.utils.data.default_collate(items))


def translation(trainer: Trainer, batch: dict[str, Any]) -> tuple[str, Callable[[], torch.Tensor]]:
    """The task's default (first) direction under the eval protocol, on the batch's input images."""
    name, direction = next(iter(trainer.spec.directions.items()))
    image = batch[direction.input]

    @torch.no_grad()
    def run() -> torch.Tensor:
        with nets_in_protocol(trainer.nets, "eval"), autocast(trainer.device, trainer.cfg.precision):
            return trainer.task.translate(name, trainer.forward_nets, image)
    return name, run


def measure(recipe_path: str | Path, host: Host, overrides: list[str], *, steps: int, warmup: int) -> BenchResult:
    """Train and translate figures, peak memory, step FLOPs and the matmul limit, for one recipe."""
    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(recipe_path, host, overrides)
        device_memory = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        with peak_memory(device_memory) as memory:
            trainer, batch = bench_trainer(recipe, host, Path(tmp) / "run")
            for _ in range(warmup):
                trainer.train_step(batch)
            times = step_times(lambda: trainer.train_step(batch), steps, trainer.device)
        flops = count_flops(lambda: trainer.train_step(batch))
        direction, translate = translation(trainer, batch)
        for _ in range(max(1, warmup)):
            translate()
        infer = statistics.median(step_times(translate, steps, trainer.device))
        dtype = DTYPES[recipe.train.precision] if trainer.device.type == "cuda" else torch.float32
        rate, size = matmul_rate(trainer.device, dtype)
    size_hw = list(batch[direction_input(trainer)].shape[-2:])
    best, median = min(times), statistics.median(times)
    achieved = flops / median
    return BenchResult(recipe=str(recipe_path), device=str(trainer.device), precision=recipe.train.precision,
                       batch_size=recipe.train.batch_size, image_size=size_hw, steps=steps,
                       train_ms_best=best * 1000, train_ms_median=median * 1000,
                       train_images_per_s=recipe.train.batch_size / median,
                       infer_images_per_s=recipe.train.batch_size / infer, direction=direction,
                       memory_bytes=int(memory["bytes"]), memory_how=memory["how"], step_flops=flops,
                       achieved_flops_per_s=achieved, matmul_flops_per_s=rate, matmul_size=size,
                       fraction_of_matmul=achieved / rate)


def direction_input(trainer: Trainer) -> str:
    return next(iter(trainer.spec.directions.values())).input
