"""`p2p translate CHECKPOINT INPUT OUTPUT`: a checkpoint's networks over image files, each at its own size or at
a test-time size and back. Torch is imported inside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import (
    TILE_HELP,
    KeepModelSizeOption,
    LoadSizeOption,
    OverlapOption,
    ProtocolOption,
    ScaleWidthOption,
    console,
    plain,
    protocol_of,
    render_error,
)
from p2pcore.errors import P2PError


def register(app: typer.Typer) -> None:
    app.command("translate")(translate)


def translate(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
              input: Annotated[Path, typer.Argument(help="an image file or a folder of images")],
              output: Annotated[Path, typer.Argument(help="output file, or folder (same file names)")],
              protocol: ProtocolOption = "paper",
              device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
              seed: Annotated[int, typer.Option(help="seed for dropout under the paper protocol")] = 0,
              direction: Annotated[str | None, typer.Option(help="a direction the task offers: a2b (default), "
                                                            "b2a for CycleGAN")] = None,
              style: Annotated[str | None, typer.Option(help="for tasks with styles (pix2pixhd): random or "
                                                        "cluster:K")] = None,
              styles: Annotated[Path | None, typer.Option(help="the styles file (`p2p cluster` writes one)")] = None,
              overwrite: Annotated[bool, typer.Option(help="replace output files that exist")] = False,
              fail_fast: Annotated[bool, typer.Option(help="stop at the first image that fails")] = False,
              batch_size: Annotated[int, typer.Option(min=1, help="images of one size (or tiles of one image) per "
                                                      "forward pass, where sharing a pass cannot change an "
                                                      "output: never with batch-statistics norm layers (batch "
                                                      "norm under the paper protocol) or random draws (dropout "
                                                      "under the paper protocol, a random style); there each "
                                                      "image has its own pass, seeded alike, so outputs are the "
                                                      "same for any batch size")] = 8,
              tile: Annotated[int | None, typer.Option(help=f"{TILE_HELP}. Without it, an image whose untiled pass "
                                                 "would not fit in memory is tiled all the same, with a note",
                                                 metavar="SIZE")] = None,
              overlap: OverlapOption = None,
              workers: Annotated[int | None, typer.Option(min=1, help="threads reading and writing files "
                                                          "while the networks run (default: up to 4)")] = None,
              load_size: LoadSizeOption = None,
              scale_width: ScaleWidthOption = None,
              keep_model_size: KeepModelSizeOption = False,
              precision: Annotated[str, typer.Option(help="fp32; bf16 (CPU and CUDA) or fp16 (CUDA only): the "
                                                     "networks run under autocast, outputs are written as usual")
                                   ] = "fp32",
              eval_: Annotated[bool, typer.Option("--eval", hidden=True)] = False,
              ) -> None:
    """Translate images with a checkpoint's networks.

    Each image at its own size, or at a test-time size (--load-size, --scale-width, else the recipe's
    [translate]) with outputs resized back to each input's size (bicubic for images, nearest for label maps)
    unless --keep-model-size. An image too large for an untiled pass in the memory available is translated in
    tiles, with a note (--tile chooses the tiles).

    Example:
    p2p translate runs/quickstart/checkpoints/latest.safetensors in.png out.png
    p2p translate runs/quickstart/checkpoints/latest.safetensors photos/ translated/ --protocol eval
    """
    from p2pcore.engine.infer.pipeline import translate_files
    from p2pcore.engine.infer.translate import Translator, plan
    from p2pcore.progress import file_progress

    translator = Translator(checkpoint, common.host(), device=device, protocol=protocol_of(protocol, eval_, "--eval"),
                            seed=seed, direction=direction, style=style, styles=str(styles) if styles else None,
                            batch_size=batch_size, tile=tile, overlap=overlap, load_size=load_size,
                            scale_width=scale_width, keep_model_size=keep_model_size, precision=precision)
    jobs = list(plan(input, output, translator.formats, overwrite=overwrite))  # the adapter says what it reads
    with file_progress(console, len(jobs), disable=len(jobs) < 2) as advance:
        outcome = translate_files(translator, jobs, fail_fast=fail_fast, workers=workers, on_progress=advance,
                                  on_error=render_error, on_note=lambda note: console.print(f"note: {plain(note)}"))
    failed, done = outcome.failed, outcome.written
    console.print(f"[green]translated[/green] {done} image(s) in {outcome.seconds:.1f} s ({outcome.rate:.1f} "
                  f"files/s) -> {plain(output)} ({translator.direction}, {translator.protocol} protocol"
                  f"{', weight average' if translator.averaged else ''}, {translator.device}, "
                  f"{translator.precision}, {translator.batching()}; {translator.sizing.describe()})")
    if failed:
        raise P2PError(f"{len(failed)} of {len(jobs)} image(s) failed; the other {done} were written",
                       details=[f"{e.file}: {e.message}" for e in failed], hint="fix or remove the files listed")
