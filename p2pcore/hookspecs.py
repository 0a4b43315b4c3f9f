"""Hook specifications: what a p2p plugin may implement.

A plugin is a module (or object) listed under the ``p2p.plugins`` entry-point group. It
implements any of these hooks with ``@hookimpl`` from :mod:`p2pcore.api`. Each registration
hook receives a ``register`` callable bound to the plugin, so every component records which
distribution it came from::

    register(name, build, params=ParamsModel, aliases=(), summary=None, facts=None)

``build(params, ctx)`` is called later, when a recipe asks for the component; import heavy
libraries (torch) inside it, never at module import time. ``facts(params) -> dict`` optionally derives
figures that `p2p show` prints (a receptive field), without torch.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("p2p")


@hookspec
def p2p_register_norms(register: Any) -> None:
    """Register normalisation layers. ``build`` returns a :class:`p2pcore.api.NormFactory`."""


@hookspec
def p2p_register_generators(register: Any) -> None:
    """Register generator networks. ``build`` returns an ``nn.Module`` from ctx.in_channels to
    ctx.out_channels that keeps the spatial size of inputs whose sides are multiples of its
    ``size_multiple`` attribute."""


@hookspec
def p2p_register_discriminators(register: Any) -> None:
    """Register discriminator networks. ``build`` returns an ``nn.Module`` taking ctx.in_channels
    and returning a prediction map (or a list of maps for multi-scale discriminators)."""


@hookspec
def p2p_register_losses(register: Any) -> None:
    """Register loss terms. ``params`` subclasses :class:`p2pcore.api.LossParams` (its ``reads()``
    names the step tensors the term reads); ``build`` returns a :class:`p2pcore.api.LossTerm`."""


@hookspec
def p2p_register_datasets(register: Any) -> None:
    """Register dataset adapters. ``build`` returns a :class:`p2pcore.api.DatasetAdapter`."""


@hookspec
def p2p_register_tasks(register: Any) -> None:
    """Register tasks (pix2pix, cyclegan, ...). ``params`` subclasses :class:`p2pcore.api.TaskParams`
    (its ``declare()`` gives the roles, players, tensors and directions); ``build`` returns a
    :class:`p2pcore.api.Task`."""


@hookspec
def p2p_register_schedules(register: Any) -> None:
    """Register learning-rate schedules. ``params`` subclasses :class:`p2pcore.api.ScheduleParams`;
    ``build`` returns a :class:`p2pcore.api.Schedule`."""


@hookspec
def p2p_register_metrics(register: Any) -> None:
    """Register evaluation metrics. ``params`` subclasses :class:`p2pcore.api.MetricParams` (its ``figures()``
    names what it reports); ``build`` returns a :class:`p2pcore.api.Metric`."""


@hookspec
def p2p_register_segmenters(register: Any) -> None:
    """Register semantic segmentation networks (for the FCN-score). ``build`` returns an ``nn.Module``
    meeting :class:`p2pcore.api.Segmenter`, loading its weights from a local path its parameters name."""


@hookspec
def p2p_add_commands(app: Any) -> None:
    """Add sub-commands to the ``p2p`` typer application."""
