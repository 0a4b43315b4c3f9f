"""`p2p inspect`: a checkpoint's header, read without torch and without loading its tensors."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from math import prod
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError

HINT = "the file is truncated or not a p2p checkpoint"


def read_header(path: Path) -> dict[str, Any]:
    """The safetensors JSON header (tensor names, shapes, metadata), validated against the file size."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(f.read(length))
    except FileNotFoundError:
        raise P2PError("checkpoint not found", file=str(path),
                       hint="check the path; runs keep them in runs/<name>/checkpoints/") from None
    except IsADirectoryError:
        raise P2PError("this is a folder, not a checkpoint", file=str(path),
                       hint="give a .safetensors file, e.g. <run>/checkpoints/latest.safetensors") from None
    except struct.error:
        raise P2PError("the file is too short to be a checkpoint", file=str(path), hint=HINT) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise P2PError(f"cannot read checkpoint header: {exc}", file=str(path), hint=HINT) from None
    ends = [entry["data_offsets"][1] for k, entry in header.items() if k != "__metadata__"]
    if 8 + length + max(ends, default=0) > size:
        raise P2PError("checkpoint is truncated: its tensors extend past the end of the file", file=str(path),
                       hint=HINT)
    return header


def summarize(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    header = read_header(path)
    raw = header.pop("__metadata__", {}) or {}
    if raw.get("format") != "p2p.checkpoint":
        raise P2PError("not a p2p checkpoint", file=str(path), hint="reference .pth files go through `p2p import`")
    meta = {k: json.loads(v) for k, v in raw.items() if k not in ("format", "format_version")}
    parameters: dict[str, int] = defaultdict(int)
    for name, entry in header.items():
        if name.startswith("net.") and not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            parameters[name.split(".")[1]] += prod(entry["shape"])
    return {"path": str(path), "format_version": raw.get("format_version"), "step": meta.get("step"),
            "epoch": meta.get("epoch"), "p2p_version": meta.get("p2p_version"), "source": meta.get("source"),
            "components": meta.get("components", []), "parameters": dict(parameters),
            "recipe": meta.get("recipe", {}), "resumable": "optim" in meta}
