"""Wiring checks of a validated recipe against what its task declares: roles, players, the tensors the
loss terms read, the images the dataset gives, the `[eval]` figures and the image sizes the generators
need; and the read-only view of a recipe that a task's own check sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from p2pcore.api.base import ComponentRef
from p2pcore.api.tasks import RecipeTerm, RecipeView, TaskSpec
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.plugins import Host, params_error
from p2pcore.recipe.sections import EvalConfig, Recipe
from p2pcore.records import eval_figures, sample_figures


def declared(task: ComponentRef, host: Host | None = None) -> TaskSpec:
    """What a resolved task declares; a declaration that contradicts itself is the plugin's bug."""
    try:
        return task.params.declare()
    except (ValueError, TypeError, NotImplementedError) as exc:
        origin = f" (from {host.component(task).distribution})" if host else ""
        raise P2PError(f"task {task.name!r}{origin} declares itself inconsistently: {exc}", key="task",
                       hint="this is a bug in the plugin that provides the task; report it there") from None


def task_spec(recipe: Recipe) -> TaskSpec:
    """What the recipe's (resolved) task declares."""
    return declared(recipe.task)


def check_wiring(recipe: Recipe, spec: TaskSpec) -> None:
    """Roles the task needs, players with optimiser settings, tensors the loss terms read."""
    task = recipe.task.name
    for role, declared in spec.roles.items():
        if declared.required and role not in recipe.model:
            raise P2PError(f"task {task!r} needs a {declared.kind} as model.{role}", key=f"model.{role}",
                           hint=f"add a [model.{role}] table with the name of a registered {declared.kind} "
                                f"(see `p2p list {declared.kind}`)")
    for player in recipe.optim.players:
        if player not in spec.players:
            raise unknown_name("player", player, spec.players, key=f"optim.{player}", task=task)
    for label, term in recipe.loss.items():
        if term.weight == 0:  # off: not computed, so what it reads need not exist
            continue
        for tensor in sorted(term.ref().params.reads()):
            if tensor not in spec.tensors:
                raise unknown_name("tensor", tensor, spec.tensors, key=f"loss.{label}", task=task,
                               verb=f"loss.{label} reads")
            for role in spec.tensors[tensor]:
                if role not in recipe.model:
                    raise P2PError(f"loss.{label} reads {tensor!r}, which needs model.{role}",
                                   key=f"model.{role}", hint=f"add a [model.{role}] table, or drop loss.{label}")


def check_images(recipe: Recipe, spec: TaskSpec, host: Host) -> None:
    """Every image key the task reads (`TaskSpec.images`) is one the dataset's items carry, as its
    parameters declare them (`DatasetParams.image_channels`; not checked when they do not say)."""
    given = recipe.data.params.image_channels()
    if given is None:
        return
    for image in spec.images:
        if image not in given:
            others = [name for name in _datasets_giving(host, image) if name != recipe.data.name]
            raise P2PError(f"task {recipe.task.name!r} reads the image {image!r}, which dataset {recipe.data.name!r} "
                           f"does not give (its items carry {', '.join(map(repr, given))})", key="data",
                           hint=(f"datasets that give {image!r}: {', '.join(others)}" if others else
                                 f"choose a dataset whose items carry {image!r}") + " (`p2p list dataset`)")


def _datasets_giving(host: Host, image: str) -> list[str]:
    """The registered datasets whose items carry `image` with their default parameters."""
    names = []
    for component in host.registry.specs("dataset"):
        try:
            given = component.params.model_construct().image_channels()
        except Exception:  # noqa: BLE001 - parameters without defaults: the dataset cannot say here
            continue
        if given and image in given:
            names.append(component.name)
    return names


def recipe_view(recipe: Recipe, spec: TaskSpec, host: Host) -> RecipeView:
    """What a task's `check_recipe` sees of a resolved recipe: roles with their parameters and derived facts,
    the terms that are on, the dataset and the channels of its images."""
    facts = {}
    for role, ref in recipe.model.items():
        derive = host.component(ref).facts
        facts[role] = dict(derive(ref.params)) if derive is not None else {}
    return RecipeView(task=recipe.task, spec=spec, model=recipe.model, facts=facts,
                      loss={label: RecipeTerm(term.ref(), term.weight) for label, term in recipe.loss.items()
                            if term.weight != 0},
                      data=recipe.data, channels=recipe.data.params.image_channels())


