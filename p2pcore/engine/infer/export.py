"""Exporting a checkpoint's generator for deployment: ONNX or TorchScript, dynamic height and width.

One translation direction (the task's first unless asked), opened as `p2p translate` opens it
(`p2pcore.engine.build.trained`): the checkpoint's weight average where it keeps one. The exported network
is in inference mode (dropout off, batch-norm running statistics), the `--eval` protocol of `p2p translate`.
Inputs must have sides that are multiples of the network's `size_multiple`, which is recorded in the file's
metadata.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from p2pcore.engine.build.trained import TrainedRun, open_trained
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.rundir import check_writable

Format = Literal["onnx", "torchscript"]


class _Translation(nn.Module):
    """The task's translation of one direction as one module (a task may chain several networks)."""

    def __init__(self, run: TrainedRun) -> None:
        super().__init__()
        self.nets = nn.ModuleDict(run.nets)
        self.task = run.task
        self.direction = run.direction

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.task.translate(self.direction, dict(self.nets.items()), image)


def export(checkpoint: str | Path, output: str | Path, host: Host, fmt: Format,
           direction: str | None = None) -> dict[str, Any]:
    output = Path(output)
    if output.is_dir():
        raise P2PError("the output is a folder", file=str(output), hint="give a file path, e.g. generator.onnx")
    check_writable(output.parent, hint="choose an output in a writable folder")
    run = open_trained(checkpoint, host, direction=direction, protocol="eval", device="cpu")
    model = _Translation(run).eval()  # the eval protocol, kept by the exported module
    multiple = run.size_multiple()
    declared = run.spec.directions[run.direction]
    in_channels, out_channels = run.channels[declared.input], run.channels[declared.output]
    side = multiple * max(1, 64 // multiple)
    example = torch.zeros(1, in_channels, side, side)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if fmt == "onnx":
                axes = {0: "batch", 2: "height", 3: "width"}
                torch.onnx.export(model, (example,), str(output), input_names=["a"], output_names=["b"],
                                  dynamic_axes={"a": axes, "b": axes}, opset_version=17, dynamo=False)
            else:
                traced = torch.jit.trace(model, example)
                torch.jit.save(traced, str(output), _extra_files={"size_multiple": str(multiple)})
        except OSError as exc:
            raise P2PError(f"cannot write the export: {exc.strerror}", file=str(output)) from None
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:  # type: ignore[attr-defined]
            raise P2PError(f"export to {fmt} failed: {exc}", file=str(checkpoint),
                           hint="try the other --format") from None
    return {"direction": run.direction, "in_channels": in_channels, "out_channels": out_channels,
            "size_multiple": multiple}
