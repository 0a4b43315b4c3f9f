"""One training iteration of the reference pix2pix/CycleGAN implementation against p2p's `Trainer.train_step`.

The reference's source folder (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix, never a dependency of p2p)
is put on sys.path; its model class is built from an option namespace holding the reference's documented
defaults, to which the model's own `modify_commandline_options` applies its defaults (U-Net 256 + 70x70
PatchGAN with batch norm for pix2pix; ResNet 9 blocks + PatchGAN with instance norm, a pool of 50 for
CycleGAN). p2p runs the equivalent paper recipe on generated images of the same size. Both sides train on
the same batch already on the device; one round times `--steps` iterations of each, the order alternating
between rounds, in one process, so both see the machine alike. Parameter counts are checked equal first.

    python benchmarks/reference_step.py /path/to/pytorch-CycleGAN-and-pix2pix --model pix2pix --rounds 5
    python benchmarks/reference_step.py /path/to/pytorch-CycleGAN-and-pix2pix --model cycle_gan --rounds 3
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.io import write_png

from p2pcore import load_host
from p2pcore.engine.bench.benchmark import without_eval
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe

RECIPES = {"pix2pix": "recipes/cityscapes_labels2photo.toml", "cycle_gan": "recipes/horse2zebra.toml"}
REFERENCE_DEFAULTS = {  # the reference's base and train option defaults the two models read
    "input_nc": 3, "output_nc": 3, "ngf": 64, "ndf": 64, "netD": "basic", "netG": "resnet_9blocks", "n_layers_D": 3,
    "norm": "instance", "init_type": "normal", "init_gain": 0.02, "no_dropout": False, "direction": "AtoB",
    "preprocess": "resize_and_crop", "pool_size": 50, "gan_mode": "lsgan", "lr": 0.0002, "beta1": 0.5,
    "name": "experiment_name", "dataset_mode": "unaligned",
}


def reference_options(model_class: type, checkpoints: str, device: torch.device) -> argparse.Namespace:
    """The reference's defaults with the model's own option setter applied, for training on `device`."""
    parser = argparse.ArgumentParser()
    for key, value in REFERENCE_DEFAULTS.items():
        parser.add_argument(f"--{key}", type=type(value), default=value)
    parser = model_class.modify_commandline_options(parser, is_train=True)
    opt = parser.parse_args([])
    opt.isTrain, opt.checkpoints_dir = True, checkpoints
    opt.gpu_ids = [device.index or 0] if device.type == "cuda" else []
    return opt


def build_reference(source: Path, model: str, checkpoints: str, device: torch.device) -> Any:
    sys.path.insert(0, str(source))
    module = importlib.import_module(f"models.{model}_model")
    model_class = getattr(module, {"pix2pix": "Pix2PixModel", "cycle_gan": "CycleGANModel"}[model])
    return model_class(reference_options(model_class, checkpoints, device))


def write_images(root: Path, model: str, size: int, count: int) -> None:
    """Generated training files in the layout the recipe's adapter reads (aligned A|B, or trainA/trainB)."""
    generator = torch.Generator().manual_seed(0)
    folders = {"train": 2} if model == "pix2pix" else {"trainA": 1, "trainB": 1}
    for folder, width in folders.items():
        (root / folder).mkdir(parents=True)
        for i in range(count):
            image = torch.randint(0, 256, (3, size, size * width), dtype=torch.uint8, generator=generator)
            write_png(image, str(root / folder / f"{i}.png"))


def build_p2p(model: str, root: Path, size: int, batch: int, out: Path, extra: list[str]
              ) -> tuple[Trainer, dict[str, Any]]:
    host = load_host()
    overrides = [f"data.root={root}", f"data.load_size={size}", f"data.crop_size={size}", "data.flip=false",
                 f"train.batch_size={batch}", "train.num_workers=0", "train.device=cpu", *extra]
    trainer = Trainer(without_eval(load_recipe(RECIPES[model], host, overrides)), host, out)
    items = [trainer.train_set[i] for i in range(batch)]
    return trainer, trainer._to_device(torch.utils.data.default_collate(items))


def parameter_counts(nets: dict[str, torch.nn.Module]) -> list[int]:
    return sorted(sum(p.numel() for p in net.parameters()) for net in nets.values())


