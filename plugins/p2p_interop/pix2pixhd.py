"""Import networks trained with NVIDIA/pix2pixHD, the pix2pixHD reference code.

The reference writes one state_dict per network (``latest_net_G.pth``, ``latest_net_D.pth``). Everything
that shapes a network is read from its weights: channel counts, ngf/ndf, the numbers of downsamplings,
residual blocks, local enhancers and their blocks, discriminator scales and layers. The only training
flag the weights cannot tell apart is the norm between instance norm (no parameters) and none, and
pix2pixHD offers instance and batch only: batch norms leave running statistics, so the norm is read
from the weights too unless given.

Reference key layouts (``model.N`` counts padding, ReLU and Tanh layers too):

* GlobalGenerator ``model``: 1 c7s1-ngf conv, 2 its norm; d convs at 4, 7, ...; residual blocks
  ``model.K.conv_block.{1,2,5,6}`` (conv, norm, conv, norm); u (transposed) convs every 3 after them;
  the c7s1-out conv one past the last u's ReLU and the reflection padding.
* LocalEnhancer: G1 as above without its last three layers, and per enhancer n = 1 .. N ``model{n}_1``
  (1 c7s1-k, 2 norm, 4 d2k, 5 norm) and ``model{n}_2`` (blocks 0 .. B-1, then the u conv at B, its norm
  at B+1; the last enhancer's c7s1-out conv at B+4).
* MultiscaleDiscriminator with intermediate features: ``scale{s}_layer{j}.{0 conv, 1 norm}``, scale s
  being used on the input downsampled num_D-1-s times; without: ``layer{s}.{k}`` as one Sequential.

The reference keeps convolution biases before batch norms; p2p drops them (they cancel against the batch
statistics), so on import each such bias is moved into the norm's running mean, which computes the same
in both test-time protocols.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from p2p_interop.junyanz import Imported, _clean, _resolved, transfer
from p2pcore.api import P2PError


@dataclass
class ImportedHD(Imported):
    """A converted network and the channel counts read from its weights (in, out)."""

    channels: tuple[int, int] = (0, 0)


NORMS = ("instance", "batch")
GENERATORS = ("global", "local")
HINT = "give the state_dict that pix2pixHD's train.py wrote, e.g. checkpoints/<name>/latest_net_G.pth"

_MODEL = re.compile(r"^model\.(\d+)\.")
_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")
_ENHANCER = re.compile(r"^model(\d+)_([12])\.")


def _shape(state: Mapping[str, torch.Tensor], key: str, file: str) -> tuple[int, ...]:
    if key not in state:
        raise P2PError(f"the checkpoint has no {key}, which every pix2pixHD network of this kind has", file=file,
                       key=key, hint=HINT)
    return tuple(state[key].shape)


def detect_norm(state: Mapping[str, torch.Tensor], norm: str | None) -> str:
    if norm is not None:
        if norm not in NORMS:
            raise P2PError(f"unknown --norm {norm!r}", key="--norm", hint="pix2pixHD trains with instance or batch")
        return norm
    return "batch" if any(key.endswith(".running_mean") for key in state) else "instance"


def fold_biases(state: dict[str, torch.Tensor], pairs: list[tuple[str, str]]) -> None:
    """Move the bias of each (conv, batch norm) pair of reference layers into the norm's running mean."""
    for conv, norm in pairs:
        bias = state.pop(f"{conv}.bias", None)
        if bias is not None and f"{norm}.running_mean" in state:
            state[f"{norm}.running_mean"] = state[f"{norm}.running_mean"] - bias


# -- generators --------------------------------------------------------------------------------------------

def global_layers(n_downsample: int, n_blocks: int, *, prefix: str = "model", p2p: str = "features.",
                  tail: bool = True) -> list[tuple[str, str]]:
    """(p2p module, reference module) pairs of G1 (without its output layer unless `tail`)."""
    pairs = [(f"{p2p}head.conv", f"{prefix}.1"), (f"{p2p}head.norm", f"{prefix}.2")]
    for i in range(n_downsample):
        pairs += [(f"{p2p}down.{i}.conv", f"{prefix}.{4 + 3 * i}"), (f"{p2p}down.{i}.norm", f"{prefix}.{5 + 3 * i}")]
    first_block = 4 + 3 * n_downsample
    for b in range(n_blocks):
        pairs += block_layers(f"{p2p}blocks.{b}", f"{prefix}.{first_block + b}")
    first_up = first_block + n_blocks
    for i in range(n_downsample):
        pairs += [(f"{p2p}up.{i}.conv", f"{prefix}.{first_up + 3 * i}"),
                  (f"{p2p}up.{i}.norm", f"{prefix}.{first_up + 3 * i + 1}")]
    if tail:
        pairs.append(("tail.conv", f"{prefix}.{first_up + 3 * n_downsample + 1}"))
    return pairs


