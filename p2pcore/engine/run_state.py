"""A run's state as checkpoint tensors and JSON metadata: weights (and their average), optimisers,
the task's state, the schedule's, gradient scalers, RNG states and the position in training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from p2pcore.engine import state as flat
from p2pcore.engine.checkpoint import Checkpoint, load_network
from p2pcore.engine.update import Progress
from p2pcore.errors import P2PError

if TYPE_CHECKING:  # pragma: no cover
    from p2pcore.engine.trainer import Trainer


def capture(run: Trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Everything needed to continue exactly."""
    from p2pcore import __version__

    tensors: dict[str, torch.Tensor] = {}
    for role, net in run.nets.items():
        tensors.update({f"net.{role}.{k}": v for k, v in net.state_dict().items()})
    if run.average is not None:
        tensors.update({f"ema.{k}": v for k, v in run.average.state_dict().items()})
    optim_meta = {}
    for player, optimizer in run.optimizers.items():
        t, m = flat.optimizer_to_flat(player, optimizer)
        tensors.update(t)
        optim_meta[player] = m
    task_json = {}
    for key, value in run.task.state_dict().items():
        if isinstance(value, torch.Tensor):
            tensors[f"task.{key}"] = value
        else:
            task_json[key] = value
    rng_tensors, rng_meta = flat.rng_to_flat()
    tensors.update(rng_tensors)
    p = run.progress
    metadata = {
        "recipe": run.recipe.to_toml_dict(),
        "components": run.components(),
        "p2p_version": __version__,
        "step": p.step, "epoch": p.epoch, "batch": p.batch,
        "progress": vars(p).copy(),
        "optim": optim_meta,
        "scalers": {side: flat.scaler_to_meta(u.scaler) for side, u in run.updates.items()},
        "task_state": task_json,
        "schedule": run.schedule.state_dict(),
        "rng": rng_meta,
    }
    return tensors, metadata


def restore(run: Trainer, ckpt: Checkpoint) -> None:
    file = str(ckpt.path)
    for role, net in run.nets.items():
        load_network(net, ckpt.prefixed(f"net.{role}"), role=role, file=file)
    if run.average is not None:
        for role, net in run.average.nets.items():
            state = ckpt.prefixed(f"ema.{role}") or ckpt.prefixed(f"net.{role}")  # EMA switched on mid-run
            load_network(net, state, role=role, file=file)
    meta = ckpt.metadata
    for player, optimizer in run.optimizers.items():
        if player not in meta.get("optim", {}):
            raise P2PError(f"the checkpoint holds no optimiser state for player {player!r}", file=file,
                           hint="it was written by another task or recipe; start a new run")
        flat.optimizer_from_flat(player, optimizer, ckpt.tensors, meta["optim"][player])
    for side, update in run.updates.items():
        if update.scaler.is_enabled() and side in meta.get("scalers", {}):
            update.scaler.load_state_dict(meta["scalers"][side])
    task_state: dict[str, Any] = dict(meta.get("task_state", {}))
    task_state.update({k: v.to(run.device) for k, v in ckpt.prefixed("task").items()})
    run.task.load_state_dict(task_state)
    run.schedule.load_state_dict(meta.get("schedule", {}))
    flat.rng_from_flat(ckpt.tensors, meta["rng"])
    run.progress = Progress(**meta["progress"])
