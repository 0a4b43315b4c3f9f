"""Feature matching loss of pix2pixHD (Wang et al. 2018, equation 4).

The generator is asked to make the discriminator's intermediate features on its output match those on
the real image: for each scale k of a multi-scale discriminator and each of its T intermediate layers i,

    L_FM = sum_k sum_i  4 / T * 1 / num_D * || D_k^(i)(x, y) - D_k^(i)(x, G(x)) ||_1

(mean absolute differences; T = n_layers + 1 for a PatchGAN, so the reference's weight 4/(n_layers+1)
is derived from the features themselves). The recipe's weight is lambda (10 in the paper). Features of the
real image are targets: no gradient flows into them. The discriminator's own objective is untouched.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from p2pcore.api import LossTerm, P2PError, Tensors

NO_FEATURES_HINT = ('use a discriminator that returns them: model.discriminator = { name = "multiscale" } '
                    "(num_D = 1 for a single scale)")


def scales_of(prediction: Any, name: str) -> list[list[torch.Tensor]]:
    """Per scale, the intermediate feature maps (the prediction map, last, is left out)."""
    if isinstance(prediction, torch.Tensor) or not all(isinstance(p, list | tuple) for p in prediction):
        raise P2PError(f"feature matching needs the discriminator's intermediate features, but {name} holds "
                       "prediction maps only", hint=NO_FEATURES_HINT)
    scales = [list(p[:-1]) for p in prediction]
    if not scales or not all(scales):
        raise P2PError(f"feature matching needs the discriminator's intermediate features, but a scale of {name} "
                       "returns its prediction map alone",
                       hint="give the discriminator used at each scale a forward_features(x) method, or "
                            + NO_FEATURES_HINT)
    return scales


class FeatureMatchingLoss(LossTerm):
    def __init__(self, prefix: str) -> None:
        self.real = f"{prefix}_real"
        self.fake = f"{prefix}_fake"

    def generator_loss(self, t: Tensors) -> torch.Tensor:
        real = scales_of(t[self.real], self.real)
        fake = scales_of(t[self.fake], self.fake)
        loss = torch.zeros((), device=fake[0][0].device)
        for real_k, fake_k in zip(real, fake, strict=True):
            weight = 4.0 / len(fake_k) / len(fake)
            for r, f in zip(real_k, fake_k, strict=True):
                loss = loss + weight * F.l1_loss(f, r.detach())
        return loss
