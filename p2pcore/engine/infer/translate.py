"""`p2p translate`: rebuild a direction's networks from a checkpoint alone and translate images, each at its own
size or at a test-time size (`p2pcore.engine.infer.sizing`), in fp32 or under bf16/fp16 autocast."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from p2pcore.atomicfile import write_atomically
from p2pcore.checkpoint.format import file_identity
from p2pcore.engine.build.device import autocast, resolve_device
from p2pcore.engine.build.trained import TrainedRun, open_trained
from p2pcore.engine.infer.batching import batch_mixing_layers, drew, rng_state
from p2pcore.engine.infer.fitting import Fitting, peak_activations
from p2pcore.engine.infer.protocols import Protocol, translate_image
from p2pcore.engine.infer.sizing import Sizing, label_keys, resize
from p2pcore.engine.infer.tiling import Tiling, translate_tiled
from p2pcore.errors import P2PError
from p2pcore.formats import Formats
from p2pcore.plugins import Host
from p2pcore.rundir import check_writable

PRECISIONS = ("fp32", "bf16", "fp16")


def check_precision(precision: str, device: torch.device, *, key: str = "--precision") -> str:
    """The arithmetic a translation may run in here: fp32 anywhere, bf16 on the CPU and on GPUs that have
    it, fp16 on CUDA only (CPU kernels for half floats are slow or missing)."""
    if precision not in PRECISIONS:
        raise P2PError(f"unknown precision {precision!r}", key=key, hint=f"use {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise P2PError(f"fp16 needs a CUDA device, and this translation runs on {device.type}", key=key,
                       hint="use bf16 on the CPU (or fp32), or fp16 with --device cuda")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise P2PError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16", key=key,
                       hint="use fp16 or fp32")
    return precision


class Translator:
    """The networks of one translation direction of a checkpoint (opened by
    `p2pcore.engine.build.trained`), ready to translate images.

    Weights are the checkpoint's moving average where it keeps one (`train.ema`), else the last step's.
    Images of one size share forward passes of up to `batch_size` unless that would change their outputs
    (see `p2pcore.engine.infer.batching`); then each image has a pass of its own, seeded alike. With `tile`,
    images larger than a tile are translated as overlapping blended tiles (`p2pcore.engine.infer.tiling`).
    `load_size` or `scale_width` resize each input to the model's size and the output back to the input's
    (`p2pcore.engine.infer.sizing`) unless `keep_model_size`; when neither is given, the checkpoint's recipe's
    `[translate]` sizes apply. `precision` bf16 or fp16 runs the networks under autocast."""

    def __init__(self, checkpoint: str | Path, host: Host, *, device: str = "auto", protocol: Protocol = "paper",
                 seed: int = 0, direction: str | None = None, style: str | None = None,
                 styles: str | None = None, batch_size: int = 8, tile: int | None = None,
                 overlap: int | None = None, load_size: int | None = None, scale_width: int | None = None,
                 keep_model_size: bool = False, precision: str = "fp32") -> None:
        if batch_size < 1:
            raise P2PError(f"--batch-size {batch_size} is not a positive number", key="--batch-size",
                           hint="e.g. --batch-size 8")
        Tiling.needs_tile(tile, overlap)  # refused before the checkpoint is opened
        if tile is not None and style == "random":
            raise P2PError("a random style is drawn per forward pass, so tiles would disagree", key="--tile",
                           hint="use --style cluster:K, the same in every tile, or translate untiled")
        target = resolve_device(device, key="--device")
        self.precision = check_precision(precision, target)
        self.run = run = open_trained(checkpoint, host, direction=direction, protocol=protocol, device=target)
        self.direction = run.direction
        self.task, self.adapter, self.nets = run.task, run.adapter, run.nets
        self.task.configure_translation(style, styles)
        self.averaged = run.averaged
        self.device = run.device
        self.protocol = protocol
        self.seed = seed
        self.multiple = run.size_multiple()
        self.tiling = Tiling.asked(tile, overlap, self.multiple)
        self.sizing = chosen_sizing(run, load_size=load_size, scale_width=scale_width,
                                keep_model_size=keep_model_size, multiple=self.multiple)
        self.batch_size = batch_size
        with run.in_protocol():
            self.mixing = batch_mixing_layers(self.nets.values())
        self.draws_random: bool | None = None  # learnt on the first forward pass
        self.input_key = run.spec.directions[self.direction].input
        self.output_key = run.spec.directions[self.direction].output
        self.in_channels = run.channels[self.input_key]
        self.out_channels = run.channels[self.output_key]
        self.formats = Formats.of(run.adapter, name=run.recipe.data.name, input_key=self.input_key,
                                  output_key=self.output_key)
        labels = label_keys(run.adapter)
        self.input_is_labels, self.output_is_labels = self.input_key in labels, self.output_key in labels
        self.metadata = run.checkpoint.metadata
        self._peaks: dict[int, int] = {}  # probe side -> peak activation bytes, measured once

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """N x C x H x W (sides multiples of `multiple`) to the translated batch."""
        return self.task.translate(self.direction, self.nets, image)

    @property
    def batched(self) -> bool:
        """Whether images may share a forward pass: no batch-statistics layer and no random draws."""
        return not self.mixing and self.draws_random is False

    def per_forward(self) -> int:
        """Images (or tiles of one image) per forward pass now: one until batching is known to be safe."""
        return self.batch_size if self.batched else 1

    def images_per_call(self) -> int:
        """How many same-size images `translate_many` should be given at once."""
        return 1 if self.tiling is not None or self.mixing or self.draws_random else self.batch_size

    def batching(self) -> str:
        """The batching rule in effect, in words, for the command's summary."""
        if self.mixing or self.draws_random:
            why = ", ".join(self.mixing or ["random draws"])
            return f"one image per forward pass ({why} under the {self.protocol} protocol)"
        unit = "tiles" if self.tiling is not None else "images"
        return f"up to {self.batch_size} {unit} per forward pass"

    def fitting(self) -> Fitting:
        """Whether an untiled pass of an image fits in memory (`p2pcore.engine.infer.fitting`), measured on
        first need by `probe`, whose peaks the translator keeps: one probe however many runs of files."""
        return Fitting(self.probe, self.multiple, self.device)

    def probe(self, side: int) -> int:
        """The peak activation bytes of a pass of a side x side probe: the networks in this protocol and
        precision, leaving the random generators as they were; measured once per side."""
        if side not in self._peaks:
            probe = torch.zeros(1, self.in_channels, side, side, device=self.device)
            devices = [self.device] if self.device.type == "cuda" else []
            with (torch.no_grad(), torch.random.fork_rng(devices=devices), self.run.in_protocol(),
                  autocast(self.device, self.precision)):
                self._peaks[side] = peak_activations(self.forward, self.nets.values(), probe)
        return self._peaks[side]

    def _pass(self, batch: torch.Tensor) -> torch.Tensor:
        """One forward pass of an N x C x H x W CPU batch at native size; the first learns whether it draws."""
        before = rng_state(self.device) if self.draws_random is None else None
        with autocast(self.device, self.precision):
            out = translate_image(self.forward, batch.to(self.device), self.multiple)
        if before is not None:
            self.draws_random = drew(before, self.device)
        return out.float().cpu()

    @torch.no_grad()
    def translate_many(self, images: Sequence[torch.Tensor], tiling: Tiling | None = None) -> list[torch.Tensor]:
        """Same-size C x H x W images in [-1, 1] to their translations (C' x H x W, CPU): at the model's
        size (the test-time size, else their own) and back to theirs unless the model's size is kept. Each
        image's output is what it would be alone: where batching could change it, each has its own pass.
        `tiling` (the one that fits, chosen per image size) stands in for --tile's where given."""
        tiling = tiling or self.tiling
        height, width = images[0].shape[-2:]
        size = self.sizing.model_size(height, width)
        if size == (height, width):
            return self._translate_many(images, tiling)
        outs = self._translate_many([resize(image, size, nearest=self.input_is_labels) for image in images], tiling)
        if self.sizing.keep_model_size:
            return outs
        return [resize(out, (height, width), nearest=self.output_is_labels) for out in outs]

    def _translate_many(self, images: Sequence[torch.Tensor], tiling: Tiling | None) -> list[torch.Tensor]:
        outs: list[torch.Tensor] = []
        with self.run.in_protocol():
            height, width = images[0].shape[-2:]
            if tiling is not None and not tiling.fits(height, width):
                for image in images:
                    torch.manual_seed(self.seed)
                    outs.append(translate_tiled(image, self._pass, tiling, self.per_forward))
                return outs
            while len(outs) < len(images):
                torch.manual_seed(self.seed)
                chunk = images[len(outs):len(outs) + self.per_forward()]
                outs.extend(self._pass(torch.stack(list(chunk))))
        return outs

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """C x H x W in [-1, 1] to the translated C' x H x W."""
        return self.translate_many([image])[0]

    def read(self, source: Path) -> torch.Tensor:
        """An input file as the direction's input image (C x H x W in [-1, 1])."""
        if not source.is_file():
            raise P2PError("not a regular image file (a folder, a pipe or a device)", file=str(source),
                           hint="give image files")
        return self.adapter.read_input(str(source), self.input_key)

    def write(self, out: torch.Tensor, target: Path, *, source: Path) -> None:
        """Write a translation atomically; a non-finite one is refused, naming its input."""
        if not torch.isfinite(out).all():
            raise P2PError("the translation is not finite (NaN or infinity)", file=str(source),
                           hint="the checkpoint's weights or this input hold non-finite values")
        write_atomically(target, lambda path: self.adapter.write_output(out, str(path), self.output_key),
                         what="the output")

    def translate_file(self, source: Path, target: Path) -> None:
        self.write(self(self.read(source)), target, source=source)


