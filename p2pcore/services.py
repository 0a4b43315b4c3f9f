"""Services for commands a plugin adds: the plugin host, a trained run rebuilt from its checkpoint, and networks
from elsewhere written as a checkpoint. They need the engine, so they live above it; plugins reach them through
the :mod:`p2pcore.api` facade."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from p2pcore.api.base import Builder

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from p2pcore.engine.build.trained import TrainedRun

__all__ = ["TrainedRun", "load_host", "load_trained", "write_weights"]


def __getattr__(name: str) -> Any:
    """`TrainedRun` lives with the opener in the engine; it is imported when asked for, so that this module
    (and `p2pcore.api.load_host`) stays free of torch."""
    if name == "TrainedRun":
        from p2pcore.engine.build.trained import TrainedRun

        return TrainedRun
    raise AttributeError(f"module 'p2pcore.services' has no attribute {name!r}")


def load_trained(checkpoint: str | Any, *, roles: Iterable[str], data: Mapping[str, Any] | None = None,
                 device: str = "cpu", builder: Builder | None = None) -> TrainedRun:
    """Rebuild a checkpoint's task, dataset adapter and networks, for commands a plugin adds that use
    trained networks (``p2p cluster`` encodes a dataset with an encoder), exactly as ``p2p translate`` and
    ``p2p eval`` open a checkpoint.

    The components the checkpoint was made with must be installed (a missing one names the distribution to
    install). The networks are those the task builds when `roles` are wanted, loaded with the checkpoint's
    weight average where it keeps one, else its last weights, and moved to `device` (``cpu``, ``cuda:N``,
    ``auto``); they are left in the mode the task built them in. `data` updates the recipe's ``[data]``
    table (``{"root": ...}`` to read the dataset elsewhere), or replaces it when it names another adapter.
    A role the recipe lacks, or a checkpoint that does not fit its recipe, is a P2PError naming the file."""
    from p2pcore.engine.build.trained import open_trained

    return open_trained(checkpoint, builder if builder is not None else load_host(), roles=list(roles),
                        data=data, device=device)


def load_host(*, strict: bool = False) -> Any:
    """The plugin host, as the ``p2p`` command loads it: every installed plugin's components, for a command a
    plugin adds that builds or validates components. Its public methods: ``build(kind, spec, in_channels=...,
    out_channels=...)`` makes a component from a name or a table, ``resolve(kind, spec)`` validates a spec
    (``.as_table()`` spells out every default, as a run's recipe records it) and ``describe(kind, spec)``
    names the plugin and version providing it. `strict`: a plugin that fails to load is an error."""
    from p2pcore.plugins import load_host as load

    return load(strict=strict)


def write_weights(path: str | Any, recipe: Mapping[str, Any], nets: Mapping[str, nn.Module], *, source: str,
                  host: Any | None = None) -> None:
    """Write networks brought from elsewhere (``p2p import`` converts other implementations' files) as a p2p
    checkpoint holding weights only, with the recipe that rebuilds them: ``p2p translate``, ``export`` and
    ``init.checkpoint`` then use it like a trained run's, and ``p2p run --resume`` refuses it.

    `recipe` needs ``task``, ``data`` and a ``model`` table naming each role of `nets`; it is validated first
    as ``p2p translate`` reads it (loss terms and metrics are not needed), so a checkpoint that could not be
    translated is never written: the P2PError names the key. The task, the dataset adapter and each network
    are recorded with their plugins' versions; `source` says where the weights came from (``p2p inspect``
    shows it). The file is written atomically."""
    from p2pcore.checkpoint.files import write_checkpoint
    from p2pcore.checkpoint.format import checkpoint_metadata
    from p2pcore.recipe import validate_recipe

    host = host if host is not None else load_host()
    model = recipe.get("model", {})
    if set(model) != set(nets):
        raise ValueError(f"write_weights: the recipe's model roles {sorted(model)} are not the networks' "
                         f"{sorted(nets)}")
    checked = validate_recipe(recipe, host, inference=True)
    refs = [checked.task, checked.data, *(checked.model[role] for role in nets)]
    tensors = {f"net.{role}.{key}": value for role, net in nets.items() for key, value in net.state_dict().items()}
    metadata = checkpoint_metadata(recipe, [host.describe(ref.kind, ref) for ref in refs], source=source)
    write_checkpoint(path, tensors, metadata)
