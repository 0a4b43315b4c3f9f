"""Weight initialisation applied to every network after it is built (pix2pix: N(0, 0.02))."""

from __future__ import annotations

from torch import nn

from p2pcore.recipe import InitConfig


def init_weights(net: nn.Module, config: InitConfig) -> None:
    if config.type == "none":
        return
    for module in net.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter):
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.InstanceNorm2d):
            nn.init.normal_(weight, 1.0, config.gain)
        elif isinstance(module, nn.modules.conv._ConvNd | nn.Linear):
            if config.type == "normal":
                nn.init.normal_(weight, 0.0, config.gain)
            elif config.type == "xavier":
                nn.init.xavier_normal_(weight, gain=config.gain)
            elif config.type == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=config.gain)
        else:
            continue
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            nn.init.zeros_(bias)
