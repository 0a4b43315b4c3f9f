"""Checkpoints in safetensors: tensors in the body, JSON in the metadata, never pickle.

Writes are atomic (:mod:`p2pcore.atomicfile`): a temporary file created exclusively in the same directory is
written, flushed, fsynced and renamed over the target, so the previous checkpoint stays valid until the new one
is complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from p2pcore.atomicfile import link_atomically, write_bytes_atomically
from p2pcore.checkpoint.format import DAMAGED, FORMAT, FORMAT_VERSION, Header, by_step, read_header
from p2pcore.errors import P2PError

KEPT = "the previous checkpoint is intact"


def write_checkpoint(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> None:
    """Atomically write tensors and JSON-serialisable metadata to a safetensors file."""
    path = Path(path)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    header.update({key: json.dumps(value) for key, value in metadata.items()})
    body = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    write_bytes_atomically(path, save(body, metadata=header), what="the checkpoint", hint=KEPT)


def link_checkpoint(source: Path, target: Path) -> None:
    """Make `target` the same checkpoint as `source` without writing it again: a hard link where the
    file system has them, else a copy; swapped in atomically either way."""
    link_atomically(source, target, what="the checkpoint", hint=f"{source.name} is written; {KEPT}")


class Checkpoint:
    """A loaded checkpoint: `tensors` by name and its validated `header` (metadata in `header.meta`)."""

    def __init__(self, path: Path, tensors: dict[str, torch.Tensor], header: Header) -> None:
        self.path = path
        self.tensors = tensors
        self.header = header
        self.metadata: dict[str, Any] = header.meta.model_dump(mode="json", exclude_none=True)

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under `prefix.`, with the prefix removed (a state_dict)."""
        cut = len(prefix) + 1
        return {name[cut:]: t for name, t in self.tensors.items() if name.startswith(prefix + ".")}

    @property
    def recipe(self) -> dict[str, Any]:
        return self.header.meta.recipe


def read_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    """Validate the header (without torch, bounded work), then load the tensors it describes."""
    header = read_header(path)
    loaded = load_tensors(header, device=device, message="cannot read checkpoint: {exc}", hint=DAMAGED)
    return Checkpoint(Path(path), loaded, header)


def load_tensors(header: Header, *, names: Iterable[str] | None = None, device: str = "cpu", message: str,
                 hint: str) -> dict[str, torch.Tensor]:
    """The tensors of the file `header` describes, by name: `names` in their order, else all in the file's
    (sorted) order. A file that fails to load is a P2PError with `message` formatted with ``{exc}`` (the
    error) and ``{kind}`` (its type's name)."""
    try:
        with safe_open(header.path, framework="pt", device=device) as f:
            return {name: f.get_tensor(name) for name in (f.keys() if names is None else names)}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
        raise P2PError(message.format(exc=exc, kind=type(exc).__name__), file=header.path, hint=hint) from None


def load_network(net: torch.nn.Module, state: Mapping[str, torch.Tensor], *, role: str, file: str) -> None:
    """Load a state_dict, turning a mismatch into an error that names the first differing key."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        first = (missing or unexpected or mismatched)[0]
        what = ("missing" if missing else "unexpected" if unexpected else
                f"shape {tuple(state[first].shape)} where the network has {tuple(own[first].shape)}")
        raise P2PError(f"the {role} weights do not fit the network: {first} is {what}", file=file,
                       key=f"model.{role}", hint="the checkpoint was made for another architecture")
    net.load_state_dict(state)


def latest_valid_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step among those whose headers read cleanly."""
    candidates = by_step(directory)
    return candidates[0] if candidates else None
