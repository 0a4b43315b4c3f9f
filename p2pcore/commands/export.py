"""`p2p export CHECKPOINT OUTPUT`: one translation direction as ONNX or TorchScript. Torch is imported inside."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import console
from p2pcore.errors import P2PError

FORMATS = ("onnx", "torchscript")
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
                  ".torchscript": "torchscript"}
"""The format an output's suffix implies when --format is not given; any other suffix gets ONNX."""
PROTOCOLS = ("eval", "paper")


def register(app: typer.Typer) -> None:
    app.command("export")(export)


def export(checkpoint: Annotated[Path, typer.Argument(help="a p2p checkpoint (.safetensors)")],
           output: Annotated[Path, typer.Argument(help="file to write (.onnx or .pt)")],
           format_: Annotated[str | None, typer.Option("--format", help="onnx or torchscript (default: from the "
                                                       "output's suffix, .pt/.pth/.ts for torchscript, else onnx; "
                                                       "onnx needs `pip install onnx onnxscript`)")] = None,
           direction: Annotated[str | None, typer.Option(help="a direction the task offers (default: its "
                                                         "first, a2b)")] = None,
           protocol: Annotated[str, typer.Option(help="eval: dropout off and batch-norm running statistics; "
                                                 "paper: dropout drawing and each batch's statistics, as `p2p "
                                                 "translate` runs by default (ONNX runtimes may optimise dropout "
                                                 "away: the summary says how to keep it)")] = "eval") -> None:
    """Export a translation direction for inference (by default dropout off, running statistics), dynamic H and
    W.

    Example:
    p2p export runs/quickstart/checkpoints/latest.safetensors g.onnx
    p2p export runs/quickstart/checkpoints/latest.safetensors g.pt
    """
    if format_ is None:
        format_ = SUFFIX_FORMATS.get(output.suffix.lower(), "onnx")
    if format_ not in FORMATS:
        raise P2PError(f"unknown export format {format_!r}", key="--format", hint=f"use {' or '.join(FORMATS)}")
    if protocol not in PROTOCOLS:
        raise P2PError(f"unknown protocol {protocol!r}", key="--protocol", hint=f"use {' or '.join(PROTOCOLS)}")
    from p2pcore.engine.infer.export import ONNX_PAPER_NOTE
    from p2pcore.engine.infer.export import export as run_export

    info = run_export(checkpoint, output, common.host(), format_, direction, protocol)  # type: ignore[arg-type]
    console.print(f"[green]exported[/green] {output} ({format_}, {info['direction']}, {protocol} protocol; "
                  f"input N x {info['in_channels']} x H x W, H and W multiples of {info['size_multiple']})")
    if protocol == "paper" and format_ == "onnx":
        console.print(f"[yellow]note[/yellow]: {ONNX_PAPER_NOTE}")
