"""pix2pixHD on the task contract: networks, losses, label and instance maps, training stages, import.

Networks counted at full size are built on the meta device; everything that runs is tiny (ngf 4-8,
32-64 px).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import SHARED, needs_shared
from torch import nn

from p2pcore import P2PError, load_host
from p2pcore.api import BuildContext, DiscriminatorParams, Field, Tensors, hookimpl
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import read_with_extends, validate_recipe

HOST = load_host()


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def build_on_meta(kind: str, spec, **channels: int) -> nn.Module:
    with torch.device("meta"):
        return HOST.build(kind, spec, **channels)


# -- the multi-scale discriminator and feature matching -------------------------------------------------

def test_multiscale_discriminator_has_the_reference_parameter_count() -> None:
    d = build_on_meta("discriminator", {"name": "multiscale", "num_D": 2}, in_channels=6)
    assert n_params(d) == 5_535_618
    assert len(d.scales) == 2 and d.conditional is True


def test_multiscale_returns_every_feature_map_per_scale() -> None:
    d = HOST.build("discriminator", {"name": "multiscale", "num_D": 3,
                                     "discriminator": {"name": "patch", "ndf": 4, "norm": "instance",
                                                       "padding": 2}}, in_channels=6)
    out = d(torch.randn(1, 6, 64, 128))
    assert len(out) == 3
    for k, scale in enumerate(out):
        assert [f.shape[1] for f in scale] == [4, 8, 16, 32, 1]       # n_layers + 1 features, then the map
        assert scale[0].shape[-2:] == (64 // 2 ** (k + 1) + 1, 128 // 2 ** (k + 1) + 1)  # padding 2
    # scale k sees the input average-pooled k times (3x3, stride 2, padded pixels not counted)
    pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    x = torch.randn(1, 6, 64, 128)
    torch.testing.assert_close(d(x)[2][-1], d.scales[2](pool(pool(x))))


def test_patch_padding_two_keeps_the_weights_and_the_default_maps() -> None:
    one = HOST.build("discriminator", {"name": "patch", "ndf": 4}, in_channels=3)
    two = HOST.build("discriminator", {"name": "patch", "ndf": 4, "padding": 2}, in_channels=3)
    assert n_params(one) == n_params(two) and one.receptive_field == two.receptive_field == 70
    x = torch.randn(1, 3, 256, 256)
    assert one(x).shape[-2:] == (30, 30) and two(x).shape[-2:] == (35, 35)
    facts = HOST.component(HOST.resolve("discriminator", {"name": "patch", "padding": 2})).facts
    assert facts(HOST.resolve("discriminator", {"name": "patch", "padding": 2}).params)["output at 256x256"] == "35x35"


class CriticParams(DiscriminatorParams):
    conditional: bool = Field(True)
    spectral_norm: bool = Field(False)
    width: int = Field(4, ge=1)


class TinyCritic(nn.Module):
    """A third party's discriminator: two convolutions, features through `forward_features`."""

    receptive_field = 5

    def __init__(self, in_channels: int, width: int, conditional: bool) -> None:
        super().__init__()
        self.conditional = conditional
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2))
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.body(x)
        return [h, self.out(h)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[-1]


def _build_critic(params: CriticParams, ctx: BuildContext) -> TinyCritic:
    """A tiny critic."""
    return TinyCritic(ctx.in_channels, params.width, params.conditional)


@hookimpl
def _register_critic(register) -> None:
    register("tiny_critic", _build_critic, params=CriticParams)


THIRD_PARTY = SimpleNamespace(p2p_register_discriminators=_register_critic)


def test_a_third_party_discriminator_works_inside_multiscale() -> None:
    host = load_host(extra_plugins=[("tiny_critic", THIRD_PARTY)])
    d = host.build("discriminator", {"name": "multiscale", "num_D": 2,
                                     "discriminator": {"name": "tiny_critic", "width": 3}}, in_channels=4)
    assert all(isinstance(s, TinyCritic) for s in d.scales)
    assert d.receptive_field == 5 * 2 + 1
    fake = torch.randn(2, 4, 32, 32, requires_grad=True)
    real = torch.randn(2, 4, 32, 32)
    out = d(fake)
    assert [[tuple(f.shape) for f in s] for s in out] == [[(2, 3, 32, 32), (2, 1, 32, 32)],
                                                          [(2, 3, 16, 16), (2, 1, 16, 16)]]
    fm = host.build("loss", {"name": "feature_matching"})
    gan = host.build("loss", {"name": "gan", "mode": "lsgan"})
    t = Tensors(values={"d_real": d(real), "d_fake": out})
    loss = fm.generator_loss(t) + gan.generator_loss(t)
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_feature_matching_weights_each_scale_and_layer() -> None:
    torch.manual_seed(0)
    real = [[torch.randn(1, 2, 4, 4) for _ in range(5)] for _ in range(3)]
    fake = [[torch.randn(1, 2, 4, 4, requires_grad=True) for _ in range(5)] for _ in range(3)]
    loss = HOST.build("loss", "feature_matching").generator_loss(Tensors(values={"d_real": real, "d_fake": fake}))
    # 4 intermediate maps per scale (the 5th is the prediction): weight 4/4 * 1/3 each
    expected = sum((f - r).abs().mean() / 3 for rs, fs in zip(real, fake, strict=True)
                   for r, f in zip(rs[:-1], fs[:-1], strict=True))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert fake[0][-1].grad is None and fake[0][0].grad is not None     # the prediction maps are not matched
    assert not any(r.requires_grad for rs in real for r in rs)


def test_feature_matching_refuses_a_discriminator_without_features() -> None:
    fm = HOST.build("loss", "feature_matching")
    with pytest.raises(P2PError, match="intermediate features") as caught:
        fm.generator_loss(Tensors(values={"d_real": torch.zeros(1, 1, 4, 4), "d_fake": torch.zeros(1, 1, 4, 4)}))
    assert "multiscale" in caught.value.hint


# -- generators ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "in_channels", "expected"), [
    ("global", 3, 182_443_267),
    ("global", 36, 182_546_755),
    ({"name": "local_enhancer", "ngf": 32, "n_enhancers": 1}, 36, 182_857_059),
], ids=["global_in3", "global_in36", "local_ngf32_in36"])
def test_generator_parameter_counts(spec, in_channels: int, expected: int) -> None:
    assert n_params(build_on_meta("generator", spec, in_channels=in_channels, out_channels=3)) == expected


