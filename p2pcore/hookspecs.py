"""Hook specifications: what a p2p plugin may implement.

A plugin is a module (or object) listed under the ``p2p.plugins`` entry-point group. It implements any of
these hooks with ``@hookimpl`` from :mod:`p2pcore.api`; a function named ``p2p_*`` that is not one of them (a
misspelt hook) makes the plugin fail to load. Its entry module declares the plugin API versions it
supports, ``P2P_API = ">=1,<2"`` (see :data:`p2pcore.api.API_VERSION`).

Each registration hook, one per component kind, receives a :class:`p2pcore.api.Register` callable bound
to the plugin, so every component records which distribution it came from::

    register(name, build, *, params=ParamsModel, aliases=(), summary=None, facts=None)

`params` derives from the kind's base class, which is also its default (the table of kinds,
:data:`p2pcore.kinds.KINDS`, gives each kind's hook, parameter base and contract): a plugin registering other
parameters fails to load, and ``p2p plugins`` names the component and the base it must use.

``build(params, ctx)`` is called later, when a recipe asks for the component, with the validated `params`
and a :class:`p2pcore.api.BuildContext` (derived channel counts, ``ctx.build(ref)`` for referenced
components); import heavy libraries (torch) inside it, never at module import time. ``facts(params) ->
dict`` optionally derives figures that ``p2p show`` prints (a receptive field), without torch.
"""

from __future__ import annotations

from typing import Any

import pluggy

from p2pcore.api.base import Register

hookspec = pluggy.HookspecMarker("p2p")


@hookspec
def p2p_register_norms(register: Register) -> None:
    """Register normalisation layers.

    :param register: ``register(name, build, *, params=Params, aliases=(), summary=None, facts=None)``.

    ``build(params, ctx)`` returns a :class:`p2pcore.api.NormFactory`: ``norm(channels) -> nn.Module`` with a
    ``conv_bias`` attribute telling the convolution before it whether to keep its bias.

    Example::

        @hookimpl
        def p2p_register_norms(register):
            register("group", lambda params, ctx: GroupNorm(params.groups), params=GroupParams)
    """


@hookspec
def p2p_register_generators(register: Register) -> None:
    """Register generator networks.

    :param register: ``register(name, build, *, params=Params, aliases=(), summary=None, facts=None)``;
        ``facts`` should give ``size_multiple``, so recipes are checked without torch.

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Generator`: an ``nn.Module`` from ctx.in_channels
    to ctx.out_channels, ending in Tanh, that keeps the spatial size of inputs whose sides are multiples of
    its ``size_multiple`` attribute.

    Example::

        @hookimpl
        def p2p_register_generators(register):
            register("tiny", build_tiny, params=TinyParams, facts=lambda p: {"size_multiple": 2 ** p.depth})
    """


@hookspec
def p2p_register_discriminators(register: Register) -> None:
    """Register discriminator networks.

    :param register: ``register(name, build, *, params=DiscriminatorParams, aliases=(), summary=None,
        facts=None)``; `params` subclasses :class:`p2pcore.api.DiscriminatorParams` (``conditional``,
        ``spectral_norm``).

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Discriminator`: an ``nn.Module`` taking
    ctx.in_channels and returning a map of logits (or a list of maps for multi-scale discriminators), with
    ``receptive_field`` and ``conditional`` attributes.

    Example::

        @hookimpl
        def p2p_register_discriminators(register):
            register("critic", build_critic, params=CriticParams)   # CriticParams(DiscriminatorParams)
    """


@hookspec
def p2p_register_losses(register: Register) -> None:
    """Register loss terms.

    :param register: ``register(name, build, *, params=LossParams, aliases=(), summary=None, facts=None)``;
        `params` subclasses :class:`p2pcore.api.LossParams`, whose ``reads()`` names the step tensors the
        term reads (``p2p validate`` checks them against the task).

    ``build(params, ctx)`` returns a :class:`p2pcore.api.LossTerm` (``generator_loss(t)`` and/or
    ``discriminator_loss(t)``); one that owns a network may also be an ``nn.Module``.

    Example::

        @hookimpl
        def p2p_register_losses(register):
            register("tv", lambda params, ctx: TotalVariation(params.tensor), params=TVParams)
    """