def block_layers(p2p: str, reference: str) -> list[tuple[str, str]]:
    return [(f"{p2p}.conv1", f"{reference}.conv_block.1"), (f"{p2p}.norm1", f"{reference}.conv_block.2"),
            (f"{p2p}.conv2", f"{reference}.conv_block.5"), (f"{p2p}.norm2", f"{reference}.conv_block.6")]


def enhancer_layers(n: int, n_blocks_local: int, *, last: bool) -> list[tuple[str, str]]:
    """Pairs of enhancer n (1-based): front-end ``model{n}_1``, blocks and back-end ``model{n}_2``."""
    p2p, front, back = f"enhancers.{n - 1}", f"model{n}_1", f"model{n}_2"
    pairs = [(f"{p2p}.front.0.conv", f"{front}.1"), (f"{p2p}.front.0.norm", f"{front}.2"),
             (f"{p2p}.front.1.conv", f"{front}.4"), (f"{p2p}.front.1.norm", f"{front}.5")]
    for b in range(n_blocks_local):
        pairs += block_layers(f"{p2p}.blocks.{b}", f"{back}.{b}")
    pairs += [(f"{p2p}.up.conv", f"{back}.{n_blocks_local}"), (f"{p2p}.up.norm", f"{back}.{n_blocks_local + 1}")]
    if last:
        pairs.append(("tail.conv", f"{back}.{n_blocks_local + 4}"))
    return pairs


def _global_structure(state: Mapping[str, torch.Tensor], file: str) -> tuple[int, int, int, int]:
    """(input channels, ngf, n_downsample, n_blocks) of the G1 ``model`` in a state_dict."""
    in_channels = _shape(state, "model.1.weight", file)[1]
    ngf = _shape(state, "model.1.weight", file)[0]
    blocks = sorted({int(m.group(1)) for key in state if (m := _BLOCK.match(key))})
    if not blocks:
        raise P2PError("the checkpoint's G1 has no residual blocks (model.K.conv_block...)", file=file,
                       hint=HINT)
    n_downsample = (blocks[0] - 4) // 3
    if n_downsample < 1 or 4 + 3 * n_downsample != blocks[0] or blocks != list(range(blocks[0], blocks[-1] + 1)):
        raise P2PError(f"the checkpoint's G1 layers are not laid out as pix2pixHD's (residual blocks at "
                       f"model.{blocks[0]} .. model.{blocks[-1]})", file=file, hint=HINT)
    return in_channels, ngf, n_downsample, len(blocks)


def reference_generator(state: Mapping[str, torch.Tensor]) -> str:
    return "local" if any(_ENHANCER.match(key) for key in state) else "global"


def import_generator(state: Mapping[str, torch.Tensor], host: Any, *, net_g: str | None = None,
                     norm: str | None = None, file: str = "") -> ImportedHD:
    """Convert a reference GlobalGenerator (``--netG global``) or LocalEnhancer (``--netG local``);
    `net_g` None: whichever the weights hold."""
    state = _clean(state)
    found = reference_generator(state)
    if net_g is not None and net_g not in GENERATORS:
        raise P2PError(f"unknown --netG {net_g!r}", key="--netG", hint="pix2pixHD's generators: global, local")
    if net_g is not None and net_g != found:
        raise P2PError(f"the checkpoint holds a {found} generator, not a {net_g} one", file=file, key="--netG",
                       hint=f"use --netG {found}, or leave --netG out: it is read from the weights")
    norm = detect_norm(state, norm)
    in_channels, ngf_global, n_downsample, n_blocks = _global_structure(state, file)
    if found == "global":
        n_enhancers = 0
        layers = global_layers(n_downsample, n_blocks)
        out_channels = _shape(state, layers[-1][1] + ".weight", file)[0]
        spec: dict[str, Any] = {"name": "global", "ngf": ngf_global, "n_downsample": n_downsample,
                                "n_blocks": n_blocks, "norm": norm}
    else:
        n_enhancers = max(int(m.group(1)) for key in state if (m := _ENHANCER.match(key)))
        local_blocks = {int(key.split(".")[1]) for key in state
                        if key.startswith(f"model{n_enhancers}_2.") and ".conv_block." in key}
        n_blocks_local = len(local_blocks)
        ngf = _shape(state, f"model{n_enhancers}_1.1.weight", file)[0]
        if ngf * 2 ** n_enhancers != ngf_global:
            raise P2PError(f"G1 has {ngf_global} filters in its first layer, but {n_enhancers} enhancer(s) of "
                           f"{ngf} filters need {ngf * 2 ** n_enhancers}", file=file, key="model.1.weight",
                           hint=HINT)
        layers = global_layers(n_downsample, n_blocks, p2p="global_net.", tail=False)
        for n in range(1, n_enhancers + 1):
            layers += enhancer_layers(n, n_blocks_local, last=n == n_enhancers)
        out_channels = _shape(state, layers[-1][1] + ".weight", file)[0]
        spec = {"name": "local_enhancer", "ngf": ngf, "n_enhancers": n_enhancers, "n_blocks_local": n_blocks_local,
                "n_downsample": n_downsample, "n_blocks": n_blocks, "norm": norm}
    if norm == "batch":
        fold_biases(state, [(layers[i][1], layers[i + 1][1]) for i in range(len(layers) - 1)
                            if layers[i][0].endswith("conv") and layers[i + 1][0].endswith("norm")])
    net = host.build("generator", spec, in_channels=in_channels, out_channels=out_channels)
    flags = f"--netG {found} --norm {norm}"
    transfer(state, net, layers, file=file, flags=flags,
             explain=lambda: f"{HINT}; the layers read from it: {_describe(spec)}")
    return ImportedHD("generator", _resolved(host, "generator", spec), net, channels=(in_channels, out_channels))


