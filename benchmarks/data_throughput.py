"""Data-loading throughput: p2p's `aligned` adapter against a plain PIL + torchvision.transforms pipeline.

Both produce the pix2pix training item from one side-by-side A|B JPEG: split the halves, resize each
to 286 x 286 (bicubic), take the same random 256 x 256 crop and the same random mirror of both,
and scale to float tensors in [-1, 1]. The baseline is written the straightforward way (Pillow
decode and resize, ``transforms.ToTensor`` and ``Normalize`` per half); p2p decodes with
torchvision.io and runs one ``transforms.v2`` call over both halves on uint8 tensors.

Each configuration iterates a DataLoader (batch 1 by default, as in the paper) over the same files; the
two pipelines alternate within each round and the best round counts. Run:

    python benchmarks/data_throughput.py                      # Cityscapes val files when present
    python benchmarks/data_throughput.py --data DIR --items 300 --rounds 3 --json out.json

Without the Cityscapes folder (or with --generate), 512 x 256 JPEGs of smooth patterns are generated
in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

SHARED_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "cityscapes_pix2pix" / "val"
LOAD, CROP = 286, 256


class PilBaseline(Dataset):
    """The common way: Pillow opens and resizes, torchvision.transforms converts each half."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.to_tensor = transforms.Compose([transforms.ToTensor(),
                                             transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        ab = Image.open(self.files[index]).convert("RGB")
        w, h = ab.size
        a = ab.crop((0, 0, w // 2, h))
        b = ab.crop((w // 2, 0, w, h))
        x, y = random.randint(0, LOAD - CROP), random.randint(0, LOAD - CROP)
        flip = random.random() > 0.5

        def jitter(img: Image.Image) -> torch.Tensor:
            img = img.resize((LOAD, LOAD), Image.BICUBIC).crop((x, y, x + CROP, y + CROP))
            if flip:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            return self.to_tensor(img)

        return {"a": jitter(a), "b": jitter(b), "name": self.files[index].stem}


def p2p_dataset(root: Path, split: str) -> Dataset:
    from p2pcore.plugins import load_host

    adapter = load_host().build("dataset", {"name": "aligned", "root": str(root), "load_size": LOAD,
                                            "crop_size": CROP, "flip": True, "preprocess": "resize_and_crop"})
    return adapter.dataset(split, train=True)


def synthetic_files(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:512] / 256
    for i in range(count):
        base = np.stack([np.sin(x * rng.uniform(2, 12) + y * rng.uniform(1, 9) + c) for c in range(3)], -1)
        noise = rng.normal(0, 0.04, base.shape)
        Image.fromarray(((base + noise + 1) * 110).clip(0, 255).astype(np.uint8)).save(folder / f"{i}.jpg",
                                                                                        quality=90)
    return sorted(folder.glob("*.jpg"))


def rate(dataset: Dataset, workers: int, items: int, batch_size: int = 1) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    iterator = iter(loader)
    for _ in range(min(8, items // 10)):  # warm up: workers started, caches filled
        next(iterator)
    start = time.perf_counter()
    seen = 0
    for batch in iterator:
        seen += batch["a"].shape[0]
        if seen >= items:
            break
    elapsed = time.perf_counter() - start
    del iterator, loader
    return seen / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of A|B JPEGs (default: Cityscapes val)")
    parser.add_argument("--items", type=int, default=300, help="items timed per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best counts")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--batch-size", type=int, default=1, help="DataLoader batch size (the paper uses 1)")
    parser.add_argument("--generate", action="store_true", help="time generated JPEGs, not real files")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.data is not None and not args.data.is_dir():
        parser.error(f"no folder {args.data}")

    tmp = None
    folder = None if args.generate else args.data or (SHARED_VAL if SHARED_VAL.is_dir() else None)
    if folder is None:
        tmp = tempfile.TemporaryDirectory()
        folder = Path(tmp.name) / "test"
        folder.mkdir()
        synthetic_files(folder, args.items + 20)
        source = f"{args.items + 20} generated 512x256 JPEGs"
    else:
        source = str(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    split = folder.name
    candidates = {"p2p (torchvision.io + transforms.v2)": p2p_dataset(folder.parent, split),
                  "baseline (PIL + transforms)": PilBaseline(files)}
    n_items = min(args.items, len(files) - 10)

    print(f"data: {source}; {n_items} items per measurement in batches of {args.batch_size}, "
          f"best of {args.rounds} rounds")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads in the main process")
    results: dict[str, dict[int, list[float]]] = {name: {w: [] for w in args.workers} for name in candidates}
    for _ in range(args.rounds):
        for workers in args.workers:
            for name, dataset in candidates.items():
                torch.manual_seed(0)
                random.seed(0)
                results[name][workers].append(rate(dataset, workers, n_items, args.batch_size))
    rows = []
    names = list(candidates)
    for workers in args.workers:
        best = {name: max(results[name][workers]) for name in names}
        median = {name: statistics.median(results[name][workers]) for name in names}
        ratio = best[names[0]] / best[names[1]]
        rows.append({"workers": workers, **{f"{n} best": round(best[n], 1) for n in names},
                     **{f"{n} median": round(median[n], 1) for n in names}, "ratio (best)": round(ratio, 2)})
        print(f"workers={workers}: " + ", ".join(f"{n} {best[n]:.1f} items/s (median {median[n]:.1f})"
                                                  for n in names) + f"; ratio {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"source": source, "items": n_items, "rounds": args.rounds,
                                         "batch_size": args.batch_size,
                                         "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows},
                                        indent=2) + "\n")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