def test_global_defaults_are_the_references() -> None:
    g = build_on_meta("generator", "global", in_channels=3, out_channels=3)
    assert g.features.head.conv.kernel_size == (7, 7) and g.features.head.conv.padding_mode == "reflect"
    assert [m.conv.out_channels for m in g.features.down] == [128, 256, 512, 1024]
    assert len(g.features.blocks) == 9 and isinstance(g.features.head.norm, nn.InstanceNorm2d)
    assert [m.conv.out_channels for m in g.features.up] == [512, 256, 128, 64]


def test_local_enhancer_holds_a_global_generator_without_its_output_layer() -> None:
    torch.manual_seed(0)
    g1 = HOST.build("generator", {"name": "global", "ngf": 8, "n_downsample": 2, "n_blocks": 1},
                    in_channels=4, out_channels=3)
    local = HOST.build("generator", {"name": "local_enhancer", "ngf": 4, "n_downsample": 2, "n_blocks": 1,
                                     "n_blocks_local": 1}, in_channels=4, out_channels=3)
    assert local.global_net.state_dict().keys() == g1.features.state_dict().keys()
    local.global_net.load_state_dict(g1.features.state_dict())           # what [init] load does
    assert local.size_multiple == 16 and g1.size_multiple == 8
    x = torch.randn(1, 4, 32, 48)
    assert local(x).shape == (1, 3, 32, 48) and g1(x).shape == (1, 3, 32, 48)
    # the enhancer's blocks see its front-end's features plus G1's on the input average-pooled once
    pooled = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)(x)
    enhancer = local.enhancers[0]
    expected = local.tail(enhancer.up(enhancer.blocks(enhancer.front(x) + g1.features(pooled))))
    torch.testing.assert_close(local(x), expected)


def test_two_enhancers_double_the_resolution_twice() -> None:
    local = HOST.build("generator", {"name": "local_enhancer", "ngf": 2, "n_enhancers": 2, "n_downsample": 1,
                                     "n_blocks": 1, "n_blocks_local": 1}, in_channels=3, out_channels=3)
    assert local.global_net.out_channels == 8 and [e.up.conv.out_channels for e in local.enhancers] == [4, 2]
    assert local(torch.randn(1, 3, 16, 32)).shape == (1, 3, 16, 32)


# -- label and instance maps --------------------------------------------------------------------------------

def test_boundary_map_of_a_hand_made_instance_map() -> None:
    from p2p_tasks.pix2pixhd import boundaries

    inst = torch.tensor([[1, 1, 1, 2, 2],
                         [1, 1, 1, 2, 2],
                         [1, 1, 1, 2, 2],
                         [3, 3, 3, 3, 3],
                         [3, 3, 3, 3, 3]], dtype=torch.float32)[None, None]
    expected = torch.tensor([[0, 0, 1, 1, 0],
                             [0, 0, 1, 1, 0],
                             [1, 1, 1, 1, 1],
                             [1, 1, 1, 1, 1],
                             [0, 0, 0, 0, 0]], dtype=torch.float32)[None, None]
    assert torch.equal(boundaries(inst), expected)
    assert boundaries(torch.full((1, 1, 5, 7), 26001.0)).sum() == 0


def test_one_hot_with_an_ignore_value() -> None:
    from p2p_tasks.pix2pixhd import one_hot

    ids = torch.tensor([[0, 2], [255, 1]], dtype=torch.float32)[None, None]
    out = one_hot(ids, 3, ignore=255)
    assert out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 0].tolist() == [1, 0, 0] and out[0, :, 0, 1].tolist() == [0, 0, 1]
    assert out[0, :, 1, 0].tolist() == [0, 0, 0] and out[0, :, 1, 1].tolist() == [0, 1, 0]


@pytest.mark.parametrize("value", [35, 200, -1])
def test_a_label_outside_the_range_names_the_file_and_the_value(value: int) -> None:
    from p2p_tasks.pix2pixhd import one_hot

    ids = torch.zeros(2, 1, 4, 4)
    ids[1, 0, 2, 3] = value
    with pytest.raises(P2PError) as caught:
        one_hot(ids, 35, files=["a_gtFine_labelIds.png", "b_gtFine_labelIds.png"])
    error = caught.value
    assert error.file == "b_gtFine_labelIds.png" and str(value) in error.message and "0..34" in error.message
    assert error.key == "task.label_nc"


