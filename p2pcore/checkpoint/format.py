"""The checkpoint file format, read and validated without torch before anything is trusted.

A p2p checkpoint is a safetensors file: an 8-byte length, a JSON header (tensor names, dtypes,
shapes and byte offsets, plus string metadata) and the tensor bytes. The metadata values are JSON
documents described by :class:`CheckpointMeta`, a versioned schema validated on every load. Before
anything is parsed the file must be a regular file (symlinks resolved, loops reported); then every
size a crafted file could inflate has a stated limit, so reading a header costs bounded time and
memory whatever it says:

- the header: at most MAX_HEADER_BYTES, JSON nested at most MAX_JSON_DEPTH deep, MAX_TENSORS tensors;
- each metadata value: at most MAX_METADATA_BYTES of JSON, each string in it at most MAX_STRING_CHARS
  characters (recipe text, task state), each integer at most MAX_INT_DIGITS digits;
- each tensor: at most MAX_TENSOR_BYTES, all of them at most MAX_BODY_BYTES (a sparse file can declare
  hundreds of gigabytes it does not hold);
- the optimiser's hyperparameters in range, the gradient scalers' numbers and the best figure's value
  finite, and the tensors consistent among themselves (:mod:`p2pcore.checkpoint.consistency`).

Loading a checkpoint never executes code: there is no pickle. What the recipe builds is compared with
the tensors before any is loaded (:mod:`p2pcore.checkpoint.layout`).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from p2pcore.checkpoint.consistency import check_consistency
from p2pcore.errors import P2PError
from p2pcore.rundir import LATEST_FILE
from p2pcore.version import __version__

FORMAT = "p2p.checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_TENSORS = 65536
MAX_NAME_CHARS = 1024  # one tensor's name
MAX_METADATA_BYTES = 1024 * 1024  # one metadata value's JSON text
MAX_STRING_CHARS = 65536  # one string inside a metadata value (a recipe's path, a task's text)
MAX_INT_DIGITS = 40  # one integer in the header (Python refuses to convert beyond 4300 digits)
MAX_TENSOR_BYTES = 4 * 1024 ** 3  # one tensor: the largest network's largest weight is ~40 MB
MAX_BODY_BYTES = 16 * 1024 ** 3  # all tensors: pix2pixHD's networks, Adam moments and average are ~3 GB
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
               "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
DAMAGED = "the file is damaged (truncated or altered); use another checkpoint (runs keep the previous epochs)"
FOREIGN = "not a checkpoint written by p2p; reference .pth files are converted with `p2p import`"

NonNegative = Annotated[int, Strict(), Field(ge=0, le=1 << 62)]
Word = Annotated[int, Strict(), Field(ge=0, lt=1 << 32)]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Beta = Annotated[float, Strict(), Field(ge=0, lt=1)]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(Record):
    step: NonNegative
    epoch: NonNegative
    batch: NonNegative
    bad_steps: NonNegative
    skipped_files: NonNegative
    skipped_steps: NonNegative

    @model_validator(mode="after")
    def _within_steps(self) -> Progress:
        if self.batch > self.step:  # each batch of the epoch so far was one step
            raise ValueError(f"batch {self.batch} of the epoch is past the {self.step} steps taken in all")
        if self.epoch > self.step:  # each epoch done took a step at least
            raise ValueError(f"{self.epoch} epochs done in {self.step} steps")
        return self


class Component(Record):
    kind: str
    name: str
    qualified_name: str
    distribution: str
    version: str


class ParamGroup(BaseModel):
    """One Adam parameter group: the hyperparameters in range; the implementation's flags (fused, foreach, ...)
    are the running process's own and are not taken from the file."""

    model_config = ConfigDict(extra="allow")
    lr: Positive
    betas: tuple[Beta, Beta]
    eps: Positive
    weight_decay: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
    params: Annotated[list[NonNegative], Field(max_length=MAX_TENSORS)]

    @field_validator("params")
    @classmethod
    def _indices(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("a parameter index is listed twice")
        return value


class OptimizerState(Record):
    param_groups: Annotated[list[ParamGroup], Field(min_length=1, max_length=64)]
    scalars: dict[str, dict[str, int | float | bool]]


SCALER_KEYS = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}


