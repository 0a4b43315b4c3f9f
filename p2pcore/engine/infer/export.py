"""Exporting a checkpoint's generator for deployment: ONNX or TorchScript, dynamic height and width.

One translation direction (the task's first unless asked), opened as `p2p translate` opens it
(`p2pcore.engine.build.trained`): the checkpoint's weight average where it keeps one. The file holds the
direction's roles and only those of the task's own networks that translation needs (``OwnNetwork.translation``),
never the networks that only training uses (CUT's projection heads) or the discriminators. The exported network
runs in the ``eval`` protocol by default (dropout off, batch-norm running statistics), the `--eval` protocol
of `p2p translate`; the ``paper`` protocol keeps dropout drawing and batch norm using each batch's statistics
(running statistics never updated), as the file's graph records: TorchScript runs it as it is; ONNX
expresses it (Dropout and BatchNormalization in training mode), but runtimes may optimise dropout away
(ONNX Runtime does unless its graph optimisations are off). Inputs must have sides that are multiples of the
network's `size_multiple`; it and the protocol are recorded in the file's metadata.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from p2pcore.atomicfile import write_atomically
from p2pcore.engine.build.trained import TrainedRun, open_trained
from p2pcore.engine.infer.protocols import Protocol
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.rundir import check_writable

Format = Literal["onnx", "torchscript"]
PROTOCOLS = ("eval", "paper")
ONNX_PAPER_NOTE = ("ONNX Runtime removes Dropout nodes when it optimises a graph: run this file with "
                   "graph_optimization_level = ORT_DISABLE_ALL to keep dropout")


class _Translation(nn.Module):
    """The task's translation of one direction as one module (a task may chain several networks)."""

    def __init__(self, run: TrainedRun) -> None:
        super().__init__()
        self.nets = nn.ModuleDict(run.nets)
        self.task = run.task
        self.direction = run.direction

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.task.translate(self.direction, dict(self.nets.items()), image)


ONNX_INSTALL = "pip install onnx onnxscript"


def _require_onnx() -> None:
    """ONNX export writes its file with the `onnx` package, which p2p does not install: say how to get it
    before any work is done."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        raise P2PError("exporting ONNX needs the onnx package, which is not installed", key="--format",
                       hint=f"install it with `{ONNX_INSTALL}`, or export TorchScript instead (--format "
                            "torchscript, or an output ending .pt)")


def _record(path: Path, props: dict[str, str]) -> None:
    """Add metadata to an ONNX file (read back by `onnx.load(path).metadata_props`)."""
    import onnx

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


def export(checkpoint: str | Path, output: str | Path, host: Host, fmt: Format,
           direction: str | None = None, protocol: Protocol = "eval") -> dict[str, Any]:
    """Write one direction's translation as `fmt` in `protocol`; returns what the file takes and gives: the
    direction, channels and size multiple (for ONNX in the paper protocol, see `ONNX_PAPER_NOTE`)."""
    if protocol not in PROTOCOLS:
        raise P2PError(f"unknown protocol {protocol!r}", key="--protocol", hint=f"use {' or '.join(PROTOCOLS)}")
    if fmt == "onnx":
        _require_onnx()
    output = Path(output)
    if output.is_dir():
        raise P2PError("the output is a folder", file=str(output), hint="give a file path, e.g. generator.onnx")
    check_writable(output.parent, hint="choose an output in a writable folder")
    run = open_trained(checkpoint, host, direction=direction, protocol=protocol, device="cpu")
    model = _Translation(run)
    multiple = run.size_multiple()
    declared = run.spec.directions[run.direction]
    in_channels, out_channels = run.channels[declared.input], run.channels[declared.output]
    side = multiple * max(1, 64 // multiple)
    example = torch.zeros(1, in_channels, side, side)
    output.parent.mkdir(parents=True, exist_ok=True)
    paper = protocol == "paper"
    with torch.no_grad(), warnings.catch_warnings(), run.in_protocol():  # the graph records the protocol's modes
        warnings.simplefilter("ignore")
        def write(path: Path) -> None:
            if fmt == "onnx":
                axes = {0: "batch", 2: "height", 3: "width"}
                mode = torch.onnx.TrainingMode.TRAINING if paper else torch.onnx.TrainingMode.EVAL
                torch.onnx.export(model, (example,), str(path), input_names=["a"], output_names=["b"],
                                  dynamic_axes={"a": axes, "b": axes}, opset_version=17, dynamo=False,
                                  training=mode, do_constant_folding=not paper)
                _record(path, {"size_multiple": str(multiple), "protocol": protocol})
            else:  # a traced dropout draws anew at every call, so the trace is not checked against a rerun
                traced = torch.jit.trace(model, example, check_trace=not paper)
                torch.jit.save(traced, str(path), _extra_files={"size_multiple": str(multiple),
                                                                "protocol": protocol})

        try:
            write_atomically(output, write, what="the export")
        except ImportError as exc:  # a part of the ONNX tool chain that _require_onnx does not probe
            raise P2PError(f"export to {fmt} needs a package that is not installed: {exc}",
                           hint=f"install it with `{ONNX_INSTALL}`, or export TorchScript (--format torchscript, "
                                "or an output ending .pt)") from None
        except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:  # type: ignore[attr-defined]
            raise P2PError(f"export to {fmt} failed: {exc}", file=str(checkpoint),
                           hint="try the other --format") from None
    return {"direction": run.direction, "in_channels": in_channels, "out_channels": out_channels,
            "size_multiple": multiple}