def test_instance_mean_averages_each_instance_of_each_image() -> None:
    from p2p_tasks.pix2pixhd import instance_mean

    torch.manual_seed(0)
    features = torch.randn(2, 3, 6, 5)
    segments = torch.randint(0, 4, (2, 1, 6, 5)).float() * 1000 + 26
    pooled = instance_mean(features, segments)
    for n in range(2):
        for s in segments[n].unique():
            mask = segments[n, 0] == s
            expected = features[n][:, mask].mean(1)
            assert torch.allclose(pooled[n][:, mask], expected[:, None].expand(-1, int(mask.sum())), atol=1e-6)
    features.requires_grad_(True)
    instance_mean(features, segments).sum().backward()
    assert torch.allclose(features.grad, torch.ones_like(features))   # each pixel's share sums to one


def test_synthetic_label_scenes_and_their_display() -> None:
    adapter = HOST.build("dataset", {"name": "synthetic_labels", "size": 32, "train_count": 3, "test_count": 1})
    assert adapter.channels == {"label": 2}
    item = adapter.dataset("train", train=False)[0]
    label, inst = item["label"]
    assert item["b"].shape == (3, 32, 32) and label.shape == (32, 32)
    assert set(label.unique().long().tolist()) <= {7, 8, 11, 21, 23, 24, 26}
    cars = inst[label == 26]
    assert cars.numel() and (cars // 1000 == 26).all()                  # Cityscapes' instance convention
    assert torch.equal(inst[label != 26][(label != 24)[label != 26]], label[(label != 26) & (label != 24)])
    shown = adapter.display(item["label"][None], "label")
    assert shown.shape == (1, 3, 32, 32) and shown.min() >= -1 and shown.max() <= 1
    sky = (label == 23).nonzero()[0]
    assert ((shown[0, :, sky[0], sky[1]] + 1) * 127.5).round().tolist() == [70, 130, 180]
    assert torch.equal(adapter.display(item["b"][None], "b"), item["b"][None])


# -- training: the global stage, then the local enhancer from it ----------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": {"size": 32, "train_count": 32, "test_count": 2},
        "train": {"epochs": 1, "batch_size": 2, "num_workers": 0, "log_every": 4, "device": "cpu",
                  "deterministic": True, "sample_count": 2, "keep_every": 0}}


def stage(path: str, tmp_path: Path, name: str, **changes) -> dict:
    """A quickstart recipe shrunk for a test: 32 px scenes, a few steps; `changes` merge into it."""
    data = read_with_extends(ROOT / path)
    for section, values in [*TINY.items(), *changes.items()]:
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    data["name"] = name
    return data


def train(data: dict, out: Path, *, resume: bool = False) -> Trainer:
    run = Trainer(validate_recipe(data, HOST), HOST, out)
    run.fit(resume=resume)
    return run


def logged(out: Path, key: str) -> list[float]:
    return [line[key] for line in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if key in line]


@pytest.fixture(scope="module")
def global_run(tmp_path_factory) -> Path:
    """The first stage: the global generator, an encoder and a two-scale discriminator, 96 steps (on the label
    scenes, whose colours follow their classes, feature matching first rises while the discriminator learns
    them: 48 steps end on that rise)."""
    out = tmp_path_factory.mktemp("hd") / "global"
    train(stage("recipes/quickstart_hd.toml", out.parent, "global", data={"train_count": 96},
                train={"epochs": 2, "log_every": 8}, schedule="constant"), out)
    return out


def test_global_stage_trains_and_feature_matching_falls(global_run: Path) -> None:
    fm = logged(global_run, "G/fm")
    assert len(fm) == 12 and sum(fm[6:]) / 6 < 0.9 * fm[0], fm           # the second half, below the start
    assert logged(global_run, "D/gan") and logged(global_run, "samples/l1")
    ckpt = read_checkpoint(global_run / "checkpoints" / "latest.safetensors")
    assert any(k.startswith("net.encoder.") for k in ckpt.tensors)
    assert any(k.startswith("optim.generator.") for k in ckpt.tensors)  # encoder and generator: one player
    assert (global_run / "samples" / "epoch_002.png").is_file()


def test_translate_a_label_file_with_the_global_stage(global_run: Path, tmp_path: Path) -> None:
    adapter = HOST.build("dataset", {"name": "synthetic_labels", "size": 32})
    label_file = adapter.write_files("test", tmp_path / "files", count=1)[0]
    translator = Translator(global_run / "checkpoints" / "latest.safetensors", HOST, device="cpu", protocol="eval")
    assert set(translator.nets) == {"generator", "encoder"} and translator.input_key == "label"
    out = tmp_path / "photo.png"
    translator.translate_file(label_file, out)
    assert out.is_file()
    photo = translator(adapter.read_input(label_file, "label"))
    assert photo.shape == (3, 32, 32) and photo.abs().max() <= 1


