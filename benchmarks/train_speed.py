"""Training throughput of a recipe, against the compute-only limit of the same networks.

Measured side by side in one process:
  limit    train_step on one batch already on the device, repeated (no data loading, no logging)
  pipeline the engine's whole loop: DataLoader, device transfer, both updates, logging, checkpoint policy
The ratio pipeline / limit is the fraction of the achievable step rate the engine reaches.

    python benchmarks/train_speed.py recipes/quickstart.toml --steps 60 --set data.train_count=5000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import torch

from p2pcore import load_host
from p2pcore.api import Callback
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(recipe_path: str, overrides: list[str], steps: int, warmup: int) -> dict[str, float]:
    host = load_host()
    with tempfile.TemporaryDirectory() as tmp:
        recipe = load_recipe(recipe_path, host, [*overrides, f"train.max_steps={warmup + steps}",
                                                 "train.checkpoint_minutes=0", "train.sample_every=1000"])
        trainer = Trainer(recipe, host, Path(tmp) / "limit")
        per_epoch = -(-len(trainer.train_set) // recipe.train.batch_size)
        if warmup + steps > per_epoch:
            print(f"note: {warmup + steps} steps cross an epoch end ({per_epoch} steps per epoch); the pipeline "
                  "figure then includes end-of-epoch samples and checkpoints. Enlarge the dataset to measure "
                  "steady-state training.")
        batch = torch.utils.data.default_collate([trainer.train_set[i] for i in range(recipe.train.batch_size)])
        batch = trainer._to_device(batch)
        for _ in range(warmup):
            trainer.train_step(batch)
        sync(trainer.device)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(batch)
        sync(trainer.device)
        limit = steps / (time.perf_counter() - start)

        marks: list[tuple[int, float]] = []

        class Mark(Callback):
            def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
                if "G/total" in figures:
                    sync(trainer.device)
                    marks.append((step, time.perf_counter()))

        trainer = Trainer(recipe, host, Path(tmp) / "pipeline", callbacks=[Mark()])
        trainer.fit()
        (first_step, first_time), (last_step, last_time) = next(m for m in marks if m[0] >= warmup), marks[-1]
        pipeline = (last_step - first_step) / (last_time - first_time)
    return {"limit_steps_per_s": limit, "pipeline_steps_per_s": pipeline, "fraction": pipeline / limit,
            "batch_size": recipe.train.batch_size, "device": str(trainer.device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    result = measure(args.recipe, args.overrides, args.steps, args.warmup)
    print(f"{args.recipe} {' '.join(args.overrides)}")
    print(f"  device {result['device']}, batch {result['batch_size']}")
    print(f"  limit (compute only): {result['limit_steps_per_s']:.2f} steps/s "
          f"({result['limit_steps_per_s'] * result['batch_size']:.1f} images/s)")
    print(f"  pipeline (whole loop): {result['pipeline_steps_per_s']:.2f} steps/s "
          f"({result['pipeline_steps_per_s'] * result['batch_size']:.1f} images/s)")
    print(f"  pipeline / limit: {result['fraction']:.3f}")


if __name__ == "__main__":
    main()
