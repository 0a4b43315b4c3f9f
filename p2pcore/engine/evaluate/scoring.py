"""`[eval]`: the recipe's metrics over a whole dataset split, on the task's translations exactly as
`p2p translate` makes them (the test-time protocol; the items' own sizes, or a test-time size and back;
untiled, or in overlapping tiles with translate's tiling code, so a large item is scored in memory bounded
by the tile), accumulated on the device."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from p2pcore.api.metrics import Comparison, Metric
from p2pcore.api.tasks import Task, TaskSpec
from p2pcore.atomicfile import write_text_atomically
from p2pcore.engine.build.data import Collate, raise_carried
from p2pcore.engine.build.device import autocast
from p2pcore.engine.build.trained import open_checkpoint
from p2pcore.engine.infer.batching import batch_mixing_layers
from p2pcore.engine.infer.fitting import allocation_failure, out_of_memory
from p2pcore.engine.infer.protocols import Protocol, nets_in_protocol, translate_image
from p2pcore.engine.infer.sizing import Sizing, label_keys, resize
from p2pcore.engine.infer.tiling import Tiling, translate_tiled
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.recipe import EvalConfig, Figure, Recipe, eval_figures, resolve_eval


@dataclass
class EvalResult:
    """What one evaluation measured: each figure by its metrics.jsonl key (None where not finite)."""

    split: str
    items: int
    figures: dict[str, float | None]
    higher_is_better: dict[str, bool]
    seconds: float
    epoch: int | None = None
    step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "split": self.split, "items": self.items,
                "seconds": round(self.seconds, 3), "metrics": self.figures,
                "higher_is_better": self.higher_is_better, **self.extra}

    def write(self, path: Path) -> None:
        write_json(path, self.as_json())


def write_json(path: Path, data: Any, *, what: str = "the evaluation") -> None:
    """Write JSON atomically, so a reader (the report, a person) never sees half of it."""
    write_text_atomically(path, json.dumps(data, indent=2) + "\n", what=what)


class Evaluator:
    """The metrics of `[eval]`, built once (one instance per direction, since each accumulates its own
    state) and run over the split whenever called."""

    def __init__(self, recipe: Recipe, spec: TaskSpec, host: Host, *, device: torch.device,
                 precision: str = "fp32", config: EvalConfig | None = None, sizing: Sizing | None = None,
                 tiling: Tiling | None = None) -> None:
        self.config = config or recipe.eval
        self.sizing = sizing or Sizing()
        self.tiling = tiling
        self.spec = spec
        self.device = device
        self.precision = precision
        self.figures: dict[str, Figure] = eval_figures(recipe.model_copy(update={"eval": self.config}), spec)
        refs = {ref.name: ref for ref in self.config.metrics}
        self.metrics: dict[tuple[str, str], Metric] = {}
        for figure in self.figures.values():
            key = (figure.direction, figure.metric)
            if key not in self.metrics:
                self.metrics[key] = self._build(host, refs[figure.metric])
        self.directions = list(dict.fromkeys(direction for direction, _ in self.metrics))

    def _build(self, host: Host, ref: Any) -> Metric:
        metric = host.build("metric", ref, key=f"eval.metrics.{ref.name}")
        if isinstance(metric, nn.Module):  # a segmenter or feature network: never trained, never saved
            metric.to(self.device).eval().requires_grad_(False)
        return metric

    def __bool__(self) -> bool:
        return bool(self.metrics)

    @torch.no_grad()
    def __call__(self, task: Task, nets: Mapping[str, nn.Module], adapter: Any, *, size_multiple: int,
                 seed: int, mode: Protocol = "paper", limit: int | None = None) -> EvalResult:
        """Translate the split (its first `limit` items, if given) with every evaluated direction and return
        the figures."""
        start = time.perf_counter()
        items = self._items(adapter)
        if limit is not None and limit < len(items):
            items = Subset(items, range(limit))
        loader = DataLoader(items, batch_size=self.config.batch_size, shuffle=False,
                            collate_fn=Collate(self.spec.images), num_workers=0)
        for metric in self.metrics.values():
            metric.reset()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), nets_in_protocol(nets, mode):
            torch.manual_seed(seed)
            labels = label_keys(adapter)
            for batch in loader:
                self._update(task, nets, raise_carried(batch), size_multiple, labels)
        figures: dict[str, float | None] = {}
        for (direction, name), metric in self.metrics.items():
            values = self._computed(metric, direction, name)
            for key, figure in self.figures.items():
                if figure.direction == direction and figure.metric == name:
                    value = float(values[figure.part])
                    figures[key] = value if math.isfinite(value) else None
        return EvalResult(self.config.split, len(items), figures,
                          {key: f.higher_is_better for key, f in self.figures.items()}, time.perf_counter() - start)

    def _items(self, adapter: Any) -> Sequence[Any]:
        data = adapter.dataset(self.config.split, train=False)
        if len(data) == 0:
            raise P2PError(f"the {self.config.split!r} split is empty", key="eval.split",
                           hint="choose a split with images (`p2p data check RECIPE` lists them)")
        if self.config.max_items and self.config.max_items < len(data):
            return Subset(data, range(self.config.max_items))
        return data

    def _update(self, task: Task, nets: Mapping[str, nn.Module], batch: Mapping[str, Any], multiple: int,
                labels: frozenset[str] = frozenset()) -> None:
        for direction in self.directions:
            declared = self.spec.directions[direction]
            image = batch[declared.input].to(self.device, non_blocking=True)
            real = batch[declared.output].to(self.device, non_blocking=True)
            size = tuple(image.shape[-2:])
            model = self.sizing.model_size(*size)
            given = resize(image, model, nearest=declared.input in labels)
            output = self._translated(lambda x, d=direction: task.translate(d, nets, x), given, nets, multiple)
            if model != size and self.sizing.keep_model_size:  # scored at the model's size
                image, real = given, resize(real, model, nearest=declared.output in labels)
            elif model != size:  # scored at the item's size, as `p2p translate` writes it back
                output = resize(output, size, nearest=declared.output in labels)
            comparison = Comparison(direction, image, output, real, real if declared.target else None)
            for (metric_direction, name), metric in self.metrics.items():
                if metric_direction == direction:
                    try:
                        metric.update(comparison)
                    except P2PError as error:
                        raise _located(error, name) from None

    def _translated(self, forward: Any, given: torch.Tensor, nets: Mapping[str, nn.Module],
                    multiple: int) -> torch.Tensor:
        """The batch's translations: in one pass, or each item in tiles where a tiling is asked for and the
        items are larger than a tile (tiles share a pass only where that cannot change their outputs); a
        failed allocation is a one-screen error with the --tile hint."""
        tiled = self.tiling is not None and not self.tiling.fits(*given.shape[-2:])
        try:
            with autocast(self.device, self.precision):
                if not tiled:
                    return translate_image(forward, given, multiple).float()
                per_forward = 1 if batch_mixing_layers(nets.values()) else self.config.batch_size
                return torch.stack([translate_tiled(item, forward, self.tiling, lambda: per_forward)
                                    for item in given]).float()
        except Exception as error:
            if not allocation_failure(error):
                raise
            raise out_of_memory(*given.shape[-2:], tiled=self.tiling.size if tiled else None) from None

    def _computed(self, metric: Metric, direction: str, name: str) -> dict[str, float]:
        try:
            values = metric.compute()
        except P2PError as error:
            raise _located(error, name) from None
        wanted = {f.part for f in self.figures.values() if f.direction == direction and f.metric == name}
        missing = wanted - set(values)
        if missing:
            raise P2PError(f"metric {name!r} did not report {', '.join(sorted(map(repr, missing)))}",
                           key=f"eval.metrics.{name}", hint="its plugin's figures() and compute() disagree; "
                                                            "report this to the plugin's authors")
        return values


def _located(error: P2PError, name: str) -> P2PError:
    return P2PError(error.message, file=error.file, key=error.key or f"eval.metrics.{name}", hint=error.hint,
                    details=error.details)


def table(result: EvalResult) -> list[tuple[str, str, str]]:
    """Rows of (figure, value, better) for printing."""
    return [(key, "n/a" if value is None else f"{value:.4f}", "higher" if result.higher_is_better[key] else "lower")
            for key, value in result.figures.items()]


def markdown(result: EvalResult, title: str) -> str:
    """The figures as a Markdown table, with what was evaluated."""
    lines = [f"# {title}", "", f"{result.items} items of the `{result.split}` split, {result.seconds:.1f} s.", "",
             "| figure | value | better |", "|---|---:|---|"]
    lines += [f"| `{key}` | {value} | {better} |" for key, value, better in table(result)]
    return "\n".join(lines) + "\n"


def evaluate_checkpoint(path: str | Path, host: Host, overrides: Mapping[str, Any], *,
                        data: Mapping[str, Any] | None = None, device: str = "auto", seed: int = 0,
                        mode: Protocol = "paper", load_size: int | None = None, scale_width: int | None = None,
                        keep_model_size: bool = False, tile: int | None = None,
                        overlap: int | None = None) -> EvalResult:
    """Score a checkpoint (its weight average where it keeps one) with its recipe's `[eval]`, updated by
    `overrides` (`metrics`, `split`, ...); `data` updates the recipe's `[data]` (another root). `load_size`
    or `scale_width` give the generator each item at that size, its output resized back to the item's to
    be scored, or the real image resized to the model's with `keep_model_size`. `tile` (and `overlap`)
    translate items larger than a tile as overlapping blended tiles, as `p2p translate --tile` does."""
    source = open_checkpoint(path, host, data=data)
    try:
        config = resolve_eval({**source.checkpoint.recipe.get("eval", {}), **overrides}, source.recipe, host)
    except P2PError as error:
        raise error.with_location(file=source.file) from None
    if not config.metrics:
        raise P2PError("nothing to evaluate: the checkpoint's recipe names no [eval] metrics", file=source.file,
                       key="--metric", hint="name metrics with --metric (repeatable), e.g. --metric psnr "
                                            "--metric ssim; `p2p list metric` shows them")
    spec = source.spec
    figures = eval_figures(source.recipe.model_copy(update={"eval": config}), spec)
    roles = {role for f in figures.values() for role in spec.directions[f.direction].roles}
    run = source.open(roles=sorted(roles), protocol=mode, device=device)
    sizing = Sizing.checked(load_size=load_size, scale_width=scale_width, keep_model_size=keep_model_size,
                            multiple=run.size_multiple())
    tiling = Tiling.asked(tile, overlap, run.size_multiple())
    evaluator = Evaluator(run.recipe, spec, host, device=run.device, config=config, sizing=sizing, tiling=tiling)
    result = evaluator(run.task, run.nets, run.adapter, size_multiple=run.size_multiple(), seed=seed, mode=mode)
    result.epoch, result.step = run.checkpoint.header.meta.epoch, run.checkpoint.header.meta.step
    result.extra = {"checkpoint": run.file, "protocol": mode, "weights": "average" if run.averaged else "last",
                    **({"sizing": sizing.describe()} if sizing.resizes else {}),
                    **({"tiling": tiling.describe()} if tiling is not None else {})}
    return result