def local_stage(global_run: Path, tmp_path: Path, name: str, **train_options) -> dict:
    return stage("recipes/quickstart_hd_local.toml", tmp_path, name, data={"size": 64, "train_count": 8},
                 init={"checkpoint": str(global_run / "checkpoints" / "latest.safetensors")},
                 train={"epochs": 2, "log_every": 1, "batch_size": 2, **train_options})


def test_local_stage_starts_from_the_global_generator_and_holds_it_for_an_epoch(global_run, tmp_path) -> None:
    first = read_checkpoint(global_run / "checkpoints" / "latest.safetensors").prefixed("net.generator.features")
    one = train(local_stage(global_run, tmp_path, "local", epochs=1), tmp_path / "local")
    held = one.nets["generator"].global_net.state_dict()
    assert held.keys() == first.keys() and all(torch.equal(held[k], first[k]) for k in first)
    two = train(local_stage(global_run, tmp_path, "local"), tmp_path / "local", resume=True)
    tuned = two.nets["generator"].global_net.state_dict()
    assert any(not torch.equal(tuned[k], first[k]) for k in first)     # trained after freeze_epochs
    fm = logged(tmp_path / "local", "G/fm")
    assert len(fm) == 8 and sum(fm[-2:]) < sum(fm[:2]), fm


def test_a_resumed_local_stage_is_bit_exact_across_the_unfreeze(global_run, tmp_path) -> None:
    train(local_stage(global_run, tmp_path, "whole"), tmp_path / "whole")
    train(local_stage(global_run, tmp_path, "parts", max_steps=3), tmp_path / "parts")     # stops in epoch 0
    resumed = train(local_stage(global_run, tmp_path, "parts"), tmp_path / "parts", resume=True)
    assert resumed.progress.step == 8
    whole = read_checkpoint(tmp_path / "whole" / "checkpoints" / "latest.safetensors").tensors
    parts = read_checkpoint(tmp_path / "parts" / "checkpoints" / "latest.safetensors").tensors
    keys = [k for k in whole if k.startswith(("net.", "optim."))]
    assert any(".global_net." in k for k in keys)
    assert keys and all(torch.equal(whole[k], parts[k]) for k in keys)


def test_freezing_needs_a_module_to_freeze(tmp_path) -> None:
    data = stage("recipes/quickstart_hd.toml", tmp_path, "bad", task={"name": "pix2pixhd", "freeze_epochs": 1})
    with pytest.raises(P2PError, match="no module 'global_net'") as caught:
        Trainer(validate_recipe(data, HOST), HOST, tmp_path / "bad")
    assert caught.value.key == "task.freeze"


# -- perceptual loss ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_files(tmp_path_factory) -> dict[str, Path]:
    """A randomly initialised VGG19 (torchvision's architecture) saved as .pth and .safetensors."""
    from safetensors.torch import save_file
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["E"])[:30].state_dict().items()}
    folder = tmp_path_factory.mktemp("vgg")
    torch.save(state, folder / "vgg19.pth")
    save_file({k[len("features."):]: v for k, v in state.items()}, str(folder / "vgg19.safetensors"))
    return {"pth": folder / "vgg19.pth", "safetensors": folder / "vgg19.safetensors", "state": state}


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_perceptual_loss_compares_vgg_features(vgg_files, kind: str) -> None:
    term = HOST.build("loss", {"name": "perceptual", "weights": str(vgg_files[kind])}, key="loss.vgg")
    assert isinstance(term, nn.Module) and not any(p.requires_grad for p in term.parameters())
    assert torch.equal(term.slices[0][0].weight, vgg_files["state"]["features.0.weight"])
    torch.manual_seed(1)
    real = torch.rand(1, 3, 32, 32) * 2 - 1
    fake = (real + 0.3 * torch.randn_like(real)).requires_grad_(True)
    feats = term.features(real)
    assert [f.shape[1:] for f in feats] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 2, 2)]
    loss = term.generator_loss(Tensors(values={"fake_b": fake, "real_b": real}))
    expected = sum(w * (a - b).abs().mean() for w, a, b in
                   zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1), term.features(fake), feats, strict=True))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert fake.grad.abs().sum() > 0
    assert float(term.generator_loss(Tensors(values={"fake_b": real, "real_b": real}))) == 0.0
    term.train()
    assert not term.training


def test_perceptual_weights_that_are_missing_or_do_not_fit(vgg_files, tmp_path) -> None:
    def error(path) -> P2PError:
        with pytest.raises(P2PError) as caught:
            HOST.build("loss", {"name": "perceptual", "weights": str(path)}, key="loss.vgg")
        assert caught.value.file == str(path) and caught.value.key == "loss.vgg.weights"
        assert "never downloads" in caught.value.hint
        return caught.value

    assert "not there" in error(tmp_path / "nowhere.pth").message
    wrong = dict(vgg_files["state"])
    wrong["features.10.weight"] = torch.zeros(256, 128, 1, 1)
    torch.save(wrong, tmp_path / "wrong.pth")
    assert "features.10.weight has shape (256, 128, 1, 1)" in error(tmp_path / "wrong.pth").message
    torch.save({k: v for k, v in vgg_files["state"].items() if k != "features.28.bias"}, tmp_path / "short.pth")
    assert "no features.28.bias" in error(tmp_path / "short.pth").message
    torch.save({"net": SimpleNamespace(a=1)}, tmp_path / "pickle.pth")    # code in a pickle: refused
    assert "cannot read" in error(tmp_path / "pickle.pth").message
    (tmp_path / "text.safetensors").write_text("not a tensor file")
    assert "cannot read" in error(tmp_path / "text.safetensors").message


