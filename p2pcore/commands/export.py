"""`p2p export CHECKPOINT OUTPUT`: one translation direction as ONNX or TorchScript. Torch is imported inside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import console
from p2pcore.errors import P2PError

FORMATS = ("onnx", "torchscript")


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
           output: Annotated[Path, typer.Argument(help="file to write (.onnx or .pt)")],
           format_: Annotated[str, typer.Option("--format", help="onnx or torchscript")] = "onnx",
           direction: Annotated[str | None, typer.Option(help="a direction the task offers (default: its "
                                                         "first, a2b)")] = None) -> None:
    """Export a translation direction for inference (dropout off, running statistics), dynamic H and W."""
    if format_ not in FORMATS:
        raise P2PError(f"unknown export format {format_!r}", key="--format", hint=f"use {' or '.join(FORMATS)}")
    from p2pcore.engine.infer.export import export as run_export

    info = run_export(checkpoint, output, common.host(), format_, direction)  # type: ignore[arg-type]
    console.print(f"[green]exported[/green] {output} ({format_}, {info['direction']}; input N x "
                  f"{info['in_channels']} x H x W, "
                  f"H and W multiples of {info['size_multiple']})")
