"""Feature networks for distances between image sets: torchvision architectures built without weights,
loaded from a file the user names (a ``.pth`` state_dict read with ``weights_only=True``, or
``.safetensors``). Nothing is downloaded.

- ``inception_v3``: the 2048 features after the final average pool (the classifier removed), input 299.
  Built with ``transform_input=True``, as torchvision builds it for its ImageNet weights.
- ``vgg16``: the 512 channels of the last convolution block (after its max pool), averaged over space,
  input 224. Only the convolutions are built, so a file holding the classifier too loads as it is.

Images in [-1, 1] are resized to the input size (bilinear, antialiased), ImageNet-normalised and passed
through the network in float32; 1-channel images are repeated to RGB."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import P2PError, load_weights, read_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZES = {"inception_v3": 299, "vgg16": 224}
MIN_SIZES = {"inception_v3": 75, "vgg16": 32}  # smaller inputs vanish in the networks' strides


def weights_hint(network: str) -> str:
    return (f"give a state_dict of torchvision's {network} (a .pth file, e.g. torchvision's ImageNet weights, "
            "or a .safetensors file with the same key names); p2p never downloads weights")


def inception_trunk() -> nn.Module:
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, transform_input=True, init_weights=False)
    net.fc = nn.Identity()  # the 2048 pooled features
    return net


def vgg16_trunk() -> nn.Module:
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["D"])  # vgg16(weights=None).features


class FeatureNetwork(nn.Module):
    """Images in [-1, 1] to one feature vector each; always in inference mode."""

    def __init__(self, name: str, trunk: nn.Module, size: int, *, pool: bool) -> None:
        super().__init__()
        self.name = name
        self.trunk = trunk.requires_grad_(False).eval()
        self.size = size
        self.pool = pool
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureNetwork:
        return super().train(False)  # a fixed measure: batch norms keep their statistics

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise P2PError(f"the {self.name} features need RGB (or 1-channel) images, got {x.shape[1]} channels",
                           hint="remove frechet_distance for this task, or evaluate colour images")
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        x = ((x + 1) / 2 - self.mean) / self.std
        features = self.trunk(x)
        return features.mean((2, 3)) if self.pool else features.flatten(1)


def feature_network(network: str, path: Path, *, size: int | None, key: str) -> FeatureNetwork:
    """The named torchvision architecture with the weights of `path`, frozen. `key` is the metric's recipe
    path: errors name its `weights` or `size`."""
    if size is not None and size < MIN_SIZES[network]:
        raise P2PError(f"{network} needs inputs of at least {MIN_SIZES[network]} pixels, but size is {size}",
                       key=f"{key}.size", hint=f"leave size out for {network}'s own {INPUT_SIZES[network]}")
    key = f"{key}.weights"
    state = read_weights(path, what=network, key=key, hint=weights_hint(network))
    if network == "inception_v3":
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            trunk = inception_trunk()
        load_weights(trunk, state, what=network, file=str(path), key=key, hint=weights_hint(network), assign=True)
        return FeatureNetwork(network, trunk, size or INPUT_SIZES[network], pool=False)
    if network == "vgg16":
        with torch.device("meta"):
            trunk = vgg16_trunk()
        prefix = "features." if any(name.startswith("features.") for name in state) else ""
        load_weights(trunk, state, what=network, file=str(path), key=key, hint=weights_hint(network),
                     prefix=prefix, assign=True)
        return FeatureNetwork(network, trunk, size or INPUT_SIZES[network], pool=True)
    raise ValueError(f"unknown feature network {network!r}")  # the parameters' Literal refuses it first