def test_a_recipe_with_a_missing_vgg_file_stops_before_training(tmp_path) -> None:
    data = stage("recipes/quickstart_hd.toml", tmp_path, "vgg")
    data["loss"]["vgg"] = {"name": "perceptual", "weight": 10.0, "weights": str(tmp_path / "vgg19.pth")}
    with pytest.raises(P2PError, match="VGG19 weights") as caught:
        Trainer(validate_recipe(data, HOST), HOST, tmp_path / "vgg")
    assert caught.value.key == "loss.vgg.weights"


def test_the_perceptual_term_trains_with_the_task(vgg_files, tmp_path) -> None:
    data = stage("recipes/quickstart_hd.toml", tmp_path, "vgg", train={"max_steps": 2, "log_every": 1})
    data["loss"]["vgg"] = {"name": "perceptual", "weight": 10.0, "weights": str(vgg_files["pth"])}
    train(data, tmp_path / "vgg")
    values = logged(tmp_path / "vgg", "G/vgg")
    assert len(values) == 2 and all(v > 0 for v in values)


# -- importing networks trained with NVIDIA/pix2pixHD ------------------------------------------------------------

REFERENCE = SHARED / "reference"
TOLERANCE = 1e-4


def read_fixture(name: str) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(REFERENCE / f"{name}.safetensors"), framework="pt") as f:
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    return {k[len("state."):]: t for k, t in tensors.items() if k.startswith("state.")}, tensors


@needs_shared("reference", "pix2pixhd_global_ngf8_down4_blocks9.safetensors")
@pytest.mark.parametrize(("name", "net_g", "spec"), [
    ("pix2pixhd_global_ngf8_down4_blocks9", "global", {"ngf": 8, "n_downsample": 4, "n_blocks": 9}),
    ("pix2pixhd_local_ngf4_1enh", "local", {"ngf": 4, "n_enhancers": 1, "n_blocks_local": 3, "n_downsample": 4,
                                           "n_blocks": 9}),
])
def test_imported_generator_reproduces_the_reference(name: str, net_g: str, spec: dict) -> None:
    from p2p_interop.pix2pixhd import import_generator

    state, tensors = read_fixture(name)
    imported = import_generator(state, HOST, file=name)         # everything read from the weights
    assert {k: imported.spec[k] for k in spec} == spec and imported.channels == (3, 3)
    assert len(imported.net.state_dict()) == len(state)
    with torch.no_grad():
        out = imported.net.eval()(tensors["input"])
    assert float((out - tensors["output"]).abs().max()) <= TOLERANCE
    assert import_generator(state, HOST, net_g=net_g).spec == imported.spec
    with pytest.raises(P2PError, match=f"holds a {net_g} generator") as caught:
        import_generator(state, HOST, net_g="local" if net_g == "global" else "global", file=name)
    assert caught.value.key == "--netG" and f"--netG {net_g}" in caught.value.hint


@needs_shared("reference", "pix2pixhd_multiscale_d_ndf8_n3_numD3_in6.safetensors")
def test_imported_multiscale_discriminator_reproduces_the_reference() -> None:
    from p2p_interop.pix2pixhd import import_discriminator

    state, tensors = read_fixture("pix2pixhd_multiscale_d_ndf8_n3_numD3_in6")
    imported = import_discriminator(state, HOST, file="d")
    assert imported.spec["num_D"] == 3 and imported.spec["discriminator"]["n_layers"] == 3
    assert imported.spec["discriminator"]["ndf"] == 8 and imported.channels == (6, 1)
    with torch.no_grad():
        out = imported.net.eval()(tensors["input"])
    assert len(out) == 3
    for i, scale in enumerate(out):
        assert scale[-1].shape == tensors[f"output.{i}"].shape
        assert float((scale[-1] - tensors[f"output.{i}"]).abs().max()) <= TOLERANCE


@needs_shared("reference", "pix2pixhd_global_ngf8_down4_blocks9.safetensors")
def test_import_command_writes_a_checkpoint_that_translates_like_the_reference(tmp_path: Path) -> None:
    import typer
    from p2p_interop import p2p_add_commands
    from typer.testing import CliRunner

    for name in ("pix2pixhd_global_ngf8_down4_blocks9", "pix2pixhd_multiscale_d_ndf8_n3_numD3_in6"):
        torch.save(read_fixture(name)[0], tmp_path / f"{name}.pth")
    app = typer.Typer()
    app.callback()(lambda: None)
    p2p_add_commands(app)  # the hook `p2p` runs for every plugin
    out = tmp_path / "hd.safetensors"
    result = CliRunner().invoke(app, ["import", "pix2pixhd", str(tmp_path / "pix2pixhd_global_ngf8_down4_blocks9.pth"),
                                      str(out), "--checkpoint-D",
                                      str(tmp_path / "pix2pixhd_multiscale_d_ndf8_n3_numD3_in6.pth")])
    assert result.exit_code == 0, result.output + repr(result.exception)
    meta = read_checkpoint(out).metadata
    assert meta["recipe"]["model"]["generator"]["name"] == "global"
    assert meta["recipe"]["model"]["discriminator"]["name"] == "multiscale"
    assert meta["source"].startswith("pix2pixhd:")
    _, tensors = read_fixture("pix2pixhd_global_ngf8_down4_blocks9")
    translator = Translator(out, HOST, device="cpu", protocol="eval")
    assert float((translator(tensors["input"][0]) - tensors["output"][0]).abs().max()) <= TOLERANCE

    bad = CliRunner().invoke(app, ["import", "pix2pixhd", str(tmp_path / "pix2pixhd_global_ngf8_down4_blocks9.pth"),
                                   str(tmp_path / "x.safetensors"), "--label-nc", "35"])
    assert bad.exit_code != 0 and isinstance(bad.exception, P2PError) and bad.exception.key == "--label-nc"