@hookspec
def p2p_register_datasets(register: Register) -> None:
    """Register dataset adapters.

    :param register: ``register(name, build, *, params=DatasetParams, aliases=(), summary=None,
        facts=None)``; `params` subclasses :class:`p2pcore.api.DatasetParams`.

    ``build(params, ctx)`` returns a :class:`p2pcore.api.DatasetAdapter` without touching the disk: items
    with :data:`p2pcore.api.BATCH_KEYS`, ``check(split, *, deep=False)`` returning a
    :class:`p2pcore.api.DataReport`; :func:`p2pcore.api.make_jitter` and :func:`p2pcore.api.jitter` crop and
    flip the images of an item alike.

    Example::

        @hookimpl
        def p2p_register_datasets(register):
            register("my_pairs", lambda params, ctx: MyPairs(params), params=MyPairsParams,  # (DatasetParams)
                     aliases=("pairs2",))
    """


@hookspec
def p2p_register_tasks(register: Register) -> None:
    """Register tasks (pix2pix, cyclegan, ...).

    :param register: ``register(name, build, *, params=TaskParams, aliases=(), summary=None, facts=None)``;
        `params` subclasses :class:`p2pcore.api.TaskParams`, whose ``declare()`` gives the roles, players,
        tensors and directions without torch.

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Task`.

    Example::

        @hookimpl
        def p2p_register_tasks(register):
            register("denoise2way", lambda params, ctx: Denoise2Way(params), params=Denoise2WayParams)
    """


@hookspec
def p2p_register_schedules(register: Register) -> None:
    """Register learning-rate schedules.

    :param register: ``register(name, build, *, params=ScheduleParams, aliases=(), summary=None,
        facts=None)``; `params` subclasses :class:`p2pcore.api.ScheduleParams` (``per`` epoch or step).

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Schedule`: ``factor(epoch, epochs)`` multiplies the
    learning rates.

    Example::

        @hookimpl
        def p2p_register_schedules(register):
            register("exponential", lambda params, ctx: Exponential(params.gamma), params=ExponentialParams)
    """


@hookspec
def p2p_register_metrics(register: Register) -> None:
    """Register evaluation metrics.

    :param register: ``register(name, build, *, params=MetricParams, aliases=(), summary=None,
        facts=None)``; `params` subclasses :class:`p2pcore.api.MetricParams`, whose ``figures()`` names what
        the metric reports and ``paired()`` whether it needs targets.

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Metric` (``reset``, ``update(comparison)``,
    ``compute()``).

    Example::

        @hookimpl
        def p2p_register_metrics(register):
            register("mae", lambda params, ctx: MeanAbsoluteError(), params=MaeParams)
    """


@hookspec
def p2p_register_segmenters(register: Register) -> None:
    """Register semantic segmentation networks (for the FCN-score).

    :param register: ``register(name, build, *, params=Params, aliases=(), summary=None, facts=None)``;
        `params` name the local file holding the weights (a segmenter never downloads).

    ``build(params, ctx)`` returns an ``nn.Module`` meeting :class:`p2pcore.api.Segmenter` (``classes``,
    ``palette``, ``ignore_index``), with its weights loaded.

    Example::

        @hookimpl
        def p2p_register_segmenters(register):
            register("my_fcn", lambda params, ctx: load_fcn(params.weights), params=FcnParams)
    """


@hookspec
def p2p_register_callbacks(register: Register) -> None:
    """Register training callbacks (loggers, dashboards, notifiers).

    :param register: ``register(name, build, *, params=CallbackParams, aliases=(), summary=None,
        facts=None)``; `params` subclasses :class:`p2pcore.api.CallbackParams` (a recipe's
        ``[callbacks.<label>]`` table).

    ``build(params, ctx)`` returns a :class:`p2pcore.api.Callback`: the engine calls its ``on_run_start(run)``
    (a :class:`p2pcore.api.RunInfo`), ``on_step(step, epoch, figures)``, ``on_epoch_end(epoch, figures)``,
    ``on_evaluation(epoch, figures)``, ``on_checkpoint(epoch, step, path)`` and ``on_run_end(status)`` in the
    main process, between steps; each is optional (the base class's do nothing). A callback observes the run,
    never changes it.

    Example::

        @hookimpl
        def p2p_register_callbacks(register):
            register("csv", lambda params, ctx: CsvLogger(params.file), params=CsvParams)   # CsvParams(CallbackParams)
    """


@hookspec
def p2p_add_commands(app: Any) -> None:
    """Add sub-commands to the ``p2p`` command.

    :param app: the ``typer.Typer`` application; ``p2p --help`` runs this hook, so keep torch out of the
        module defining the command (import it inside the command).

    Example::

        @hookimpl
        def p2p_add_commands(app):
            from my_plugin.commands import cluster   # a torch-free module

            app.command("cluster")(cluster)
    """
