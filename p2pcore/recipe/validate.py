"""Validating a recipe: its shape, every component it names resolved against the host, its wiring and its
task's own checks; and loading a recipe file (extends, --set, validation, errors placed in the file that
wrote the key)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from p2pcore.api.base import ComponentRef
from p2pcore.api.tasks import RecipeView
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.plugins import Host, params_error
from p2pcore.recipe.files import UNSET, apply_overrides, locate, merge, origins, read_with_extends
from p2pcore.recipe.sections import LossSpec, OptimConfig, Recipe
from p2pcore.recipe.wiring import (
    check_evaluation,
    check_images,
    check_sizes,
    check_wiring,
    declared,
    recipe_view,
    unknown_name,
)
from p2pcore.rundir import safe_name


def validate_recipe(data: Mapping[str, Any], host: Host, *, file: str | None = None,
                    default_name: str | None = None, inference: bool = False) -> Recipe:
    """Validate the recipe's shape, every component it names, and its wiring: the run name, the roles and
    players its task declares, the tensors its loss terms read, the images the dataset gives, and what the
    task checks itself (`TaskParams.check`, `TaskParams.check_recipe`). All without torch. The task's
    default loss terms (`TaskParams.default_loss`) lie under the recipe's `[loss]`.

    `inference`: only what translating needs (the loss terms are dropped, the wiring not checked)."""
    data = dict(data)
    if inference:  # translating needs neither the objective, the metrics nor the callbacks (nor their plugins)
        data.pop("loss", None)
        data.pop("eval", None)
        data.pop("callbacks", None)
    if data.get(UNSET):
        raise P2PError("`unset` removes keys from the recipe a recipe file extends; here there is none",
                       file=file, key=UNSET, hint="drop `unset`")
    try:
        task = host.resolve("task", data.get("task", Recipe.model_fields["task"].default), key="task")
        spec = declared(task, host)
        if not inference:
            data["loss"] = _with_default_loss(task, data.get("loss", {}))
        model = data.get("model", {})
        if isinstance(model, Mapping):
            for role in model:
                if role not in spec.roles:
                    raise unknown_name("model role", role, spec.roles, key=f"model.{role}", task=task.name)
        optim = data.get("optim", {})
        if isinstance(optim, Mapping):  # a table names a player; any other unknown key is a misspelling
            for key, value in optim.items():
                if key not in OptimConfig.model_fields and not isinstance(value, Mapping):
                    guess = did_you_mean(key, OptimConfig.model_fields)
                    raise P2PError(f"unknown key {key!r}" + (f"; did you mean {guess!r}?" if guess else ""),
                                   key=f"optim.{key}", hint=f"[optim] takes: {', '.join(OptimConfig.model_fields)}"
                                   f", and [optim.<player>] tables ({', '.join(spec.players)})")
        recipe = Recipe.model_validate({**data, "task": task},
                                       context={"role_kinds": {r: s.kind for r, s in spec.roles.items()}})
    except ValidationError as exc:
        raise params_error(exc, Recipe, key="", what="a recipe").with_location(file=file) from None
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    if recipe.name is None and default_name:
        recipe = recipe.model_copy(update={"name": default_name})
    try:
        if not inference and recipe.name is not None:
            safe_name(recipe.name, key="name")  # the rule `p2p run` applies when it makes runs/<name>
        resolved = recipe.model_copy(update={
            "data": host.resolve("dataset", recipe.data, key="data"),
            "model": {role: host.resolve(ref.kind, ref, key=f"model.{role}") for role, ref in recipe.model.items()},
            "loss": {label: _resolved_loss(host, label, spec) for label, spec in recipe.loss.items()},
            "schedule": host.resolve("schedule", recipe.schedule, key="schedule"),
            "eval": recipe.eval.model_copy(update={"metrics": [
                host.resolve("metric", ref, key=f"eval.metrics.{ref.name}") for ref in recipe.eval.metrics]}),
            "callbacks": {label: host.resolve("callback", ref, key=f"callbacks.{label}")
                          for label, ref in recipe.callbacks.items()},
        })
        task.params.check(resolved.model)
        if not inference:
            check_wiring(resolved, spec)
            _check_recipe(resolved.task, recipe_view(resolved, spec, host))  # first: a task says it best
            check_images(resolved, spec, host)
            check_sizes(resolved, spec, host)
            check_evaluation(resolved, spec)
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    return resolved


def _with_default_loss(task: ComponentRef, loss: Any) -> Any:
    """The recipe's `[loss]` merged over the terms its task supplies by default, label by label."""
    defaults = task.params.default_loss()
    if not defaults or not isinstance(loss, Mapping):
        return loss
    if not isinstance(defaults, Mapping) or not all(isinstance(t, Mapping) for t in defaults.values()):
        raise P2PError(f"task {task.name!r} gives default loss terms that are not tables by label", key="task",
                       hint="this is a bug in the plugin that provides the task; report it there")
    return merge({label: dict(term) for label, term in defaults.items()}, loss)


def _check_recipe(task: ComponentRef, view: RecipeView) -> None:
    """The task's own check of the whole recipe; a ValueError it raises is reported at `task`."""
    try:
        task.params.check_recipe(view)
    except ValueError as exc:
        raise P2PError(f"task {task.name!r} cannot train this recipe: {exc}", key="task") from None


def _resolved_loss(host: Host, label: str, spec: LossSpec) -> LossSpec:
    ref = host.resolve("loss", spec.ref(), key=f"loss.{label}")
    resolved = LossSpec(weight=spec.weight, **ref.as_table())
    resolved._ref = ref
    return resolved


def load_recipe(path: str | Path, host: Host, overrides: Iterable[str] = ()) -> Recipe:
    """Read, merge `extends`, apply `--set` overrides and validate a recipe file."""
    path = Path(path)
    overrides = list(overrides)
    try:
        data = apply_overrides(read_with_extends(path), overrides)
    except P2PError as error:  # a --set that cannot apply: the recipe is the file it applies to
        raise error.with_location(file=str(path)) from None
    try:
        return validate_recipe(data, host, default_name=path.stem)
    except P2PError as error:
        raise locate(error, origins(path, overrides), str(path)) from None
