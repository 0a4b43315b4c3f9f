"""Weight initialisation applied to every network after it is built (pix2pix: N(0, 0.02))."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from p2pcore.checkpoint.state import optimizer_state_from_flat
from p2pcore.errors import P2PError
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


def load_pretrained(nets: dict[str, nn.Module], config: InitConfig) -> list[str]:
    """Copy weights from `config.checkpoint` as `config.load` maps them (target role[.module] = source
    role[.module]); returns what was loaded, for the console. Shapes must match exactly."""
    from p2pcore.checkpoint.files import load_network, read_checkpoint

    if config.checkpoint is None:
        return []
    ckpt = read_checkpoint(config.checkpoint)
    roles_there = sorted({name.split(".")[1] for name in ckpt.tensors if name.startswith("net.")})
    mapping = dict(config.load) or {role: role for role in nets if role in roles_there}
    if not mapping:
        raise P2PError("the checkpoint to start from shares no role with this recipe", file=config.checkpoint,
                       key="init.load", hint=f"it holds {', '.join(roles_there) or 'no networks'}; map them with "
                                             'init.load = { "<role>[.module]" = "<its role>[.module]" }')
    loaded = []
    for target, source in mapping.items():
        role, _, path = target.partition(".")
        if role not in nets:
            raise P2PError(f"init.load names {role!r}, which this run does not build", key=f"init.load.{target}",
                           hint=f"roles: {', '.join(nets)}")
        try:
            module = nets[role].get_submodule(path) if path else nets[role]
        except AttributeError:
            raise P2PError(f"{role} has no module {path!r}", key=f"init.load.{target}",
                           hint="name a module of the network, e.g. global_net") from None
        state = ckpt.prefixed(f"net.{source}")
        if not state:
            raise P2PError(f"the checkpoint holds no network {source!r}", file=config.checkpoint,
                           key=f"init.load.{target}", hint=f"it holds {', '.join(roles_there) or 'none'}")
        try:
            load_network(module, state, role=target, file=config.checkpoint)
        except P2PError as exc:
            raise P2PError(f"init.checkpoint does not fit this recipe: {exc.message}", file=config.checkpoint,
                           key="init.checkpoint", hint="start from a checkpoint of the same architecture, or map "
                                                       "a part of it with init.load") from None
        loaded.append(f"{target} <- {source}")
    return loaded


def load_pretrained_optimizers(optimizers: dict[str, torch.optim.Optimizer], config: InitConfig) -> list[str]:
    """With `init.optimizer`, put the optimiser state (Adam moments and their step counts) of every player from
    `config.checkpoint` into this run's optimisers, keeping this recipe's settings (its learning rate applies);
    each state must fit the parameters this recipe builds. Returns what was loaded, for the console."""
    from p2pcore.checkpoint.files import read_checkpoint

    if not config.optimizer or config.checkpoint is None:
        return []
    ckpt = read_checkpoint(config.checkpoint)
    saved = ckpt.metadata.get("optim") or {}
    if not saved:
        raise P2PError("the checkpoint holds no optimiser state", file=config.checkpoint, key="init.checkpoint",
                       hint="it holds weights only (e.g. from `p2p import`); set init.optimizer = false")
    loaded = []
    for player, optimizer in optimizers.items():
        if player not in saved:
            raise P2PError(f"the checkpoint holds no optimiser state for player {player!r}",
                           file=config.checkpoint, key="init.checkpoint",
                           hint=f"it holds {', '.join(sorted(saved))}; set init.optimizer = false")
        state = optimizer_state_from_flat(player, ckpt.tensors, saved[player])
        own = optimizer.state_dict()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        _check_fits(player, state, params, config.checkpoint)
        optimizer.load_state_dict({"state": state, "param_groups": own["param_groups"]})
        loaded.append(f"optimiser {player}")
    return loaded


def _check_fits(player: str, state: Mapping[int, Mapping[str, Any]], params: list[torch.nn.Parameter],
                file: str) -> None:
    """Every saved state belongs to a parameter of this run, and its moments have that parameter's shape."""
    beyond = sorted(index for index in state if not 0 <= index < len(params))
    if beyond or len(state) != len(params):
        raise P2PError(f"the checkpoint's optimiser state of {player!r} covers {len(state)} parameters, this "
                       f"recipe's {len(params)}", file=file, key="init.checkpoint",
                       hint="start from a checkpoint of the same networks, or set init.optimizer = false")
    for index, entry in state.items():
        shape = tuple(params[index].shape)
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() and tuple(value.shape) != shape:
                raise P2PError(f"the checkpoint's optimiser state {player}.{index}.{key} has shape "
                               f"{tuple(value.shape)}, this recipe's parameter {shape}", file=file,
                               key="init.checkpoint", hint="start from a checkpoint of the same networks, or "
                                                           "set init.optimizer = false")
