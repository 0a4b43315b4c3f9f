"""The checks of `p2pcore.testing` fail broken components with a message a plugin author can act on, and
its fixtures and recipe builder work as documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from p2pcore.api import (
    BuildContext,
    Callback,
    Direction,
    Field,
    LossParams,
    LossTerm,
    Metric,
    MetricParams,
    Params,
    Player,
    Role,
    Schedule,
    ScheduleParams,
    TaskParams,
    TaskSpec,
    hookimpl,
)
from p2pcore.kinds import KINDS, Kind
from p2pcore.recipe import validate_recipe
from p2pcore.testing import (
    assert_refused,
    check_callback,
    check_dataset,
    check_entry_module_light,
    check_generator,
    check_loss,
    check_metric,
    check_params_round_trip,
    check_schedule,
    check_segmenter,
    check_task,
    tiny_recipe,
)


def _no_tanh(params: Params, ctx: BuildContext) -> Any:
    from torch import nn

    net = nn.Conv2d(ctx.in_channels, ctx.out_channels, 3, padding=1)
    net.size_multiple = 1
    return net


def _shrinking(params: Params, ctx: BuildContext) -> Any:
    from torch import nn

    net = nn.Sequential(nn.Conv2d(ctx.in_channels, ctx.out_channels, 4, stride=2, padding=1), nn.Tanh())
    net.size_multiple = 1
    return net


class PerPixel(LossTerm):
    def generator_loss(self, t: Any) -> Any:
        return (t["fake_b"] - t["real_b"]).abs()


class ReadsL1(LossParams):
    def reads(self) -> frozenset[str]:
        return frozenset({"fake_b", "real_b"})


class LastBatch(Metric):
    """Keeps only the last batch's mean: two batches differ from one batch of both."""

    def reset(self) -> None:
        self.value = 0.0

    def update(self, batch: Any) -> None:
        self.value = float((batch.output - batch.target).abs().mean())

    def compute(self) -> dict[str, float]:
        return {"": self.value}


class NeverReset(Metric):
    total = 0.0

    def reset(self) -> None:
        pass

    def update(self, batch: Any) -> None:
        self.total += float((batch.output - batch.target).abs().sum())

    def compute(self) -> dict[str, float]:
        return {"": self.total}


class TensorFigure(LastBatch):
    def compute(self) -> dict[str, Any]:
        import torch

        return {"": torch.tensor(self.value)}


class WrongChannels:
    a_channels, b_channels = 1, 3

    def dataset(self, split: str, *, train: bool) -> list[dict[str, Any]]:
        import torch

        return [{"a": torch.zeros(1, 8, 8), "b": torch.zeros(1, 8, 8)}]


class Untidy(TaskParams):
    def declare(self) -> TaskSpec:
        return TaskSpec(roles={"generator": Role("generator")},
                        players={"generator": Player("generator", ("generator",))},
                        tensors={"real_a": (), "fake_b": ("generator",)},
                        directions={"a2b": Direction("a", "b", ("generator",), tensor="fake_b")},
                        visuals={"fake_b": "c"})


class Forgetful(Schedule):
    """Halves the rate at each epoch end it observes, but keeps nothing in its state: a resumed run restarts."""

    def __init__(self) -> None:
        self.current = 1.0

    def factor(self, epoch: float, epochs: int) -> float:
        return self.current

    def observe(self, epoch: int, metrics: Any) -> None:
        self.current /= 2


class Negative(Schedule):
    def factor(self, epoch: float, epochs: int) -> float:
        return 1.0 - epoch


def _misnamed_segmenter(params: Params, ctx: BuildContext) -> Any:
    from torch import nn

    net = nn.Conv2d(3, 2, 1)
    net.classes, net.palette, net.ignore_index = ("road", "sky"), ((128, 64, 128),), -1
    return net


def _shrinking_segmenter(params: Params, ctx: BuildContext) -> Any:
    from torch import nn

    net = nn.Conv2d(3, 2, 2, stride=2)
    net.classes, net.palette, net.ignore_index = ("road", "sky"), ((128, 64, 128), (70, 130, 180)), -1
    return net


class StepWithoutEpoch(Callback):
    def on_step(self, step: int, figures: Any) -> None:
        pass


class Meddler(Callback):
    def on_evaluation(self, epoch: int, figures: Any) -> None:
        figures["eval/psnr"] = 99.0


class Pairs(Params):
    pair: tuple[int, int] | None = Field(None)


BROKEN: list[tuple[Any, str, Any, type[Params] | None, str]] = [
    # (the check, the component, its builder, its params (None: the kind's base), what the check says)
    (check_generator, "no_tanh", _no_tanh, None, "outside [-1, 1]"),
    (check_generator, "shrinking", _shrinking, None, "expected (2, 3, 32, 33)"),
    (check_loss, "per_pixel", lambda p, c: PerPixel(), ReadsL1, "reduce it to a scalar"),
    (check_loss, "reads_nothing", lambda p, c: PerPixel(), LossParams, "reads a tensor its reads() does not name"),
    (check_metric, "last_batch", lambda p, c: LastBatch(), MetricParams, "accumulate sums and counts"),
    (check_metric, "never_reset", lambda p, c: NeverReset(), MetricParams, "reset() must empty"),
    (check_metric, "tensor_figure", lambda p, c: TensorFigure(), MetricParams, "return float(...)"),
    (check_dataset, "wrong_channels", lambda p, c: WrongChannels(), None,
     "'b' has 1 channels, the adapter declares 3"),
    (check_task, "untidy", lambda p, c: None, Untidy, "visual 'fake_b' looks like 'c'"),
    (check_schedule, "forgetful", lambda p, c: Forgetful(), ScheduleParams,
     "keep in the state whatever observe() changed"),
    (check_schedule, "negative", lambda p, c: Negative(), ScheduleParams, "give a finite multiplier >= 0"),
    (check_segmenter, "misnamed", _misnamed_segmenter, None,
     "`palette` must be a tuple of one RGB colour per class (2)"),
    (check_segmenter, "shrinking_segmenter", _shrinking_segmenter, None, "expected (2, 2, 32, 32)"),
    (check_callback, "step_without_epoch", lambda p, c: StepWithoutEpoch(), None,
     "cannot take (step, epoch, figures) by position"),
    (check_callback, "meddler", lambda p, c: Meddler(), None, "a callback observes the run, it never changes it"),
]
"""Components that each break one rule, declared once: the plugin below registers them and the test below
checks each one's check fails it with its message."""


