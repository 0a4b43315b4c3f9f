"""The `colorize` task: its contract on the tiny recipe, and the example recipe trained with everything
this package registers."""

from __future__ import annotations

import tomllib
from pathlib import Path

import p2p_example
import pytest

from p2pcore.testing import check_task

pytestmark = pytest.mark.p2p_plugins(("example", p2p_example))

EXAMPLE = Path(__file__).resolve().parents[1] / "example.toml"


def test_colorize_contract_and_grey_input(p2p_host):
    """One step of the tiny recipe; the generator sees only the grey of its input, whatever a the dataset has."""
    import torch

    trainer = check_task(p2p_host, "colorize")
    colour = torch.rand(1, 3, 32, 32) * 2 - 1
    grey = (colour * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).expand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(trainer.task.translate("recolor", trainer.nets, colour),
                              trainer.task.translate("recolor", trainer.nets, grey), atol=1e-5)


def shrunk_example(listing: Path) -> dict:
    """The example recipe at 32 px with ngf 8: every component it names, small enough for a test."""
    recipe = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    recipe["data"].update(file=str(listing), load_size=34, crop_size=32)
    recipe["model"]["generator"].update(ngf=8, n_blocks=1)
    recipe["model"]["discriminator"]["discriminator"].update(ndf=8, n_layers=2)
    recipe["train"].update(num_workers=0, device="cpu", batch_size=2, sample_count=2, checkpoint_minutes=0.0)
    return recipe


def test_the_example_recipe_trains(p2p_host, pairs_csv):
    trainer = check_task(p2p_host, "colorize", recipe=shrunk_example(pairs_csv))
    assert type(trainer.nets["generator"]).__name__ == "SEResNetGenerator"
    assert type(trainer.nets["discriminator"]).__name__ == "NoisyInputWithFeatures"


def test_grey_targets_need_mean_luma(p2p_host, pairs_csv):
    recipe = shrunk_example(pairs_csv)
    recipe["data"]["b_channels"] = 1
    with pytest.raises(AssertionError, match="rec601 luma needs 3-channel b images") as refused:
        check_task(p2p_host, "colorize", recipe=recipe)
    assert 'luma = "mean"' in str(refused.value)


def test_mean_luma_of_any_channel_count():
    import torch
    from p2p_example.colorize import grey

    image = torch.rand(2, 5, 8, 8) * 2 - 1
    assert torch.equal(grey(image, "mean"), image.mean(1, keepdim=True))


# -- colorize_probe: a network of the task's own, reading a generator's feature tap --------------------------

def test_colorize_probe_contract_trains_its_own_network(p2p_host, pairs_csv, tmp_path):
    """One step through the real trainer: the probe is built from the tap it reads, optimised with the
    generator, checkpointed beside the roles and left out of translation."""
    import torch

    from p2pcore.checkpoint.files import read_checkpoint

    recipe = shrunk_example(pairs_csv)
    recipe.pop("loss")  # the task's own term (probe) alone
    trainer = check_task(p2p_host, "colorize_probe", recipe=recipe, out_dir=tmp_path, probe_layer=2)
    probe = trainer.nets["probe"]
    tap = trainer.nets["generator"].taps()[2]
    assert isinstance(probe, torch.nn.Conv2d) and probe.in_channels == tap.channels == 16 and tap.scale == 2
    optimised = {id(p) for group in trainer.optimizers["generator"].param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in probe.parameters())
    ckpt = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.safetensors")
    assert {"net.probe.weight", "net.probe.bias"} <= set(ckpt.tensors)


def test_colorize_probe_default_term_and_refused_layers(p2p_host, pairs_csv):
    from p2pcore.errors import P2PError
    from p2pcore.recipe import validate_recipe

    recipe = shrunk_example(pairs_csv)
    recipe.pop("loss")
    recipe["task"] = {"name": "colorize_probe", "probe_layer": 3, "probe_weight": 2.0}
    resolved = validate_recipe(recipe, p2p_host)
    assert {label: (t.ref().name, t.weight) for label, t in resolved.loss.items()} == {"probe": ("l1", 2.0)}
    recipe["task"]["probe_layer"] = 9  # se_resnet with n_down 2 and 1 block has taps 0..4
    with pytest.raises(P2PError, match="no layer 9") as refused:
        validate_recipe(recipe, p2p_host)
    assert refused.value.key == "task.probe_layer"
