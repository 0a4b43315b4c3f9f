"""Recipes: TOML files validated by pydantic against the live registry.

A recipe may `extends` another file (paths relative to itself); tables merge key by key, and a
component table that names a different component replaces the inherited one whole.
`--set key.path=value` overrides go through the same validation.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from p2pcore.api import ComponentRef, DatasetRef
from p2pcore.errors import P2PError
from p2pcore.plugins import Host, params_error


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptimConfig(Section):
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (pix2pix: 2e-4)")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas (pix2pix: 0.5, 0.999)")
    weight_decay: float = Field(0.0, ge=0)


class ScheduleConfig(Section):
    policy: Literal["constant", "linear"] = Field(
        "linear", description="linear: constant for `epochs - decay_epochs`, then linearly to zero")
    decay_epochs: int = Field(0, ge=0, description="epochs at the end over which the rate decays to zero")


class InitConfig(Section):
    type: Literal["normal", "xavier", "kaiming", "orthogonal", "none"] = Field(
        "normal", description="weight initialisation of every network (pix2pix: normal)")
    gain: float = Field(0.02, gt=0, description="standard deviation (normal) or gain (others)")


class TrainConfig(Section):
    epochs: int = Field(200, ge=1)
    batch_size: int = Field(1, ge=1)
    device: str = Field("auto", description='"auto" (CUDA when present, else CPU), "cpu", "cuda", "cuda:1"')
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
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
    compile: bool = Field(False, description="torch.compile the networks")


class LossSpec(Section):
    """One weighted term of the objective: `name` of a registered loss, `weight`, its params."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str
    weight: float = 1.0

    def ref(self) -> ComponentRef:
        return ComponentRef(kind="loss", name=self.name, options=dict(self.model_extra or {}))


class Recipe(Section):
    extends: str | None = Field(None, description="a recipe this one builds on, relative to this file")
    name: str | None = Field(None, description="run name; default: the recipe file's stem")
    task: str = Field("pix2pix", description="a registered task (see `p2p list task`)")
    seed: int = 0
    data: DatasetRef = Field(description="a registered dataset adapter and its parameters")
    model: dict[str, ComponentRef] = Field(default_factory=dict,
                                           description="networks by role: generator, discriminator")
    loss: dict[str, LossSpec] = Field(default_factory=dict, description="objective terms by label")
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    init: InitConfig = InitConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("model", mode="before")
    @classmethod
    def _model_refs(cls, value: Any) -> Any:
        """Roles name their kind: `generator`, `discriminator`, or with a suffix (`generator_ab`)."""
        if not isinstance(value, Mapping):
            return value
        refs = {}
        for role, spec in value.items():
            kind = next((k for k in ("generator", "discriminator") if role.startswith(k)), None)
            if kind is None:
                raise ValueError(f"model role {role!r} must start with 'generator' or 'discriminator'")
            refs[role] = ComponentRef.coerce(kind, spec)
        return refs

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved recipe as plain TOML-able data (no `extends`)."""
        data = self.model_dump(mode="json", exclude_none=True, exclude={"extends"})
        data["loss"] = {label: {"name": spec.name, "weight": spec.weight, **(spec.model_extra or {})}
                        for label, spec in self.loss.items()}
        return data


# -- loading -----------------------------------------------------------------------------------

def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise P2PError("recipe file not found", file=str(path),
                       hint="check the path; ready recipes are in recipes/") from None
    except tomllib.TOMLDecodeError as exc:
        raise P2PError(f"not valid TOML: {exc}", file=str(path), hint="fix the syntax at that line") from None


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


def read_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise P2PError(f"`extends` forms a cycle: {chain}", file=str(seen[-1]), key="extends",
                       hint="remove one of the `extends` lines")
    data = read_toml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise P2PError("`extends` must be a path string", file=str(path), key="extends")
    parent_path = (path.parent / parent)
    if not parent_path.exists():
        raise P2PError(f"the recipe it extends does not exist: {parent_path}", file=str(path), key="extends",
                       hint="paths in `extends` are relative to the recipe that names them")
    return merge(read_with_extends(parent_path, (*seen, path)), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.epochs=5` -> (["train", "epochs"], 5); values are TOML, bare words are strings."""
    if "=" not in text:
        raise P2PError(f"--set expects key.path=value, got {text!r}", hint="for example --set train.epochs=5")
    key, raw = text.split("=", 1)
    path = [part.strip() for part in key.strip().split(".")]
    if not all(path):
        raise P2PError(f"--set has an empty key in {key!r}", hint="for example --set model.generator.ngf=32")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if isinstance(child, str) and part != path[0]:  # `norm = "batch"` becomes a table
                child = {"name": child}
            node[part] = child if isinstance(child, dict) else {}
            node = node[part]
        if path[-1] == "name" and len(path) > 1 and node.get("name", value) != value:
            node.clear()  # another component: the old one's parameters do not apply to it
        node[path[-1]] = value
    return data


def validate_recipe(data: Mapping[str, Any], host: Host, *, file: str | None = None,
                    default_name: str | None = None) -> Recipe:
    """Validate the recipe's own shape, then every component it names against the registry."""
    try:
        recipe = Recipe.model_validate(dict(data))
    except ValidationError as exc:
        raise params_error(exc, Recipe, key="", what="a recipe").with_location(file=file) from None
    if recipe.name is None and default_name:
        recipe = recipe.model_copy(update={"name": default_name})
    try:
        host.resolve("task", recipe.task, key="task")
        data = host.resolved("dataset", recipe.data, key="data")
        model = {role: host.resolved(ref.kind, ref, key=f"model.{role}") for role, ref in recipe.model.items()}
        loss = {label: LossSpec(weight=spec.weight, **host.resolved("loss", spec.ref(), key=f"loss.{label}")
                                .as_table()) for label, spec in recipe.loss.items()}
    except P2PError as exc:
        raise exc.with_location(file=file) from None
    return recipe.model_copy(update={"data": data, "model": model, "loss": loss})


def load_recipe(path: str | Path, host: Host, overrides: Iterable[str] = ()) -> Recipe:
    """Read, merge `extends`, apply `--set` overrides and validate a recipe file."""
    path = Path(path)
    data = apply_overrides(read_with_extends(path), overrides)
    return validate_recipe(data, host, file=str(path), default_name=path.stem)