def check_evaluation(recipe: Recipe, spec: TaskSpec, *, training: bool = True) -> None:
    """`[eval]` names directions the task offers, each metric once and each applicable somewhere; for
    training, `best` and what the schedule reads are figures the run logs at epoch ends."""
    task = recipe.task.name
    for direction in recipe.eval.directions:
        if direction not in spec.directions:
            raise unknown_name("direction", direction, spec.directions, key="eval.directions", task=task)
    seen: set[str] = set()
    scope = recipe.eval.directions or list(spec.directions)
    for ref in recipe.eval.metrics:
        if ref.name in seen:
            raise P2PError(f"metric {ref.name!r} is listed twice", key=f"eval.metrics.{ref.name}",
                           hint="list each metric once")
        seen.add(ref.name)
        if ref.params.paired() and not any(spec.directions[d].target for d in scope):
            raise P2PError(f"metric {ref.name!r} compares each output with its target, but task {task!r} has no "
                           "target for " + ("the directions evaluated" if recipe.eval.directions else
                                            "any direction"), key=f"eval.metrics.{ref.name}",
                           hint="use metrics that compare sets of images (frechet_distance, "
                                "lab_histogram_intersection), or a paired task")
    if not training:
        return
    logged = set(eval_figures(recipe, spec))
    if recipe.eval.best is not None and recipe.eval.best not in logged:
        raise _unlogged(recipe.eval.best, logged, key="eval.best")
    at_epoch_ends = logged | set(sample_figures(spec).values())
    for figure in sorted(recipe.schedule.params.reads()):
        if figure not in at_epoch_ends:
            raise _unlogged(figure, at_epoch_ends, key="schedule")


def resolve_eval(table: Mapping[str, Any], recipe: Recipe, host: Host) -> EvalConfig:
    """An `[eval]` table validated for a recipe (its metrics resolved) and checked against its task: for
    evaluating a checkpoint, whose recipe was read without its `[eval]`. `best` plays no part there."""
    try:
        config = EvalConfig.model_validate({**table, "best": None})
    except ValidationError as exc:
        raise params_error(exc, EvalConfig, key="eval", what="an [eval] table") from None
    config = config.model_copy(update={"metrics": [host.resolve("metric", ref, key=f"eval.metrics.{ref.name}")
                                                   for ref in config.metrics]})
    check_evaluation(recipe.model_copy(update={"eval": config}), task_spec(recipe), training=False)
    return config


def _unlogged(figure: str, logged: Iterable[str], *, key: str) -> P2PError:
    guess = did_you_mean(figure, logged)
    return P2PError(f"{figure!r} is not a figure this run logs at epoch ends", key=key,
                    hint=(f"did you mean {guess!r}? " if guess else "")
                    + (f"logged: {', '.join(sorted(logged))}" if logged else "add the metric to [eval] metrics"))


def check_sizes(recipe: Recipe, spec: TaskSpec, host: Host) -> None:
    """Fixed-size training images must fit each generator's size multiple (a U-Net of depth 8 needs
    sides that are multiples of 256); padding a 64 px crop to 256 would train on padding. The size is
    what the dataset's parameters declare (`DatasetParams.item_size`)."""
    size = recipe.data.params.item_size()  # the dataset kind's parameters derive from DatasetParams
    if size is None:
        return
    side, key = size.side, f"data.{size.key}"
    for role, ref in recipe.model.items():
        component = host.component(ref)
        if spec.roles[role].kind != "generator" or component.facts is None:
            continue
        multiple = component.facts(ref.params).get("size_multiple")
        if isinstance(multiple, int) and side % multiple:
            raise P2PError(f"{ref.name} as configured needs image sides that are multiples of {multiple}, but "
                           f"{key} is {side}", key=f"model.{role}",
                           hint=f"choose a generator for {side} px images (a U-Net of depth d needs multiples of "
                                f"2^d) or change {key}")


def unknown_name(what: str, name: str, known: Iterable[str], *, key: str, task: str, verb: str = "") -> P2PError:
    guess = did_you_mean(name, known)
    message = f"{verb} {what} {name!r}, which task {task!r} does not provide" if verb else \
        f"task {task!r} has no {what} {name!r}"
    return P2PError(message, key=key,
                    hint=(f"did you mean {guess!r}? " if guess else "") + f"{task} offers: {', '.join(known)}")
