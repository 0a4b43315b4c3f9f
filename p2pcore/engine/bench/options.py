"""`p2p bench --options`: each engine option off and on, timed in alternating rounds in one process.

Two trainers (the option off, and on) live side by side and take turns, so a machine shared with other
work disturbs both alike. An option the device cannot run is one line saying why, never a traceback.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from p2pcore.engine.bench.benchmark import OptionResult, bench_trainer, step_times
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import load_recipe

# (recipe key, value when on, value when off)
OPTIONS: tuple[tuple[str, object, object], ...] = (
    ("train.channels_last", True, False),
    ("train.compile", True, False),
    ("train.precision", "bf16", "fp32"),
)


def toml_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def why_not(key: str, device: torch.device) -> str | None:
    """Why an option is not measured on this device, or None."""
    if key == "train.precision" and device.type != "cuda":
        return "bf16 autocast is compared on CUDA only: CPUs without bf16 matrix units run it slower than fp32"
    if key == "train.precision" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16 arithmetic"
    return None


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:160] if text else ''}"


def compare(recipe_path: str | Path, host: Host, overrides: list[str], key: str, on: object, off: object, *,
            steps: int, warmup: int, rounds: int) -> OptionResult:
    """Median ms per training step with the option off and on, alternating `rounds` times."""
    result = OptionResult(key, on)
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        try:
            for name, value in (("off", off), ("on", on)):
                recipe = load_recipe(recipe_path, host, [*overrides, f"{key}={toml_value(value)}"])
                trainer, batch = bench_trainer(recipe, host, Path(tmp) / name)
                for _ in range(max(1, warmup)):  # compiling happens here
                    trainer.train_step(batch)
                sides[name] = (trainer, batch)
        except P2PError:
            raise
        except Exception as error:  # an option this device or installation cannot run is a finding, not a crash
            result.note = f"cannot run here: {first_line(error)}"
            return result
        times: dict[str, list[float]] = {"off": [], "on": []}
        for round_ in range(rounds):
            for name in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                trainer, batch = sides[name]
                times[name].append(statistics.median(step_times(lambda t=trainer, b=batch: t.train_step(b), steps,
                                                                trainer.device)))
    result.off_ms = min(times["off"]) * 1000
    result.on_ms = min(times["on"]) * 1000
    return result


def compare_options(recipe_path: str | Path, host: Host, overrides: list[str], device: torch.device, *, steps: int,
                    warmup: int, rounds: int = 3) -> list[OptionResult]:
    out = []
    for key, on, off in OPTIONS:
        reason = why_not(key, device)
        if reason:
            out.append(OptionResult(key, on, note=f"not measured: {reason}"))
            continue
        out.append(compare(recipe_path, host, overrides, key, on, off, steps=steps, warmup=warmup, rounds=rounds))
    return out
