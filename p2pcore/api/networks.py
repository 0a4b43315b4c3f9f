"""The network contracts: a norm factory, a generator, a discriminator and its parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from p2pcore.api.base import Field, Params

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



@runtime_checkable
class Generator(Protocol):
    """What a generator's `build` returns: an ``nn.Module`` from N x ctx.in_channels x H x W to
    N x ctx.out_channels x H x W in [-1, 1] (it ends in Tanh). Inputs whose sides are multiples of
    `size_multiple` keep their size; the engine pads other inputs up to it and crops the output back.

    Generators share no parameters beyond `Params`: their widths and norms differ in defaults and meaning.

    Optional: ``checkpoint_segments()`` returning the submodules (blocks that take and return one tensor)
    whose activations ``train.activation_checkpointing`` recomputes in the backward pass instead of keeping."""

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