def kind_checked_by(check: Any) -> Kind:
    return next(kind for kind in KINDS.values() if kind.check_name == check.__name__)


def registering(kind: Kind) -> Any:
    """The plugin's registration hook of `kind`: it registers the broken components that kind's check fails."""

    def register_broken(register: Any) -> None:
        for check, name, build, params, _ in BROKEN:
            if kind_checked_by(check) is kind:
                register(name, build, params=params)

    return staticmethod(hookimpl(register_broken))


Broken = type("Broken", (), {"__doc__": "A plugin whose components each break one rule.",
                             **{kind_checked_by(check).hook: registering(kind_checked_by(check))
                                for check in dict.fromkeys(check for check, *_ in BROKEN)}})


@pytest.fixture
def host(p2p_host_with):
    return p2p_host_with(("broken", Broken))


@pytest.mark.parametrize(("check", "name", "message"), [(check, name, message)
                                                        for check, name, _, _, message in BROKEN])
def test_checks_say_what_is_wrong(host, check, name, message):
    with pytest.raises(AssertionError, match=re.escape(message)) as caught:
        check(host, name)
    assert name in str(caught.value)


def test_a_module_importing_torch_is_not_light(tmp_path, monkeypatch):
    (tmp_path / "heavy_plugin.py").write_text("import torch\n")
    (tmp_path / "light_plugin.py").write_text("import p2pcore.api\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    check_entry_module_light("light_plugin")
    with pytest.raises(AssertionError, match="imports torch; import it inside the builders"):
        check_entry_module_light("heavy_plugin")


def test_round_trip_catches_a_value_toml_changes(p2p_host_with):
    class Plugin:
        @staticmethod
        @hookimpl
        def p2p_register_norms(register: Any) -> None:
            register("paired_norm", lambda p, c: None, params=Pairs)

    host = p2p_host_with(("pairs", Plugin))
    check_params_round_trip(host, "norm", "paired_norm")  # None is left out, as TOML has no null
    assert "pair = [" in check_params_round_trip(host, "norm", "paired_norm", pair=[1, 2])


def test_tiny_recipe_is_valid_and_merges_changes(p2p_host):
    base = validate_recipe(tiny_recipe(), p2p_host)
    assert base.data.params.size == 32 and base.model["generator"].params.ngf == 8
    changed = tiny_recipe(model={"generator": {"name": "resnet", "ngf": 8}, "discriminator": {"ndf": 4}},
                          loss={"gan": None}, train={"max_steps": 1}, task={"name": "pix2pix"})
    assert changed["model"]["generator"] == {"name": "resnet", "ngf": 8}  # another component: replaced
    assert changed["model"]["discriminator"] == {"name": "patch", "n_layers": 2, "ndf": 4}
    assert set(changed["loss"]) == {"l1"} and changed["train"]["max_steps"] == 1 and changed["train"]["epochs"] == 1
    assert validate_recipe(changed, p2p_host).model["generator"].name == "resnet"
    assert tiny_recipe()["loss"]["gan"] == {"name": "gan", "weight": 1.0}  # the template itself is untouched


def test_assert_refused_checks_the_key_and_message(p2p_host, tmp_path):
    bad = tiny_recipe(model={"generator": {"ngf": 0}})
    error = assert_refused(p2p_host, bad, key="model.generator.ngf")
    assert error.key == "model.generator.ngf"
    with pytest.raises(AssertionError, match="refused at key 'model.generator.ngf', not 'train.epochs'"):
        assert_refused(p2p_host, bad, key="train.epochs")
    with pytest.raises(AssertionError, match="does not match"):
        assert_refused(p2p_host, bad, match="no such words")
    with pytest.raises(AssertionError, match="the recipe validates"):
        assert_refused(p2p_host, tiny_recipe())
    path = tmp_path / "tiny.toml"
    quickstart = (Path(__file__).parents[1] / "recipes" / "quickstart.toml").as_posix()
    path.write_text(f'extends = "{quickstart}"\n')
    error = assert_refused(p2p_host, path, overrides=["train.epochs=0"], key="train.epochs")
    assert error.file == str(path)


@pytest.mark.p2p_plugins(("broken", Broken))
def test_marker_adds_plugins_to_p2p_host(p2p_host):
    assert p2p_host.registry.get("generator", "no_tanh").distribution == "broken"


def test_p2p_host_without_marker_has_the_installed_plugins(p2p_host):
    assert p2p_host.registry.get("generator", "unet").builtin
    with pytest.raises(Exception, match="unknown generator"):
        p2p_host.registry.get("generator", "no_tanh")


def test_a_plugin_under_test_that_fails_to_load_fails_the_test(p2p_host_with):
    class Misspelt:
        @staticmethod
        @hookimpl
        def p2p_register_generator(register: Any) -> None:
            pass

    with pytest.raises(AssertionError, match="plugin 'misspelt' failed to load: .*p2p_register_generators"):
        p2p_host_with(("misspelt", Misspelt))
