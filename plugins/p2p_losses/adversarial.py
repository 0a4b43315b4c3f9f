"""Adversarial objectives for both players, over one prediction map or a list of them (multi-scale)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from p2pcore.api import LossTerm, Tensors


def _maps(prediction: Any) -> list[torch.Tensor]:
    """A discriminator returns a map, or a list of maps (one per scale; features first, map last)."""
    if isinstance(prediction, torch.Tensor):
        return [prediction]
    return [p[-1] if isinstance(p, list | tuple) else p for p in prediction]


class AdversarialLoss(LossTerm):
    def __init__(self, params: Any) -> None:
        self.mode = params.mode
        self.real_label = params.real_label
        self.fake_label = params.fake_label
        self.gp_weight = params.gp_weight
        self.prefix = params.prefix

    def _towards(self, prediction: torch.Tensor, label: float) -> torch.Tensor:
        target = torch.full_like(prediction, label)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(prediction, target)
        return F.mse_loss(prediction, target)

    def generator_loss(self, t: Tensors) -> torch.Tensor:
        fake = _maps(t[f"{self.prefix}_fake"])
        if self.mode in ("hinge", "wgan-gp"):
            return sum(-p.mean() for p in fake)
        return sum(self._towards(p, self.real_label) for p in fake)

    def discriminator_loss(self, t: Tensors) -> torch.Tensor:
        real = _maps(t[f"{self.prefix}_real"])
        fake = _maps(t[f"{self.prefix}_fake"])
        if self.mode == "hinge":
            loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True))
        elif self.mode == "wgan-gp":
            loss = sum(f.mean() - r.mean() for r, f in zip(real, fake, strict=True))
            loss = loss + self.gp_weight * self._gradient_penalty(t)
        else:
            loss = sum(self._towards(r, self.real_label) + self._towards(f, self.fake_label)
                       for r, f in zip(real, fake, strict=True))
        return 0.5 * loss

    def _gradient_penalty(self, t: Tensors) -> torch.Tensor:
        """(||grad D(x_hat)|| - 1)^2 at random points between real and fake discriminator inputs."""
        real = t[f"{self.prefix}_in_real"]
        fake = t[f"{self.prefix}_in_fake"].detach()
        alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        outputs = _maps(t[f"{self.prefix}_net"](mixed))
        grads = torch.autograd.grad(sum(o.sum() for o in outputs), mixed, create_graph=True)[0]
        return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
