"""Recipes: TOML files validated by pydantic against the live registry.

A recipe may `extends` another file (paths relative to itself); tables merge key by key, and a
component table that names a different component replaces the inherited one whole.
`--set key.path=value` overrides go through the same validation.
"""

from __future__ import annotations

import copy
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from p2pcore.api.base import Checked, ComponentRef, DatasetRef, MetricRef, ScheduleRef, TaskRef
from p2pcore.api.tasks import TaskSpec
from p2pcore.errors import P2PError, did_you_mean
from p2pcore.plugins import Host, params_error
from p2pcore.records import Figure as Figure  # re-exported: the figure keys' home is p2pcore.records
from p2pcore.records import eval_figures as eval_figures
from p2pcore.records import sample_figures as sample_figures


class Section(Checked):
    pass


Beta = Annotated[float, Field(ge=0, lt=1)]


class PlayerOptim(Section):
    """One player's optimiser settings; a key left out takes the shared `[optim]` value."""

    lr: float | None = Field(None, gt=0, description="Adam learning rate")
    betas: tuple[Beta, Beta] | None = Field(None, description="Adam betas, each in [0, 1)")
    weight_decay: float | None = Field(None, ge=0)


class OptimConfig(Section):
    """Adam settings shared by every player; `[optim.<player>]` tables override them per player
    (`[optim.discriminator] lr = 1e-4`)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (pix2pix: 2e-4)")
    betas: tuple[Beta, Beta] = Field((0.5, 0.999), description="Adam betas, each in [0, 1) (pix2pix: 0.5, 0.999)")
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _players(self) -> OptimConfig:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, PlayerOptim):
                self.model_extra[name] = PlayerOptim.model_validate(value)  # type: ignore[index]
        return self

    @property
    def players(self) -> dict[str, PlayerOptim]:
        return dict(self.model_extra or {})

    def for_player(self, player: str) -> dict[str, Any]:
        """lr, betas and weight_decay of one player."""
        own = self.players.get(player)
        shared = {"lr": self.lr, "betas": self.betas, "weight_decay": self.weight_decay}
        if own is None:
            return shared
        return {k: v if (v := getattr(own, k)) is not None else shared[k] for k in shared}


class InitConfig(Section):
    type: Literal["normal", "xavier", "kaiming", "orthogonal", "none"] = Field(
        "normal", description="weight initialisation of every network (pix2pix: normal)")
    gain: float = Field(0.02, gt=0, description="standard deviation (normal) or gain (others)")
    checkpoint: str | None = Field(None, description="a p2p checkpoint to start from (a previous stage of "
                                                     "coarse-to-fine training); read when a run starts, not on resume")
    load: dict[str, str] = Field(default_factory=dict, description='what to take from it: { "generator.global_net" '
                                 '= "generator" } puts its generator into this generator\'s global_net (target '
                                 "role[.module] = source role[.module]); empty: every role of the same name")


class TrainConfig(Section):
    epochs: int = Field(200, ge=1, description="passes over the training split")
    batch_size: int = Field(1, ge=1, description="images per step (pix2pix: 1 to 10 depending on the task)")
    device: str = Field("auto", description='"auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"')
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="bf16/fp16 autocast (fp16 with a gradient scaler) save memory and time on GPUs")
    channels_last: bool = Field(False, description="channels-last memory format (faster convolutions on GPUs)")
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto", description='data-loading worker processes; "auto": up to 8 beside a GPU, none on a CPU '
                            "with 4 cores or fewer (workers would take cores from training)")
    log_every: int = Field(10, ge=1, description="steps between metrics.jsonl lines")
    sample_every: int = Field(1, ge=1, description="epochs between sample grids")
    sample_count: int = Field(4, ge=1, le=64, description="test images in each sample grid")
    keep_last: int = Field(3, ge=1, description="epoch checkpoints kept besides latest.safetensors")
    keep_every: int = Field(10, ge=0, description="also keep every N-th epoch's checkpoint for good (0: none)")
    checkpoint_steps: int = Field(0, ge=0, description="also write latest.safetensors every N steps (0: off)")
    checkpoint_minutes: float = Field(10.0, ge=0, description="and at least every M minutes (0: off)")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps (for smoke runs)")
    divergence_patience: int = Field(
        20, ge=1, description="non-finite steps in a row (skipped) before training stops")
    deterministic: bool = Field(False, description="use deterministic algorithms (slower)")
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = Field(
        False, description='torch.compile the networks: true or "default", "reduce-overhead" (CUDA graphs, GPUs '
                           'only), "max-autotune"')
    n_critic: int = Field(1, ge=1, description="discriminator steps per generator step (WGAN: 5)")
    activation_checkpointing: bool = Field(False, description="generators keep only their blocks' inputs and "
                                           "recompute the rest in the backward pass: far less memory for high "
                                           "resolutions, about one more forward pass of time; results unchanged")
    ema: float = Field(0.0, ge=0, lt=1, description="decay of an exponential moving average of the generator "
                                                   "weights, used by samples, translate and export (0: off; "
                                                   "e.g. 0.999)")


class EvalConfig(Section):
    """Metrics over a whole dataset split, every few epochs of training and in `p2p eval`."""

    metrics: list[MetricRef] = Field(default_factory=list, description="metrics computed over `split`, each a name "
                                     "or a table with `name` and its parameters (see `p2p list metric`)")
    split: str = Field("test", description="the dataset split evaluated")
    every: int = Field(1, ge=1, description="epochs between evaluations; the last epoch is always evaluated")
    best: str | None = Field(None, description='a figure as metrics.jsonl logs it (e.g. "eval/psnr") that selects '
                             "checkpoints/best.safetensors; whether higher is better comes from its metric")
    directions: list[str] = Field(default_factory=list, description="the task's directions evaluated (empty: all)")
    batch_size: int = Field(1, ge=1, description="images per forward pass; under the paper protocol batch norm uses "
                            "each batch's statistics, so 1 evaluates exactly as `p2p translate` translates")
    max_items: int = Field(0, ge=0, description="evaluate the first N items of the split (0: all of them)")


class LossSpec(Section):
    """One weighted term of the objective: `name` of a registered loss, `weight`, its params."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    weight: float = 1.0

    _ref: ComponentRef | None = PrivateAttr(default=None)

    def ref(self) -> ComponentRef:
        """The term as a component reference; resolved (with validated parameters) after validation."""
        if self._ref is not None:
            return self._ref
        return ComponentRef(kind="loss", name=self.name, options=dict(self.model_extra or {}))


