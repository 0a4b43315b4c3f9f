"""Engine options a task does not see: n_critic, the weight average (EMA) and where it is used,
loss terms that own networks, and batches whose every image key is padded and checked."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

from p2pcore import P2PError, load_host
from p2pcore.api import Field, LossParams, LossTerm, hookimpl
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.build.data import ERROR_KEY, Collate
from p2pcore.engine.build.placement import SingleDevice
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe


def tiny(**train) -> dict:
    return {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 16, "test_count": 2},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan", "mode": "wgan-gp"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "log_every": 1, "device": "cpu", **train},
    }


def adam_steps(trainer: Trainer, player: str) -> int:
    state = trainer.optimizers[player].state
    return int(next(iter(state.values()))["step"])


def test_n_critic_updates_the_generator_every_nth_step(host, tmp_path):
    trainer = Trainer(validate_recipe(tiny(n_critic=4), host), host, tmp_path / "run")
    trainer.fit()
    assert adam_steps(trainer, "discriminator") == 8 and adam_steps(trainer, "generator") == 2


def test_weight_average_is_kept_and_used_by_translate(host, tmp_path):
    trainer = Trainer(validate_recipe(tiny(ema=0.5), host), host, tmp_path / "run")
    trainer.fit()
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.safetensors")
    average = ckpt.prefixed("ema.generator")
    live = ckpt.prefixed("net.generator")
    assert average.keys() == live.keys()
    assert any(not torch.equal(average[k], live[k]) for k in average)  # an average, not a copy
    assert not any(k.startswith("ema.discriminator") for k in ckpt.tensors)
    translator = Translator(ckpt.path, host, device="cpu", protocol="eval")
    assert translator.averaged
    assert all(torch.equal(v, average[k]) for k, v in translator.nets["generator"].state_dict().items())


def test_weight_average_follows_the_formula(host, tmp_path):
    trainer = Trainer(validate_recipe(tiny(ema=0.9, max_steps=1), host), host, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.nets["generator"].named_parameters()}
    trainer.fit()
    after = dict(trainer.nets["generator"].named_parameters())
    averaged = dict(trainer.average.nets["generator"].named_parameters())
    for name, value in averaged.items():
        assert torch.allclose(value, 0.9 * before[name] + 0.1 * after[name].detach(), atol=1e-6)


class Owner(nn.Module, LossTerm):
    """A loss term that owns a network, as a perceptual loss does."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3, padding=1).requires_grad_(False)

    def generator_loss(self, t):
        return (self.features(t["fake_b"]) - self.features(t["real_b"])).abs().mean()


class OwnerParams(LossParams):
    scale: float = Field(1.0)

    def reads(self) -> frozenset[str]:
        return frozenset({"fake_b", "real_b"})


@hookimpl
def p2p_register_losses(register):
    register("owner", lambda params, ctx: Owner(), params=OwnerParams)


class Recording(SingleDevice):
    def __init__(self) -> None:
        super().__init__(torch.device("cpu"))
        self.placed: list[nn.Module] = []

    def place(self, module: nn.Module) -> nn.Module:
        self.placed.append(module)
        return super().place(module)


def test_loss_terms_that_are_modules_are_placed_with_the_networks(tmp_path):
    host = load_host(extra_plugins=[("owner", types.SimpleNamespace(p2p_register_losses=p2p_register_losses))])
    recipe = tiny(max_steps=2)
    recipe["loss"]["perceptual"] = {"name": "owner", "weight": 2.0}
    placement = Recording()
    trainer = Trainer(validate_recipe(recipe, host), host, tmp_path / "run", placement=placement)
    owner = next(t.loss for t in trainer.terms if t.label == "perceptual")
    assert owner in placement.placed and trainer.nets["generator"] in placement.placed
    trainer.fit()


def test_weight_zero_turns_a_term_off(host, tmp_path):
    recipe = tiny(max_steps=1)
    recipe["loss"]["gan"]["weight"] = 0.0
    trainer = Trainer(validate_recipe(recipe, host), host, tmp_path / "run")
    assert [t.label for t in trainer.terms] == ["l1"] and "discriminator" not in trainer.nets


def test_collate_checks_every_image_key():
    collate = Collate(("a", "b"))
    items = [{"a": torch.zeros(1, 8, 8), "b": torch.zeros(3, 8, 8)},
             {"a": torch.zeros(1, 8, 8), "b": torch.zeros(3, 8, 12)}]
    carried = collate(items)
    assert ERROR_KEY in carried and "differ in size" in carried[ERROR_KEY]["message"]
    assert collate(items[:1])["b"].shape == (1, 3, 8, 8)


