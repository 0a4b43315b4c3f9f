"""The checkpoint file format, read and validated without torch before anything is trusted.

A p2p checkpoint is a safetensors file: an 8-byte length, a JSON header (tensor names, dtypes,
shapes and byte offsets, plus string metadata) and the tensor bytes. The metadata values are JSON
documents described by :class:`CheckpointMeta`, a versioned schema validated on every load. Before
anything is parsed the file must be a regular file (symlinks resolved, loops reported), the header
no larger than MAX_HEADER_BYTES and no JSON in it nested deeper than MAX_JSON_DEPTH, so a crafted
file costs bounded time and memory. Loading a checkpoint never executes code: there is no pickle.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from p2pcore.errors import P2PError
from p2pcore.version import __version__

FORMAT = "p2p.checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_ELEMENTS = 1 << 36  # elements in one tensor: 256 GiB of float32
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
DAMAGED = "the file is damaged (truncated or altered); use another checkpoint (runs keep the previous epochs)"
FOREIGN = "not a checkpoint written by p2p; reference .pth files are converted with `p2p import`"

NonNegative = Annotated[int, Strict(), Field(ge=0, le=1 << 62)]
Word = Annotated[int, Strict(), Field(ge=0, lt=1 << 32)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(Record):
    step: NonNegative
    epoch: NonNegative
    batch: NonNegative
    bad_steps: NonNegative
    skipped_files: NonNegative
    skipped_steps: NonNegative


class Component(Record):
    kind: str
    name: str
    qualified_name: str
    distribution: str
    version: str


class OptimizerState(Record):
    param_groups: list[dict[str, Any]]
    scalars: dict[str, dict[str, int | float | bool]]


class RngState(Record):
    python: tuple[Annotated[int, Strict()], Annotated[list[Word], Field(min_length=625, max_length=625)],
                  float | None]
    numpy: tuple[Literal["MT19937"], Annotated[list[Word], Field(min_length=624, max_length=624)], NonNegative,
                 NonNegative, float]


class CheckpointMeta(Record):
    """The metadata of format version 1. `optim` and `rng` are present in resumable checkpoints;
    checkpoints from `p2p import` hold weights, `source` and the recipe only."""

    recipe: dict[str, Any]
    components: list[Component] = []
    p2p_version: str | None = None
    source: str | None = None
    step: NonNegative = 0
    epoch: NonNegative = 0
    batch: NonNegative = 0
    progress: Progress | None = None
    optim: dict[str, OptimizerState] | None = None
    scalers: dict[str, dict[str, int | float | bool]] = {}
    task_state: dict[str, Any] = {}
    schedule: dict[str, Any] = {}
    rng: RngState | None = None
    best: dict[str, Any] = {}


def checkpoint_metadata(recipe: Mapping[str, Any], components: list[dict[str, str]], *, step: int = 0,
                        epoch: int = 0, source: str | None = None, **state: Any) -> dict[str, Any]:
    """The metadata of every checkpoint p2p writes, in one shape (:class:`CheckpointMeta` reads it back): the
    recipe and components that rebuild the run, the p2p version, the step and epoch; `source` where weights came
    from elsewhere (``p2p import``); and in a training run's checkpoint, the `state` a resume needs (``batch``,
    ``progress``, ``optim``, ``scalers``, ``task_state``, ``schedule``, ``rng``, ``best``)."""
    unknown = set(state) - set(CheckpointMeta.model_fields)
    if unknown:
        raise ValueError(f"checkpoint_metadata: no such metadata field(s): {sorted(unknown)}")
    metadata: dict[str, Any] = {"recipe": dict(recipe), "components": list(components), "p2p_version": __version__,
                                "step": step, "epoch": epoch}
    if source is not None:
        metadata["source"] = source
    return {**metadata, **state}


class TensorEntry(Record):
    dtype: Annotated[str, Strict()]
    shape: list[NonNegative]
    data_offsets: Annotated[list[NonNegative], Field(min_length=2, max_length=2)]


class Header(BaseModel):
    """What a checkpoint's header says: its tensors (by name) and validated metadata."""

    path: str
    format_version: int
    tensors: dict[str, TensorEntry]
    meta: CheckpointMeta

    def shapes(self, prefix: str) -> dict[str, tuple[int, ...]]:
        """Tensor shapes under `prefix.`, prefix removed."""
        cut = len(prefix) + 1
        return {name[cut:]: tuple(e.shape) for name, e in self.tensors.items() if name.startswith(prefix + ".")}


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def check_depth(text: str, *, file: str, what: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH before parsing it (the parser recurses)."""
    depth = deepest = 0
    for char in _STRINGS.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise P2PError(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep", file=file, hint=DAMAGED)
        elif char in "]}":
            depth -= 1


def regular_file(path: str | Path) -> Path:
    """The file a path names, symlinks resolved; a clear error for a loop, a folder or a FIFO."""
    path = Path(path)
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise P2PError("checkpoint not found", file=str(path),
                       hint="check the path; runs keep them in runs/<name>/checkpoints/") from None
    except RuntimeError:
        raise P2PError("the path is a loop of symbolic links", file=str(path), hint="point at the file itself") \
            from None
    except OSError as exc:
        reason = "a loop of symbolic links" if exc.errno == 40 else exc.strerror
        raise P2PError(f"cannot open the checkpoint: {reason}", file=str(path)) from None
    if stat.S_ISDIR(mode):
        raise P2PError("this is a folder, not a checkpoint", file=str(path),
                       hint="give a .safetensors file, e.g. <run>/checkpoints/latest.safetensors")
    if not stat.S_ISREG(mode):
        raise P2PError("this is not a regular file (a pipe or a device)", file=str(path),
                       hint="give a .safetensors checkpoint file")
    return resolved


def read_header(path: str | Path) -> Header:
    """Read and validate a checkpoint's header; every failure names the file and the field."""
    file = str(path)
    resolved = regular_file(path)
    try:
        size = resolved.stat().st_size
        with resolved.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise P2PError("the file is too short to be a checkpoint", file=file, hint=DAMAGED)
            (length,) = struct.unpack("<Q", head)
            if length > min(size - 8, MAX_HEADER_BYTES):
                raise P2PError("the header is longer than the file or than any checkpoint's", file=file,
                               hint=DAMAGED if length <= MAX_HEADER_BYTES else FOREIGN)
            text = f.read(length).decode("utf-8")
    except UnicodeDecodeError:
        raise P2PError("the header is not text", file=file, hint=FOREIGN) from None
    except OSError as exc:
        raise P2PError(f"cannot read the checkpoint: {exc.strerror}", file=file) from None
    check_depth(text, file=file, what="the header")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise P2PError(f"the header is not valid JSON ({exc.msg})", file=file, hint=DAMAGED) from None
    if not isinstance(raw, dict):
        raise P2PError("the header is not a table of tensors", file=file, hint=FOREIGN)
    metadata = raw.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise P2PError("not a p2p checkpoint (no p2p format marker in its metadata)", file=file, hint=FOREIGN)
    version = metadata.get("format_version")
    if not (isinstance(version, str) and version.isdigit() and 1 <= int(version) <= FORMAT_VERSION):
        newer = isinstance(version, str) and version.isdigit() and int(version) > FORMAT_VERSION
        raise P2PError(f"checkpoint format version {version!r} is " + ("newer than this p2p reads" if newer else
                       "not one p2p wrote"), file=file, key="format_version",
                       hint="upgrade p2p" if newer else DAMAGED)
    tensors = _tensor_entries(raw, size - 8 - length, file)
    meta = _metadata(metadata, file)
    return Header(path=file, format_version=int(version), tensors=tensors, meta=meta)


def _tensor_entries(raw: dict[str, Any], body: int, file: str) -> dict[str, TensorEntry]:
    entries = {}
    for name, value in raw.items():
        try:
            entry = TensorEntry.model_validate(value)
        except ValidationError as exc:
            raise P2PError(f"tensor {name!r} is described wrongly: {exc.errors()[0]['msg']}", file=file,
                           key=f"tensors.{name}", hint=DAMAGED) from None
        if entry.dtype not in DTYPE_BYTES:
            raise P2PError(f"tensor {name!r} has an unknown dtype {entry.dtype!r}", file=file, key=f"tensors.{name}",
                           hint=DAMAGED)
        elements = math.prod(entry.shape)
        start, end = entry.data_offsets
        if elements > MAX_ELEMENTS or end < start or end > body or end - start != elements * DTYPE_BYTES[entry.dtype]:
            raise P2PError(f"tensor {name!r}: shape {entry.shape} does not fit its {end - start} bytes at "
                           f"{start}..{end} of a {body}-byte body", file=file, key=f"tensors.{name}",
                           hint="the file is truncated" if end > body else DAMAGED)
        entries[name] = entry
    return entries


def _metadata(metadata: dict[str, Any], file: str) -> CheckpointMeta:
    decoded: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ("format", "format_version"):
            continue
        if not isinstance(value, str):
            raise P2PError(f"checkpoint metadata {key!r} is not text", file=file, key=key, hint=DAMAGED)
        check_depth(value, file=file, what=f"metadata {key!r}")
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            raise P2PError(f"checkpoint metadata {key!r} is not valid JSON", file=file, key=key, hint=DAMAGED) \
                from None
    try:
        return CheckpointMeta.model_validate(decoded)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise P2PError(f"checkpoint field {field or 'metadata'}: {error['msg']}{more}", file=file,
                       key=field or None, hint=DAMAGED) from None


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, to tell whether two paths are one file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino
