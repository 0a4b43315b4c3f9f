"""Checkpoints in safetensors: tensors in the body, JSON in the metadata, never pickle.

Writes are atomic: a temporary file in the same directory is written, flushed, fsynced and renamed
over the target, so the previous checkpoint stays valid until the new one is complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from p2pcore.errors import P2PError

FORMAT = "p2p.checkpoint"
FORMAT_VERSION = 1


def write_checkpoint(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> None:
    """Atomically write tensors and JSON-serialisable metadata to a safetensors file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    header.update({key: json.dumps(value) for key, value in metadata.items()})
    body = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    blob = save(body, metadata=header)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; checkpoints are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def link_checkpoint(source: Path, target: Path) -> None:
    """Make `target` the same checkpoint as `source` without writing it again: a hard link where the
    file system has them, else a copy; swapped in atomically either way."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Checkpoint:
    """A loaded checkpoint: `tensors` by name and decoded `metadata`."""

    def __init__(self, path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
        self.path = path
        self.tensors = tensors
        self.metadata = metadata

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors under `prefix.`, with the prefix removed (a state_dict)."""
        cut = len(prefix) + 1
        return {name[cut:]: t for name, t in self.tensors.items() if name.startswith(prefix + ".")}

    @property
    def recipe(self) -> dict[str, Any]:
        return self.metadata.get("recipe") or {}


def read_checkpoint(path: str | Path, device: str = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise P2PError("checkpoint not found", file=str(path), hint="check the path; runs keep them in "
                       "runs/<name>/checkpoints/")
    if path.is_dir():
        raise P2PError("this is a folder, not a checkpoint", file=str(path),
                       hint="give a .safetensors file, e.g. <run>/checkpoints/latest.safetensors")
    hint = "the file is truncated or not a p2p checkpoint; use another one (runs keep the previous epochs)"
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            raw = f.metadata() or {}
            loaded = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise P2PError(f"cannot read checkpoint: {exc}", file=str(path), hint=hint) from None
    if raw.get("format") != FORMAT:
        raise P2PError("not a p2p checkpoint (no p2p format marker in its metadata)", file=str(path),
                       hint="reference .pth files are converted with `p2p import`")
    if int(raw.get("format_version", "0")) > FORMAT_VERSION:
        raise P2PError(f"checkpoint format {raw['format_version']} is newer than this p2p understands",
                       file=str(path), hint="upgrade p2p")
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ("format", "format_version"):
            continue
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            raise P2PError(f"checkpoint metadata {key!r} is damaged", file=str(path), hint=hint) from None
    return Checkpoint(path, loaded, metadata)


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
    """The checkpoint with the highest step among those that are complete p2p checkpoints.

    Only headers are read (they are checked against the file size), not the tensors."""
    from p2pcore.inspect import summarize

    if not directory.is_dir():
        return None
    best: tuple[int, Path] | None = None
    for path in directory.glob("*.safetensors"):
        try:
            step = int(summarize(path).get("step") or -1)
        except P2PError:
            continue
        if best is None or step > best[0]:
            best = (step, path)
    return best[1] if best else None