class Recipe(Section):
    extends: str | None = Field(None, description="a recipe this one builds on, relative to this file")
    name: str | None = Field(None, description="run name; default: the recipe file's stem")
    task: TaskRef = Field("pix2pix", description="a registered task and its parameters (see `p2p list task`)")
    seed: int = Field(0, ge=0, lt=2**32, description="seeds weights, data order and augmentation: same seed, "
                                                    "same run")
    data: DatasetRef = Field(description="a registered dataset adapter and its parameters")
    model: dict[str, ComponentRef] = Field(default_factory=dict,
                                           description="networks by the task's roles: generator, discriminator")
    loss: dict[str, LossSpec] = Field(default_factory=dict, description="objective terms by label")
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleRef = Field("constant_then_linear",
                                  description="a registered learning-rate schedule (see `p2p list schedule`)")
    init: InitConfig = InitConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _model_refs(cls, value: Any, info: ValidationInfo) -> Any:
        """Each role is built as the kind its task declares; unknown roles are reported before this."""
        if not isinstance(value, Mapping):
            return value
        kinds = (info.context or {}).get("role_kinds", {})
        refs = {}
        for role, spec in value.items():
            kind = kinds.get(role) or next((k for k in ("generator", "discriminator") if role.startswith(k)), None)
            if kind is None:
                raise ValueError(f"model role {role!r} is not one the task declares")
            refs[role] = ComponentRef.coerce(kind, spec)
        return refs

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved recipe as plain TOML-able data (no `extends`)."""
        data = self.model_dump(mode="json", exclude_none=True, exclude={"extends"})
        data["loss"] = {label: {"name": spec.name, "weight": spec.weight, **(spec.model_extra or {})}
                        for label, spec in self.loss.items()}
        data["optim"] = {**{k: v for k, v in data["optim"].items() if k in OptimConfig.model_fields},
                         **{player: own.model_dump(mode="json", exclude_none=True)
                            for player, own in self.optim.players.items()}}
        return data


# -- loading -----------------------------------------------------------------------------------

MAX_RECIPE_BYTES = 512 * 1024
"""The largest recipe file p2p reads (recipes are small text files; parsing time grows with size)."""
MAX_RECIPE_DEPTH = 32
"""The deepest nesting of tables, arrays and dotted key parts in a recipe."""
MAX_EXTENDS = 32
"""The most `extends` links followed from one recipe."""

# Strings and comments, which may hold any brackets and dots; blanked out (newlines kept) before counting.
_TOML_STRINGS = re.compile(r'"""(?:[^\\]|\\[\s\S])*?"""|' r"'''[\s\S]*?'''|" r'"(?:[^"\\\n]|\\.)*"|'
                           r"'[^'\n]*'|#[^\n]*")
_TOML_BRACKETS = re.compile(r"[\[\]{}]")
_TOML_KEY_ENDS = re.compile(r"[=\n,\[\]{}]")
_NESTING_HINT = (f"recipes nest tables, arrays and dotted keys at most {MAX_RECIPE_DEPTH} levels deep; check "
                 "that this is the recipe you meant")


class _NotARecipeFile(Exception):
    """The path is not a regular file of a recipe's size; `hint` says what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _check_recipe_file(mode: int, size: int) -> None:
    if stat.S_ISDIR(mode):
        raise _NotARecipeFile("this is a folder, not a recipe file", "give the path of a .toml recipe inside it")
    if not stat.S_ISREG(mode):
        raise _NotARecipeFile(f"this is {_file_kind(mode)}, not a recipe file",
                              "a recipe is a regular .toml file; give its path")
    if size > MAX_RECIPE_BYTES:
        raise _NotARecipeFile(f"the file is larger than {MAX_RECIPE_BYTES // 1024} KiB, the most a recipe may be",
                              "recipes are small text files: check that this is the recipe you meant")


