"""Built-in generators and discriminators.

Parameter counts of the reference implementations (shared/PAPERS.md), one contract test over every
registered generator and discriminator (built-in or not), receptive fields measured by back-propagation,
and the errors users see for bad parameters.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from p2pcore import P2PError, load_host

HOST = load_host()


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def build_on_meta(kind: str, spec: dict, **channels: int) -> nn.Module:
    """Full-size networks are only counted, so build them without allocating their weights."""
    with torch.device("meta"):
        return HOST.build(kind, spec, **channels)


# -- parameter counts of the reference implementations -------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    ({"name": "unet", "depth": 8, "norm": "batch"}, 54_413_955),      # unet_256
    ({"name": "unet", "depth": 7, "norm": "batch"}, 41_828_995),      # unet_128
    ({"name": "resnet", "n_blocks": 9, "norm": "instance"}, 11_378_179),
    ({"name": "resnet", "n_blocks": 6, "norm": "instance"}, 7_837_699),
], ids=["unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks"])
def test_generator_parameter_counts(spec: dict, expected: int) -> None:
    assert n_params(build_on_meta("generator", spec, in_channels=3, out_channels=3)) == expected


def test_default_generators_are_the_papers() -> None:
    unet = build_on_meta("generator", "unet", in_channels=3, out_channels=3)
    resnet = build_on_meta("generator", "resnet", in_channels=3, out_channels=3)
    assert (n_params(unet), unet.size_multiple) == (54_413_955, 256)
    assert (n_params(resnet), resnet.size_multiple) == (11_378_179, 4)


@pytest.mark.parametrize(("spec", "in_channels", "expected"), [
    ({"name": "patch", "n_layers": 3, "norm": "batch"}, 6, 2_768_705),
    ({"name": "patch", "receptive_field": 70, "norm": "instance"}, 3, 2_764_737),
    ({"name": "patch", "n_layers": 5, "norm": "batch"}, 6, 11_159_361),
    ({"name": "pixel", "norm": "batch"}, 6, 9_024),
], ids=["patch70_batch_in6", "patch70_instance_in3", "patch286_batch_in6", "pixel_batch_in6"])
def test_discriminator_parameter_counts(spec: dict, in_channels: int, expected: int) -> None:
    assert n_params(build_on_meta("discriminator", spec, in_channels=in_channels)) == expected


def test_default_patch_discriminator_is_70x70() -> None:
    d = build_on_meta("discriminator", "patch", in_channels=6)
    assert (n_params(d), d.receptive_field, d.conditional) == (2_768_705, 70, True)


# -- the contract every registered network keeps ---------------------------------------------------------

def small(component) -> dict:
    """A spec from the component's defaults, shrunk where a known knob makes it cheap."""
    fields = component.params.model_fields
    shrink = {"ngf": 8, "ndf": 8, "depth": 5, "n_blocks": 2}
    return {"name": component.qualified_name, **{k: v for k, v in shrink.items() if k in fields}}


def check_facts(kind: str, spec: dict, net: nn.Module) -> None:
    """Figures `p2p show` derives without torch agree with the built network."""
    ref = HOST.resolve(kind, spec)
    component = HOST.component(ref)
    facts = component.facts(ref.params) if component.facts else {}
    for name in ("size_multiple", "receptive_field"):
        if name in facts:
            assert facts[name] == getattr(net, name), name


def flat(out) -> list[torch.Tensor]:
    """Every tensor of a network's output: a map, a list of maps, or per-scale lists of feature maps."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in flat(o)]


def prediction_maps(out) -> list[torch.Tensor]:
    """A discriminator's prediction maps: the map, each map of a list, or the last map of each scale's list."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [o[-1] if isinstance(o, list | tuple) else o for o in out]


