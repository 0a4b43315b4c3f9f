"""When and where a run's state is written, and where a resumed run picks it up: ``latest`` mid-epoch (every
`checkpoint_steps` steps and every `checkpoint_minutes`), ``epoch_NNN`` at epoch ends (the last `keep_last`
kept, plus every `keep_every`-th, and ``best`` when `[eval] best` improved), each written atomically by the
main process with every process's random state. Only ``latest`` (an interrupt's checkpoint among them) holds the
optimiser state unless `keep_optimizer`: the epoch files and ``best`` hold the weights and the rest of the state,
a resume continues from ``latest``."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch

from p2pcore.checkpoint.files import link_checkpoint, write_checkpoint
from p2pcore.checkpoint.resume_point import check_resumable, resume_candidates
from p2pcore.checkpoint.run_state import RunState
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.evaluate.scoring import write_json
from p2pcore.engine.train.callbacks import Callbacks
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import Recipe
from p2pcore.rundir import RunDir

OPTIMISER_TENSORS = "optim."  # the prefix of the optimiser state's tensors in a checkpoint


class Checkpointing:
    """Writes the run state's checkpoints into the run directory and tells the callbacks of each."""

    def __init__(self, run_dir: RunDir, state: RunState, recipe: Recipe, host: Host, placement: SingleDevice,
                 callbacks: Callbacks) -> None:
        self.run_dir, self.state, self.recipe, self.host = run_dir, state, recipe, host
        self.placement, self.callbacks = placement, callbacks
        self.cfg = recipe.train
        self._components: list[dict[str, str]] | None = None
        self._last_save = time.monotonic()

    def components(self) -> list[dict[str, str]]:
        """Every component of the run, nested ones included, with its distribution and version."""
        if self._components is None:
            r = self.recipe
            self._components = self.host.describe_all([r.task, r.data, r.schedule, *r.model.values(),
                                                       *(spec.ref() for spec in r.loss.values())])
        return self._components

    def due(self, logging: bool) -> bool:
        """Every `checkpoint_steps` steps, and once `checkpoint_minutes` have passed: the processes of a
        data-parallel run agree on that at log steps, since every one of them takes part in a save."""
        steps, minutes = self.cfg.checkpoint_steps, self.cfg.checkpoint_minutes
        if steps and self.state.counters.step % steps == 0:
            return True
        timed = bool(minutes) and time.monotonic() - self._last_save >= minutes * 60
        return timed if self.placement.world_size == 1 else logging and self.placement.any(timed)

    def save_latest(self) -> None:
        """Write latest.safetensors (the main process of a data-parallel run, with every process's random
        state); the caller has synced the divergence guard's counts into the counters."""
        ranks = self._rank_states()
        if not self.placement.is_main:
            return
        write_checkpoint(self.run_dir.latest, *self._capture(ranks))
        self._last_save = time.monotonic()
        self._saved(self.run_dir.latest)

    def save_epoch(self, *, best: bool = False) -> None:
        """Write epoch_NNN once and make best (when this epoch improved `[eval] best`) the same file (a link,
        else a copy), and latest too with `keep_optimizer`; without it, epoch_NNN holds no optimiser state and
        latest is written whole beside it; all atomically. Then drop the epochs neither `keep_last` nor
        `keep_every` keeps."""
        ranks = self._rank_states()
        if not self.placement.is_main:
            return
        target = self.run_dir.epoch_checkpoint(self.state.counters.epoch)
        tensors, metadata = self._capture(ranks)
        if self.cfg.keep_optimizer:
            write_checkpoint(target, tensors, metadata)
            link_checkpoint(target, self.run_dir.latest)
        else:
            write_checkpoint(target, *_weights_only(tensors, metadata))
            write_checkpoint(self.run_dir.latest, tensors, metadata)
        if best:
            link_checkpoint(target, self.run_dir.best)
            write_json(self.run_dir.best_evaluation, self.state.best)
        self._last_save = time.monotonic()
        keep_every = self.cfg.keep_every
        epoch = self.state.counters.epoch  # later epochs of a run resumed from an earlier one are kept
        done = [(old, path) for old, path in self.run_dir.epoch_checkpoints().items() if old <= epoch]
        for old, path in done[:-self.cfg.keep_last]:
            if not (keep_every and old % keep_every == 0):
                path.unlink(missing_ok=True)
        self._saved(target)

    def resume(self) -> None:
        """Restore the state from the run directory's `resume_from` checkpoint when it names one (the later
        checkpoints stay), else from the newest that reads cleanly (a warning names those skipped)."""
        for leftover in self.run_dir.leftovers():  # a write cut short by a crash
            leftover.unlink(missing_ok=True)
        chosen = self.run_dir.resume_from
        if chosen is not None:
            check_resumable(chosen)
            self.state.restore(self.state.read(chosen), device=self.placement.device, rank=self.placement.rank,
                               world_size=self.placement.world_size)
            return
        latest = self.run_dir.latest
        candidates = resume_candidates(self.run_dir)  # weights-only epoch files are no place to continue from
        problems = [] if candidates[:1] == [latest] or not latest.exists() else [f"{latest.name} is damaged"]
        for path in candidates:
            try:
                ckpt = self.state.read(path)
            except P2PError as exc:  # a header that reads, tensors that do not
                problems.append(f"{path.name}: {exc.message}")
                continue
            if problems:
                warnings.warn(f"{'; '.join(problems)}; resuming from {path.name}, the newest checkpoint that "
                              "reads cleanly", stacklevel=3)
            self.state.restore(ckpt, device=self.placement.device, rank=self.placement.rank,
                               world_size=self.placement.world_size)
            return
        if self.run_dir.has_checkpoint():
            problems.append("the other checkpoints hold weights only (no optimiser state to continue with)")
        raise P2PError(f"no checkpoint to resume from in {self.run_dir.checkpoints}", file=str(self.run_dir.path),
                       details=problems, hint="start a new run elsewhere (another --out), from the newest weights "
                                              "with [init] checkpoint = \"PATH\" if you like")

    def _capture(self, ranks: list[dict[str, Any]] | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The run state as a checkpoint's tensors and metadata (captured once per save, whatever is written)."""
        return self.state.capture(self.recipe.to_toml_dict(), self.components(), ranks)

    def _saved(self, path: Path) -> None:
        c = self.state.counters
        self.callbacks.on_checkpoint(c.epoch, c.step, path)

    def _rank_states(self) -> list[dict[str, Any]] | None:
        """Every process's random state, for a data-parallel run's checkpoint (each process draws its own
        dropout masks); every process calls this at each save."""
        if self.placement.world_size == 1:
            return None
        own = {"torch": torch.get_rng_state()}
        if self.placement.device.type == "cuda":
            own["cuda"] = torch.cuda.get_rng_state(self.placement.device)
        return self.placement.gather(own)


def _weights_only(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> tuple[dict[str, torch.Tensor],
                                                                                       dict[str, Any]]:
    """A checkpoint without the optimisers' state and the gradient scalers' (the bulk of a checkpoint with Adam:
    two moments per weight), keeping the weights, averages and progress."""
    return ({name: t for name, t in tensors.items() if not name.startswith(OPTIMISER_TENSORS)},
            {key: value for key, value in metadata.items() if key not in ("optim", "scalers")})