def test_every_image_key_is_padded_to_the_generators_multiple(host, tmp_path):
    trainer = Trainer(validate_recipe(tiny(), host), host, tmp_path / "run")
    batch = trainer._to_device({"a": torch.zeros(1, 1, 30, 20), "b": torch.zeros(1, 3, 30, 20),
                                "label": torch.zeros(1, 30, 20)})
    assert batch["a"].shape[-2:] == batch["b"].shape[-2:] == (32, 32) and batch["label"].shape[-2:] == (30, 20)


def test_unknown_player_is_an_error(host):
    recipe = tiny()
    recipe["optim"] = {"discriminatr": {"lr": 1e-4}}
    with pytest.raises(P2PError, match="did you mean 'discriminator'"):
        validate_recipe(recipe, host)


def test_a_run_can_start_from_another_runs_checkpoint(host, tmp_path):
    Trainer(validate_recipe(tiny(max_steps=2), host), host, tmp_path / "first").fit()
    first = read_checkpoint(tmp_path / "first" / "checkpoints" / "latest.safetensors")
    recipe = tiny(max_steps=1)
    recipe["init"] = {"checkpoint": str(first.path), "load": {"generator.down.0": "generator.down.0"}}
    second = Trainer(validate_recipe(recipe, host), host, tmp_path / "second")
    loaded = second.nets["generator"].get_submodule("down.0").state_dict()
    assert all(torch.equal(v, first.tensors[f"net.generator.down.0.{k}"]) for k, v in loaded.items())
    other = second.nets["generator"].state_dict()["down.1.conv.weight"]
    assert not torch.equal(other, first.tensors["net.generator.down.1.conv.weight"])  # only what was mapped
    assert "starting from" in second.summary()
    recipe["init"] = {"checkpoint": str(first.path)}
    whole = Trainer(validate_recipe(recipe, host), host, tmp_path / "third")
    assert all(torch.equal(v, first.tensors[f"net.discriminator.{k}"])
               for k, v in whole.nets["discriminator"].state_dict().items())
    recipe["init"] = {"checkpoint": str(first.path), "load": {"generator.nowhere": "generator"}}
    with pytest.raises(P2PError, match="no module 'nowhere'") as caught:
        Trainer(validate_recipe(recipe, host), host, tmp_path / "fourth")
    assert caught.value.key == "init.load.generator.nowhere"


def test_a_non_finite_update_is_skipped_on_the_device(host, tmp_path):
    from p2pcore.engine.train.update import SideUpdate

    trainer = Trainer(validate_recipe(tiny(), host), host, tmp_path / "run")
    optimizer = trainer.optimizers["generator"]
    assert optimizer.defaults["fused"]  # fused Adam: the skip needs no synchronisation
    update = SideUpdate("generator", {"generator": optimizer}, torch.amp.GradScaler("cpu", enabled=False))
    net = trainer.nets["generator"]
    x = torch.randn(1, 1, 32, 32)
    logs: dict = {}
    assert float(update({"l1": net(x).abs().mean()}, {"l1": 1.0}, logs)) == 0.0
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    steps = [int(s["step"]) for s in optimizer.state.values()]
    flag = update({"l1": net(x).abs().mean() * float("nan")}, {"l1": 1.0}, logs)
    assert float(flag) == 1.0 and not torch.isfinite(logs["G/l1"])
    assert all(torch.equal(before[k], v) for k, v in net.named_parameters())  # the forward pass moved only statistics
    assert [int(s["step"]) for s in optimizer.state.values()] == steps


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_training_step_never_waits_for_the_gpu(host, tmp_path):
    trainer = Trainer(validate_recipe(tiny(device="cuda", ema=0.9), host), host, tmp_path / "run")
    batch = torch.utils.data.default_collate([trainer.train_set[i] for i in range(2)])
    batch = trainer._to_device(batch)
    trainer.train_step(batch)  # warm-up: lazy state creation may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            trainer.train_step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_compile_modes_and_why_one_is_off():
    from p2pcore.engine.build.placement import compile_mode

    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert compile_mode(False, cpu) is None and compile_mode(True, cpu) == "default"
    assert compile_mode("max-autotune", cpu) == "max-autotune"
    assert compile_mode("reduce-overhead", gpu) == "reduce-overhead"
    with pytest.warns(UserWarning, match="CUDA graphs"):
        assert compile_mode("reduce-overhead", cpu) == "default"