def test_batch_norm_biases_move_into_the_running_mean() -> None:
    from p2p_interop.pix2pixhd import fold_biases

    torch.manual_seed(0)
    conv, norm = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.normal_()
    state = {f"m.0.{k}": v.clone() for k, v in conv.state_dict().items()}
    state |= {f"m.1.{k}": v.clone() for k, v in norm.state_dict().items()}
    fold_biases(state, [("m.0", "m.1")])
    assert "m.0.bias" not in state
    conv2, norm2 = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)
    conv2.load_state_dict({"weight": state["m.0.weight"]})
    norm2.load_state_dict({k[len("m.1."):]: v for k, v in state.items() if k.startswith("m.1.")})
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(norm2.eval()(conv2(x)), norm.eval()(conv(x)))
        torch.testing.assert_close(norm2.train()(conv2(x)), norm.train()(conv(x)))


# -- the Cityscapes release and the paper's recipes --------------------------------------------------------------

@pytest.fixture
def release(tmp_path) -> Path:
    """Synthetic scenes written in the Cityscapes release layout (train and test splits)."""
    scenes = HOST.build("dataset", {"name": "synthetic_labels", "size": 64, "train_count": 4, "test_count": 2})
    scenes.write_files("train", tmp_path / "cityscapes")
    scenes.write_files("test", tmp_path / "cityscapes")
    return tmp_path / "cityscapes"


def test_cityscapes_release_is_read_directly(release: Path) -> None:
    adapter = HOST.build("dataset", {"name": "cityscapes_hd", "root": str(release), "test_split": "test",
                                     "load_size": 32})
    assert adapter.channels == {"label": 2}
    report = adapter.check("train")
    assert report.ok and report.pairs == 4
    item = adapter.dataset("test", train=False)[1]
    assert item["label"].shape == (2, 32, 32) and item["b"].shape == (3, 32, 32)
    assert item["label_file"].endswith("synthetic_000001_000019_gtFine_labelIds.png")
    label, inst = item["label"]
    assert set(label.unique().long().tolist()) <= {7, 8, 11, 21, 23, 24, 26}    # nearest: ids stay ids
    assert ((inst >= 1000) == ((label == 24) | (label == 26))).all()
    no_instances = HOST.build("dataset", {"name": "cityscapes_hd", "root": str(release), "instances": False,
                                          "preprocess": "none"})
    assert no_instances.dataset("train", train=False)[0]["label"].shape == (1, 64, 64)


def test_cityscapes_release_problems_name_the_files(release: Path) -> None:
    adapter = HOST.build("dataset", {"name": "cityscapes_hd", "root": str(release)})
    gone = sorted((release / "gtFine" / "train").glob("*/*_instanceIds.png"))[0]
    gone.unlink()
    report = adapter.check("train")
    assert report.pairs == 3 and any(str(gone) in p for p in report.problems)
    with pytest.raises(P2PError, match="instance map of this label map is missing") as caught:
        adapter.dataset("train", train=False)[0]
    assert caught.value.file == str(gone)
    nowhere = HOST.build("dataset", {"name": "cityscapes_hd", "root": str(release / "nowhere")})
    assert "no gtFine/train folder" in nowhere.check("train").problems[0]
    with pytest.raises(P2PError, match="no gtFine/train folder") as caught:
        nowhere.dataset("train", train=True)
    assert caught.value.key == "data.root"


def test_a_label_id_beyond_label_nc_stops_training_naming_the_file(release: Path, tmp_path: Path) -> None:
    from PIL import Image

    label_file = sorted((release / "gtFine" / "train").glob("*/*_labelIds.png"))[2]
    ids = np.array(Image.open(label_file))
    ids[5, 7] = 40
    Image.fromarray(ids).save(label_file)
    data = stage("recipes/quickstart_hd.toml", tmp_path, "bad_label", train={"batch_size": 4})
    data["data"] = {"name": "cityscapes_hd", "root": str(release), "test_split": "test", "preprocess": "none"}
    with pytest.raises(P2PError) as caught:
        train(data, tmp_path / "bad_label")
    assert caught.value.file == str(label_file) and "40" in caught.value.message and "0..34" in caught.value.message


