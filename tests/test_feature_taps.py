"""The feature-tap contract: every built-in generator offers its intermediate maps by index, with the channels
and scales it declares, the names its facts list without torch, and the same values its forward pass computes."""

from __future__ import annotations

import pytest
import torch

from p2pcore.api import Generator, check_taps
from p2pcore.errors import P2PError
from p2pcore.plugins import load_host

TINY = {
    "unet": {"depth": 5, "ngf": 4},
    "encoder_decoder": {"depth": 5, "ngf": 4},
    "resnet": {"n_blocks": 3, "ngf": 4},
    "global": {"ngf": 4, "n_downsample": 2, "n_blocks": 2},
    "local_enhancer": {"ngf": 4, "n_downsample": 2, "n_blocks": 2, "n_blocks_local": 2},
}


@pytest.fixture(scope="module")
def host():
    return load_host()


@pytest.mark.parametrize("name", sorted(TINY))
def test_taps_match_their_declaration_and_the_forward_pass(host, name):
    torch.manual_seed(0)
    spec = {"name": name, **TINY[name]}
    net = host.build("generator", spec, in_channels=2, out_channels=3).eval()
    assert isinstance(net, Generator)
    taps = net.taps()
    facts = host.component(host.resolve("generator", spec)).facts(host.resolve("generator", spec).params)
    assert tuple(t.name for t in taps) == tuple(facts["taps"]), "facts list the taps without torch"
    assert taps[0].name == "input" and taps[0].channels == 2
    x = torch.randn(2, 2, 64, 64)
    layers = list(range(len(taps)))
    maps = net.feature_maps(x, layers)
    for tap, found in zip(taps, maps, strict=True):
        assert found.shape == (2, tap.channels, 64 // tap.scale, 64 // tap.scale), tap
    assert torch.equal(maps[0], x)
    picked = net.feature_maps(x, [len(taps) - 1, 1])
    assert torch.equal(picked[0], maps[-1]) and torch.equal(picked[1], maps[1]), "in the order asked"


def test_the_resnet_taps_are_the_maps_its_forward_pass_runs_through(host):
    torch.manual_seed(0)
    net = host.build("generator", {"name": "resnet", **TINY["resnet"]}, in_channels=3, out_channels=3).eval()
    x = torch.randn(1, 3, 32, 32)
    last = net.feature_maps(x, [len(net.taps()) - 1])[0]
    torch.testing.assert_close(net.tail(net.up(last)), net(x))


def test_layers_a_generator_does_not_have_are_refused_naming_the_key(host):
    net = host.build("generator", {"name": "resnet", **TINY["resnet"]}, in_channels=3, out_channels=3)
    with pytest.raises(P2PError, match="no layer 40") as caught:
        net.feature_maps(torch.zeros(1, 3, 32, 32), [0, 40])
    assert caught.value.key == "layers" and "0 input" in caught.value.hint
    with pytest.raises(P2PError, match="no layer 9") as caught:
        check_taps([9], ("input", "head"), key="task.nce_layers")
    assert caught.value.key == "task.nce_layers"