def chosen_sizing(run: TrainedRun, *, load_size: int | None = None, scale_width: int | None = None,
                  keep_model_size: bool = False, multiple: int = 1) -> Sizing:
    """The sizes asked for, else those of the checkpoint's recipe's `[translate]` table (errors name the
    recipe key then), else each image's own size."""
    if load_size is None and scale_width is None:
        recorded = run.recipe.translate
        if recorded.load_size is not None or recorded.scale_width is not None:
            try:
                return Sizing.checked(load_size=recorded.load_size, scale_width=recorded.scale_width,
                                      keep_model_size=keep_model_size, multiple=multiple,
                                      keys=("translate.load_size", "translate.scale_width"))
            except P2PError as error:
                raise error.with_location(file=str(run.checkpoint.path)) from None
    return Sizing.checked(load_size=load_size, scale_width=scale_width, keep_model_size=keep_model_size,
                          multiple=multiple)


def plan(source: Path, target: Path, formats: Formats, *, overwrite: bool = False) -> list[tuple[Path, Path]]:
    """(input, output) file pairs: a folder maps to a folder with the same file names, keeping the files
    the checkpoint's dataset adapter reads (`formats`, its word). Checked before any network runs: inputs
    are never overwritten (the same file under another name included), existing outputs only with
    `overwrite`, every output in a format the adapter writes and in a writable folder."""
    if source.is_dir():
        entries = sorted(source.iterdir())
        files = [p for p in entries if formats.reads(p)]
        if not files:
            others = [p.name for p in entries if not p.name.startswith(".")]
            found = f"; the folder holds {len(others)} other file(s), e.g. {others[0]}" if others else ""
            raise P2PError(f"no files in the input folder that {formats.adapter} reads", file=str(source),
                           hint=formats.reads_hint() + found)
        if target.exists() and not target.is_dir():
            raise P2PError("the output must be a folder when the input is a folder", file=str(target),
                           hint="give a folder path for OUTPUT (it is created if missing)")
        jobs = [(f, target / f.name) for f in files]
    elif source.exists():
        if not formats.reads(source):
            raise P2PError(f"{formats.adapter} does not read {source.suffix or 'files without an extension'} "
                           "files", file=str(source), hint=formats.reads_hint())
        jobs = [(source, target / source.name if target.is_dir() else target)]
    else:
        raise P2PError("input not found", file=str(source), hint="give an image file or a folder of images")
    existing = []
    for src, dst in jobs:
        if dst.resolve() == src.resolve() or (file_identity(dst) is not None and
                                              file_identity(dst) == file_identity(src)):
            raise P2PError("the output would overwrite its input", file=str(dst),
                           hint="write the translations to another file or folder")
        if not formats.writes(dst):
            raise P2PError(f"{formats.adapter} cannot write {dst.suffix or 'files without an extension'} files",
                           file=str(dst), hint=f"{formats.writes_hint()}: give the output one of these suffixes")
        if dst.is_dir():
            raise P2PError("the output is a folder", file=str(dst), hint="remove it or choose another output")
        if dst.exists():
            existing.append(dst)
    if existing and not overwrite:
        raise P2PError(f"{len(existing)} output file(s) exist already", file=str(existing[0]),
                       hint="add --overwrite to replace them, or choose another output")
    check_writable(jobs[0][1].parent, hint="choose an output in a writable folder")
    return jobs
