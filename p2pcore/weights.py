"""Reading pretrained weights a user names (a VGG for a perceptual loss, a segmenter, a feature network):
every way such a file can be wrong becomes one error naming the file and the recipe key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError


def read_weights(path: str | Path, *, what: str, key: str, hint: str) -> dict[str, Any]:
    """The names and tensors of a .pth state_dict (read with ``weights_only``: nothing is unpickled) or a
    .safetensors file. A ``{"state_dict": ...}`` wrapper and a ``module.`` prefix on every name (a model saved
    from a data-parallel wrapper) are taken off."""
    import torch

    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise P2PError(f"the {what} weights file is not there", file=file, key=key, hint=hint)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(file)
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged download, a pickle holding code, another format
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise P2PError(f"cannot read the {what} weights: {reason}", file=file, key=key, hint=hint) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise P2PError(f"the {what} weights file holds no state_dict (names to tensors)", file=file, key=key,
                       hint=hint)
    if state and all(name.startswith("module.") for name in state):
        state = {name[len("module."):]: t for name, t in state.items()}
    return dict(state)


def load_weights(module: Any, state: Mapping[str, Any], *, what: str, file: str, key: str, hint: str,
                 prefix: str = "", optional: tuple[str, ...] = (), refuse_extra: bool = False,
                 assign: bool = False) -> None:
    """Fill every tensor of `module` from `state`, whose names carry `prefix`, cast to the module's dtypes. A
    name the file lacks or a shape that differs is a P2PError naming the tensor; so, with `refuse_extra`, is a
    tensor the module does not have. Names ending in one of `optional` (``num_batches_tracked``) may be
    absent and are then left as they are. `assign` puts the file's tensors in place (a module on the meta
    device)."""
    loaded = {}
    for name, expected in module.state_dict().items():
        tensor = state.get(prefix + name)
        if tensor is None:
            if name.endswith(optional):
                continue
            raise P2PError(f"the file does not fit {what}: it has no {prefix + name}", file=file, key=key, hint=hint)
        if tuple(tensor.shape) != tuple(expected.shape):
            raise P2PError(f"the file does not fit {what}: {prefix + name} has shape {tuple(tensor.shape)} where "
                           f"{tuple(expected.shape)} is expected", file=file, key=key, hint=hint)
        loaded[name] = tensor.to(expected.dtype)
    if refuse_extra:
        known = {prefix + name for name in module.state_dict()}
        extra = sorted(name for name in state if name not in known and not name.endswith(optional))
        if extra:
            raise P2PError(f"the file does not fit {what}: it has {len(extra)} unknown tensors, e.g. {extra[0]}",
                           file=file, key=key, hint=hint)
    module.load_state_dict(loaded, strict=len(loaded) == len(module.state_dict()), assign=assign)
