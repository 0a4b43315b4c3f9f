"""Labels -> photo on real Cityscapes pairs: L1 + cGAN beside L1 alone with the same budget, each scored with the
FCN-score (ESPNet on the generated photos against the input label maps, beside its score on the real photos) and
the Lab histogram intersection on held-out pairs.

Needs ../shared (Cityscapes validation pairs and the ESPNet weights); nothing is downloaded. The 500 pairs are
split into 400 for training and 100 held out, by file name order, through symbolic links in the output folder.

    python benchmarks/labels2photo_metrics.py --epochs 15 --size 128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from p2pcore import load_host
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]


def split_pairs(shared: Path, out: Path, held_out: int) -> Path:
    """root/train and root/test as links to the shared validation pairs (never copies)."""
    pairs = sorted((shared / "data" / "cityscapes_pix2pix" / "val").glob("*.jpg"), key=lambda p: int(p.stem))
    root = out / "cityscapes"
    for split, files in (("train", pairs[:-held_out]), ("test", pairs[-held_out:])):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            link = folder / file.name
            if not link.exists():
                link.symlink_to(file)
    return root


def overrides(args: argparse.Namespace, root: Path, weights: Path, objective: str) -> list[str]:
    depth = args.size.bit_length() - 1  # a U-Net of depth d keeps 2^d px images
    sets = [f"data.root={json.dumps(str(root))}", f"data.load_size={args.size + args.size // 8}",
            f"data.crop_size={args.size}", f"model.generator.depth={depth}", f"model.generator.ngf={args.ngf}",
            f"model.discriminator.ndf={args.ngf}", f"train.batch_size={args.batch_size}",
            f"train.epochs={args.epochs}", "train.num_workers=0", f"train.sample_every={args.epochs}",
            "schedule=\"constant\"",
            'eval.metrics=["lab_histogram_intersection", { name = "fcn_score", segmenter = { name = "espnet", '
            f'weights = {json.dumps(str(weights))} }} }}]',
            f"eval.every={args.epochs}", f"eval.batch_size={args.eval_batch}"]
    if objective == "l1":
        sets.append("loss.gan.weight=0")
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench_labels2photo")
    parser.add_argument("--size", type=int, default=128, help="training and evaluation side, a power of two")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=15, help="the same budget for both objectives")
    parser.add_argument("--held-out", type=int, default=100)
    parser.add_argument("--eval-batch", type=int, default=1)
    args = parser.parse_args()
    weights = args.shared / "weights" / "espnet_p_2_q_8_cityscapes.pth"
    root = split_pairs(args.shared, args.out, args.held_out)
    host = load_host()
    rows = {}
    for objective in ("l1", "l1_cgan"):
        recipe = load_recipe(REPO / "recipes" / "cityscapes_labels2photo.toml", host,
                             overrides(args, root, weights, objective))
        trainer = Trainer(recipe, host, args.out / objective)
        start = time.perf_counter()
        result = trainer.fit()
        seconds = time.perf_counter() - start
        figures = json.loads(sorted((args.out / objective / "eval").glob("epoch_*.json"))[-1].read_text())["metrics"]
        rows[objective] = (figures, seconds, result.steps)
    keys = list(next(iter(rows.values()))[0])
    steps = next(iter(rows.values()))[2]
    print(f"\n{args.epochs} epochs ({steps} steps of batch {args.batch_size}) at {args.size} px (ngf {args.ngf}); "
          f"{args.held_out} held-out pairs")
    print("| figure | " + " | ".join(rows) + " |")
    print("|---|" + "---:|" * len(rows))
    for key in keys:
        print(f"| `{key}` | " + " | ".join(f"{rows[o][0][key]:.3f}" for o in rows) + " |")
    print("| training + evaluation, s | " + " | ".join(f"{rows[o][1]:.0f}" for o in rows) + " |")


if __name__ == "__main__":
    main()