def timed(step: Callable[[], None], steps: int, device: torch.device) -> tuple[float, float]:
    """Wall and process CPU seconds per step over `steps` iterations, the device drained before and after.
    CPU seconds are what a step costs this process; on a machine shared with other work they are inflated
    far less than wall time, which also counts the time the step's threads wait for a core."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps, (time.process_time() - cpu) / steps


def alternate(sides: dict[str, Callable[[], None]], *, rounds: int, steps: int, warmup: int,
              device: torch.device) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds per step of each side in each round, after `warmup` untimed steps each; the order
    of the sides reverses from one round to the next, so both see the machine alike."""
    for step in sides.values():
        timed(step, warmup, device)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_ in range(rounds):
        for name in (list(sides) if round_ % 2 == 0 else list(sides)[::-1]):
            times[name].append(timed(sides[name], steps, device))
    return times


def convolution_share(step: Callable[[], None]) -> tuple[float, float]:
    """Milliseconds of one step spent in convolution kernels (forward and backward) and in everything else,
    from the profiler's self times."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1000
    convolution = sum(e.self_cpu_time_total for e in events if "conv" in e.key) / 1000
    return convolution, total - convolution


def report_profiles(profiles: dict[str, tuple[float, float]], times: dict[str, list[tuple[float, float]]]) -> None:
    """Each side's convolution time and the ratio p2p could reach were everything else free."""
    for name, (convolution, rest) in profiles.items():
        print(f"  profile {name:9s} convolutions {convolution:8.1f} ms   everything else {rest:7.1f} ms")
    reference_step = statistics.median(t[0] for t in times["reference"]) * 1000
    print(f"  reference / p2p were p2p's step its convolutions alone: {reference_step / profiles['p2p'][0]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference_src", type=Path, help="the reference implementation's source folder")
    parser.add_argument("--model", choices=sorted(RECIPES), default="pix2pix")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="iterations of each side per round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--profile", action="store_true",
                        help="after timing, profile one step of each side: convolution time against the rest")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a recipe override for p2p's side, e.g. train.compile=true (repeatable)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp) / "data", args.model, args.size, args.batch)
        trainer, batch = build_p2p(args.model, Path(tmp) / "data", args.size, args.batch, Path(tmp) / "run",
                                   args.set)
        reference = build_reference(args.reference_src, args.model, tmp, device)
        ref_nets = {name: getattr(reference, f"net{name}") for name in reference.model_names}
        ours, theirs = parameter_counts(trainer.nets), parameter_counts(ref_nets)
        if ours != theirs:
            raise SystemExit(f"not the same networks: p2p parameters {ours}, reference {theirs}")
        reference.set_input({"A": batch["a"], "B": batch["b"], "A_paths": [], "B_paths": []})
        sides: dict[str, Callable[[], None]] = {"reference": reference.optimize_parameters,
                                                "p2p": lambda: trainer.train_step(batch)}
        times = alternate(sides, rounds=args.rounds, steps=args.steps, warmup=args.warmup, device=device)
        profiles = {name: convolution_share(step) for name, step in sides.items()} if args.profile else {}
    report(args, ours, times, device)
    if profiles:
        report_profiles(profiles, times)


def report(args: argparse.Namespace, counts: list[int], times: dict[str, list[tuple[float, float]]],
           device: torch.device) -> None:
    """Best and median ms per step of each side, wall and CPU, and the ratios (above 1: p2p faster)."""
    print(f"{args.model}: networks {', '.join(f'{n:,}' for n in counts)} parameters on both sides; batch "
          f"{args.batch}, {args.size} px, {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.rounds} rounds of {args.steps} steps each; p2p overrides: {' '.join(args.set) or 'none'}")
    for column, label in ((0, "wall"), (1, "CPU")):
        figures = {name: [t[column] * 1000 for t in values] for name, values in times.items()}
        for name, values in figures.items():
            print(f"  {label:4s} {name:9s} best {min(values):8.1f} ms/step   median {statistics.median(values):8.1f}")
        best = min(figures["reference"]) / min(figures["p2p"])
        median = statistics.median(figures["reference"]) / statistics.median(figures["p2p"])
        print(f"  {label:4s} reference / p2p: best {best:.2f}x, median {median:.2f}x (above 1: p2p faster)")


if __name__ == "__main__":
    main()
