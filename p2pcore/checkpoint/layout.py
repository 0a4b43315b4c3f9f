"""What a recipe builds, as the tensors its checkpoint may hold, compared with a checkpoint's header before
any tensor is read; then the values a header cannot show (finite weights and moments, whole step counts).

A :class:`Layout` names every tensor a run of the recipe writes, with its shape and dtype: each network's
``net.<role>.*`` (required), its weight average ``ema.<role>.*`` and each parameter's Adam state
``optim.<player>.<index>.*`` (each all or nothing: a parameter that never had a gradient has no state), the
task's state ``task.*`` (its shapes are the task's own: floats and integers of bounded size) and the random
states ``rng.*``. Resuming (:meth:`p2pcore.checkpoint.run_state.RunState.read`) and opening a trained run
(``p2pcore.engine.build.trained``) both read a checkpoint through :func:`read_checked`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from p2pcore.api.tasks import Task
from p2pcore.checkpoint.consistency import FLOATS
from p2pcore.checkpoint.files import Checkpoint, load_tensors
from p2pcore.checkpoint.format import Header
from p2pcore.errors import P2PError

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
TASK_DTYPES = FLOATS | {"I64", "I32"}
MAX_CUDA_STATE = 4096  # bytes of one CUDA generator's state (16 today)
MISMATCH = "the recipe does not match its tensors"
OTHER = "the file is damaged or was made for another recipe; use another checkpoint of this run"


@dataclass(frozen=True)
class Expected:
    shape: tuple[int, ...]
    dtype: str


@dataclass
class Layout:
    """Every tensor a run writes by name; `groups`: names that are present all together or not at all, by
    group (``net.generator``, ``ema.generator``, ``optim.generator.3``); `required`: groups that must be there;
    `optimisers`: each player's number of parameters (its one parameter group lists 0..n-1)."""

    tensors: dict[str, Expected] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    optimisers: dict[str, int] = field(default_factory=dict)
    task_state: bool = True  # whether the task keeps state of its own (tensors under task.)

    def add(self, group: str, names: Mapping[str, Expected], *, required: bool = False) -> None:
        self.tensors.update(names)
        self.groups[group] = list(names)
        if required:
            self.required.add(group)


def _expected(tensor: torch.Tensor) -> Expected:
    return Expected(tuple(tensor.shape), DTYPES.get(tensor.dtype, str(tensor.dtype)))


def run_layout(nets: Mapping[str, nn.Module], optimised: Mapping[str, Sequence[torch.Tensor]], task: Task, *,
               required: Iterable[str] | None = None) -> Layout:
    """The layout of a run of `nets` (by role; shapes from the meta device do) whose players train
    `optimised` parameters, in their optimisers' order, for `task`. `required`: roles the file must hold
    (all)."""
    layout = Layout(task_state=type(task).state_dict is not Task.state_dict)
    needed = set(nets if required is None else required)
    for role, net in nets.items():
        own = {key: _expected(value) for key, value in net.state_dict().items()}
        layout.add(f"net.{role}", {f"net.{role}.{k}": e for k, e in own.items()}, required=role in needed)
        layout.add(f"ema.{role}", {f"ema.{role}.{k}": e for k, e in own.items()})
    for player, params in optimised.items():
        layout.optimisers[player] = len(params)
        for index, param in enumerate(params):
            moment = _expected(param)
            prefix = f"optim.{player}.{index}"
            layout.add(prefix, {f"{prefix}.exp_avg": moment, f"{prefix}.exp_avg_sq": moment,
                                f"{prefix}.step": Expected((), "F32")})
    return layout


