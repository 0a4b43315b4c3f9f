"""Time `Trainer.train_step` on one batch of a recipe with fused Adam (p2p's default) and with the
foreach Adam PyTorch picks otherwise, alternating in one process, so that the two figures share the
machine's state.

    python benchmarks/optimizer_step.py recipes/quickstart.toml --steps 15 --rounds 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from p2pcore import load_host
from p2pcore.engine.train.trainer import Trainer
from p2pcore.engine.train.update import SideUpdate
from p2pcore.recipe import load_recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    host = load_host()
    trainer = Trainer(load_recipe(args.recipe, host, ["train.num_workers=0"]), host,
                      Path(tempfile.mkdtemp()) / "run")
    size = trainer.cfg.batch_size
    batch = trainer._to_device(torch.utils.data.default_collate([trainer.train_set[i] for i in range(size)]))

    def use(fused: bool) -> None:
        for name, old in list(trainer.optimizers.items()):
            params = [p for group in old.param_groups for p in group["params"]]
            trainer.optimizers[name] = torch.optim.Adam(params, lr=old.defaults["lr"], betas=old.defaults["betas"],
                                                        fused=fused or None, foreach=None if fused else True)
        for side, update in trainer.updates.items():
            trainer.updates[side] = SideUpdate(side, {p: trainer.optimizers[p] for p in update.optimizers},
                                               update.scaler)

    def step_time() -> float:
        for _ in range(3):
            trainer.train_step(batch)
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.train_step(batch)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / args.steps

    times: dict[str, list[float]] = {"fused": [], "foreach": []}
    for _ in range(args.rounds):
        for name in times:
            use(name == "fused")
            times[name].append(step_time())
    best = {name: min(values) for name, values in times.items()}
    for name, value in best.items():
        print(f"{name:8s} {value * 1000:.1f} ms/step (batch {size}, {trainer.device})")
    print(f"foreach / fused: {best['foreach'] / best['fused']:.2f}x")


if __name__ == "__main__":
    main()
