"""The example third-party plugin in examples/p2p-example, installed like any other package."""

from __future__ import annotations

import importlib.metadata as md

import pytest
import torch

try:
    md.distribution("p2p-example")
except md.PackageNotFoundError:
    pytest.skip("pip install -e examples/p2p-example to run these", allow_module_level=True)


def test_third_party_components_are_discovered(host):
    group = host.registry.get("norm", "group")
    assert group.distribution == "p2p-example" and group.version == "0.1.0"
    record = next(r for r in host.records if r.distribution == "p2p-example")
    assert record.ok and set(record.components) == {"norm:group", "loss:tv", "generator:se_resnet",
                                                    "discriminator:noisy", "dataset:csv_pairs", "task:colorize",
                                                    "task:colorize_probe"}


def test_builtin_generator_composes_a_third_party_norm(host):
    net = host.build("generator", {"name": "unet", "depth": 5, "ngf": 8, "norm": {"name": "group", "groups": 4}},
                     in_channels=1, out_channels=3)
    assert any(isinstance(m, torch.nn.GroupNorm) for m in net.modules())
    assert net(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_recipe_uses_a_third_party_loss(host, tmp_path):
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    recipe = validate_recipe({
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 8, "test_count": 2},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8, "norm": "group"}},
        "loss": {"l1": {"name": "l1", "weight": 100.0}, "tv": {"name": "tv", "weight": 0.1}},
        "train": {"epochs": 1, "batch_size": 4, "num_workers": 0, "log_every": 1},
    }, host, default_name="tv")
    result = Trainer(recipe, host, tmp_path / "tv").fit()
    assert "G/tv" in result.metrics