def check_layout(header: Header, layout: Layout) -> None:
    """Every tensor of the file is one the recipe builds, of its shape and dtype, each group whole, the
    required ones there, and the optimisers' metadata lists their parameters; nothing is read."""
    file = header.path
    for name, entry in header.tensors.items():
        if name.startswith("rng."):
            _random_state(name, tuple(entry.shape), file)
        elif name.startswith("task."):
            if not layout.task_state or entry.dtype not in TASK_DTYPES:
                what = f"is stored as {entry.dtype}" if layout.task_state else "is there, but this task keeps no state"
                raise P2PError(f"task state {name!r} {what}", file=file, key=f"tensors.{name}", hint=OTHER)
        elif name not in layout.tensors:
            raise P2PError(f"{MISMATCH}: tensor {name!r} is not one this recipe builds", file=file,
                           key=f"tensors.{name}", hint=OTHER)
        else:
            want = layout.tensors[name]
            if tuple(entry.shape) != want.shape or entry.dtype != want.dtype:
                raise P2PError(f"{MISMATCH}: tensor {name!r} is {entry.dtype} {list(entry.shape)}; this recipe "
                               f"builds {want.dtype} {list(want.shape)}", file=file, key=f"tensors.{name}",
                               hint=OTHER)
    if header.meta.task_state and not layout.task_state:
        raise P2PError("the checkpoint holds task state, but this task keeps none", file=file, key="task_state",
                       hint=OTHER)
    for group, names in layout.groups.items():
        missing = [name for name in names if name not in header.tensors]
        if missing and (len(missing) < len(names) or group in layout.required):
            raise P2PError(f"{MISMATCH}: tensor {missing[0]!r} is missing ({len(missing)} of {len(names)} of "
                           f"{group})", file=file, key=f"tensors.{missing[0]}", hint=OTHER)
    _optimiser_metadata(header, layout)


def _random_state(name: str, shape: tuple[int, ...], file: str) -> None:
    parts = name.split(".")
    torch_state = tuple(torch.get_rng_state().shape)
    own = len(parts) == 4 and parts[1] == "rank" and parts[2].isdigit()  # one process's, in a data-parallel run
    if parts[-1] == "torch" and (len(parts) == 2 or own) and shape == torch_state:
        return
    cuda = (len(parts) == 3 and parts[1] == "cuda" and parts[2].isdigit()) or (own and parts[-1] == "cuda")
    if cuda and shape[0] <= MAX_CUDA_STATE:
        return
    raise P2PError(f"random state {name!r} of shape {list(shape)} is not one p2p writes (rng.torch is "
                   f"{list(torch_state)})", file=file, key=f"tensors.{name}", hint=OTHER)


def _optimiser_metadata(header: Header, layout: Layout) -> None:
    """Each optimiser's one parameter group lists exactly its parameters (the file's state is by index)."""
    saved = header.meta.optim or {}
    for player, count in layout.optimisers.items():
        if player not in saved:
            continue
        groups = saved[player].param_groups
        params = [i for group in groups for i in group.params]
        if len(groups) != 1 or params != list(range(count)):
            raise P2PError(f"the {player} optimiser's param_groups list {len(params)} parameters in {len(groups)} "
                           f"group(s); this recipe's optimiser has {count} in one", file=header.path,
                           key=f"optim.{player}.param_groups", hint=OTHER)


def check_values(ckpt: Checkpoint) -> None:
    """What the header cannot show: finite network weights and Adam moments, a non-negative second moment, and
    step counts that are whole non-negative numbers."""
    file = str(ckpt.path)
    for name, tensor in ckpt.tensors.items():
        if not name.startswith(("net.", "ema.", "optim.")) or not tensor.is_floating_point():
            continue
        bad = None
        if not bool(torch.isfinite(tensor).all()):
            bad = "holds values that are not finite (NaN or infinity)"
        elif name.endswith(".exp_avg_sq") and bool((tensor < 0).any()):
            bad = "holds negative values (a second moment is a mean of squares)"
        elif name.startswith("optim.") and name.endswith(".step") and not _whole(float(tensor)):
            bad = f"is {float(tensor)}, not a whole number of steps"
        if bad:
            raise P2PError(f"tensor {name!r} {bad}", file=file, key=f"tensors.{name}",
                           hint="the file is damaged (or the run diverged before it was written); use another "
                                "checkpoint")


def _whole(value: float) -> bool:
    return value >= 0 and value.is_integer()


def read_checked(header: Header, layout: Layout, *, values: bool = True) -> Checkpoint:
    """The checkpoint `header` describes, its tensors read only once the layout matches (and, with `values`,
    their values checked): the one way a run's state is read to be restored or opened."""
    check_layout(header, layout)
    loaded = load_tensors(header, names=header.tensors, message="cannot read the checkpoint's tensors: {kind}: {exc}",
                          hint="the file is damaged (truncated or altered); use another checkpoint")
    ckpt = Checkpoint(Path(header.path), loaded, header)
    if values:
        check_values(ckpt)
    return ckpt