def _recipe_bytes(path: Path) -> bytes:
    """The contents of a regular file of at most MAX_RECIPE_BYTES, checked before reading."""
    info = os.stat(path)
    _check_recipe_file(info.st_mode, info.st_size)  # before opening: opening a FIFO waits for a writer
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _check_recipe_file(info.st_mode, info.st_size)  # the file opened is a checked one
        data = f.read(MAX_RECIPE_BYTES + 1)
    _check_recipe_file(stat.S_IFREG, len(data))  # it may have grown since
    return data


def _blank(match: re.Match[str]) -> str:
    text = match.group()
    return ("" if text.startswith("#") else '""') + "\n" * text.count("\n")


def _check_nesting_text(text: str, path: Path) -> None:
    """Refuse deep nesting before tomllib parses it: brackets and braces left open (tomllib recurses on
    them) and dotted keys of many parts (which it parses in quadratic time)."""
    bare = _TOML_STRINGS.sub(_blank, text)

    def line(at: int) -> int:
        return bare.count("\n", 0, at) + 1

    if bare.count("[") + bare.count("{") > MAX_RECIPE_DEPTH:
        depth = 0
        for match in _TOML_BRACKETS.finditer(bare):
            if match.group() in "[{":
                depth += 1
                if depth > MAX_RECIPE_DEPTH:
                    raise P2PError(f"arrays or tables nested more than {MAX_RECIPE_DEPTH} deep "
                                   f"(line {line(match.start())})", file=str(path), hint=_NESTING_HINT)
            else:
                depth = max(0, depth - 1)
    if bare.count(".") >= MAX_RECIPE_DEPTH and \
            max(piece.count(".") for piece in _TOML_KEY_ENDS.split(bare)) >= MAX_RECIPE_DEPTH:
        start = 0
        for match in _TOML_KEY_ENDS.finditer(bare):
            if bare.count(".", start, match.start()) >= MAX_RECIPE_DEPTH:
                break
            start = match.end()
        raise P2PError(f"a dotted key of more than {MAX_RECIPE_DEPTH} parts (line {line(start)})", file=str(path),
                       hint=_NESTING_HINT)


