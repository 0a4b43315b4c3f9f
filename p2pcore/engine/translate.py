"""`p2p translate`: rebuild a generator from a checkpoint alone and translate images at native size."""

from __future__ import annotations

from pathlib import Path

import torch

from p2pcore.api import ComponentRef, TaskContext
from p2pcore.engine.checkpoint import load_network, read_checkpoint
from p2pcore.engine.device import resolve_device
from p2pcore.engine.inference import Protocol, protocol_mode, translate_image
from p2pcore.errors import P2PError
from p2pcore.imageio import IMAGE_SUFFIXES, WRITE_SUFFIXES
from p2pcore.plugins import Host


class Translator:
    """The generator of a checkpoint, ready to translate images one by one."""

    def __init__(self, checkpoint: str | Path, host: Host, *, device: str = "auto",
                 protocol: Protocol = "paper", seed: int = 0) -> None:
        ckpt = read_checkpoint(checkpoint)
        recipe = ckpt.recipe
        file = str(ckpt.path)
        if "task" not in recipe or "model" not in recipe or "data" not in recipe:
            raise P2PError("the checkpoint records no recipe to rebuild its networks from", file=file,
                           hint="use a checkpoint written by `p2p run` or `p2p import`")
        try:
            self.task = host.build("task", recipe["task"], key="task")
            self.adapter = host.build("dataset", recipe["data"], key="data")
            model = {role: ComponentRef.coerce(role.split("_")[0], spec)
                     for role, spec in recipe["model"].items() if role.startswith("generator")}
            ctx = TaskContext(host=host, a_channels=self.adapter.a_channels,
                              b_channels=self.adapter.b_channels, needs_discriminator=False)
            self.nets = self.task.build_networks(model, ctx)
        except P2PError as exc:
            raise exc.with_location(file=file) from None
        for role, net in self.nets.items():
            load_network(net, ckpt.prefixed(f"net.{role}"), role=role, file=file)
        self.device = resolve_device(device, key="--device")
        for net in self.nets.values():
            net.to(self.device)
        self.protocol = protocol
        self.seed = seed
        self.multiple = max(int(getattr(net, "size_multiple", 1)) for net in self.nets.values())
        self.metadata = ckpt.metadata

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """C x H x W in [-1, 1] to the translated C' x H x W."""
        torch.manual_seed(self.seed)
        batch = image.unsqueeze(0).to(self.device)
        generator = next(iter(self.nets.values()))
        with protocol_mode(generator, self.protocol):
            out = translate_image(lambda x: self.task.translate(self.nets, x), batch, self.multiple)
        return out[0].float().cpu()

    def translate_file(self, source: Path, target: Path) -> None:
        image = self.adapter.read_input(str(source))
        self.adapter.write_output(self(image), str(target))


def plan(source: Path, target: Path) -> list[tuple[Path, Path]]:
    """(input, output) file pairs: a folder maps to a folder with the same file names. Checked before
    any network runs: inputs are never overwritten and every output has a format to be written in."""
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
    for src, dst in jobs:
        if dst.resolve() == src.resolve():
            raise P2PError("the output would overwrite its input", file=str(dst),
                           hint="write the translations to another file or folder")
        if dst.suffix.lower() not in WRITE_SUFFIXES:
            raise P2PError(f"cannot write images as {dst.suffix or 'files without an extension'}", file=str(dst),
                           hint=f"use one of: {', '.join(WRITE_SUFFIXES)}")
    return jobs