def test_translate_reads_label_and_instance_files_of_the_release(global_run: Path, release: Path) -> None:
    translator = Translator(global_run / "checkpoints" / "latest.safetensors", HOST, device="cpu", protocol="eval")
    label_file = sorted((release / "gtFine" / "test").glob("*/*_labelIds.png"))[0]
    adapter = HOST.build("dataset", {"name": "cityscapes_hd", "root": ""})
    maps = adapter.read_input(label_file, "label")
    assert maps.shape == (2, 64, 64)
    assert translator(maps).shape == (3, 64, 64)


@pytest.mark.parametrize(("recipe", "generator", "count", "scales"), [
    ("cityscapes_hd_global.toml", "global", 182_546_755, 2),
    ("cityscapes_hd_local.toml", "local_enhancer", 182_857_059, 3),
])
def test_paper_recipes_build_the_papers_networks(recipe: str, generator: str, count: int, scales: int) -> None:
    from p2pcore.api import TaskContext
    from p2pcore.recipe import load_recipe

    parsed = load_recipe(ROOT / "recipes" / recipe, HOST)
    assert parsed.task.params.label_nc == 35 and parsed.data.params.instances
    assert parsed.model["generator"].name == generator and parsed.train.epochs in (200, 100)
    task = HOST.build("task", parsed.task)
    with torch.device("meta"):
        nets = task.build_networks(TaskContext(builder=HOST, model=parsed.model, channels={"label": 2, "b": 3},
                                               wanted=frozenset({"generator", "discriminator"})))
    assert n_params(nets["generator"]) == count                          # 35 labels + the boundary map in
    assert len(nets["discriminator"].scales) == scales
    if generator == "local_enhancer":
        assert parsed.task.params.freeze_epochs == 10 and parsed.data.params.preprocess == "none"
        assert dict(parsed.init.load) == {"generator.global_net": "generator.features"}
        assert parsed.init.checkpoint.endswith("cityscapes_hd_global/checkpoints/latest.safetensors")


# -- instance features and style clusters -------------------------------------------------------------------------

