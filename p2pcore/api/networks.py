"""The network contracts: a norm factory, a generator, a discriminator and its parameters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from p2pcore.api.base import Field, Params
from p2pcore.errors import P2PError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


@runtime_checkable
class NormFactory(Protocol):
    """Makes a normalisation layer for a number of channels.

    `conv_bias` says whether the convolution before it should keep a bias (a batch norm with
    an affine shift makes that bias redundant).
    """

    conv_bias: bool

    def __call__(self, channels: int) -> nn.Module: ...


@dataclass(frozen=True)
class Tap:
    """An intermediate feature map a generator offers to tasks (the feature-tap contract, API 1.4): its name,
    its channels and its scale (the map's sides are the input's divided by `scale`)."""

    name: str
    channels: int
    scale: int = 1


def check_taps(layers: Sequence[int], names: Sequence[str], *, key: str, generator: str = "the generator") -> None:
    """Refuse layer indices a generator does not have (`names`: its taps in execution order), naming `key`:
    shared by tasks checking a recipe without torch and generators asked for features."""
    bad = [layer for layer in layers if not 0 <= layer < len(names)]
    if bad or not layers:
        listed = ", ".join(f"{i} {name}" for i, name in enumerate(names))
        raise P2PError(f"{generator} has no layer {', '.join(map(str, bad))}" if bad else "no layers given",
                       key=key, hint=f"its {len(names)} layers, in execution order: {listed}")


@runtime_checkable
class Generator(Protocol):
    """What a generator's `build` returns: an ``nn.Module`` from N x ctx.in_channels x H x W to
    N x ctx.out_channels x H x W in [-1, 1] (it ends in Tanh). Inputs whose sides are multiples of
    `size_multiple` keep their size; the engine pads other inputs up to it and crops the output back.

    Generators share no parameters beyond `Params`: their widths and norms differ in defaults and meaning.

    Optional: ``checkpoint_segments()`` returning the submodules (blocks that take and return one tensor)
    whose activations ``train.activation_checkpointing`` recomputes in the backward pass instead of keeping.

    Optional, the feature-tap contract (API 1.4), through which a task reads a generator's intermediate
    features (CUT's PatchNCE compares the encoder's features of the input and of the output):
    ``taps() -> Sequence[Tap]``, the maps it offers in execution order (index 0 is the input itself), and
    ``feature_maps(x, layers) -> list[Tensor]``, the maps at those indices, in the order asked, computing no
    further than the last one needs. The generator's registered ``facts(params)`` then includes
    ``"taps"``: the taps' names in the same order, so a task can check layer indices at ``p2p validate``
    (:func:`check_taps`) and ``p2p show generator NAME`` lists them."""

    size_multiple: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class DiscriminatorParams(Params):
    """The fields every discriminator has, so that tasks and recipes can rely on them: a task judging
    single images refuses `conditional = true`, and `spectral_norm` is one switch for any architecture."""

    conditional: bool = Field(True, description="the discriminator sees the input beside the output "
                                                "(cGAN); false: the output alone")
    spectral_norm: bool = Field(False, description="spectral normalisation of every convolution's weight")


@runtime_checkable
class Discriminator(Protocol):
    """What a discriminator's `build` returns: an ``nn.Module`` taking N x ctx.in_channels x H x W (the task
    decides: input and output stacked when conditional) and returning N x 1 x h x w logits, a list of such
    maps (one per scale), or, for feature matching across scales, per scale the list of its intermediate
    maps ending with its logits. Its params subclass :class:`DiscriminatorParams`.

    `receptive_field` is the side in pixels that each logit sees and `conditional` repeats its params'.
    Optional: ``forward_features(x)`` returning every intermediate map with the logits last, which lets
    ``multiscale`` and ``feature_matching`` use the discriminator's features."""

    receptive_field: int
    conditional: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor | list[Any]: ...

