"""Contract check of training callbacks: every method takes the arguments the engine passes, through a
short run and its resumption, without changing what it is given."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from p2pcore.api.callbacks import CallbackParams, RunInfo
from p2pcore.plugins import Host
from p2pcore.testing.recipes import tiny_recipe
from p2pcore.testing.support import build, resolve

# Each method the engine calls, with the names of the arguments it passes, in order.
METHODS: dict[str, tuple[str, ...]] = {
    "on_run_start": ("run",), "on_step": ("step", "epoch", "figures"), "on_epoch_end": ("epoch", "figures"),
    "on_evaluation": ("epoch", "figures"), "on_checkpoint": ("epoch", "step", "path"), "on_run_end": ("status",),
}


def _check_signatures(callback: Any, what: str) -> None:
    """Every method exists and takes its documented arguments, by position and by name."""
    for method, names in METHODS.items():
        fn = getattr(callback, method, None)
        assert callable(fn), f"{what}: it has no {method}(); subclass p2pcore.api.Callback (whose methods do nothing)"
        signature = inspect.signature(fn)
        for how, args, kwargs in (("by position", names, {}), ("by name", (), dict.fromkeys(names))):
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise AssertionError(f"{what}: {method}{signature} cannot take ({', '.join(names)}) {how}: "
                                     f"{exc}") from None


def _call(callback: Any, method: str, *args: Any, what: str) -> None:
    try:
        getattr(callback, method)(*args)
    except TypeError as exc:
        if "does not support item assignment" in str(exc) or "immutable" in str(exc):
            raise AssertionError(f"{what}: {method} tried to change what it was given ({exc}); a callback "
                                 "observes the run, it never changes it") from exc
        raise


def _run(callback: Any, run: RunInfo, status: str, what: str) -> None:
    """The calls of a run of one epoch, as the engine makes them (figures read-only)."""
    _call(callback, "on_run_start", run, what=what)
    end = run.start_step + run.steps_per_epoch * (run.epochs - run.start_epoch)
    for step in range(run.start_step + 1, end + 1):
        epoch = (step - 1) // run.steps_per_epoch
        logged = {"G/l1": 0.5 / step, "G/gan": 0.7, "D/gan": 0.69} if step % 2 == 0 else {}
        _call(callback, "on_step", step, epoch, MappingProxyType(logged), what=what)
        if step % run.steps_per_epoch == 0:
            _call(callback, "on_epoch_end", epoch, MappingProxyType({"samples/l1": 0.25}), what=what)
            _call(callback, "on_evaluation", epoch,
                  MappingProxyType({"eval/psnr": 20.0 + epoch, "eval/fcn_score/iou": 0.5}), what=what)
            path = run.run_dir / "checkpoints" / f"epoch_{epoch + 1:04d}.safetensors"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")  # the file exists when on_checkpoint is called
            _call(callback, "on_checkpoint", epoch, step, path, what=what)
    _call(callback, "on_run_end", status, what=what)


def check_callback(host: Host, name: str, *, run_dir: str | Path | None = None, recipe: Mapping[str, Any] | None = None,
                   steps_per_epoch: int = 4, **params: Any) -> Any:
    """Build callback `name` and check its contract: params subclassing CallbackParams; every method of
    p2pcore.api.Callback present and taking the arguments the engine passes, by position and by name; a run
    of one epoch (run start, steps with and without logged figures, epoch end, evaluation, checkpoint, run
    end "interrupted"), then the same callback built again for a resumed second epoch in the same run
    directory (run end "finished"), all
    without an error and without changing the read-only figures it is given. `run_dir` (default a temporary
    folder) is where it may write. Returns the callback of the first run."""
    what = f"callback {name!r}"
    resolved = resolve(host, "callback", name, params)
    assert isinstance(resolved, CallbackParams), f"{what}: its params must subclass p2pcore.api.CallbackParams"
    first = build(host, "callback", name, params)
    _check_signatures(first, what)
    data = dict(recipe if recipe is not None else tiny_recipe(train={"epochs": 2}))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(run_dir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        run = RunInfo(run_dir=folder, recipe=data, epochs=1, steps_per_epoch=steps_per_epoch, start_epoch=0,
                      start_step=0, resumed=False)
        _run(first, run, "interrupted", what)
        again = build(host, "callback", name, params)
        _run(again, RunInfo(run_dir=folder, recipe=data, epochs=2, steps_per_epoch=steps_per_epoch, start_epoch=1,
                            start_step=steps_per_epoch, resumed=True), "finished", what)
    return first
