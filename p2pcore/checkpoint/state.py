"""Training state to and from checkpoint tensors and JSON metadata, without pickle.

Optimiser state tensors go in the safetensors body; its scalar entries, parameter groups, RNG
states of Python and NumPy, and the grad scaler's numbers go in the metadata as JSON.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


def optimizer_to_flat(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{name}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


def optimizer_state_from_flat(name: str, tensors: Mapping[str, torch.Tensor],
                              meta: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """A player's saved optimiser state by parameter index (``optim.<name>.<index>.<key>`` tensors and the
    metadata's scalars), as `torch.optim.Optimizer.load_state_dict` takes it."""
    prefix = f"optim.{name}."
    state: dict[int, dict[str, Any]] = {}
    for full, value in tensors.items():
        if full.startswith(prefix):
            index, key = full[len(prefix):].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    for index, entry in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    return state


def optimizer_from_flat(name: str, optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor],
                        meta: Mapping[str, Any]) -> None:
    """Put a player's saved state into its optimiser: the moments and steps, and the hyperparameters of each
    parameter group (range-checked when the header was read). The implementation's flags (fused, foreach,
    capturable, ...) stay the optimiser's own: they belong to this process's device, not to the run."""
    state = optimizer_state_from_flat(name, tensors, meta)
    own = optimizer.state_dict()["param_groups"]
    saved = meta["param_groups"]
    if len(saved) != len(own):
        raise ValueError(f"{len(saved)} parameter groups saved, {len(own)} in the optimiser")
    groups = [{**mine, **{key: group[key] for key in HYPERPARAMETERS}, "betas": tuple(group["betas"]),
               "params": group["params"]} for mine, group in zip(own, saved, strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_to_flat() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, meta


def rng_from_flat(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def scaler_to_meta(scaler: torch.amp.GradScaler) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in scaler.state_dict().items()}