def _describe(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in spec.items() if k != "name")


# -- the multi-scale discriminator -------------------------------------------------------------------------

def discriminator_layers(num_d: int, n_layers: int, interm: bool) -> list[tuple[str, str]]:
    """Pairs of a multi-scale discriminator; p2p's scales[k] is the reference's scale num_D-1-k."""
    pairs = []
    for k in range(num_d):
        s = num_d - 1 - k
        p2p = f"scales.{k}"
        if interm:
            pairs.append((f"{p2p}.blocks.0.conv", f"scale{s}_layer0.0"))
            for j in range(1, n_layers + 1):
                pairs += [(f"{p2p}.blocks.{j}.conv", f"scale{s}_layer{j}.0"),
                          (f"{p2p}.blocks.{j}.norm", f"scale{s}_layer{j}.1")]
            pairs.append((f"{p2p}.head", f"scale{s}_layer{n_layers + 1}.0"))
        else:
            pairs.append((f"{p2p}.blocks.0.conv", f"layer{s}.0"))
            for j in range(1, n_layers + 1):
                conv = 2 + 3 * (j - 1)
                pairs += [(f"{p2p}.blocks.{j}.conv", f"layer{s}.{conv}"),
                          (f"{p2p}.blocks.{j}.norm", f"layer{s}.{conv + 1}")]
            pairs.append((f"{p2p}.head", f"layer{s}.{2 + 3 * n_layers}"))
    return pairs


def import_discriminator(state: Mapping[str, torch.Tensor], host: Any, *, norm: str | None = None,
                         conditional: bool = True, file: str = "") -> ImportedHD:
    """Convert a reference MultiscaleDiscriminator (saved with or without intermediate features)."""
    state = _clean(state)
    norm = detect_norm(state, norm)
    interm = any(key.startswith("scale0_layer") for key in state)
    if interm:
        num_d = len({key.split("_")[0] for key in state if key.startswith("scale")})
        n_layers = len({key.split(".")[0] for key in state if key.startswith("scale0_layer")}) - 2
        first = "scale0_layer0.0.weight"
    else:
        num_d = len({key.split(".")[0] for key in state if re.match(r"^layer\d+\.", key)})
        convs = [key for key, t in state.items() if key.startswith("layer0.") and key.endswith(".weight")
                 and t.dim() == 4]
        n_layers = len(convs) - 2
        first = "layer0.0.weight"
    if num_d < 1 or n_layers < 1:
        raise P2PError("the checkpoint does not hold a pix2pixHD multi-scale discriminator", file=file,
                       hint="give the state_dict train.py wrote for D, e.g. latest_net_D.pth")
    ndf, seen = _shape(state, first, file)[:2]
    inner = {"name": "patch", "n_layers": n_layers, "ndf": ndf, "norm": norm, "padding": 2}
    spec = {"name": "multiscale", "num_D": num_d, "conditional": conditional, "discriminator": inner}
    layers = discriminator_layers(num_d, n_layers, interm)
    if norm == "batch":
        fold_biases(state, [(layers[i][1], layers[i + 1][1]) for i in range(len(layers) - 1)
                            if layers[i][0].endswith("conv") and layers[i + 1][0].endswith("norm")])
    net = host.build("discriminator", spec, in_channels=seen)
    transfer(state, net, layers, file=file,
             flags=f"a multi-scale discriminator of {num_d} scales, n_layers {n_layers}, --norm {norm}",
             explain=lambda: "give the state_dict train.py wrote for D, e.g. latest_net_D.pth")
    return ImportedHD("discriminator", _resolved(host, "discriminator", spec), net, conditional, channels=(seen, 1))