def test_kmeans_finds_the_clusters() -> None:
    from p2p_tasks.clustering import kmeans

    generator = torch.Generator().manual_seed(3)
    means = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.5, 0.0], [0.0, -1.0, 1.0], [0.0, 1.0, -1.0]])
    x = torch.cat([m + 0.08 * torch.randn(60, 3, generator=generator) for m in means])
    truth = torch.arange(4).repeat_interleave(60)
    order = torch.randperm(len(x), generator=generator)
    centres, assignment, inertia = kmeans(x[order], 4, seed=0)
    assignment = assignment[order.argsort()]
    groups = [set(assignment[truth == i].tolist()) for i in range(4)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 4   # one cluster per blob
    for i, g in enumerate(groups):
        assert torch.allclose(centres[g.pop()], x[truth == i].mean(0), atol=1e-5)
    assert inertia < 240 * 3 * 0.08 ** 2 * 1.5
    assert kmeans(x[:3], 10)[0].shape == (3, 3)                             # never more centres than rows


def test_instance_features_per_segment_of_an_image() -> None:
    from p2p_tasks.pix2pixhd import instance_features

    segments = torch.tensor([[26000, 26000, 23], [26001, 23, 23]], dtype=torch.float32)[None, None]
    labels = torch.tensor([[26, 26, 23], [26, 23, 23]], dtype=torch.float32)[None, None]
    features = torch.arange(12, dtype=torch.float32).reshape(1, 2, 2, 3)
    label_of, means, areas = instance_features(features, segments, labels)
    assert label_of.tolist() == [23, 26, 26]                                  # segments 23, 26000, 26001
    assert means[0].tolist() == pytest.approx([(2 + 4 + 5) / 3, (8 + 10 + 11) / 3]) and means[1].tolist() == [0.5, 6.5]
    assert means[2].tolist() == [3.0, 9.0] and areas.tolist() == [0.5, pytest.approx(2 / 6), pytest.approx(1 / 6)]


def cluster(checkpoint: Path, tmp_path: Path, *options: str) -> Any:
    """`p2p cluster CHECKPOINT RECIPE OPTIONS` through the commands plugins add, on 6 synthetic label scenes."""
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.callback()(lambda: None)
    HOST.manager.hook.p2p_add_commands(app=app)
    recipe = tmp_path / "data.toml"
    recipe.write_text('[data]\nname = "synthetic_labels"\nsize = 32\ntrain_count = 6\n')
    return CliRunner().invoke(app, ["cluster", str(checkpoint), str(recipe), *options])


def test_cluster_command_saves_centres_per_class(global_run: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    out = tmp_path / "styles.safetensors"
    result = cluster(global_run / "checkpoints" / "latest.safetensors", tmp_path, "--k", "2", "--out",
                             str(out))
    assert result.exit_code == 0, result.output + repr(result.exception)
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
        centres = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    counts = json.loads(meta["instances"])
    assert meta["k"] == "2" and meta["feat_nc"] == "3" and counts["23"] == 6     # a sky in every scene
    assert set(centres) == {f"centres.{label}" for label in counts}
    for key, value in centres.items():
        assert value.shape == (min(2, counts[key.split(".")[1]]), 3) and value.abs().max() <= 1  # Tanh codes
    no_encoder = cluster(tmp_path / "missing.safetensors", tmp_path)
    assert no_encoder.exit_code != 0 and isinstance(no_encoder.exception, P2PError)


def test_a_label_map_generator_imports_as_a_pix2pixhd_checkpoint(release: Path, tmp_path: Path) -> None:
    import typer
    from p2p_interop import p2p_add_commands
    from p2p_interop.pix2pixhd import global_layers
    from p2p_tasks.pix2pixhd import boundaries, one_hot
    from typer.testing import CliRunner

    torch.manual_seed(0)                      # a reference-layout state_dict of a 35-label + boundary G1
    ours = HOST.build("generator", {"name": "global", "ngf": 4, "n_downsample": 2, "n_blocks": 1},
                      in_channels=36, out_channels=3)
    where = dict(global_layers(2, 1))
    reference = {f"{where[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in ours.state_dict().items()}
    torch.save(reference, tmp_path / "latest_net_G.pth")
    app = typer.Typer()
    app.callback()(lambda: None)
    p2p_add_commands(app)  # the hook `p2p` runs for every plugin
    out = tmp_path / "labels.safetensors"
    result = CliRunner().invoke(app, ["import", "pix2pixhd", str(tmp_path / "latest_net_G.pth"), str(out),
                                      "--label-nc", "35"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    recipe = read_checkpoint(out).metadata["recipe"]
    assert recipe["task"] == {"name": "pix2pixhd", "label_nc": 35, "instances": True}
    assert recipe["data"]["name"] == "cityscapes_hd"
    label_file = sorted((release / "gtFine" / "test").glob("*/*_labelIds.png"))[0]
    translator = Translator(out, HOST, device="cpu", protocol="eval")
    photo = tmp_path / "photo.png"
    translator.translate_file(label_file, photo)
    maps = translator.adapter.read_input(label_file, "label")[None]
    with torch.no_grad():
        expected = ours.eval()(torch.cat([one_hot(maps[:, :1], 35), boundaries(maps[:, 1:])], 1))[0]
    assert float((translator(maps[0]) - expected).abs().max()) <= 1e-5 and photo.is_file()


def test_freezing_holds_g1_and_marks_the_generator_for_data_parallel_wrapping() -> None:
    from p2pcore.api import TaskContext

    task = HOST.build("task", {"name": "pix2pixhd", "freeze_epochs": 2})
    model = {"generator": HOST.resolve("generator", {"name": "local_enhancer", "ngf": 2, "n_downsample": 1,
                                                     "n_blocks": 1, "n_blocks_local": 1})}
    nets = task.build_networks(TaskContext(builder=HOST, model=model, channels={"label": 1, "b": 3},
                                           wanted=frozenset({"generator"})))
    generator = nets["generator"]
    assert generator.trainable_varies is True      # DDP then leaves the held parameters out of the averaging
    task.start_epoch(0, nets)
    assert not any(p.requires_grad for p in generator.global_net.parameters())
    assert all(p.requires_grad for p in generator.enhancers.parameters())
    task.start_epoch(1, nets)
    assert not any(p.requires_grad for p in generator.global_net.parameters())
    task.start_epoch(2, nets)                                            # past the frozen epochs: nothing held
    assert all(p.requires_grad for p in generator.parameters())
    unfrozen = HOST.build("task", {"name": "pix2pixhd"}).build_networks(
        TaskContext(builder=HOST, model=model, channels={"label": 1, "b": 3}, wanted=frozenset({"generator"})))
    assert not hasattr(unfrozen["generator"], "trainable_varies")


def test_pix2pixhd_needs_a_label_map_dataset(tmp_path) -> None:
    data = stage("recipes/quickstart_hd.toml", tmp_path, "photos")
    data["data"] = {"name": "synthetic_thermal", "size": 32, "train_count": 2, "test_count": 1}
    with pytest.raises(P2PError, match="reads label maps") as caught:
        Trainer(validate_recipe(data, HOST), HOST, tmp_path / "photos")
    assert caught.value.key == "data" and "cityscapes_hd" in caught.value.hint


def test_translate_with_styles_from_the_clusters(global_run: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from p2pcore.cli import app as p2p_app

    styles = tmp_path / "styles.safetensors"
    checkpoint = global_run / "checkpoints" / "latest.safetensors"
    assert cluster(checkpoint, tmp_path, "--k", "2", "--out", str(styles)).exit_code == 0
    adapter = HOST.build("dataset", {"name": "synthetic_labels", "size": 32})
    label_file = adapter.write_files("test", tmp_path / "files", count=1)[0]
    label = adapter.read_input(label_file, "label")

    def photo(**style: str) -> torch.Tensor:
        return Translator(checkpoint, HOST, device="cpu", protocol="eval", **style)(label)

    plain, first, second = photo(), photo(style="cluster:0", styles=str(styles)), photo(style="cluster:1",
                                                                                      styles=str(styles))
    assert not torch.allclose(plain, first) and not torch.allclose(first, second)
    assert torch.equal(first, photo(style="cluster:0", styles=str(styles)))
    assert photo(style="random", styles=str(styles)).shape == plain.shape
    with pytest.raises(P2PError, match="go together"):
        photo(style="cluster:0")
    with pytest.raises(P2PError, match="unknown style"):
        photo(style="clusters", styles=str(styles))
    out = tmp_path / "styled.png"
    result = CliRunner().invoke(p2p_app, ["translate", str(checkpoint), str(label_file), str(out), "--style",
                                          "cluster:1", "--styles", str(styles), "--eval"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
