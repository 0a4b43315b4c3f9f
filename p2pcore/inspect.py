"""`p2p inspect`: a checkpoint's header, read and validated without torch and without its tensors."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from p2pcore.checkpoint.format import read_header


def summarize(path: str | Path) -> dict[str, Any]:
    header = read_header(path)
    meta = header.meta
    parameters: dict[str, int] = defaultdict(int)
    for name, entry in header.tensors.items():
        if name.startswith("net.") and not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            parameters[name.split(".")[1]] += math.prod(entry.shape)
    return {"path": str(path), "format_version": header.format_version, "step": meta.step, "epoch": meta.epoch,
            "p2p_version": meta.p2p_version, "source": meta.source,
            "components": [c.model_dump() for c in meta.components], "parameters": dict(parameters),
            "recipe": meta.recipe, "resumable": meta.optim is not None,
            "weight_average": any(name.startswith("ema.") for name in header.tensors),
            "translate": translate_size(meta.recipe)}


def translate_size(recipe: dict[str, Any]) -> str:
    """The size `p2p translate` gives the generator unless told otherwise: the recipe's `[translate]` table."""
    table = recipe.get("translate") or {}
    if table.get("load_size"):
        return f"{table['load_size']} x {table['load_size']} (translate.load_size), outputs back at each input's size"
    if table.get("scale_width"):
        return (f"{table['scale_width']} wide, aspect kept (translate.scale_width), outputs back at each input's "
                "size")
    return "each image at its own size"
