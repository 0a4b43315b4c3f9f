"""Two source trees of p2p timed side by side in one run: a whole `p2p run` of a recipe (wall time) and the
training step `p2p bench` measures, in alternating rounds so that a busy machine slows both alike.

    python benchmarks/trees_side_by_side.py OLD_TREE NEW_TREE --recipe recipes/quickstart.toml --rounds 2

Each tree runs in its own interpreter, in a scratch folder, with the tree (and its plugins/ folder) first on
PYTHONPATH, on the same recipe file, so the figures compare code, not settings. Prints one row per figure: each
tree's median and spread, and the ratio NEW / OLD (below 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), str(tree / "plugins")])
    return env


def time_run(tree: Path, recipe: Path, overrides: list[str]) -> float:
    """Seconds of one whole `p2p run` (start-up, data, training, evaluation, report) into a fresh folder."""
    with tempfile.TemporaryDirectory() as out:
        sets = [arg for key in overrides for arg in ("--set", key)]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "p2pcore", "run", str(recipe), "--out", f"{out}/run", *sets],
                       env=_env(tree), cwd=out, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def time_step(tree: Path, recipe: Path, steps: int, overrides: list[str]) -> float:
    """Seconds per training step as `p2p bench` measures it (the median of `steps` timed steps)."""
    with tempfile.TemporaryDirectory() as out:
        sets = [arg for key in overrides for arg in ("--set", key)]
        subprocess.run([sys.executable, "-m", "p2pcore", "bench", str(recipe), "--steps", str(steps),
                        "--json", f"{out}/bench.json", *sets], env=_env(tree), cwd=out, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures = json.loads(Path(f"{out}/bench.json").read_text())
        return float(figures["train_ms_median"]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="recipe override for both trees (key.path=value)")
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    figures: dict[str, dict[str, list[float]]] = {name: {"run_s": [], "step_s": []} for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            figures[name]["step_s"].append(time_step(trees[name], args.recipe, args.steps, args.overrides))
            figures[name]["run_s"].append(time_run(trees[name], args.recipe, args.overrides))
            print(f"round {round_ + 1} {name}: run {figures[name]['run_s'][-1]:.1f} s, "
                  f"step {figures[name]['step_s'][-1] * 1000:.1f} ms", flush=True)
    for what in ("run_s", "step_s"):
        old, new = (statistics.median(figures[name][what]) for name in ("old", "new"))
        spread = {name: f"{min(figures[name][what]):.4g}-{max(figures[name][what]):.4g}" for name in trees}
        print(f"{what}: old {old:.4g} ({spread['old']}), new {new:.4g} ({spread['new']}), new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
