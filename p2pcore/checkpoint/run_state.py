"""What a training run's checkpoint holds, as one object the trainer keeps and this module serialises:
weights (and their average), optimisers, gradient scalers, the task's state, the schedule's, RNG states,
the counters of where training stands and the best evaluation so far."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from p2pcore.api.schedules import Schedule
from p2pcore.api.tasks import Task
from p2pcore.checkpoint import state as flat
from p2pcore.checkpoint.files import Checkpoint, load_network
from p2pcore.checkpoint.format import checkpoint_metadata, read_header
from p2pcore.checkpoint.layout import Layout, check_values, read_checked, run_layout
from p2pcore.errors import P2PError


@dataclass
class Counters:
    """Where training stands: the next epoch to run and how many of its batches are done, the current streak
    of non-finite steps, and the files and steps skipped so far."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    bad_steps: int = 0
    skipped_files: int = 0
    skipped_steps: int = 0


class Averaged(Protocol):
    """A weight average (``train.ema``): its networks by role and their tensors as one state dict."""

    nets: dict[str, nn.Module]

    def state_dict(self) -> dict[str, torch.Tensor]: ...


@dataclass
class RunState:
    """Everything a run needs to continue exactly. The trainer builds it once and keeps it; :meth:`capture`
    writes it as checkpoint tensors and metadata, :meth:`restore` puts a checkpoint back into it."""

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]  # by side
    task: Task
    schedule: Schedule
    average: Averaged | None = None
    counters: Counters = field(default_factory=Counters)
    best: dict[str, Any] = field(default_factory=dict)  # the figure that selects best.safetensors, its value, epoch
    batches_per_epoch: int | None = None  # where known, a resumed position past an epoch's batches is refused

    def layout(self) -> Layout:
        """The tensors this run's checkpoints hold: its networks, their averages, each player's Adam state."""
        params = {player: [p for group in opt.param_groups for p in group["params"]]
                  for player, opt in self.optimizers.items()}
        return run_layout(self.nets, params, self.task)

    def read(self, path: str | Path) -> Checkpoint:
        """A checkpoint of this run, its header checked against what the run holds before a tensor is read."""
        return read_checked(read_header(path), self.layout(), values=False)  # restore() checks the values

    def capture(self, recipe: Mapping[str, Any], components: list[dict[str, str]],
                ranks: list[dict[str, torch.Tensor]] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and metadata of a checkpoint; `ranks`: each process's random state in a data-parallel run."""
        tensors: dict[str, torch.Tensor] = {}
        for role, net in self.nets.items():
            tensors.update({f"net.{role}.{k}": v for k, v in net.state_dict().items()})
        if self.average is not None:
            tensors.update({f"ema.{k}": v for k, v in self.average.state_dict().items()})
        optim_meta = {}
        for player, optimizer in self.optimizers.items():
            t, m = flat.optimizer_to_flat(player, optimizer)
            tensors.update(t)
            optim_meta[player] = m
        task_json = {}
        for key, value in self.task.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[f"task.{key}"] = value
            else:
                task_json[key] = value
        rng_tensors, rng_meta = flat.rng_to_flat()
        tensors.update(rng_tensors)
        for rank, states in enumerate(ranks or ()):
            tensors.update({f"rng.rank.{rank}.{kind}": state for kind, state in states.items()})
        c = self.counters
        metadata = checkpoint_metadata(
            recipe, components, step=c.step, epoch=c.epoch, batch=c.batch, progress=dataclasses.asdict(c),
            optim=optim_meta, scalers={side: flat.scaler_to_meta(s) for side, s in self.scalers.items()},
            task_state=task_json, schedule=self.schedule.state_dict(), rng=rng_meta, best=self.best)
        return tensors, metadata

    def restore(self, ckpt: Checkpoint, *, device: torch.device, rank: int = 0, world_size: int = 1) -> None:
        """Put the run back where a checkpoint left it; state that does not fit is a one-screen error. `ckpt`
        comes from :meth:`read`, which checked its layout against this run's; its values are checked here. A
        process of a data-parallel run (`rank` of `world_size`) takes back its own random state."""
        file = str(ckpt.path)
        meta = ckpt.metadata
        for name in ("progress", "optim", "rng"):
            if name not in meta:
                raise P2PError(f"the checkpoint holds no {name} state to resume from", file=file, key=name,
                               hint="it holds weights only (e.g. from `p2p import`); start a new run with "
                                    "init.checkpoint pointing at it")
        check_values(ckpt)  # all of it before any of it is put back
        self._check_position(ckpt)
        rng = ckpt.tensors.get("rng.torch")
        if rng is None or rng.shape != torch.get_rng_state().shape or rng.dtype != torch.uint8:
            raise P2PError("the checkpoint's random-number state does not fit", file=file, key="rng.torch",
                           hint="the file is damaged; resume from another checkpoint")
        for role, net in self.nets.items():
            load_network(net, ckpt.prefixed(f"net.{role}"), role=role, file=file)
        if self.average is not None:
            for role, net in self.average.nets.items():
                state = ckpt.prefixed(f"ema.{role}") or ckpt.prefixed(f"net.{role}")  # EMA switched on mid-run
                load_network(net, state, role=role, file=file)
        for player, optimizer in self.optimizers.items():
            if player not in meta["optim"]:
                raise P2PError(f"the checkpoint holds no optimiser state for player {player!r}", file=file,
                               key=f"optim.{player}", hint="it was written by another task or recipe; start a "
                                                           "new run")
            with _fits(file, f"optim.{player}"):
                flat.optimizer_from_flat(player, optimizer, ckpt.tensors, meta["optim"][player])
        for side, scaler in self.scalers.items():
            if scaler.is_enabled() and side in meta.get("scalers", {}):
                with _fits(file, f"scalers.{side}"):
                    scaler.load_state_dict(meta["scalers"][side])
        task_state: dict[str, Any] = dict(meta.get("task_state", {}))
        task_state.update({k: v.to(device) for k, v in ckpt.prefixed("task").items()})
        with _fits(file, "task_state"):
            self.task.load_state_dict(task_state)
        with _fits(file, "schedule"):
            self.schedule.load_state_dict(meta.get("schedule", {}))
        with _fits(file, "rng"):
            flat.rng_from_flat(ckpt.tensors, meta["rng"])
            _restore_rank_state(ckpt, device, rank, world_size)
        loaded = Counters(**meta["progress"])
        for name in (f.name for f in dataclasses.fields(Counters)):  # in place: collaborators hold the object
            setattr(self.counters, name, getattr(loaded, name))
        self.best = dict(meta.get("best", {}))


    def _check_position(self, ckpt: Checkpoint) -> None:
        """The batch a checkpoint's epoch stands at is one the epoch has (else the rest of it would be skipped)."""
        batch, most = ckpt.header.meta.progress.batch, self.batches_per_epoch  # type: ignore[union-attr]
        if most is not None and batch > most:
            raise P2PError(f"the checkpoint stands at batch {batch} of an epoch of {most} batches", file=str(ckpt.path),
                           key="progress.batch", hint="the file is damaged or was altered; resume from another "
                                                      "checkpoint")


def _restore_rank_state(ckpt: Checkpoint, device: torch.device, rank: int, world_size: int) -> None:
    """A process of a data-parallel run takes back its own random state, when the checkpoint was written by
    as many processes; otherwise each keeps the main process's (the run goes on, not bit for bit)."""
    saved = {name.split(".")[2] for name in ckpt.tensors if name.startswith("rng.rank.")}
    if world_size == 1 or len(saved) != world_size:
        return
    own = ckpt.prefixed(f"rng.rank.{rank}")
    torch.set_rng_state(own["torch"])
    if "cuda" in own and device.type == "cuda":
        torch.cuda.set_rng_state(own["cuda"], device)


@contextlib.contextmanager
def _fits(file: str, field: str) -> Iterator[None]:
    """State that a component refuses (wrong keys, sizes or types) is named, never a traceback."""
    try:
        yield
    except P2PError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise P2PError(f"the checkpoint's {field} state does not fit this run: {type(exc).__name__}: {exc}",
                       file=file, key=field, hint="the file is damaged or from another recipe; resume from "
                                                  "another checkpoint") from None
