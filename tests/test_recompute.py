"""train.activation_checkpointing: the same gradients, running statistics and training as without it, with
far fewer bytes kept for the backward pass."""

from __future__ import annotations

import copy

import pytest
import torch

from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.train.recompute import checkpoint_activations, kept_for_backward
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe

GENERATORS = {
    "unet": {"name": "unet", "depth": 5, "ngf": 8, "norm": "batch", "dropout": 0.5},
    "resnet": {"name": "resnet", "ngf": 8, "n_blocks": 3, "norm": "instance"},
    "encoder_decoder": {"name": "encoder_decoder", "depth": 5, "ngf": 8, "norm": "batch"},
    "global": {"name": "global", "ngf": 8, "n_downsample": 2, "n_blocks": 2, "norm": "batch"},
    "local_enhancer": {"name": "local_enhancer", "ngf": 8, "n_downsample": 2, "n_blocks": 2, "n_blocks_local": 1},
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_recomputed_blocks_give_the_same_gradients_and_statistics(host, name):
    torch.manual_seed(0)
    plain = host.build("generator", GENERATORS[name], in_channels=3, out_channels=3)
    lean = copy.deepcopy(plain)
    assert checkpoint_activations(lean) > 0
    x = torch.randn(2, 3, 64, 64)
    results = []
    for net in (plain, lean):
        torch.manual_seed(1)  # the same dropout masks for both
        out, kept = kept_for_backward(net, x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), kept, {k: p.grad for k, p in net.named_parameters()}, net.state_dict()))
    (out_a, kept_a, grads_a, state_a), (out_b, kept_b, grads_b, state_b) = results
    assert torch.allclose(out_a, out_b, atol=1e-6)
    assert all(torch.allclose(grads_a[k], grads_b[k], atol=1e-5, rtol=1e-4) for k in grads_a)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)  # running statistics updated once
    assert kept_b < 0.5 * kept_a


def test_a_copy_of_a_recomputing_network_runs_its_own_weights(host):
    net = host.build("generator", GENERATORS["resnet"], in_channels=3, out_channels=3)
    checkpoint_activations(net)
    twin = copy.deepcopy(net)  # as the weight average copies the generator
    with torch.no_grad():
        for p in twin.parameters():
            p.mul_(0.5)
    x = torch.randn(1, 3, 32, 32)
    assert not torch.allclose(net(x), twin(x))


def test_training_with_recomputation_ends_with_the_same_weights(host, tmp_path):
    recipe = {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 8, "test_count": 2},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 1, "batch_size": 4, "num_workers": 0, "max_steps": 2, "ema": 0.9},
    }
    ends = []
    for flag in (False, True):
        data = {**recipe, "train": {**recipe["train"], "activation_checkpointing": flag}}
        Trainer(validate_recipe(data, host), host, tmp_path / str(flag)).fit()
        ends.append(read_checkpoint(tmp_path / str(flag) / "checkpoints" / "latest.safetensors").tensors)
    plain, lean = ends
    assert set(plain) == set(lean)
    for key in plain:
        if key.startswith(("net.", "ema.")):
            assert torch.allclose(plain[key].float(), lean[key].float(), atol=1e-5, rtol=1e-4), key
