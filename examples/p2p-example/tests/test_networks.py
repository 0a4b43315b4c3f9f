"""Contract checks of the example's generator `se_resnet` and discriminator wrapper `noisy`."""

from __future__ import annotations

import p2p_example
import pytest

from p2pcore.testing import check_discriminator, check_generator, check_params_round_trip

pytestmark = pytest.mark.p2p_plugins(("example", p2p_example))

PATCH = {"name": "patch", "n_layers": 2, "ndf": 8}


@pytest.mark.parametrize(("params", "multiple"), [
    ({"norm": {"name": "group", "groups": 4}}, 4),                # the example's own norm
    ({"norm": "instance", "dropout": 0.3, "n_down": 3}, 8),     # a built-in norm, dropout in the blocks
])
def test_se_resnet_contract(p2p_host, params, multiple):
    net = check_generator(p2p_host, "se_resnet", ngf=8, n_blocks=2, in_channels=1, **params)
    assert net.size_multiple == multiple


def test_se_resnet_is_built_of_se_blocks_with_the_named_norm(p2p_host):
    import torch

    net = p2p_host.build("generator", {"name": "se_resnet", "ngf": 8, "n_blocks": 3, "norm": "group"},
                         in_channels=3, out_channels=3)
    blocks = [m for m in net.modules() if type(m).__name__ == "SEResidualBlock"]
    assert len(blocks) == 3 and all(type(m).__name__ == "SqueezeExcite" for m in (b.body[-1] for b in blocks))
    assert any(isinstance(m, torch.nn.GroupNorm) for m in net.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in net.modules())


@pytest.mark.parametrize("params", [
    {"discriminator": PATCH},
    {"discriminator": PATCH, "spectral_norm": True, "sigma": 0.5},
    {"discriminator": {"name": "pixel", "ndf": 8}, "conditional": False},
])
def test_noisy_wrapper_contract(p2p_host, params):
    net = check_discriminator(p2p_host, "noisy", in_channels=6 if params.get("conditional", True) else 3, **params)
    assert net.receptive_field == net.inner.receptive_field


def test_wrapped_discriminators_at_several_scales(p2p_host):
    """Built-in multiscale of the example's wrapper: the features pass through, so feature matching works."""
    net = check_discriminator(p2p_host, "multiscale", num_D=2, discriminator={"name": "noisy", "discriminator": PATCH})
    assert all(hasattr(scale, "forward_features") for scale in net.scales)


def test_noise_only_while_training(p2p_host):
    import torch

    net = p2p_host.build("discriminator", {"name": "noisy", "discriminator": PATCH, "sigma": 1.0}, in_channels=3)
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_spectral_norm_reaches_the_wrapped_convolutions(p2p_host):
    from torch import nn
    from torch.nn.utils import parametrize

    net = p2p_host.build("discriminator", {"name": "noisy", "discriminator": PATCH, "spectral_norm": True},
                         in_channels=3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)


@pytest.mark.parametrize(("kind", "name", "params"), [
    ("generator", "se_resnet", {"ngf": 16, "norm": {"name": "group", "groups": 2}, "reduction": 2}),
    ("discriminator", "noisy", {"sigma": 0.2, "discriminator": {"name": "multiscale", "num_D": 2}}),
])
def test_params_survive_a_recipe_file(p2p_host, kind, name, params):
    check_params_round_trip(p2p_host, kind, name, **params)


def test_se_resnet_feature_taps(p2p_host):
    """The feature-tap contract: taps() in execution order, as the registered facts name them; feature_maps
    gives maps of each tap's channels and scale, the last block's as the forward pass computes it."""
    import torch

    params = {"name": "se_resnet", "ngf": 8, "n_down": 2, "n_blocks": 2, "norm": "instance"}
    net = p2p_host.build("generator", params, in_channels=1, out_channels=3)
    taps = net.taps()
    facts = p2p_host.registry.get("generator", "se_resnet").facts
    resolved = p2p_host.registry.get("generator", "se_resnet").params(**{k: v for k, v in params.items()
                                                                          if k != "name"})
    assert [t.name for t in taps] == list(facts(resolved)["taps"]) == \
        ["input", "head", "down1", "down2", "block1", "block2"]
    x = torch.randn(2, 1, 16, 24)
    maps = net.feature_maps(x, [5, 0, 2])
    for index, got in zip([5, 0, 2], maps, strict=True):
        assert tuple(got.shape) == (2, taps[index].channels, 16 // taps[index].scale, 24 // taps[index].scale)
    assert torch.equal(maps[1], x)
    assert torch.allclose(maps[0], net.blocks(net.down(net.head(x))))
