"""Perceptual (VGG) loss of pix2pixHD (Wang et al. 2018, section 3.2, after Johnson et al. 2016).

Generated and real images go through VGG19 and the features after relu1_1, relu2_1, relu3_1, relu4_1 and
relu5_1 are compared by mean absolute difference with weights 1/32, 1/16, 1/8, 1/4 and 1; the recipe's
weight is lambda (10 in the paper). Real features are targets: computed without gradients.

The architecture is torchvision's VGG19, built without weights: its ImageNet weights are read from a file
the user names (`weights`), a ``.pth`` state_dict (opened with ``weights_only=True``, nothing is
unpickled) or a ``.safetensors`` file, either of the whole network (torchvision's ``features.N.weight``
keys) or of its ``features`` alone. Nothing is downloaded. Only the 13 convolutions up to relu5_1 are used.
As in the reference, images enter in [-1, 1] unless `normalize` maps them to the ImageNet statistics
torchvision's weights were trained with.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import LossTerm, P2PError, Tensors, load_weights, read_weights

SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))   # features[a:b] ends at relu1_1 .. relu5_1
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_HINT = ("give the path of VGG19 ImageNet weights, e.g. torchvision's vgg19-dcbb9e9d.pth (a state_dict "
                "with features.N.weight keys) or a .safetensors file of them; p2p never downloads weights")


def vgg19_features(path: Path, *, key: str) -> nn.Sequential:
    """torchvision's VGG19 `features` up to relu5_1, with the weights of `path`, frozen."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["E"])[:SLICES[-1][1]]  # vgg19(weights=None).features, without its classifier
    state = read_weights(path, what="VGG19", key=key, hint=WEIGHTS_HINT)
    prefix = "features." if any(name.startswith("features.") for name in state) else ""
    load_weights(features, state, what="VGG19", file=str(path), key=key, hint=WEIGHTS_HINT, prefix=prefix)
    return features.requires_grad_(False).eval()


class PerceptualLoss(nn.Module, LossTerm):
    def __init__(self, features: nn.Sequential, *, pred: str, target: str, normalize: bool) -> None:
        super().__init__()
        self.slices = nn.ModuleList(features[a:b] for a, b in SLICES)
        self.pred = pred
        self.target = target
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:
        return super().train(False)  # VGG is a fixed measure: always in inference mode

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] != 3:
            raise P2PError(f"the perceptual loss compares colour images, but {self.pred!r} has {x.shape[1]} "
                           "channels", hint="remove the perceptual term, or use it on 3-channel images")
        if self.normalize:
            x = ((x + 1) / 2 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = []
        for part in self.slices:
            x = part(x)
            out.append(x)
        return out

    def generator_loss(self, t: Tensors) -> torch.Tensor:
        fake = self.features(t[self.pred])
        with torch.no_grad():
            real = self.features(t[self.target])
        return sum(w * F.l1_loss(f, r) for w, f, r in zip(LAYER_WEIGHTS, fake, real, strict=True))
