"""Adversarial and reconstruction loss terms: the formulas of each objective, checked by value."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from p2pcore.api import Tensors


def gan(host, **params):
    return host.build("loss", {"name": "gan", **params})


def phase(real: torch.Tensor, fake: torch.Tensor, net=None, in_real=None, in_fake=None) -> Tensors:
    return Tensors(values={"d_real": real, "d_fake": fake, "d_net": net, "d_in_real": in_real, "d_in_fake": in_fake})


def test_vanilla_is_non_saturating_and_discriminator_objective_is_halved(host):
    real, fake = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    term = gan(host, mode="vanilla")
    assert host.resolve("loss", {"name": "gan"}).params.reads() == {"d_real", "d_fake"}
    assert host.resolve("loss", {"name": "gan", "mode": "wgan-gp", "prefix": "d_b"}).params.reads() == {
        "d_b_real", "d_b_fake", "d_b_in_real", "d_b_in_fake", "d_b_net"}
    expected_d = 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                        + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    torch.testing.assert_close(term.discriminator_loss(phase(real, fake)), expected_d)
    # non-saturating: G maximises log D(G(x)), i.e. minimises -log sigmoid(D)
    torch.testing.assert_close(term.generator_loss(phase(real, fake)), -F.logsigmoid(fake).mean())


def test_lsgan_and_label_smoothing(host):
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    term = gan(host, mode="lsgan", real_label=0.9)
    torch.testing.assert_close(term.discriminator_loss(phase(real, fake)),
                               0.5 * (((real - 0.9) ** 2).mean() + (fake ** 2).mean()))
    torch.testing.assert_close(term.generator_loss(phase(real, fake)), ((fake - 0.9) ** 2).mean())


def test_hinge(host):
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    term = gan(host, mode="hinge")
    torch.testing.assert_close(term.discriminator_loss(phase(real, fake)),
                               0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean()))
    torch.testing.assert_close(term.generator_loss(phase(real, fake)), -fake.mean())


def test_multiscale_predictions_are_summed(host):
    real = [torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2)]
    fake = [torch.randn(1, 1, 4, 4), torch.randn(1, 1, 2, 2)]
    term = gan(host, mode="lsgan")
    single = [term.generator_loss(phase(r, f)) for r, f in zip(real, fake, strict=True)]
    torch.testing.assert_close(term.generator_loss(phase(real, fake)), sum(single))


def test_wgan_gp_applies_the_gradient_penalty(host):
    torch.manual_seed(0)
    net = torch.nn.Conv2d(2, 1, 3, padding=1)
    x_real, x_fake = torch.randn(2, 2, 8, 8), torch.randn(2, 2, 8, 8)
    t = phase(net(x_real), net(x_fake), net, x_real, x_fake)
    with_gp = gan(host, mode="wgan-gp", gp_weight=10.0)
    without = gan(host, mode="wgan-gp", gp_weight=0.0)
    torch.manual_seed(1)
    loss = with_gp.discriminator_loss(t)
    critic = 0.5 * (net(x_fake).mean() - net(x_real).mean())
    torch.testing.assert_close(without.discriminator_loss(t), critic)
    # For a linear critic the input gradient is the same everywhere: the penalty is known exactly.
    probe = x_real.clone().requires_grad_(True)
    grad = torch.autograd.grad(net(probe).sum(), probe)[0]
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(loss, critic + 0.5 * 10.0 * penalty)
    assert penalty > 0
    loss.backward()  # the penalty is differentiable w.r.t. the critic's weights
    assert net.weight.grad is not None and torch.isfinite(net.weight.grad).all()


def test_l1_reads_named_tensors(host):
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    term = host.build("loss", {"name": "l1", "pred": "rec_a", "target": "real_a"})
    assert term.discriminator_loss(Tensors()) is None
    assert host.resolve("loss", {"name": "l1", "pred": "rec_a", "target": "real_a"}).params.reads() == {
        "rec_a", "real_a"}
    torch.testing.assert_close(term.generator_loss(Tensors(values={"rec_a": a, "real_a": b})), (a - b).abs().mean())


def test_missing_tensor_names_what_exists(host):
    from p2pcore import P2PError

    term = host.build("loss", {"name": "l1", "pred": "fake_c"})
    with pytest.raises(P2PError, match="fake_c") as err:
        term.generator_loss(Tensors(values={"fake_b": torch.zeros(1), "real_b": torch.zeros(1)}))
    assert "fake_b" in err.value.hint
