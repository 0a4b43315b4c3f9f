"""A run's state as checkpoint tensors and JSON metadata: weights (and their average), optimisers,
the task's state, the schedule's, gradient scalers, RNG states and the position in training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from p2pcore.checkpoint import state as flat
from p2pcore.checkpoint.files import Checkpoint, load_network
from p2pcore.engine.train.update import Progress
from p2pcore.errors import P2PError

if TYPE_CHECKING:  # pragma: no cover
    from p2pcore.engine.train.trainer import Trainer


def capture(run: Trainer, ranks: list[dict[str, Any]] | None = None) -> tuple[dict[str, torch.Tensor],
                                                                              dict[str, Any]]:
    """Everything needed to continue exactly; `ranks`: each process's random state in a data-parallel run."""
    from p2pcore.version import __version__

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
    for rank, states in enumerate(ranks or ()):
        tensors.update({f"rng.rank.{rank}.{kind}": state for kind, state in states.items()})
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
        "best": run.best,
    }
    return tensors, metadata


def restore(run: Trainer, ckpt: Checkpoint) -> None:
    """Put a run back where a checkpoint left it; state that does not fit is a one-screen error."""
    file = str(ckpt.path)
    meta = ckpt.metadata
    for field in ("progress", "optim", "rng"):
        if field not in meta:
            raise P2PError(f"the checkpoint holds no {field} state to resume from", file=file, key=field,
                           hint="it holds weights only (e.g. from `p2p import`); start a new run with "
                                "init.checkpoint pointing at it")
    rng = ckpt.tensors.get("rng.torch")
    if rng is None or rng.shape != torch.get_rng_state().shape or rng.dtype != torch.uint8:
        raise P2PError("the checkpoint's random-number state does not fit", file=file, key="rng.torch",
                       hint="the file is damaged; resume from another checkpoint")
    for role, net in run.nets.items():
        load_network(net, ckpt.prefixed(f"net.{role}"), role=role, file=file)
    if run.average is not None:
        for role, net in run.average.nets.items():
            state = ckpt.prefixed(f"ema.{role}") or ckpt.prefixed(f"net.{role}")  # EMA switched on mid-run
            load_network(net, state, role=role, file=file)
    for player, optimizer in run.optimizers.items():
        if player not in meta["optim"]:
            raise P2PError(f"the checkpoint holds no optimiser state for player {player!r}", file=file,
                           key=f"optim.{player}", hint="it was written by another task or recipe; start a new run")
        with _fits(file, f"optim.{player}"):
            flat.optimizer_from_flat(player, optimizer, ckpt.tensors, meta["optim"][player])
    for side, update in run.updates.items():
        if update.scaler.is_enabled() and side in meta.get("scalers", {}):
            with _fits(file, f"scalers.{side}"):
                update.scaler.load_state_dict(meta["scalers"][side])
    task_state: dict[str, Any] = dict(meta.get("task_state", {}))
    task_state.update({k: v.to(run.device) for k, v in ckpt.prefixed("task").items()})
    with _fits(file, "task_state"):
        run.task.load_state_dict(task_state)
    with _fits(file, "schedule"):
        run.schedule.load_state_dict(meta.get("schedule", {}))
    with _fits(file, "rng"):
        flat.rng_from_flat(ckpt.tensors, meta["rng"])
        _restore_rank_state(run, ckpt)
    run.progress = Progress(**meta["progress"])
    run.best = dict(meta.get("best", {}))


def _restore_rank_state(run: Trainer, ckpt: Checkpoint) -> None:
    """A process of a data-parallel run takes back its own random state, when the checkpoint was written by
    as many processes; otherwise each keeps the main process's (the run goes on, not bit for bit)."""
    saved = {name.split(".")[2] for name in ckpt.tensors if name.startswith("rng.rank.")}
    if run.placement.world_size == 1 or len(saved) != run.placement.world_size:
        return
    own = ckpt.prefixed(f"rng.rank.{run.placement.rank}")
    torch.set_rng_state(own["torch"])
    if "cuda" in own and run.device.type == "cuda":
        torch.cuda.set_rng_state(own["cuda"], run.device)


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
