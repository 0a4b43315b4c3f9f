"""CUT and FastCUT (Park, Efros, Zhang and Zhu, ECCV 2020): one-sided unpaired translation a -> b.

G maps a to b; D judges b images alone (least squares). PatchNCE ties each output patch to the input patch at
the same place: G's encoder (its feature taps at `nce_layers`) encodes the input (keys) and re-encodes the
output (queries); at each layer `num_patches` places are drawn, the same for both, and each feature vector goes
through the layer's head of the task's own network "projector" (Linear-ReLU-Linear, then L2 normalisation).
CUT adds the same loss between real_b and idt_b = G(real_b); FastCUT instead flips the input left-right at
random (one draw per step, when training) and flips the queries back (flip equivariance).

Tensor names: real_a, real_b, fake_b = G(a), idt_b = G(b); nce_ab and nce_idt, per layer (queries, keys) of
shape (images, patches, width) for fake_b against real_a and idt_b against real_b (the `patch_nce` loss term
reads them); d_real, d_fake, d_in_real, d_in_fake, d_net as pix2pix's unconditional discriminator.

A grey (1-channel) side is read by G as the other side's channels, repeated, as the reference reads every
image as RGB: G's encoder then takes the input, its output and real b images alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from p2p_tasks import cut_generator_channels
from p2p_tasks.pix2pix import judging
from p2pcore.api import P2PError, Side, Task, TaskContext, Tensors, check_taps

EPS = 1e-7  # the reference's Normalize: x / (||x|| + 1e-7)


class PatchProjector(nn.Module):
    """Per tapped layer, a head Linear(C, width) - ReLU - Linear(width, width) whose outputs are L2-normalised
    (the reference's PatchSampleF with use_mlp)."""

    def __init__(self, channels: Sequence[int], width: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(), nn.Linear(width, width))
                                   for c in channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each (images, patches, C) to (images, patches, width), unit length."""
        out = []
        for head, x in zip(self.heads, features, strict=True):
            y = head(x)
            out.append(y / (y.pow(2).sum(dim=-1, keepdim=True).sqrt() + EPS))
        return out


def sample_places(features: Sequence[torch.Tensor], num_patches: int) -> list[torch.Tensor]:
    """Per layer, `num_patches` distinct places (flat indices over the map's rows then columns; all of them
    when the map is smaller), drawn from torch's default generator: one draw for every image of the batch."""
    places = []
    for f in features:
        count = f.shape[2] * f.shape[3]
        places.append(torch.randperm(count)[: min(num_patches, count)].to(f.device))
    return places


def gather(features: Sequence[torch.Tensor], places: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Per layer, the feature vectors at the places: (images, C, H, W) to (images, patches, C)."""
    return [f.flatten(2).transpose(1, 2)[:, p] for f, p in zip(features, places, strict=True)]


class CUTTask(Task):
    def __init__(self, params: Any) -> None:
        self.layers = list(params.nce_layers)
        self.num_patches = params.num_patches
        self.width = params.projector_width
        self.flip = params.flips()
        self.g_channels = 0

    def build_networks(self, ctx: TaskContext) -> dict[str, nn.Module]:
        a, b = ctx.channels["a"], ctx.channels["b"]
        self.g_channels = cut_generator_channels(a, b)
        nets = {"generator": ctx.build("generator", in_channels=self.g_channels, out_channels=b)}
        if ctx.wants("discriminator"):
            nets["discriminator"] = ctx.build("discriminator", in_channels=b, out_channels=1)
        return nets

    def build_own_networks(self, ctx: TaskContext, nets: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
        generator = nets["generator"]
        if not callable(getattr(generator, "taps", None)) or not callable(getattr(generator, "feature_maps", None)):
            raise P2PError(f"cut encodes images with the generator's feature taps, and {type(generator).__name__} "
                           "offers none", key="model.generator",
                           hint='use a generator with taps (p2p show generator resnet lists them)')
        names = [tap.name for tap in generator.taps()]
        check_taps(self.layers, names, key="task.nce_layers", generator=type(generator).__name__)
        taps = generator.taps()
        return {"projector": PatchProjector([taps[i].channels for i in self.layers], self.width)}

    def _input(self, image: torch.Tensor) -> torch.Tensor:
        """An image as G reads it: a grey one repeated to G's channels."""
        if image.shape[1] == 1 and self.g_channels > 1:
            return image.repeat(1, self.g_channels, 1, 1)
        return image

    def _nce(self, g: nn.Module, projector: nn.Module, source: torch.Tensor, output: torch.Tensor,
             flipped: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, (queries of `output`, keys of `source`) at the same sampled places. Keys are targets
        (the loss detaches them), so they are computed without a graph."""
        with torch.no_grad():
            keys = g.feature_maps(self._input(source), self.layers)
            places = sample_places(keys, self.num_patches)
            k = projector(gather(keys, places))
        queries = g.feature_maps(self._input(output), self.layers)
        if flipped:  # the output came from the flipped input: flip its features back onto the input's places
            queries = [torch.flip(f, dims=[3]) for f in queries]
        q = projector(gather(queries, places))
        return list(zip(q, k, strict=True))

    def step_tensors(self, nets: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Tensors:
        g, projector = nets["generator"], nets.get("projector")
        # flip equivariance: one draw per training step (never for sample grids, which run without gradients)
        flipped = self.flip and torch.is_grad_enabled() and bool(torch.rand(()) < 0.5)

        def translated(image: torch.Tensor) -> torch.Tensor:
            x = self._input(image)
            return g(torch.flip(x, dims=[3]) if flipped else x)

        def nce(source: str, output: str) -> Any:
            def produce(t: Tensors) -> list[tuple[torch.Tensor, torch.Tensor]]:
                if projector is None:
                    raise P2PError("PatchNCE needs the task's projector, which is built only for training")
                return self._nce(g, projector, t[source], t[output], flipped)
            return produce

        return Tensors({"fake_b": lambda t: translated(t["real_a"]),
                        "idt_b": lambda t: translated(t["real_b"]),
                        "nce_ab": nce("real_a", "fake_b"),
                        "nce_idt": nce("real_b", "idt_b")},
                       values={"real_a": batch["a"], "real_b": batch["b"]})

    def phase_tensors(self, side: Side, nets: Mapping[str, nn.Module], base: Tensors) -> Tensors:
        if "discriminator" not in nets:
            return base
        return base.extend(judging(nets["discriminator"], lambda t, b: b, detach=side == "discriminator"))

    def translate(self, direction: str, nets: Mapping[str, nn.Module], image: torch.Tensor) -> torch.Tensor:
        return nets["generator"](self._input(image))