def _check_nesting_data(data: dict[str, Any], path: Path) -> None:
    """Refuse parsed data nested deeper than MAX_RECIPE_DEPTH (tables, dotted keys and arrays together)."""
    level: list[Any] = [data]
    for _ in range(MAX_RECIPE_DEPTH + 1):  # level by level, tables and arrays only
        level = [value for node in level for value in (node.values() if isinstance(node, dict) else node)
                 if isinstance(value, dict | list)]
        if not level:
            return
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:  # find a key path that goes too deep, to name it
        node, where = stack.pop()
        if len(where) > MAX_RECIPE_DEPTH:
            key = ".".join(where)
            raise P2PError(f"tables and arrays nested more than {MAX_RECIPE_DEPTH} deep", file=str(path),
                           key=key if len(key) <= 120 else key[:117] + "...", hint=_NESTING_HINT)
        children = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((value, (*where, str(key))) for key, value in children if isinstance(value, dict | list))


def read_toml(path: Path, *, extended_by: Path | None = None) -> dict[str, Any]:
    """Read a recipe file: a regular file of at most MAX_RECIPE_BYTES of UTF-8 TOML, nested at most
    MAX_RECIPE_DEPTH deep; anything else raises P2PError naming the file.

    `extended_by`: the recipe whose `extends` names this one; when this file cannot be read at all,
    the error is placed at that recipe's `extends` key.
    """
    def unreadable(message: str, hint: str | None = None) -> P2PError:
        if extended_by is None:
            return P2PError(message, file=str(path), hint=hint)
        reason = message.replace("this is ", "which is ", 1) if message.startswith("this is ") else f"but {message}"
        return P2PError(f"`extends` names {path}, {reason}", file=str(extended_by), key="extends",
                        hint=hint or "paths in `extends` are relative to the recipe that names them")

    try:
        raw = _recipe_bytes(path)
    except _NotARecipeFile as exc:
        raise unreadable(exc.message, exc.hint) from None
    except FileNotFoundError:
        raise unreadable("recipe file not found", "check the path; ready recipes are in recipes/") from None
    except IsADirectoryError:
        raise unreadable("this is a folder, not a recipe file", "give the path of a .toml recipe inside it") from None
    except OSError as exc:
        raise unreadable(f"cannot read the recipe: {exc.strerror or exc}") from None
    except ValueError as exc:  # a path with a NUL character
        raise unreadable(f"cannot read the recipe: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise P2PError("the recipe is not UTF-8 text", file=str(path),
                       hint="save it as UTF-8 (TOML files must be UTF-8)") from None
    _check_nesting_text(text, path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise P2PError(f"not valid TOML: {exc}", file=str(path), hint="fix the syntax at that line") from None
    except RecursionError:
        raise P2PError("the recipe is nested too deeply to read", file=str(path), hint=_NESTING_HINT) from None
    _check_nesting_data(data, path)
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into `base`; a table naming another component replaces the old one."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping) and old.get("name", value.get("name")) == \
                value.get("name", old.get("name")):
            out[key] = merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    for key, value in data.items():
        yield (*prefix, key)
        if isinstance(value, Mapping):
            yield from _leaves(value, (*prefix, key))


def origins(path: Path, overrides: Iterable[str] = ()) -> dict[tuple[str, ...], str]:
    """Which file (or `--set`) each key path of the merged recipe comes from, for error messages."""
    chain = []
    current: Path | None = path.resolve()
    while current is not None and current.exists() and current not in chain:
        chain.append(current)
        try:
            parent = read_toml(current).get("extends")
        except P2PError:
            break
        current = (current.parent / parent).resolve() if isinstance(parent, str) else None
    found: dict[tuple[str, ...], str] = {}
    for file in reversed(chain):
        shown = str(path) if file == path.resolve() else str(file)
        found.update(dict.fromkeys(_leaves(read_toml(file)), shown))
    for text in overrides:
        found[tuple(parse_override(text)[0])] = f"--set {text}"
    return found


def locate(error: P2PError, where: Mapping[tuple[str, ...], str], default: str) -> P2PError:
    """Place an error in the file that wrote the key it concerns (the longest matching key path)."""
    parts = tuple(error.key.split(".")) if error.key else ()
    while parts and parts not in where:
        parts = parts[:-1]
    origin = where.get(parts, default)
    if origin.startswith("--set "):  # the recipe is still the file; say which override wrote the key
        return P2PError(f"{error.message} (from {origin})", file=error.file or default, key=error.key,
                        hint=error.hint, details=error.details)
    return error.with_location(file=origin)


def read_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at `path` merged over the recipes its `extends` chain names (at most MAX_EXTENDS links,
    followed one by one, without recursion)."""
    visited = list(seen)
    layers: list[dict[str, Any]] = []
    current = path.resolve()
    named_by = visited[-1] if visited else None
    while True:
        if current in visited:
            chain = " -> ".join(str(p) for p in (*visited, current))
            raise P2PError(f"`extends` forms a cycle: {chain}", file=str(visited[-1]), key="extends",
                           hint="remove one of the `extends` lines")
        data = read_toml(current, extended_by=named_by)
        visited.append(current)
        parent = data.pop("extends", None)
        layers.append(data)
        if parent is None:
            break
        if not isinstance(parent, str):
            raise P2PError("`extends` must be a path string", file=str(current), key="extends")
        parent_path = current.parent / parent
        if not parent_path.exists():
            raise P2PError(f"the recipe it extends does not exist: {parent_path}", file=str(current),
                           key="extends", hint="paths in `extends` are relative to the recipe that names them")
        if len(layers) > MAX_EXTENDS:
            raise P2PError(f"`extends` links more than {MAX_EXTENDS} recipes in a row, from {visited[len(seen)]}",
                           file=str(current), key="extends",
                           hint=f"a recipe may build on at most {MAX_EXTENDS} others in a chain; merge some of them")
        named_by, current = current, parent_path.resolve()
    merged = layers.pop()
    while layers:
        merged = merge(merged, layers.pop())
    return merged


def _depth(value: str) -> int:
    """How deeply arrays and inline tables nest in a TOML value (strings ignored)."""
    depth = deepest = 0
    for bracket in _TOML_BRACKETS.findall(_TOML_STRINGS.sub("", value)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=5` -> (["train", "epochs"], 5); values are TOML, bare words are strings."""
    if "=" not in text:
        raise P2PError(f"--set expects key.path=value, got {text!r}", hint="for example --set train.epochs=5")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise P2PError(f"--set has an empty key in {key!r}", hint="for example --set model.generator.ngf=32")
    if len(path) > MAX_RECIPE_DEPTH or len(raw) > 64 * 1024 or _depth(raw) > MAX_RECIPE_DEPTH:
        raise P2PError(f"--set {key.strip()}=...: the value or key is too large or too deeply nested",
                       key=key.strip(), hint=_NESTING_HINT)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def _list_index(items: list[Any], part: str, key: str) -> int:
    """The position `part` names in a recipe list (`eval.metrics.1.segmenter.weights`: the second metric)."""
    if not part.isdigit() or int(part) >= len(items):
        raise P2PError(f"--set {key}: {part!r} is not a position in a list of {len(items)}", key=key,
                       hint=f"count from 0: 0 to {len(items) - 1}" if items else "the list is empty")
    return int(part)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        key = ".".join(path)
        node: Any = data
        for part in path[:-1]:
            at: str | int = _list_index(node, part, key) if isinstance(node, list) else part
            child = node[at] if isinstance(node, list) else node.get(at)
            if isinstance(child, str) and at != path[0]:  # `norm = "batch"` becomes a table
                child = {"name": child}
            node[at] = child if isinstance(child, dict | list) else {}
            node = node[at]
        if isinstance(node, list):
            node[_list_index(node, path[-1], key)] = value
            continue
        if path[-1] == "name" and len(path) > 1 and node.get("name", value) != value:
            kept = {"weight": node["weight"]} if path[0] == "loss" and len(path) == 3 and "weight" in node else {}
            node.clear()  # another component: the old one's parameters do not apply to it (a term keeps its weight)
            node.update(kept)
        node[path[-1]] = value
    return data


def validate_recipe(data: Mapping[str, Any], host: Host, *, file: str | None = None,
                    default_name: str | None = None, inference: bool = False) -> Recipe:
    """Validate the recipe's shape, every component it names, and its wiring: the roles and players
    its task declares, and the tensors its loss terms read. All without torch.

    `inference`: only what translating needs (the loss terms are dropped, the wiring not checked)."""
    data = dict(data)
    if inference:  # translating needs neither the objective nor the metrics (nor their plugins)
        data.pop("loss", None)
        data.pop("eval", None)
    try:
        task = host.resolve("task", data.get("task", Recipe.model_fields["task"].default), key="task")
        spec = declared(task, host)
        model = data.get("model", {})
        if isinstance(model, Mapping):
            for role in model:
                if role not in spec.roles:
                    raise _unknown("model role", role, spec.roles, key=f"model.{role}", task=task.name)
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
        resolved = recipe.model_copy(update={
            "data": host.resolve("dataset", recipe.data, key="data"),
            "model": {role: host.resolve(ref.kind, ref, key=f"model.{role}") for role, ref in recipe.model.items()},
            "loss": {label: _resolved_loss(host, label, spec) for label, spec in recipe.loss.items()},
            "schedule": host.resolve("schedule", recipe.schedule, key="schedule"),
            "eval": recipe.eval.model_copy(update={"metrics": [
                host.resolve("metric", ref, key=f"eval.metrics.{ref.name}") for ref in recipe.eval.metrics]}),
        })
        task.params.check(resolved.model)
        if not inference:
            check_wiring(resolved, spec)
            check_sizes(resolved, spec, host)
            check_evaluation(resolved, spec)
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    return resolved


def _resolved_loss(host: Host, label: str, spec: LossSpec) -> LossSpec:
    ref = host.resolve("loss", spec.ref(), key=f"loss.{label}")
    resolved = LossSpec(weight=spec.weight, **ref.as_table())
    resolved._ref = ref
    return resolved


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
            raise _unknown("player", player, spec.players, key=f"optim.{player}", task=task)
    for label, term in recipe.loss.items():
        for tensor in sorted(term.ref().params.reads()):
            if tensor not in spec.tensors:
                raise _unknown("tensor", tensor, spec.tensors, key=f"loss.{label}", task=task,
                               verb=f"loss.{label} reads")
            for role in spec.tensors[tensor]:
                if role not in recipe.model:
                    raise P2PError(f"loss.{label} reads {tensor!r}, which needs model.{role}",
                                   key=f"model.{role}", hint=f"add a [model.{role}] table, or drop loss.{label}")


def check_evaluation(recipe: Recipe, spec: TaskSpec, *, training: bool = True) -> None:
    """`[eval]` names directions the task offers, each metric once and each applicable somewhere; for
    training, `best` and what the schedule reads are figures the run logs at epoch ends."""
    task = recipe.task.name
    for direction in recipe.eval.directions:
        if direction not in spec.directions:
            raise _unknown("direction", direction, spec.directions, key="eval.directions", task=task)
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
    sides that are multiples of 256); padding a 64 px crop to 256 would train on padding."""
    data = recipe.data.params
    crop = getattr(data, "crop_size", None) if str(getattr(data, "preprocess", "")).endswith("crop") else None
    side, key = (crop, "data.crop_size") if crop else (getattr(data, "size", None), "data.size")
    if not isinstance(side, int):
        return
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


def _unknown(what: str, name: str, known: Iterable[str], *, key: str, task: str, verb: str = "") -> P2PError:
    guess = did_you_mean(name, known)
    message = f"{verb} {what} {name!r}, which task {task!r} does not provide" if verb else \
        f"task {task!r} has no {what} {name!r}"
    return P2PError(message, key=key,
                    hint=(f"did you mean {guess!r}? " if guess else "") + f"{task} offers: {', '.join(known)}")


def load_recipe(path: str | Path, host: Host, overrides: Iterable[str] = ()) -> Recipe:
    """Read, merge `extends`, apply `--set` overrides and validate a recipe file."""
    path = Path(path)
    overrides = list(overrides)
    data = apply_overrides(read_with_extends(path), overrides)
    try:
        return validate_recipe(data, host, default_name=path.stem)
    except P2PError as error:
        raise locate(error, origins(path, overrides), str(path)) from None
