"""Built-in normalisation layers: batch, syncbatch, instance, none."""

from __future__ import annotations

from typing import Any

from p2pcore.api import BuildContext, Field, Params, hookimpl

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION


class BatchParams(Params):
    momentum: float = Field(0.1, gt=0, le=1, description="running-statistics momentum")
    eps: float = Field(1e-5, gt=0, description="added to the variance for stability")


class InstanceParams(Params):
    affine: bool = Field(False, description="learn a per-channel scale and shift (the papers use none)")
    eps: float = Field(1e-5, gt=0, description="added to the variance for stability")


class _Norm:
    """A NormFactory: ``norm(channels)`` makes the layer; `conv_bias` tells the conv before it."""

    def __init__(self, make: Any, conv_bias: bool, name: str) -> None:
        self._make = make
        self.conv_bias = conv_bias
        self.name = name

    def __call__(self, channels: int) -> Any:
        return self._make(channels)

    def __repr__(self) -> str:
        return f"NormFactory({self.name})"


def build_batch(params: BatchParams, ctx: BuildContext) -> _Norm:
    """Batch normalisation with learned scale and shift (pix2pix)."""
    from torch import nn

    return _Norm(lambda c: nn.BatchNorm2d(c, eps=params.eps, momentum=params.momentum), False, "batch")


def build_syncbatch(params: BatchParams, ctx: BuildContext) -> _Norm:
    """Batch normalisation over the whole batch of a data-parallel run (every process's shard);
    plain batch normalisation in one process."""
    from p2p_norms.syncbatch import SyncBatchNorm2d

    return _Norm(lambda c: SyncBatchNorm2d(c, eps=params.eps, momentum=params.momentum), False, "syncbatch")


def build_instance(params: InstanceParams, ctx: BuildContext) -> _Norm:
    """Instance normalisation, per image and channel (CycleGAN, pix2pixHD)."""
    from torch import nn

    return _Norm(lambda c: nn.InstanceNorm2d(c, eps=params.eps, affine=params.affine,
                                             track_running_stats=False),
                 not params.affine, "instance")


def build_none(params: Params, ctx: BuildContext) -> _Norm:
    """No normalisation."""
    from torch import nn

    return _Norm(lambda c: nn.Identity(), True, "none")


@hookimpl
def p2p_register_norms(register: Any) -> None:
    register("batch", build_batch, params=BatchParams, aliases=("batchnorm",))
    register("syncbatch", build_syncbatch, params=BatchParams, aliases=("syncbatchnorm",))
    register("instance", build_instance, params=InstanceParams, aliases=("instancenorm",))
    register("none", build_none, aliases=("identity",))
