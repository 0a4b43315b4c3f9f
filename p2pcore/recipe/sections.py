"""The recipe's sections as pydantic models: what each table of a recipe file may hold, with defaults
and descriptions (`p2p docs` and `p2p schema` are generated from them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from p2pcore.api.base import CallbackRef, Checked, ComponentRef, DatasetRef, MetricRef, ScheduleRef, TaskRef


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
    optimizer: bool = Field(False, description="also take its optimiser state (Adam moments) for fine-tuning: this "
                            "recipe's learning rate, schedule and epochs apply, and the step counters start at 0; "
                            "every role of the same name, shapes as this recipe builds them")

    @model_validator(mode="after")
    def _optimizer_needs_checkpoint(self) -> InitConfig:
        if self.optimizer and self.checkpoint is None:
            raise ValueError("optimizer = true takes the optimiser state of init.checkpoint: give the checkpoint")
        return self


class TrainConfig(Section):
    epochs: int = Field(200, ge=1, description="passes over the training split in all: the reference code's "
                        "n_epochs + n_epochs_decay (a [schedule] decays the rate within them)")
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
    keep_optimizer: bool = Field(False, description="keep the optimiser state in every epoch checkpoint and in "
                                 "best, so that `p2p run --resume --from` and `[init] optimizer` work from any of "
                                 "them; off, only latest.safetensors (the checkpoint a resume continues from) keeps "
                                 "it and the others hold weights only, about a third of the size with Adam")
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
                             "checkpoints/best.safetensors; whether higher is better comes from its metric; "
                             'unset (`unset = ["eval.best"]`): no best checkpoint')
    directions: list[str] = Field(default_factory=list, description="the task's directions evaluated (empty: all)")
    batch_size: int = Field(1, ge=1, description="images per forward pass; under the paper protocol batch norm uses "
                            "each batch's statistics, so 1 evaluates exactly as `p2p translate` translates")
    max_items: int = Field(0, ge=0, description="evaluate the first N items of the split (0: all of them)")


class TranslateConfig(Section):
    """The size `p2p translate` (and `p2pcore.load`) gives the generator when no size is asked for: a model
    trained on downscaled images runs at its training scale. Outputs go back to each input's size."""

    load_size: int | None = Field(None, ge=1, description="resize each input to N x N (as pix2pix tests at "
                                  "load_size = crop_size); a multiple of the generator's size multiple")
    scale_width: int | None = Field(None, ge=1, description="resize each input to this width, aspect kept "
                                    "(pix2pixHD's global stage: 1024); a multiple of the size multiple")

    @model_validator(mode="after")
    def _one_size(self) -> TranslateConfig:
        if self.load_size is not None and self.scale_width is not None:
            raise ValueError("load_size and scale_width are two ways to size the input: give one")
        return self


class LossSpec(Section):
    """One weighted term of the objective: `name` of a registered loss, `weight`, its params. A term of
    weight 0 is off: not computed, and the tensors it reads need not exist. A task may supply terms by
    default (listed with the task under Components); a table of the same label overrides them key by key."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str = Field(description="a registered loss (see `p2p list loss`)")
    weight: float = Field(1.0, description="its factor in the objective; 0 turns the term off")

    _ref: ComponentRef | None = PrivateAttr(default=None)

    def ref(self) -> ComponentRef:
        """The term as a component reference; resolved (with validated parameters) after validation."""
        if self._ref is not None:
            return self._ref
        return ComponentRef(kind="loss", name=self.name, options=dict(self.model_extra or {}))


class Recipe(Section):
    extends: str | None = Field(None, description="a recipe this one builds on, relative to this file")
    unset: list[str] = Field(default_factory=list, description='key paths removed from what the recipe extends, '
                             'before its own keys apply: unset = ["model.generator_ba", "eval.best"] (`--set '
                             'unset=eval.best` likewise)')
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
                                  description="a registered learning-rate schedule (see `p2p list schedule`); the "
                                  "default, constant_then_linear with decay_epochs 0, keeps the rate constant")
    init: InitConfig = InitConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    translate: TranslateConfig = TranslateConfig()
    callbacks: dict[str, CallbackRef] = Field(
        default_factory=dict, description="callbacks by label, called as the run goes (steps, epoch ends, "
        "evaluations, checkpoints): each a table with the `name` of a registered callback and its parameters "
        "(see `p2p list callback`); they observe the run and never change it")

    @field_validator("model", mode="before")
    @classmethod
    def _model_refs(cls, value: Any, info: ValidationInfo) -> Any:
        """Each role is built as the kind its task declares (`TaskSpec.roles[role].kind`, given as the
        validation context `role_kinds` by `validate_recipe`, which reports unknown roles before this)."""
        if not isinstance(value, Mapping):
            return value
        kinds = (info.context or {}).get("role_kinds", {})
        refs = {}
        for role, spec in value.items():
            kind = kinds.get(role)
            if kind is None:
                raise ValueError(f"model role {role!r} is not one the task declares")
            refs[role] = ComponentRef.coerce(kind, spec)
        return refs

    def to_toml_dict(self) -> dict[str, Any]:
        """The fully resolved recipe as plain TOML-able data (no `extends`)."""
        data = self.model_dump(mode="json", exclude_none=True, exclude={"extends", "unset"})
        if not self.callbacks:  # a run without callbacks records the recipe as it did before they existed
            data.pop("callbacks", None)
        if not data.get("translate"):  # likewise a run without test-time sizes
            data.pop("translate", None)
        data["loss"] = {label: {"name": spec.name, "weight": spec.weight, **(spec.model_extra or {})}
                        for label, spec in self.loss.items()}
        data["optim"] = {**{k: v for k, v in data["optim"].items() if k in OptimConfig.model_fields},
                         **{player: own.model_dump(mode="json", exclude_none=True)
                            for player, own in self.optim.players.items()}}
        return data