def check_backward(net: nn.Module, out) -> None:
    outs = flat(out)
    sum(o.float().mean() for o in outs).backward()
    missing = [name for name, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters that get no gradient: {missing[:5]}"


@pytest.mark.parametrize("component", HOST.registry.specs("generator"), ids=lambda c: c.qualified_name)
def test_generator_contract(component) -> None:
    assert component.summary.strip()
    torch.manual_seed(0)
    net = HOST.build("generator", small(component), in_channels=3, out_channels=2)
    check_facts("generator", small(component), net)
    multiple = net.size_multiple
    assert isinstance(multiple, int) and multiple >= 1
    side = -(-32 // multiple) * multiple
    x = torch.randn(2, 3, side, side)

    net.train()
    y = net(x)
    assert y.shape == (2, 2, side, side)
    assert y.abs().max() <= 1.0, "generators end in Tanh"
    check_backward(net, y)

    net.eval()
    with torch.no_grad():
        y = net(torch.randn(1, 3, side, 2 * side))  # non-square, still a multiple
    assert y.shape == (1, 2, side, 2 * side)


@pytest.mark.parametrize("component", HOST.registry.specs("discriminator"), ids=lambda c: c.qualified_name)
def test_discriminator_contract(component) -> None:
    assert component.summary.strip()
    fields = component.params.model_fields
    assert {"conditional", "spectral_norm"} <= set(fields)
    assert fields["conditional"].default is True and fields["spectral_norm"].default is False
    torch.manual_seed(0)
    for spectral_norm in (False, True):
        net = HOST.build("discriminator", {**small(component), "spectral_norm": spectral_norm}, in_channels=5)
        assert isinstance(net.receptive_field, int) and net.receptive_field >= 1
        check_facts("discriminator", small(component), net)
        assert net.conditional is True
        net.train()
        out = net(torch.randn(2, 5, 128, 128))
        for o in prediction_maps(out):
            assert o.dim() == 4 and o.shape[:2] == (2, 1)
        assert all(o.dim() == 4 and o.shape[0] == 2 for o in flat(out))
        check_backward(net, out)
    unconditional = HOST.build("discriminator", {**small(component), "conditional": False}, in_channels=3)
    assert unconditional.conditional is False


def test_plugin_entry_modules_do_not_import_torch() -> None:
    code = ("import sys, p2p_generators, p2p_discriminators; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- architecture details -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["unet", "encoder_decoder"])
@pytest.mark.parametrize("depth", [1, 2, 3, 6])
@pytest.mark.parametrize("upsample", ["transposed", "resize_conv"])
def test_unet_any_depth_keeps_size(name: str, depth: int, upsample: str) -> None:
    net = HOST.build("generator", {"name": name, "depth": depth, "ngf": 8, "upsample": upsample},
                     in_channels=1, out_channels=3)
    side = max(2 ** depth, 16)
    assert net.size_multiple == 2 ** depth
    assert net(torch.randn(2, 1, side, side)).shape == (2, 3, side, side)


def test_unet_structure_follows_the_reference() -> None:
    net = build_on_meta("generator", "unet", in_channels=3, out_channels=3)
    assert "norm" not in dict(net.down[0].named_children())            # no norm on C64
    assert "norm" not in dict(net.down[-1].named_children())           # none on the 1x1 bottleneck
    assert "norm" in dict(net.up[-1].named_children())                 # the innermost up has one
    assert net.up[0].conv.bias is not None and net.down[0].conv.bias is None
    with_dropout = [i for i, up in enumerate(net.up) if any(isinstance(m, nn.Dropout) for m in up)]
    assert with_dropout == [4, 5, 6]                                   # CD512 x 3 next to the innermost
    assert [up.conv.in_channels for up in reversed(net.up)] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert isinstance(list(net.up[0].children())[-1], nn.Tanh)
    no_dropout = build_on_meta("generator", {"name": "unet", "dropout": 0}, in_channels=3, out_channels=3)
    assert not any(isinstance(m, nn.Dropout) for m in no_dropout.modules())


def test_unet_trains_at_batch_size_one_with_batch_norm() -> None:
    net = HOST.build("generator", {"name": "unet", "ngf": 4}, in_channels=3, out_channels=3).train()
    y = net(torch.randn(1, 3, 256, 256))
    assert y.shape == (1, 3, 256, 256) and y.std() > 0


def test_encoder_decoder_bottleneck_norm() -> None:
    plain = build_on_meta("generator", "encoder_decoder", in_channels=3, out_channels=3)
    normed = build_on_meta("generator", {"name": "encoder_decoder", "bottleneck_norm": True},
                           in_channels=3, out_channels=3)
    assert "norm" not in dict(plain.down[-1].named_children())
    assert "norm" in dict(normed.down[-1].named_children())
    assert [up.conv.in_channels for up in reversed(plain.up)] == [512, 512, 512, 512, 512, 256, 128, 64]


def test_image_discriminator_gives_one_score_per_image() -> None:
    net = HOST.build("discriminator", {"name": "image", "ndf": 4}, in_channels=6)
    assert net.receptive_field == 286
    assert net(torch.randn(3, 6, 256, 192)).shape == (3, 1, 1, 1)


# -- receptive fields, measured -------------------------------------------------------------------------

def input_extent(net: nn.Module, in_channels: int, side: int) -> tuple[int, int]:
    """Height and width of the input region that one central output unit depends on.

    Weights are positive constants, biases zero, no norm and a positive input: every activation is
    positive, so no gradient cancels and the nonzero gradient is exactly the receptive field.
    """
    net = net.double()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.fill_(1.0 / module.weight[0].numel())
                if module.bias is not None:
                    module.bias.zero_()
    x = torch.ones(1, in_channels, side, side, dtype=torch.float64, requires_grad=True)
    out = net(x)
    h, w = out.shape[-2:]
    (grad,) = torch.autograd.grad(out[0, 0, h // 2, w // 2], x)
    rows = grad.abs().sum(dim=(0, 1, 3)).nonzero()
    cols = grad.abs().sum(dim=(0, 1, 2)).nonzero()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize(("n_layers", "expected"), [(1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_patch_receptive_field(n_layers: int, expected: int) -> None:
    net = HOST.build("discriminator", {"name": "patch", "n_layers": n_layers, "ndf": 2, "norm": "none"},
                     in_channels=1)
    assert net.receptive_field == expected
    check_facts("discriminator", {"name": "patch", "n_layers": n_layers}, net)
    side = 2 ** n_layers * (expected // 2 ** n_layers + 4)
    assert input_extent(net, 1, side) == (expected, expected)
    by_field = HOST.build("discriminator", {"name": "patch", "receptive_field": expected, "ndf": 2},
                          in_channels=1)
    assert by_field.n_layers == n_layers


def test_pixel_receptive_field() -> None:
    net = HOST.build("discriminator", {"name": "pixel", "ndf": 2, "norm": "none"}, in_channels=2)
    assert net.receptive_field == 1
    assert input_extent(net, 2, 16) == (1, 1)


def test_image_discriminator_sees_the_whole_image() -> None:
    net = HOST.build("discriminator", {"name": "image", "n_layers": 2, "ndf": 2, "norm": "none"},
                     in_channels=1)
    assert input_extent(net, 1, 64) == (64, 64)


# -- errors users see -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "spec", "words"), [
    ("discriminator", {"name": "patch", "n_layers": 3, "receptive_field": 70}, ["either n_layers or"]),
    ("discriminator", {"name": "patch", "receptive_field": 71}, ["receptive_field", "70"]),
    ("discriminator", {"name": "patch", "n_layers": 0}, ["n_layers"]),
    ("discriminator", {"name": "pixel", "n_layers": 3}, ["n_layers"]),
    ("generator", {"name": "unet", "depth": 0}, ["depth"]),
    ("generator", {"name": "unet", "ngff": 8}, ["did you mean 'ngf'"]),
    ("generator", {"name": "unet", "upsample": "bilinear"}, ["upsample", "resize_conv"]),
    ("generator", {"name": "resnet", "norm": "batchh"}, ["did you mean 'batch'"]),
    ("generator", {"name": "unet", "dropout": 1.5}, ["dropout"]),
])
def test_bad_params_are_clear_errors(kind: str, spec: dict, words: list[str]) -> None:
    with pytest.raises(P2PError) as info:
        HOST.build(kind, spec, in_channels=6, out_channels=3, key=f"model.{kind}")
    text = str(info.value)
    assert f"model.{kind}" in text
    for word in words:
        assert word in text


def test_channels_must_be_derived() -> None:
    with pytest.raises(P2PError, match="channel"):
        HOST.build("generator", "unet", key="model.generator")
    with pytest.raises(P2PError, match="channels"):
        HOST.build("discriminator", "patch", key="model.discriminator")
