"""`p2p translate`: rebuild a direction's networks from a checkpoint alone and translate images at native size."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from p2pcore.checkpoint_format import file_identity
from p2pcore.engine.assemble import assemble_trained, check_direction, image_channels
from p2pcore.engine.checkpoint import read_checkpoint
from p2pcore.engine.device import resolve_device
from p2pcore.engine.evaluation import protocol
from p2pcore.engine.inference import Protocol, translate_image
from p2pcore.errors import P2PError
from p2pcore.imageio import IMAGE_SUFFIXES, WRITE_SUFFIXES
from p2pcore.plugins import Host
from p2pcore.rundir import check_writable


class Translator:
    """The networks of one translation direction of a checkpoint, ready to translate images one by one.

    Weights are the checkpoint's moving average where it keeps one (`train.ema`), else the last step's."""

    def __init__(self, checkpoint: str | Path, host: Host, *, device: str = "auto", protocol: Protocol = "paper",
                 seed: int = 0, direction: str | None = None, style: str | None = None,
                 styles: str | None = None) -> None:
        ckpt = read_checkpoint(checkpoint)
        host.check_installed(ckpt.header.meta.components, file=str(ckpt.path),
                             kinds=("task", "dataset", "generator", "discriminator", "norm"))
        run = assemble_trained(ckpt, host, direction=direction)
        spec = run.spec
        self.direction = check_direction(spec, direction, run.recipe.task.name)
        self.task, self.adapter, self.nets = run.task, run.adapter, run.nets
        self.task.configure_translation(style, styles)
        self.averaged = any(name.startswith("ema.") for name in ckpt.tensors)
        self.device = resolve_device(device, key="--device")
        for net in self.nets.values():
            net.to(self.device)
        self.protocol = protocol
        self.seed = seed
        self.multiple = run.size_multiple()
        self.input_key = spec.directions[self.direction].input
        self.output_key = spec.directions[self.direction].output
        self.in_channels = image_channels(run.adapter)[self.input_key]
        self.out_channels = image_channels(run.adapter)[self.output_key]
        self.metadata = ckpt.metadata

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """N x C x H x W (sides multiples of `multiple`) to the translated batch."""
        return self.task.translate(self.direction, self.nets, image)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """C x H x W in [-1, 1] to the translated C' x H x W."""
        torch.manual_seed(self.seed)
        batch = image.unsqueeze(0).to(self.device)
        with protocol(self.nets, self.protocol):
            out = translate_image(self.forward, batch, self.multiple)
        return out[0].float().cpu()

    def translate_file(self, source: Path, target: Path) -> None:
        if not source.is_file():
            raise P2PError("not a regular image file (a folder, a pipe or a device)", file=str(source),
                           hint="give image files")
        image = self.adapter.read_input(str(source), self.input_key)
        out = self(image)
        if not torch.isfinite(out).all():
            raise P2PError("the translation is not finite (NaN or infinity)", file=str(source),
                           hint="the checkpoint's weights or this input hold non-finite values")
        write_atomically(lambda path: self.adapter.write_output(out, str(path), self.output_key), target)


def plan(source: Path, target: Path, *, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) file pairs: a folder maps to a folder with the same file names. Checked before
    any network runs: inputs are never overwritten (the same file under another name included),
    existing outputs only with `overwrite`, every output has a format and a writable folder."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise P2PError("no images in the input folder", file=str(source),
                           hint=f"supported: {', '.join(sorted(IMAGE_SUFFIXES))}")
        if target.exists() and not target.is_dir():
            raise P2PError("the output must be a folder when the input is a folder", file=str(target),
                           hint="give a folder path for OUTPUT (it is created if missing)")
        jobs = [(f, target / f.name) for f in files]
    elif source.exists():
        jobs = [(source, target / source.name if target.is_dir() else target)]
    else:
        raise P2PError("input not found", file=str(source), hint="give an image file or a folder of images")
    existing = []
    for src, dst in jobs:
        if dst.resolve() == src.resolve() or (file_identity(dst) is not None and
                                              file_identity(dst) == file_identity(src)):
            raise P2PError("the output would overwrite its input", file=str(dst),
                           hint="write the translations to another file or folder")
        if dst.suffix.lower() not in WRITE_SUFFIXES:
            raise P2PError(f"cannot write images as {dst.suffix or 'files without an extension'}", file=str(dst),
                           hint=f"use one of: {', '.join(WRITE_SUFFIXES)}")
        if dst.is_dir():
            raise P2PError("the output is a folder", file=str(dst), hint="remove it or choose another output")
        if dst.exists():
            existing.append(dst)
    if existing and not overwrite:
        raise P2PError(f"{len(existing)} output file(s) exist already", file=str(existing[0]),
                       hint="add --overwrite to replace them, or choose another output")
    check_writable(jobs[0][1].parent, hint="choose an output in a writable folder")
    return jobs


def write_atomically(write: Callable[[Path], None], target: Path) -> None:
    """Write through a temporary file in the target's folder (same suffix, so the format is the same)
    and rename it over the target: an interrupted or failed write never leaves half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise P2PError(f"cannot write the output: {exc.strerror}", file=str(target),
                       hint="check the free space and permissions of the output folder") from None
    finally:
        tmp.unlink(missing_ok=True)
