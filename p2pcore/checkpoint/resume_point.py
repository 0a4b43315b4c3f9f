"""Where a resumed run continues, read from checkpoint headers alone (no torch), so that `p2p run --resume`
refuses before anything is built: the checkpoints of a run folder that hold what a resume needs (optimiser state
included: epoch and best checkpoints hold weights only unless ``train.keep_optimizer``), the one a resume picks,
and whether the run folder's ``recipe.toml`` still describes that checkpoint."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from p2pcore.checkpoint.format import Header, by_step, read_header
from p2pcore.errors import P2PError
from p2pcore.recipe import Recipe, validate_recipe
from p2pcore.rundir import RESUMABLE_KEYS, RunDir, flatten, may_change_on_resume

if TYPE_CHECKING:
    from p2pcore.plugins import Host

WEIGHTS_ONLY_HINT = ("epoch and best checkpoints hold weights only unless the recipe sets train.keep_optimizer = "
                     "true; continue from latest.safetensors (drop --from), or start a new run from this file with "
                     "[init] checkpoint = \"PATH\"")


def resumable(header: Header) -> bool:
    """Whether a checkpoint holds everything a resume restores (not weights only)."""
    meta = header.meta
    return meta.optim is not None and meta.progress is not None and meta.rng is not None


def resume_candidates(run_dir: RunDir) -> list[Path]:
    """The run's checkpoints a resume can continue from, newest step first, ``latest`` first among equals (at an
    epoch end it is the newest state); those whose headers do not read, and those with weights only, are left
    out."""
    return by_step(run_dir.checkpoints, keep=resumable)


def resume_point(run_dir: RunDir) -> Path | None:
    """The checkpoint a resume of `run_dir` continues from: the one `--from` named, else the newest resumable
    one (None when there is none; the resume itself then says why)."""
    if run_dir.resume_from is not None:
        return run_dir.resume_from
    candidates = resume_candidates(run_dir)
    return candidates[0] if candidates else None


def check_resumable(path: Path) -> None:
    """A checkpoint named to continue from (`--from`) must hold the optimiser state, not weights only."""
    if not resumable(read_header(path)):
        raise P2PError(f"{path.name} holds the weights only, not the optimiser state a resume continues with",
                       file=str(path), key="--from", hint=WEIGHTS_ONLY_HINT)


def check_recipe_matches(run_dir: RunDir, recorded: Recipe, host: Host) -> None:
    """The run folder's recipe (`recorded`, as read from ``recipe.toml``) must describe the checkpoint the resume
    continues from: a hand-edited key that a resume may not change (a learning rate, a seed) is refused, with
    both values of each, before anything is built. Keys a resume may change (epochs, logging, callbacks) may
    differ: a resume that changed them writes them into ``recipe.toml`` before its next checkpoint."""
    point = resume_point(run_dir)
    if point is None:
        return
    saved = read_header(point).meta.recipe
    try:  # the same defaults on both sides, whichever version of p2p wrote the checkpoint
        theirs = validate_recipe(saved, host, default_name=recorded.name).to_toml_dict()
    except P2PError:
        theirs = saved
    old, new = flatten(theirs), flatten(recorded.to_toml_dict())
    refused = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and not may_change_on_resume(k))
    if not refused:
        return
    folder = shlex.quote(str(run_dir.path))
    raise P2PError(
        f"the run's {run_dir.recipe.name} differs from its checkpoint {point.name} in {len(refused)} key(s) that "
        "a resume may not change", file=str(run_dir.recipe), key=refused[0],
        details=[f"{k}: {new.get(k, '(absent)')!r} in {run_dir.recipe.name}, {old.get(k, '(absent)')!r} in the "
                 "checkpoint" for k in refused],
        hint=f"to continue the run, put those keys back in {run_dir.recipe} as the checkpoint has them; to train "
             f"with the new values, start a new run: p2p run {shlex.quote(str(run_dir.recipe))} --out NEW_FOLDER "
             f"(not {folder}); a resume may change only {', '.join(sorted(RESUMABLE_KEYS))} and [callbacks], "
             "e.g. p2p run --resume --out " + folder + " --set train.epochs=N")
