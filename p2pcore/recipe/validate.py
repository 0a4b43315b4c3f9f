"""Validating a recipe: its shape, every component it names resolved against the host, its wiring and its
task's own checks; and loading a recipe file (extends, --set, validation, errors placed in the file that
wrote the key)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from p2pcore.api.base import ComponentRef
from p2pcore.api.tasks import RecipeView, TaskSpec
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.plugins import Host, params_error
from p2pcore.recipe.files import UNSET, apply_overrides, check_integers, locate, merge, origins, read_with_extends
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


class RecipeMistakes(P2PError):
    """Every mistake found in a recipe at once, each a P2PError with its own file, key and hint; shown as one
    error listing them (a recipe with a single mistake raises that mistake itself)."""

    def __init__(self, mistakes: Iterable[P2PError], *, file: str | None = None) -> None:
        self.mistakes = list(mistakes)
        shown = [_mistake_line(m, file) for m in self.mistakes[:MAX_SHOWN]]
        if len(self.mistakes) > MAX_SHOWN:
            shown.append(f"and {len(self.mistakes) - MAX_SHOWN} more")
        super().__init__(f"{len(self.mistakes)} mistakes in the recipe", file=file, details=shown,
                         hint="fix each of them; `p2p validate` lists what is left")

    def with_location(self, *, file: str | None = None, key_prefix: str | None = None) -> RecipeMistakes:
        return RecipeMistakes([m.with_location(file=file, key_prefix=key_prefix) for m in self.mistakes],
                              file=self.file or file)

    def located(self, place: Callable[[P2PError], P2PError], file: str) -> RecipeMistakes:
        """The same mistakes, each placed by `place` (in the file that wrote its key)."""
        return RecipeMistakes([place(m) for m in self.mistakes], file=file)


MAX_SHOWN = 19
"""The mistakes listed one by one (with their hints: still one screen)."""


def _mistake_line(error: P2PError, file: str | None) -> str:
    where = error.key or "(the recipe)"
    if error.file and error.file != file:
        where += f" in {error.file}"
    lines = [f"{where}: {error.message}", *(f"    {line}" for line in error.details[:5])]
    if error.hint:
        lines.append(f"    hint: {error.hint}")
    return "\n".join(lines)


def _raised(mistakes: list[P2PError], file: str | None) -> P2PError:
    unique = list({(m.key, m.message): m for m in mistakes}.values())
    if len(unique) == 1:
        return unique[0].with_location(file=file)
    return RecipeMistakes(unique, file=file).with_location(file=file)


def validate_recipe(data: Mapping[str, Any], host: Host, *, file: str | None = None,
                    default_name: str | None = None, inference: bool = False) -> Recipe:
    """Validate the recipe's shape, every component it names, and its wiring: the run name, the roles and
    players its task declares, the tensors its loss terms read, the images the dataset gives, and what the
    task checks itself (`TaskParams.check`, `TaskParams.check_recipe`). All without torch. The task's
    default loss terms (`TaskParams.default_loss`) lie under the recipe's `[loss]`.

    Every mistake found is reported together (`RecipeMistakes`): the shape and the components first, the
    wiring once those hold. `inference`: only what translating needs (the loss terms are dropped, the wiring
    not checked)."""
    data = dict(data)
    if inference:  # translating needs neither the objective, the metrics nor the callbacks (nor their plugins)
        data.pop("loss", None)
        data.pop("eval", None)
        data.pop("callbacks", None)
    if data.get(UNSET):
        raise P2PError("`unset` removes keys from the recipe a recipe file extends; here there is none",
                       file=file, key=UNSET, hint="drop `unset`")
    try:
        check_integers(data)
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    mistakes: list[P2PError] = []
    task, spec = _task(data, host, mistakes)
    shaped = _shape(data, task, spec, inference, mistakes)
    recipe = _validated(shaped, task, spec, mistakes)
    if recipe is None:
        _raw_component_mistakes(shaped, host, spec, mistakes)
        raise _raised(mistakes, file)
    if recipe.name is None and default_name:
        recipe = recipe.model_copy(update={"name": default_name})
    if not inference and recipe.name is not None:
        _attempt(mistakes, lambda: safe_name(recipe.name, key="name"))  # p2p run's rule for runs/<name>
    resolved = _resolved(recipe, host, mistakes)
    if mistakes or resolved is None:
        raise _raised(mistakes, file)
    _attempt(mistakes, lambda: resolved.task.params.check(resolved.model))
    if not inference and not mistakes:
        _attempt(mistakes, lambda: _check_networks(resolved, spec, host))
        _attempt(mistakes, lambda: check_evaluation(resolved, spec))
    if mistakes:
        raise _raised(mistakes, file)
    return resolved


def _check_networks(recipe: Recipe, spec: TaskSpec, host: Host) -> None:
    """The wiring of the networks, the objective and the data, in the order that says a problem best: the
    first mistake only, as the later checks often say the same again in other words."""
    check_wiring(recipe, spec)
    _check_recipe(recipe.task, recipe_view(recipe, spec, host))  # first: a task says it best
    check_images(recipe, spec, host)
    check_sizes(recipe, spec, host)


def _attempt(mistakes: list[P2PError], check: Callable[[], Any], default: Any = None) -> Any:
    """`check()`, or `default` with its P2PError noted in `mistakes`."""
    try:
        return check()
    except P2PError as exc:
        mistakes.append(exc)
        return default


def _task(data: Mapping[str, Any], host: Host, mistakes: list[P2PError]) -> tuple[Any, TaskSpec | None]:
    """The resolved task and what it declares, or (None, None) with the mistake noted."""
    task = _attempt(mistakes, lambda: host.resolve("task", data.get("task", Recipe.model_fields["task"].default),
                                                   key="task"))
    if task is None:
        return None, None
    spec = _attempt(mistakes, lambda: declared(task, host))
    return (task, spec) if spec is not None else (None, None)


def _shape(data: dict[str, Any], task: Any, spec: TaskSpec | None, inference: bool,
           mistakes: list[P2PError]) -> dict[str, Any]:
    """The data the recipe's schema validates: the task's default loss terms merged in; unknown model roles
    and misspelt `[optim]` keys noted as mistakes and left out (so they are not reported twice)."""
    shaped = dict(data)
    if task is not None and not inference:
        shaped["loss"] = _attempt(mistakes, lambda: _with_default_loss(task, data.get("loss", {})),
                                  data.get("loss", {}))
    model = data.get("model", {})
    if isinstance(model, Mapping):
        if spec is None:  # roles and their kinds come from the task
            shaped.pop("model", None)
        else:
            for role in model:
                if role not in spec.roles:
                    mistakes.append(unknown_name("model role", role, spec.roles, key=f"model.{role}",
                                                 task=task.name))
            shaped["model"] = {role: value for role, value in model.items() if role in spec.roles}
    optim = data.get("optim", {})
    if isinstance(optim, Mapping):  # a table names a player; any other unknown key is a misspelling
        players = ", ".join(spec.players) if spec is not None else "by player"
        for key, value in optim.items():
            if key not in OptimConfig.model_fields and not isinstance(value, Mapping):
                guess = did_you_mean(key, OptimConfig.model_fields)
                mistakes.append(P2PError(
                    f"unknown key {key!r}" + (f"; did you mean {guess!r}?" if guess else ""), key=f"optim.{key}",
                    hint=f"[optim] takes: {', '.join(OptimConfig.model_fields)}, and [optim.<player>] tables "
                         f"({players})"))
        shaped["optim"] = {key: value for key, value in optim.items()
                           if key in OptimConfig.model_fields or isinstance(value, Mapping)}
    if task is None:
        shaped.pop("task", None)
    return shaped


def _validated(shaped: dict[str, Any], task: Any, spec: TaskSpec | None,
               mistakes: list[P2PError]) -> Recipe | None:
    """The recipe as its schema reads it, or None with each problem noted (one mistake per key)."""
    try:
        recipe = Recipe.model_validate({**shaped, **({"task": task} if task is not None else {})},
                                       context={"role_kinds": {r: s.kind for r, s in spec.roles.items()}
                                                if spec is not None else {}})
    except ValidationError as exc:
        mistakes.extend(_each_problem(exc))
        return None
    return recipe if task is not None else None


def _each_problem(exc: ValidationError) -> list[P2PError]:
    """One P2PError for each key the schema found at fault, with its own hint."""
    by_key: dict[tuple[str, ...], list[Any]] = {}
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"] if not any(c in str(p) for c in "-["))
        while loc and loc[-1].isdigit():  # the items of one list (betas = [2.0, 5.0]) are one key's mistake
            loc = loc[:-1]
        line = {"type": error["type"], "loc": error["loc"], "input": error.get("input")}
        if "ctx" in error:
            line["ctx"] = error["ctx"]
        by_key.setdefault(loc, []).append(line)
    try:
        return [params_error(ValidationError.from_exception_data(exc.title, lines), Recipe, key="", what="a recipe")
                for lines in by_key.values()]
    except (KeyError, TypeError, ValueError):  # an error type that cannot be rebuilt: one error for them all
        return [params_error(exc, Recipe, key="", what="a recipe")]


def _resolved(recipe: Recipe, host: Host, mistakes: list[P2PError]) -> Recipe | None:
    """The recipe with every component it names resolved against the host (each one tried)."""
    def resolve(kind: str, spec: Any, key: str) -> Any:
        return _attempt(mistakes, lambda: host.resolve(kind, spec, key=key))

    before = len(mistakes)
    update = {
        "data": resolve("dataset", recipe.data, "data"),
        "model": {role: resolve(ref.kind, ref, f"model.{role}") for role, ref in recipe.model.items()},
        "loss": {label: _attempt(mistakes, lambda label=label, spec=spec: _resolved_loss(host, label, spec))
                 for label, spec in recipe.loss.items()},
        "schedule": resolve("schedule", recipe.schedule, "schedule"),
        "eval": recipe.eval.model_copy(update={"metrics": [
            resolve("metric", ref, f"eval.metrics.{ref.name}") for ref in recipe.eval.metrics]}),
        "callbacks": {label: resolve("callback", ref, f"callbacks.{label}")
                      for label, ref in recipe.callbacks.items()},
    }
    return recipe.model_copy(update=update) if len(mistakes) == before else None


def _raw_component_mistakes(data: Mapping[str, Any], host: Host, spec: TaskSpec | None,
                            mistakes: list[P2PError]) -> None:
    """When the recipe's shape is wrong: the components it names, resolved one by one from the data as written,
    so that an unknown generator is reported beside a misspelt key. Keys already at fault are left alone."""
    def at_fault(key: str) -> bool:
        return any(m.key and (m.key == key or m.key.startswith(f"{key}.") or key.startswith(f"{m.key}."))
                   for m in mistakes)

    def table(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    wanted: list[tuple[str, Any, str]] = []
    if "data" in data:
        wanted.append(("dataset", data["data"], "data"))
    if spec is not None:
        wanted += [(spec.roles[role].kind, value, f"model.{role}") for role, value in table(data.get("model")).items()
                   if role in spec.roles]
    for label, term in table(data.get("loss")).items():
        if isinstance(term, Mapping):
            wanted.append(("loss", {k: v for k, v in term.items() if k != "weight"}, f"loss.{label}"))
    wanted.append(("schedule", data.get("schedule", Recipe.model_fields["schedule"].default), "schedule"))
    metrics = table(data.get("eval")).get("metrics", [])
    for metric in metrics if isinstance(metrics, list) else []:
        name = metric.get("name") if isinstance(metric, Mapping) else metric
        wanted.append(("metric", metric, f"eval.metrics.{name}"))
    wanted += [("callback", value, f"callbacks.{label}") for label, value in table(data.get("callbacks")).items()]
    for kind, value, key in wanted:
        if at_fault(key):
            continue
        try:
            host.resolve(kind, value, key=key)
        except P2PError as exc:
            mistakes.append(exc)
        except (TypeError, ValueError, AttributeError, KeyError):  # a shape the schema has reported
            continue


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
    except RecipeMistakes as error:
        where = origins(path, overrides)
        raise error.located(lambda mistake: locate(mistake, where, str(path)), str(path)) from None
    except P2PError as error:
        raise locate(error, origins(path, overrides), str(path)) from None
