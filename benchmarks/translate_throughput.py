"""`p2p translate` throughput on a folder of small images, and peak memory of tiled vs untiled translation.

Throughput: a tiny checkpoint (U-Net depth 6, ngf 8, batch norm; trained for one short epoch) translates
a folder of generated 64 x 64 PNGs under the eval protocol, where images may share a forward pass.
In one process, alternating within each round (best round counts, medians beside it):

* batched: the pipeline (background reading and writing) with --batch-size N;
* one per pass: the same pipeline with --batch-size 1;
* sequential: read, translate, write one file after another (`Translator.translate_file`), no threads.

and, timed once on a few files, one `p2p translate` process per image (start-up included).

Memory: in a fresh process per configuration, the rise of peak resident memory while translating one
random W x H image (after the model and the image are loaded; Linux's peak-RSS reset), untiled and
with --tile.

    python benchmarks/translate_throughput.py
    python benchmarks/translate_throughput.py --images 500 --batch-size 16 --rounds 3 --large 4000x3000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def tiny_checkpoint(folder: Path) -> Path:
    from p2pcore import load_host
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    host = load_host()
    recipe = {"data": {"name": "synthetic_thermal", "size": 64, "train_count": 8, "test_count": 1},
              "model": {"generator": {"name": "unet", "depth": 6, "ngf": 8}},
              "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}
    Trainer(validate_recipe(recipe, host), host, folder / "run").fit()
    return folder / "run" / "checkpoints" / "latest.safetensors"


def make_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(folder / f"{i:05d}.png")


def throughput(checkpoint: Path, inputs: Path, out: Path, images: int, batch: int, rounds: int) -> dict:
    from p2pcore import load_host
    from p2pcore.engine.infer.pipeline import translate_files
    from p2pcore.engine.infer.translate import Translator, plan

    host = load_host()
    batched = Translator(checkpoint, host, device="cpu", protocol="eval", batch_size=batch)
    single = Translator(checkpoint, host, device="cpu", protocol="eval", batch_size=1)
    rates: dict[str, list[float]] = {"batched": [], "one per pass": [], "sequential": []}
    for r in range(rounds):
        for name in rates:
            jobs = plan(inputs, out / f"{name.replace(' ', '_')}_{r}", batched.formats)
            start = time.perf_counter()
            if name == "sequential":
                for source, target in jobs:
                    single.translate_file(source, target)
            else:
                outcome = translate_files(batched if name == "batched" else single, jobs)
                assert outcome.written == images and not outcome.failed
            rates[name].append(images / (time.perf_counter() - start))
    per_process = []
    for i, (source, _) in enumerate(plan(inputs, out / "processes", single.formats)[:3]):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "p2pcore", "translate", str(checkpoint), str(source),
                        str(out / f"process_{i}.png"), "--eval", "--device", "cpu"], check=True, capture_output=True)
        per_process.append(time.perf_counter() - start)
    result = {name: {"best": max(v), "median": statistics.median(v)} for name, v in rates.items()}
    result["process per image"] = {"best": 1 / min(per_process), "median": 1 / statistics.median(per_process)}
    return result


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> int | None:
    """Reset the peak resident size to the current one (Linux) and return it; None where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return status_kib("VmRSS")
    except OSError:
        return None


def peak_child(checkpoint: str, size: str, tile: int | None, overlap: int | None) -> dict:
    """Run in a fresh process: the rise of peak RSS while translating one image."""
    from p2pcore import load_host
    from p2pcore.engine.infer.translate import Translator

    width, height = (int(v) for v in size.split("x"))
    translator = Translator(checkpoint, load_host(), device="cpu", protocol="eval", batch_size=4, tile=tile,
                            overlap=overlap)
    image = torch.rand(translator.in_channels, height, width) * 2 - 1
    translator(torch.rand(translator.in_channels, 64, 64))  # warm: allocator and kernels
    before = reset_peak()
    start = time.perf_counter()
    out = translator(image)
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM") if before is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.shape[-2:] == (height, width)
    return {"peak_rise_mib": (peak - (before or 0)) / 1024, "seconds": seconds,
            "image_mib": image.numel() * 4 / 2**20, "output_mib": out.numel() * 4 / 2**20}


def memory(checkpoint: Path, size: str, tile: int, overlap: int) -> dict:
    result = {}
    for name, args in (("untiled", []), (f"tile {tile} overlap {overlap}", ["--tile", str(tile), "--overlap",
                                                                            str(overlap)])):
        done = subprocess.run([sys.executable, __file__, "--child", str(checkpoint), "--large", size, *args],
                              check=True, capture_output=True, text=True)
        result[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--large", default="4000x3000", help="W x H of the image for the memory figures")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tiled = "--tile" in sys.argv
        print(json.dumps(peak_child(args.child, args.large, args.tile if tiled else None,
                                    args.overlap if tiled else None)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        checkpoint = tiny_checkpoint(folder)
        make_images(folder / "in", args.images)
        report = {"machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
                  "images": args.images, "batch_size": args.batch_size,
                  "files_per_second": throughput(checkpoint, folder / "in", folder / "out", args.images,
                                                 args.batch_size, args.rounds),
                  "memory": {args.large: memory(checkpoint, args.large, args.tile, args.overlap)}}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