def _scaler(state: dict[str, int | float | bool]) -> dict[str, int | float | bool]:
    """A gradient scaler's numbers: none (it was off), or all five in range."""
    if not state:
        return state
    if set(state) != SCALER_KEYS:
        raise ValueError(f"a gradient scaler's state has the keys {sorted(SCALER_KEYS)}, not {sorted(state)}")
    numbers = {k: v for k, v in state.items() if not isinstance(v, bool) and math.isfinite(v)}
    if len(numbers) != len(state) or not (
            state["scale"] > 0 and state["growth_factor"] > 1 and 0 < state["backoff_factor"] < 1
            and isinstance(state["growth_interval"], int) and state["growth_interval"] > 0
            and isinstance(state["_growth_tracker"], int) and state["_growth_tracker"] >= 0):
        raise ValueError("a gradient scaler's numbers are out of range (scale > 0, growth_factor > 1, "
                         "0 < backoff_factor < 1, growth_interval > 0, _growth_tracker >= 0)")
    return state


def _best(best: dict[str, Any]) -> dict[str, Any]:
    """The figure that selects best.safetensors: nothing yet, or its name, finite value, epoch and step."""
    if not best:
        return best
    value = best.get("value")
    if not isinstance(best.get("metric"), str) or isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise ValueError("best holds a figure's name (metric) and its finite value (value)")
    for key in ("epoch", "step"):
        if key in best and (isinstance(best[key], bool) or not isinstance(best[key], int) or best[key] < 0):
            raise ValueError(f"best.{key} is not a non-negative integer")
    return best


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

    @field_validator("scalers")
    @classmethod
    def _scalers(cls, value: dict[str, dict[str, int | float | bool]]) -> dict[str, dict[str, int | float | bool]]:
        return {side: _scaler(state) for side, state in value.items()}

    @field_validator("best")
    @classmethod
    def _best(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _best(value)


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
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
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
                raise P2PError("the header is longer than the file or than any checkpoint's "
                               f"({MAX_HEADER_BYTES // 2**20} MiB at most)", file=file,
                               hint=DAMAGED if length <= MAX_HEADER_BYTES else FOREIGN)
            text = f.read(length).decode("utf-8")
    except UnicodeDecodeError:
        raise P2PError("the header is not text", file=file, hint=FOREIGN) from None
    except OSError as exc:
        raise P2PError(f"cannot read the checkpoint: {exc.strerror}", file=file) from None
    check_depth(text, file=file, what="the header")
    raw = parse_json(text, file=file, what="the header", strings=False)  # metadata values: below
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
    check_consistency(tensors, meta.optim or {}, file=file)
    return Header(path=file, format_version=int(version), tensors=tensors, meta=meta)


class _TooLong(ValueError):
    """An integer or a string in a header past its limit."""


def by_step(directory: Path, keep: Callable[[Header], bool] | None = None) -> list[Path]:
    """The checkpoints of `directory` whose headers read cleanly (and that `keep` accepts), newest step first,
    ``latest`` first among equals (at an epoch end it is the newest state). Only headers are read, each
    checked against its file's size."""
    if not directory.is_dir():
        return []
    try:
        paths = list(directory.glob("*.safetensors"))
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            header = read_header(path)
        except P2PError:
            continue
        if keep is None or keep(header):
            found.append((-header.meta.step, path.name != LATEST_FILE, path.name, path))
    return [path for *_, path in sorted(found)]


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _TooLong(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _longest_string(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return max((max(len(k), _longest_string(v)) for k, v in value.items()), default=0)
    if isinstance(value, list):
        return max((_longest_string(v) for v in value), default=0)
    return 0


def parse_json(text: str, *, file: str, what: str, key: str | None = None, strings: bool = True) -> Any:
    """JSON from a header, its integers bounded and, with `strings`, its strings (see the module's limits)."""
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except _TooLong as exc:
        raise P2PError(f"{what} holds {exc}", file=file, key=key, hint=DAMAGED) from None
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise P2PError(f"{what} is not valid JSON ({reason})", file=file, key=key, hint=DAMAGED) from None
    if strings and _longest_string(value) > MAX_STRING_CHARS:
        raise P2PError(f"{what} holds a string of more than {MAX_STRING_CHARS} characters", file=file, key=key,
                       hint=DAMAGED)
    return value


def _tensor_entries(raw: dict[str, Any], body: int, file: str) -> dict[str, TensorEntry]:
    if len(raw) > MAX_TENSORS:
        raise P2PError(f"the header lists {len(raw)} tensors, more than any checkpoint's ({MAX_TENSORS})",
                       file=file, hint=DAMAGED)
    entries = {}
    total = 0
    for name, value in raw.items():
        if len(name) > MAX_NAME_CHARS:
            raise P2PError(f"a tensor name of {len(name)} characters (at most {MAX_NAME_CHARS})", file=file,
                           key=f"tensors.{name[:40]}...", hint=DAMAGED)
        try:
            entry = TensorEntry.model_validate(value)
        except ValidationError as exc:
            raise P2PError(f"tensor {name!r} is described wrongly: {exc.errors()[0]['msg']}", file=file,
                           key=f"tensors.{name}", hint=DAMAGED) from None
        if entry.dtype not in DTYPE_BYTES:
            raise P2PError(f"tensor {name!r} has an unknown dtype {entry.dtype!r}", file=file, key=f"tensors.{name}",
                           hint=DAMAGED)
        declared = math.prod(entry.shape) * DTYPE_BYTES[entry.dtype]
        if declared > MAX_TENSOR_BYTES:
            raise P2PError(f"tensor {name!r} declares {declared / 2**30:.1f} GiB (shape {entry.shape}), more than "
                           f"any network's ({MAX_TENSOR_BYTES // 2**30} GiB per tensor)", file=file,
                           key=f"tensors.{name}", hint=DAMAGED)
        start, end = entry.data_offsets
        if end < start or end > body or end - start != declared:
            raise P2PError(f"tensor {name!r}: shape {entry.shape} does not fit its {end - start} bytes at "
                           f"{start}..{end} of a {body}-byte body", file=file, key=f"tensors.{name}",
                           hint="the file is truncated" if end > body else DAMAGED)
        total += declared
        entries[name] = entry
    if total > MAX_BODY_BYTES:
        raise P2PError(f"the tensors declare {total / 2**30:.1f} GiB in all, more than any run's "
                       f"({MAX_BODY_BYTES // 2**30} GiB)", file=file, hint=DAMAGED)
    return entries


def _metadata(metadata: dict[str, Any], file: str) -> CheckpointMeta:
    decoded: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in ("format", "format_version"):
            continue
        if key not in CheckpointMeta.model_fields:
            raise P2PError(f"checkpoint metadata {key[:80]!r} is not a field of format version {FORMAT_VERSION}",
                           file=file, key=key[:80], hint=DAMAGED)
        if not isinstance(value, str):
            raise P2PError(f"checkpoint metadata {key!r} is not text", file=file, key=key, hint=DAMAGED)
        if len(value) > MAX_METADATA_BYTES:
            raise P2PError(f"checkpoint metadata {key!r} is {len(value) / 2**20:.1f} MiB of text, more than any "
                           f"checkpoint's ({MAX_METADATA_BYTES // 2**20} MiB)", file=file, key=key, hint=DAMAGED)
        check_depth(value, file=file, what=f"metadata {key!r}")
        decoded[key] = parse_json(value, file=file, what=f"checkpoint metadata {key!r}", key=key)
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
