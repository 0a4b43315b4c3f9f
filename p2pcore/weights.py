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
