"""Contract check of tasks: the declaration, then one real training step and a translation."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from p2pcore.api.tasks import TaskParams, TaskSpec
from p2pcore.errors import P2PError
from p2pcore.kinds import NAMES
from p2pcore.plugins import Host
from p2pcore.testing.recipes import merged, tiny_recipe
from p2pcore.testing.support import resolve, shape

SIDES = ("generator", "discriminator")


def check_declaration(spec: Any, what: str) -> None:
    """What TaskSpec does not check itself: kinds, sides, and image keys of directions and visuals."""
    assert isinstance(spec, TaskSpec), f"{what}: declare() returned {type(spec).__name__}, not a TaskSpec"
    for role, declared in spec.roles.items():
        assert declared.kind in NAMES, f"{what}: role {role!r} has kind {declared.kind!r}; kinds are {NAMES}"
    for player, declared in spec.players.items():
        assert declared.side in SIDES, f"{what}: player {player!r} plays side {declared.side!r}, not one of {SIDES}"
    trained = {role for p in spec.players.values() for role in p.roles}
    for role, declared in spec.roles.items():
        assert declared.kind == "segmenter" or role in trained, \
            f"{what}: no player updates role {role!r}; name it in a Player"
    for name, direction in spec.directions.items():
        for key in (direction.input, direction.output):
            assert key in spec.images, f"{what}: direction {name!r} uses image key {key!r}, not in images " \
                                       f"{spec.images}"
    for tensor, key in spec.visuals.items():
        assert key in spec.images, f"{what}: visual {tensor!r} looks like {key!r}, not in images {spec.images}"


def check_task(host: Host, name: str, *, recipe: Mapping[str, Any] | None = None, out_dir: str | Path | None = None,
               **params: Any) -> Any:
    """Check task `name`: its params subclass TaskParams and `declare()` is consistent and repeatable;
    then one training step of `recipe` (default `tiny_recipe()`, with this task and `params`) through
    the real Trainer with max_steps 1 and a translation of each direction it offers. Returns the
    Trainer, its networks trained for one step."""
    import torch

    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    what = f"task {name!r}"
    resolved = resolve(host, "task", name, params)
    assert isinstance(resolved, TaskParams), f"{what}: its params must subclass p2pcore.api.TaskParams"
    try:
        spec = resolved.declare()
    except ValueError as exc:  # TaskSpec refuses a declaration that contradicts itself
        raise AssertionError(f"{what}: declare() is inconsistent: {exc}") from exc
    check_declaration(spec, what)
    assert resolved.declare() == spec, f"{what}: declare() gave another TaskSpec the second time"
    data = merged(recipe if recipe is not None else tiny_recipe(), {
        "task": {"name": name, **params}, "train": {"max_steps": 1, "epochs": 1}})
    with tempfile.TemporaryDirectory() as scratch:
        try:
            trainer = Trainer(validate_recipe(data, host, default_name="contract"), host,
                              Path(out_dir or scratch) / "run")
            result = trainer.fit()
        except P2PError as exc:
            raise AssertionError(f"{what}: one training step of {data} failed: {exc.message}"
                                 + (f" ({exc.hint})" if exc.hint else "")) from exc
    assert result.steps == 1, f"{what}: the run took {result.steps} steps, not 1"
    bad = {k: v for k, v in result.metrics.items() if not torch.isfinite(torch.tensor(float(v)))}
    assert not bad, f"{what}: non-finite figures after one step: {bad}"
    _check_translations(trainer, spec, what)
    return trainer


def _check_translations(trainer: Any, spec: TaskSpec, what: str) -> None:
    """Each direction maps an image of its input key to one of its output key, keeping the size."""
    import torch

    item = trainer.adapter.dataset("test", train=False)[0]
    channels = {"a": trainer.adapter.a_channels, "b": trainer.adapter.b_channels,
                **(getattr(trainer.adapter, "channels", {}) or {})}
    for net in trainer.nets.values():
        net.eval()
    for name, direction in spec.directions.items():
        image = item[direction.input][None]
        with torch.no_grad():
            out = trainer.task.translate(name, trainer.nets, image)
        expected = (1, channels[direction.output], *image.shape[-2:])
        assert isinstance(out, torch.Tensor) and tuple(out.shape) == expected, \
            f"{what}: translate({name!r}) of {tuple(image.shape)} gave {shape(out)}, expected {expected}"
